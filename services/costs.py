"""Cost calculator: monthly worker and LLM cost, current vs proposed, each tenant's share, and
the proposal text a client approves. Pure arithmetic on numbers the other services measured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from services import formatting
from services.capacity import Proposal
from services.config import rules


@dataclass(frozen=True)
class Prices:
    worker_hour_usd: float
    llm_per_enhancement_usd: float
    hours_per_month: float

    @classmethod
    def defaults(cls) -> Prices:
        cost = rules("cost")
        return cls(
            float(cost["worker_hour_usd"]),
            float(cost["llm_per_enhancement_usd"]),
            float(cost["hours_per_month"]),
        )

    @property
    def days_per_month(self) -> float:
        return self.hours_per_month / 24


@dataclass(frozen=True)
class MonthlyCost:
    label: str
    avg_workers: float
    enhancements: float  # per month
    workers_usd: float
    llm_usd: float

    @property
    def total_usd(self) -> float:
        return self.workers_usd + self.llm_usd


def monthly(label: str, avg_workers: float, enhancements: float, prices: Prices) -> MonthlyCost:
    return MonthlyCost(
        label,
        avg_workers,
        enhancements,
        avg_workers * prices.worker_hour_usd * prices.hours_per_month,
        enhancements * prices.llm_per_enhancement_usd,
    )


def comparison(current: MonthlyCost, proposed: MonthlyCost) -> pd.DataFrame:
    """Current and proposed side by side, with the difference."""
    rows = [
        {
            "": c.label,
            "Average workers": c.avg_workers,
            "Enhancements / month": c.enhancements,
            "Workers $": c.workers_usd,
            "LLM $": c.llm_usd,
            "Total $": c.total_usd,
        }
        for c in (current, proposed)
    ]
    rows.append(
        {
            "": "Difference",
            "Average workers": proposed.avg_workers - current.avg_workers,
            "Enhancements / month": proposed.enhancements - current.enhancements,
            "Workers $": proposed.workers_usd - current.workers_usd,
            "LLM $": proposed.llm_usd - current.llm_usd,
            "Total $": proposed.total_usd - current.total_usd,
        }
    )
    return pd.DataFrame(rows)


def tenant_shares(
    usage: pd.DataFrame, window_days: float, workers_usd: float, concurrency: int, prices: Prices
) -> pd.DataFrame:
    """Each tenant's share of a monthly worker bill (in proportion to the worker-seconds its
    jobs took, so idle capacity is shared the same way) plus its own LLM cost.

    usage: tenant_id, name, runs, busy_s (slot-seconds) over `window_days`."""
    scale = prices.days_per_month / window_days
    busy = usage["busy_s"].astype(float)
    total_busy = busy.sum()
    share = busy / total_busy if total_busy > 0 else busy * 0.0
    frame = pd.DataFrame(
        {
            "tenant_id": usage["tenant_id"],
            "name": usage["name"],
            "enhancements": usage["runs"] * scale,
            # a worker runs `concurrency` jobs at once: a job-second is 1/concurrency worker-second
            "worker_s": busy / concurrency * scale,
            "share": share,
            "workers_usd": share * workers_usd,
            "llm_usd": usage["runs"] * scale * prices.llm_per_enhancement_usd,
        }
    )
    frame["total_usd"] = frame["workers_usd"] + frame["llm_usd"]
    return frame.sort_values("total_usd", ascending=False, kind="stable").reset_index(drop=True)


def client_line(shares: pd.DataFrame, tenant_id: str | None) -> str | None:
    """One client's own share (a row of tenant_shares) as a sentence for its proposal."""
    mine = shares[shares["tenant_id"] == tenant_id]
    if mine.empty:
        return None
    row = mine.iloc[0]
    return (
        f"Share of {row['name']}: ${row['total_usd']:,.2f} per month "
        f"(workers ${row['workers_usd']:,.2f}, LLM ${row['llm_usd']:,.2f}, "
        f"{row['enhancements']:,.0f} enhancements)."
    )


