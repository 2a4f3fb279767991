"""Capacity: how many workers the platform needs, from its own arrivals and service times.

The model is M/M/c (Erlang C): jobs arrive as a Poisson stream at the peak hour's average rate;
service times are exponential with the measured mean; c = workers x Celery concurrency slots
serve the one queue first come, first served; "wait" is enqueue -> a slot takes the job.
A small discrete-event simulation of the same queue checks the model, in the tests and on the
page (there with the measured service-time distribution instead of the exponential one).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from services.db import admin_scope, read_frame

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # ISO weekday 1..7
HOURS_PER_WEEK = 168
HISTOGRAM_WIDTH_S = 5

# A finished run occupied a worker slot for processing_time_ms; pending runs have not run yet.
_FINISHED = "status IN ('completed', 'failed') AND created_at >= :since AND created_at < :until"

# Average arrivals per hour for each tenant, weekday and hour of day (in :tz): arrivals in that
# slot divided by how many such hours the window holds. The same scan counts the finished runs
# and their worker time, for the cost shares.
_ARRIVALS_SQL = """
WITH slots AS (
    SELECT extract(isodow FROM h AT TIME ZONE :tz)::int AS dow,
           extract(hour FROM h AT TIME ZONE :tz)::int AS hour,
           count(*) AS hours
      FROM generate_series(CAST(:since AS timestamptz),
                           CAST(:until AS timestamptz) - interval '1 hour',
                           interval '1 hour') AS h
     GROUP BY 1, 2
), arrivals AS (
    SELECT tenant_id,
           extract(isodow FROM created_at AT TIME ZONE :tz)::int AS dow,
           extract(hour FROM created_at AT TIME ZONE :tz)::int AS hour,
           count(*) AS arrivals,
           count(*) FILTER (WHERE status IN ('completed', 'failed')) AS finished,
           coalesce(sum(processing_time_ms) FILTER (WHERE status IN ('completed', 'failed')),
                    0) / 1000.0 AS busy_s
      FROM enhancement_history
     WHERE created_at >= :since AND created_at < :until
     GROUP BY 1, 2, 3
)
SELECT a.tenant_id, coalesce(c.name, a.tenant_id) AS name, a.dow, a.hour, a.arrivals, s.hours,
       a.arrivals::float8 / s.hours AS per_hour, a.finished, a.busy_s
  FROM arrivals a
  JOIN slots s USING (dow, hour)
  LEFT JOIN tenant_configs c USING (tenant_id)
 ORDER BY a.tenant_id, a.dow, a.hour
"""

# One scan: the finished runs' processing times, summarised and bucketed (HISTOGRAM_WIDTH_S
# seconds; the last bucket collects everything from the time limit up).
_SERVICE_SQL = f"""
WITH runs AS MATERIALIZED (
    SELECT processing_time_ms AS ms
      FROM enhancement_history
     WHERE {_FINISHED} AND processing_time_ms IS NOT NULL
), buckets AS (
    SELECT least(ms / :width_ms, :last_bucket) * :width_s AS bucket_s, count(*) AS runs
      FROM runs
     GROUP BY 1
)
SELECT count(*) AS runs,
       avg(ms) / 1000.0 AS mean_s,
       stddev_samp(ms) / 1000.0 AS sd_s,
       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms) AS percentiles_ms,
       (SELECT json_agg(json_build_array(bucket_s, runs) ORDER BY bucket_s) FROM buckets)
           AS histogram
  FROM runs
"""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400


def window(now: datetime, days: int) -> Window:
    """The last `days` whole days up to the start of the current hour."""
    until = now.replace(minute=0, second=0, microsecond=0)
    return Window(until - timedelta(days=days), until)


_FIRST_ARRIVAL_SQL = """
SELECT date_trunc('hour', min(created_at)) AS first_hour
  FROM enhancement_history
 WHERE status IN ('pending', 'completed', 'failed')
   AND created_at >= :since AND created_at < :until
