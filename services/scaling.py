"""Scaling: the chain a worker proposal rests on, from the measured arrivals and service times
through Erlang C (services.capacity) and a simulated check of the peak hour to what it costs and
the text a client approves (services.costs). No Streamlit here: the Queues page reads its inputs,
calls plan() and draws the result."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from services import capacity, costs, formatting, kube, metrics
from services.config import rules

# (peak per hour, slots, service-time histogram, wait_s, jobs) -> share started within wait_s
Simulator = Callable[[float, int, pd.DataFrame, float, int], float]


def concurrency() -> int:
    """Jobs one worker runs at once (Celery concurrency)."""
    return int(rules("platform")["worker_concurrency"])


@dataclass(frozen=True)
class Measurements:
    """What the proposal is measured from: the window, its arrivals and its service times."""

    window: capacity.Window
    profile: pd.DataFrame  # capacity.arrival_profile
    service: capacity.ServiceTimes
    # Derived once here (the measurement is cached), not on every run of the page: the fleet's
    # hourly load, each tenant's usage and its own busiest hour.
    load: pd.DataFrame = field(init=False)  # capacity.hourly_load
    usage: pd.DataFrame = field(init=False)  # capacity.tenant_usage
    peaks: pd.DataFrame = field(init=False)  # capacity.tenant_peaks

    def __post_init__(self) -> None:
        derived = {
            "load": capacity.hourly_load(self.profile),
            "usage": capacity.tenant_usage(self.profile),
            "peaks": capacity.tenant_peaks(self.profile, self.window.days),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def measurable(self) -> bool:
        """False without finished runs: nothing to measure the service time from."""
        return bool(self.service.runs and self.service.mean_s)


def measure(now: datetime) -> Measurements:
    """The last [capacity] history_days of arrivals and finished runs (admin reads)."""
    cap = rules("capacity")
    win = capacity.measured_window(now, cap["history_days"])
    profile, service = capacity.measure(
        win, cap["timezone"], rules("platform")["celery_time_limit_s"]
    )
    return Measurements(win, profile, service)


def cluster(values: Mapping[str, float | None] | None) -> costs.Cluster:
    """What runs now, from metrics.current(); None (Prometheus down): all unknown."""
    now = values if values is not None else dict.fromkeys(metrics.HPA_KEYS)
    names = kube.names()
    return costs.Cluster(
        names.namespace,
        names.worker,
        names.hpa,
        now["hpa_min"],
        now["hpa_max"],
        now["replicas_available"],
    )


def default_workers(history_mean: float | None, now: costs.Cluster) -> float:
    """The current average workers to price: the history's mean, else those running, else 1."""
    return float(round(history_mean or now.replicas or 1.0, 1))


@dataclass(frozen=True)
class Targets:
    wait_minutes: float  # a job should start within this...
    share_pct: float  # ...for this share of jobs (%)
    extra_per_day: float = 0  # what if: a new client's tickets per day

    @property
    def wait_s(self) -> float:
        return self.wait_minutes * 60

    @property
    def share(self) -> float:
        return self.share_pct / 100