@dataclass(frozen=True)
class Cluster:
    """Where the proposal is applied and what runs there now (None: unknown)."""

    namespace: str
    deployment: str
    hpa: str
    hpa_min: float | None
    hpa_max: float | None
    replicas: float | None


def kubectl_commands(proposal: Proposal, cluster: Cluster) -> list[str]:
    """The procedures' commands with the proposal's numbers (comments say when to run each)."""
    top = proposal.workers_peak
    if top is None:
        return []
    where = f"-n {cluster.namespace}"
    patch = f'{{"spec":{{"minReplicas":{proposal.workers_min},"maxReplicas":{top}}}}}'
    return [
        "# permanent: the HPA's new minimum and maximum",
        f"kubectl patch hpa {cluster.hpa} {where} --type merge -p '{patch}'",
        f"kubectl get hpa {cluster.hpa} {where}",
        "# only during a backlog, for immediate relief (the HPA takes over again afterwards)",
        f"kubectl scale deployment/{cluster.deployment} {where} --replicas={top}",
    ]


def proposal_text(
    proposal: Proposal,
    cluster: Cluster,
    current: MonthlyCost,
    proposed: MonthlyCost,
    prepared_by: str,
    prepared_at: datetime,
    client_line: str | None = None,
) -> str:
    """The short text a client approves: why, what changes, what it costs, how it is applied.

    Fleet-level numbers only; `client_line` is the one client's own share, if any."""
    target = (
        f"{proposal.share:.0%} of enhancement jobs start within "
        f"{proposal.wait_s / 60:g} minutes of arriving"
    )
    if proposal.workers_peak is None:
        change = "No worker count within the configured maximum reaches the target."
    else:
        at_peak = proposal.table.set_index("workers").loc[proposal.workers_peak]
        change = (
            f"HPA min {proposal.workers_min} / max {proposal.workers_peak} workers "
            f"(Celery concurrency {proposal.concurrency} each). At the peak hour this "
            f"starts {at_peak['share_within']:.1%} of jobs within "
            f"{proposal.wait_s / 60:g} minutes, with the workers "
            f"{at_peak['utilisation']:.0%} busy."
        )
    lines = [
        "Worker scaling proposal - AI Agents ticket enhancement",
        f"Prepared {prepared_at:%Y-%m-%d %H:%M} UTC by {prepared_by}",
        "",
        f"Target: {target}.",
        f"Busiest hour: {proposal.peak_label} {rules('capacity')['timezone']}, "
        f"{proposal.peak_per_hour:.0f} jobs per hour on "
        f"average; {proposal.mean_service_s:.0f} s of worker time per job.",
    ]
    if proposal.extra_per_day:
        lines.append(f"Includes a new client of {proposal.extra_per_day:.0f} tickets per day.")
    lines += [
        "",
        f"Current: HPA min {formatting.count(cluster.hpa_min, 'unknown')} / max "
        f"{formatting.count(cluster.hpa_max, 'unknown')}, "
        f"{formatting.count(cluster.replicas, 'unknown')} workers running now.",
        f"Proposed: {change}",
        "",
        f"{'Monthly cost (USD)':<20}{'current':>12}{'proposed':>12}",
        *(
            f"  {name:<18}{getattr(current, field):>12,.2f}{getattr(proposed, field):>12,.2f}"
            for name, field in (
                ("Workers", "workers_usd"),
                ("LLM", "llm_usd"),
                ("Total", "total_usd"),
            )
        ),
        f"  Difference per month: {proposed.total_usd - current.total_usd:+,.2f}",
    ]
    if client_line:
        lines += ["", client_line]
    commands = kubectl_commands(proposal, cluster)
    if commands:
        lines += ["", "To apply after approval:", *(f"  {c}" for c in commands)]
    lines += [
        "",
        "Assumptions: arrivals in the busiest hour are random (Poisson) at the measured average",
        "rate; worker time per job is exponential with the measured mean (M/M/c, Erlang C);",
        "all jobs share one first-come-first-served queue; the HPA follows the load between min",
        "and max. LLM cost is charged per finished run.",
    ]
    return "\n".join(lines) + "\n"