"""


def measured_window(now: datetime, days: int) -> Window:
    """window(), shortened to start at the first arrival in it: averages over hours before the
    data begins (a new platform, short retention) would understate every rate."""
    win = window(now, days)
    with admin_scope() as conn:
        first = read_frame(conn, _FIRST_ARRIVAL_SQL, _params(win))["first_hour"].iloc[0]
    if first is None or pd.isna(first) or first <= win.since:
        return win
    return Window(pd.Timestamp(first).to_pydatetime(), win.until)


def _params(win: Window) -> dict[str, datetime]:
    return {"since": win.since, "until": win.until}


def arrival_profile(win: Window, tz: str) -> pd.DataFrame:
    """Per tenant, ISO weekday (1 = Monday) and hour of day: average arrivals per hour."""
    with admin_scope() as conn:
        return read_frame(conn, _ARRIVALS_SQL, {**_params(win), "tz": tz})


@dataclass(frozen=True)
class ServiceTimes:
    runs: int
    mean_s: float | None
    sd_s: float | None
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    p99_s: float | None
    histogram: pd.DataFrame  # bucket_s (lower edge), runs

    @property
    def cv(self) -> float | None:
        """Coefficient of variation: 1 for the exponential times the model assumes."""
        return self.sd_s / self.mean_s if self.sd_s is not None and self.mean_s else None


def service_times(win: Window, time_limit_s: int) -> ServiceTimes:
    """The distribution of processing_time_ms of finished runs (worker time per job)."""
    with admin_scope() as conn:
        summary = read_frame(
            conn,
            _SERVICE_SQL,
            {
                **_params(win),
                "width_ms": HISTOGRAM_WIDTH_S * 1000,
                "width_s": HISTOGRAM_WIDTH_S,
                "last_bucket": time_limit_s // HISTOGRAM_WIDTH_S,
            },
        ).iloc[0]
    pct = summary["percentiles_ms"] or [None] * 4
    seconds = [None if p is None else float(p) / 1000 for p in pct]
    return ServiceTimes(
        runs=int(summary["runs"]),
        mean_s=None if summary["mean_s"] is None else float(summary["mean_s"]),
        sd_s=None if summary["sd_s"] is None else float(summary["sd_s"]),
        p50_s=seconds[0],
        p90_s=seconds[1],
        p95_s=seconds[2],
        p99_s=seconds[3],
        histogram=pd.DataFrame(summary["histogram"] or [], columns=["bucket_s", "runs"]).astype(
            int
        ),
    )


def tenant_usage(profile: pd.DataFrame) -> pd.DataFrame:
    """Per tenant (from arrival_profile): finished runs and the worker-slot seconds they took."""
    usage = profile.groupby(["tenant_id", "name"], as_index=False).agg(
        runs=("finished", "sum"), busy_s=("busy_s", "sum")
    )
    usage = usage.astype({"runs": int, "busy_s": float})
    return usage.sort_values(["busy_s", "tenant_id"], ascending=[False, True], ignore_index=True)


def hourly_load(profile: pd.DataFrame) -> pd.DataFrame:
    """All tenants together: average arrivals per hour for each of the 168 hours of the week."""
    grid = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["dow", "hour"])
    total = profile.groupby(["dow", "hour"])["per_hour"].sum() if len(profile) else None
    load = pd.Series(0.0, index=grid) if total is None else total.reindex(grid, fill_value=0.0)
    return load.rename("per_hour").astype(float).reset_index()


def tenant_peaks(profile: pd.DataFrame, days: float) -> pd.DataFrame:
    """Per tenant: arrivals per day, its own busiest hour of the week and the rate in it."""
    columns = ["tenant_id", "name", "per_day", "peak", "peak_per_hour"]
    if profile.empty:
        return pd.DataFrame(columns=columns)
    busiest = profile.loc[profile.groupby("tenant_id")["per_hour"].idxmax()]
    totals = profile.groupby("tenant_id")["arrivals"].sum() / days
    return (
        pd.DataFrame(
            {
                "tenant_id": busiest["tenant_id"].to_numpy(),
                "name": busiest["name"].to_numpy(),
                "per_day": totals.reindex(busiest["tenant_id"]).to_numpy(),
                "peak": [
                    slot_label(d, h) for d, h in zip(busiest["dow"], busiest["hour"], strict=True)
                ],
                "peak_per_hour": busiest["per_hour"].to_numpy(),
            },
            columns=columns,
        )
        .sort_values("per_day", ascending=False)
        .reset_index(drop=True)
    )


def slot_label(dow: int, hour: int) -> str:
    return f"{WEEKDAYS[int(dow) - 1]} {int(hour):02d}:00-{(int(hour) + 1) % 24:02d}:00"


# --- Erlang C (M/M/c) --------------------------------------------------------------------------


def erlang_c(servers: int, load: float) -> float:
    """Probability that a job has to wait, for `servers` slots and `load` = arrival rate x mean
    service time (Erlangs). 1 when the queue is unstable (load >= servers)."""
    if load <= 0:
        return 0.0
    if load >= servers:
        return 1.0
    blocking = 1.0  # Erlang B by its stable recursion, then Erlang C from it
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return servers * blocking / (servers - load * (1 - blocking))


def share_within(servers: int, per_hour: float, mean_service_s: float, wait_s: float) -> float:
    """P(wait <= wait_s) = 1 - C * exp(-(c mu - lambda) t)."""
    rate = per_hour / 3600
    load = rate * mean_service_s
    if load >= servers:
        return 0.0
    return 1 - erlang_c(servers, load) * math.exp(-(servers / mean_service_s - rate) * wait_s)


def mean_wait_s(servers: int, per_hour: float, mean_service_s: float) -> float:
    rate = per_hour / 3600
    load = rate * mean_service_s
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) / (servers / mean_service_s - rate)


def wait_quantile_s(servers: int, per_hour: float, mean_service_s: float, q: float) -> float:
    """The wait that a share q of jobs does not exceed."""
    rate = per_hour / 3600
    load = rate * mean_service_s
    if load >= servers:
        return math.inf
    waiting = erlang_c(servers, load)
    if waiting <= 1 - q:
        return 0.0
    return math.log(waiting / (1 - q)) / (servers / mean_service_s - rate)


def worker_table(
    per_hour: float,
    mean_service_s: float,
    concurrency: int,
    wait_s: float,
    share: float,
    workers: range,
) -> pd.DataFrame:
    """Expected waits and utilisation at `per_hour` arrivals for each worker count."""
    rows = []
    for count in workers:
        slots = count * concurrency
        rows.append(
            {
                "workers": count,
                "slots": slots,
                "utilisation": per_hour / 3600 * mean_service_s / slots,
                "p_wait": erlang_c(slots, per_hour / 3600 * mean_service_s),
                "mean_wait_s": mean_wait_s(slots, per_hour, mean_service_s),
                "quantile_wait_s": wait_quantile_s(slots, per_hour, mean_service_s, share),
                "share_within": share_within(slots, per_hour, mean_service_s, wait_s),
            }
        )
    table = pd.DataFrame(rows)
    table["meets_target"] = table["share_within"] >= share
    return table


def workers_needed(
    per_hour: float,
    mean_service_s: float,
    concurrency: int,
    wait_s: float,
    share: float,
    max_workers: int,
) -> int | None:
    """The fewest workers (at least 1) that start `share` of jobs within `wait_s`; None if even
    `max_workers` cannot."""
    for count in range(1, max_workers + 1):
        if share_within(count * concurrency, per_hour, mean_service_s, wait_s) >= share:
            return count
    return None


@dataclass(frozen=True)
class Proposal:
    peak_dow: int
    peak_hour: int
    peak_per_hour: float  # arrivals in the peak hour, the new client included
    extra_per_day: float  # the what-if client's volume (0: none)
    mean_service_s: float
    concurrency: int
    wait_s: float
    share: float
    workers_peak: int | None  # None: more than max_workers would be needed
    workers_min: int  # enough for a typical (median) hour of the week
    avg_workers: float  # hour-weighted average if the HPA follows the load between min and max
    table: pd.DataFrame  # worker_table at the peak rate

    @property
    def peak_label(self) -> str:
        return slot_label(self.peak_dow, self.peak_hour)


def with_new_client(load: pd.DataFrame, per_day: float) -> pd.DataFrame:
    """Add a client of `per_day` arrivals whose week has the same shape as the fleet's."""
    weekly = load["per_hour"].sum()
    shape = load["per_hour"] / weekly if weekly > 0 else 1 / len(load)
    return load.assign(per_hour=load["per_hour"] + per_day * 7 * shape)