@dataclass(frozen=True)
class ScalingPlan:
    window: capacity.Window
    profile: pd.DataFrame
    service: capacity.ServiceTimes
    targets: Targets
    cluster: costs.Cluster
    load: pd.DataFrame  # capacity.hourly_load of all tenants (without the what-if client)
    proposal: capacity.Proposal
    simulated: float | None  # simulated share within the target at the peak; None: no proposal
    usage: pd.DataFrame  # capacity.tenant_usage
    peaks: pd.DataFrame  # capacity.tenant_peaks
    prices: costs.Prices
    current: costs.MonthlyCost
    proposed: costs.MonthlyCost
    shares: pd.DataFrame  # costs.tenant_shares of the proposed worker bill
    client_line: str | None  # the client in focus's own share, for the text
    text: str  # costs.proposal_text
    prepared_at: datetime

    @property
    def file_name(self) -> str:
        return f"worker-scaling-proposal-{self.prepared_at:%Y-%m-%d}.txt"

    @property
    def summary(self) -> str | None:
        """The proposal in one sentence (markdown); None when no worker count is enough."""
        top = self.proposal.workers_peak
        if top is None:
            return None
        at_peak = self.proposal.table.set_index("workers").loc[top]
        slots = top * self.proposal.concurrency
        return (
            f"With **{top} worker{'s' * (top > 1)}** ({slots} "
            f"Celery slots) the model starts **{at_peak['share_within']:.1%}** of peak-hour jobs "
            f"within {self.targets.wait_minutes:g} min at {at_peak['utilisation']:.0%} "
            f"utilisation; a simulation with the measured service times gives "
            f"**{self.simulated:.1%}**. Current HPA: {self.now_text}."
        )

    @property
    def now_text(self) -> str:
        c = self.cluster
        return (
            f"min {formatting.count(c.hpa_min, 'unknown')}, "
            f"max {formatting.count(c.hpa_max, 'unknown')}, "
            f"{formatting.count(c.replicas, 'unknown')} workers running"
        )

    def worker_rows(self) -> pd.DataFrame:
        """The worker table around the proposal, its settings noted, waits as text."""
        proposal, hpa_max = self.proposal, self.cluster.hpa_max
        shown = max(proposal.workers_peak or 0, int(hpa_max or 0), 4) + 2
        table = proposal.table[proposal.table["workers"] <= shown].copy()
        notes = {proposal.workers_min: "proposed min", proposal.workers_peak: "proposed max"}
        if proposal.workers_min == proposal.workers_peak:
            notes = {proposal.workers_peak: "proposed min and max"}
        if hpa_max is not None:
            notes.setdefault(int(hpa_max), "current max")
        table.insert(1, "note", table["workers"].map(notes).fillna(""))
        for column in ("mean_wait_s", "quantile_wait_s"):
            table[column] = [
                ("never drains" if math.isinf(v) else formatting.duration(v)) for v in table[column]
            ]
        return table

    def arrival_choices(self) -> dict[str, str]:
        """Whose arrivals the heatmap can show: '' for all tenants, else tenant_id -> name."""
        tenants = self.peaks.sort_values("tenant_id")
        names = zip(tenants["tenant_id"].tolist(), tenants["name"].tolist(), strict=True)
        return {"": "All tenants", **dict(names)}

    def arrivals(self, tenant_id: str) -> pd.DataFrame:
        """Jobs per hour of the week of one tenant, or ('') of all with the what-if client."""
        if tenant_id:
            return capacity.hourly_load(self.profile[self.profile["tenant_id"] == tenant_id])
        return capacity.with_new_client(self.load, self.targets.extra_per_day)

    def tenant_peaks(self) -> pd.DataFrame:
        return self.peaks

    def assumptions(self) -> str:
        """The model's assumptions with this plan's numbers (markdown)."""
        cap = rules("capacity")
        return (
            f"- **Arrivals**: every enhancement_history row of the last "
            f"{cap['history_days']} days is one job; within an hour they arrive at random "
            f"(Poisson) at that weekday-hour's average rate ({cap['timezone']}). Bursts "
            "inside the hour are not modelled.\n"
            f"- **Service**: worker time per job = processing_time_ms of finished runs, "
            f"exponential with the measured mean (M/M/c, Erlang C). The measured spread is "
            f"smaller (coefficient of variation {self.service.cv or 0:.2f} vs 1), so the model "
            "errs on the safe side; the simulation above uses the measured distribution.\n"
            f"- **Servers**: each worker runs {self.proposal.concurrency} jobs at once (Celery "
            "concurrency); all tenants share one first-come-first-served queue (priorities "
            "ignored).\n"
            "- **HPA**: max = workers for the busiest hour; min = workers for a typical "
            f"(median) hour, never fewer than {cap['min_workers']} (one worker restarting "
            "must not stop processing); in between the HPA is assumed to follow the load (the "
            "monthly cost uses that hour-by-hour average). It scales on CPU "
            "today, minutes behind a sudden peak: raise the min for business hours if the peak "
            "arrives all at once.\n"
            f"- **What if**: a new client of {self.targets.extra_per_day} tickets per day is "
            "spread over the week like the current fleet."
        )


def plan(
    measured: Measurements,
    targets: Targets,
    now: costs.Cluster,
    prices: costs.Prices,
    current_workers: float,
    prepared_by: str,
    prepared_at: datetime,
    tenant_id: str | None = None,
    simulate: Simulator = capacity.simulated_share_within,
) -> ScalingPlan:
    """Workers for the peak hour ([capacity] rules), checked by simulating that hour with the
    measured service times, priced against `current_workers`, with each tenant's share and the
    text for the client in focus (`tenant_id`: only its own share is in it).

    `simulate` is capacity.simulated_share_within or a cached copy of it (it is the slow step).
    """
    if not measured.measurable:
        raise ValueError("no finished runs to measure the service time from")
    cap, slots_per_worker = rules("capacity"), concurrency()
    win, service = measured.window, measured.service
    assert service.mean_s is not None  # measurable
    load, usage = measured.load, measured.usage
    proposal = capacity.propose(
        load,
        service.mean_s,
        slots_per_worker,
        targets.wait_s,
        targets.share,
        cap["max_workers"],
        float(targets.extra_per_day),
        floor=cap["min_workers"],
    )
    simulated = None
    if proposal.workers_peak is not None:
        simulated = simulate(
            proposal.peak_per_hour,
            proposal.workers_peak * slots_per_worker,
            service.histogram,
            targets.wait_s,
            cap["simulation_jobs"],
        )
    per_month = usage["runs"].sum() * prices.days_per_month / win.days
    current = costs.monthly("Current", current_workers, per_month, prices)
    proposed = costs.monthly(
        "Proposed",
        proposal.avg_workers,
        per_month + proposal.extra_per_day * prices.days_per_month,
        prices,
    )
    shares = costs.tenant_shares(usage, win.days, proposed.workers_usd, slots_per_worker, prices)
    line = costs.client_line(shares, tenant_id)
    text = costs.proposal_text(proposal, now, current, proposed, prepared_by, prepared_at, line)
    return ScalingPlan(
        window=win,
        profile=measured.profile,
        service=service,
        targets=targets,
        cluster=now,
        load=load,
        proposal=proposal,
        simulated=simulated,
        usage=usage,
        peaks=measured.peaks,
        prices=prices,
        current=current,
        proposed=proposed,
        shares=shares,
        client_line=line,
        text=text,
        prepared_at=prepared_at,
    )