def propose(
    load: pd.DataFrame,
    mean_service_s: float,
    concurrency: int,
    wait_s: float,
    share: float,
    max_workers: int,
    extra_per_day: float = 0.0,
    floor: int = 1,
) -> Proposal:
    """Workers for the peak hour of `load` (hourly_load), the HPA minimum and the average;
    never fewer than `floor` (so one worker restarting does not stop processing)."""
    load = with_new_client(load, extra_per_day) if extra_per_day > 0 else load
    peak = load.loc[load["per_hour"].idxmax()]

    def needed(per_hour: float) -> int | None:
        return workers_needed(per_hour, mean_service_s, concurrency, wait_s, share, max_workers)

    at_peak = needed(float(peak["per_hour"]))
    ceiling = max(at_peak or max_workers, floor)
    workers_peak = None if at_peak is None else ceiling
    workers_min = min(max(needed(float(load["per_hour"].median())) or ceiling, floor), ceiling)
    per_slot = [
        min(max(needed(rate) or ceiling, workers_min), ceiling) for rate in load["per_hour"]
    ]
    return Proposal(
        peak_dow=int(peak["dow"]),
        peak_hour=int(peak["hour"]),
        peak_per_hour=float(peak["per_hour"]),
        extra_per_day=extra_per_day,
        mean_service_s=mean_service_s,
        concurrency=concurrency,
        wait_s=wait_s,
        share=share,
        workers_peak=workers_peak,
        workers_min=workers_min,
        avg_workers=float(np.mean(per_slot)),
        table=worker_table(
            float(peak["per_hour"]),
            mean_service_s,
            concurrency,
            wait_s,
            share,
            range(1, max_workers + 1),
        ),
    )


# --- Discrete-event simulation -------------------------------------------------------------

ServiceSampler = Callable[[np.random.Generator, int], np.ndarray]


def exponential_service(mean_s: float) -> ServiceSampler:
    return lambda rng, n: rng.exponential(mean_s, n)


def histogram_service(histogram: pd.DataFrame) -> ServiceSampler:
    """Service times drawn from a measured histogram (uniform within each bucket)."""
    weights = histogram["runs"].to_numpy(dtype=float)
    lower = histogram["bucket_s"].to_numpy(dtype=float)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        buckets = rng.choice(len(lower), size=n, p=weights / weights.sum())
        return lower[buckets] + rng.uniform(0, HISTOGRAM_WIDTH_S, n)

    return sample


def simulate_waits(
    per_hour: float, servers: int, service: ServiceSampler, jobs: int, seed: int = 1
) -> np.ndarray:
    """Waits of `jobs` Poisson arrivals served first come, first served by `servers` slots.

    The heap holds the time each slot next becomes free (its departure event); each arrival
    takes the earliest one. The first 10% of jobs (an empty system warming up) are dropped."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(3600 / per_hour, jobs))
    durations = service(rng, jobs)
    free_at = [0.0] * servers
    waits = np.empty(jobs)
    for i in range(jobs):
        start = max(arrivals[i], heapq.heappop(free_at))
        waits[i] = start - arrivals[i]
        heapq.heappush(free_at, start + durations[i])
    return waits[jobs // 10 :]


def simulated_share_within(
    per_hour: float, servers: int, histogram: pd.DataFrame, wait_s: float, jobs: int, seed: int = 1
) -> float:
    """Share of jobs that start within `wait_s` when service times follow the measured
    histogram instead of the model's exponential: the page's cross-check of the proposal."""
    waits = simulate_waits(per_hour, servers, histogram_service(histogram), jobs, seed)
    return float((waits <= wait_s).mean())
