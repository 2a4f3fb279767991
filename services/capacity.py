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
from sqlalchemy import Connection, text

from services import rollups
from services.db import admin_scope, read_frame

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # ISO weekday 1..7
HOURS_PER_WEEK = 168
HISTOGRAM_WIDTH_S = 5

# One pass over the window's runs, aggregated twice: per tenant, weekday and hour of day (in
# :tz) the arrivals, the finished runs and their worker time; and the finished runs' processing
# times, as (ms, runs) pairs, from which the service-time summary is computed exactly
# (service_from_counts). The first kind of row has ms NULL. The runs are the rollup's hours
# (services.rollups: rolled hours plus the raw rest), which map onto the hours of :tz when its
# offsets are whole hours; otherwise the platform's rows themselves (status IN all three lets
# the (status, created_at) index serve the window instead of a scan of the whole table).
_SLOTS_SQL = """
), arrivals AS (
    SELECT tenant_id, dow, hour, CAST(sum(arrivals) AS bigint) AS arrivals,
           CAST(sum(finished) AS bigint) AS finished,
           CAST(coalesce(sum(busy_ms), 0) AS bigint) AS busy_ms
      FROM slots
     GROUP BY 1, 2, 3
)
SELECT a.tenant_id, coalesce(c.name, a.tenant_id) AS name, a.dow, a.hour, a.arrivals,
       a.finished, a.busy_ms, NULL::int AS ms
  FROM arrivals a
  LEFT JOIN tenant_configs c USING (tenant_id)
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, count(*), NULL, ms
  FROM processing_ms
 GROUP BY ms
"""
_HOUR_COLUMNS = "tenant_id, hour, attempts, completed, failed, busy_ms, processing_ms"
_ROLLED_WINDOW_SQL = f"""
WITH {rollups.window_ctes(_HOUR_COLUMNS)}, slots AS (
    SELECT tenant_id, extract(isodow FROM hour AT TIME ZONE :tz)::int AS dow,
           extract(hour FROM hour AT TIME ZONE :tz)::int AS hour, attempts AS arrivals,
           completed + failed AS finished, busy_ms
      FROM hours
), processing_ms AS (
    SELECT ms FROM hours, unnest(processing_ms) AS ms
{_SLOTS_SQL}"""
_RAW_WINDOW_SQL = f"""
WITH runs AS MATERIALIZED (
    SELECT tenant_id,
           extract(isodow FROM created_at AT TIME ZONE :tz)::int AS dow,
           extract(hour FROM created_at AT TIME ZONE :tz)::int AS hour,
           status IN ('completed', 'failed') AS finished,
           processing_time_ms AS ms
      FROM enhancement_history
     WHERE status IN ('pending', 'completed', 'failed')
       AND created_at >= :since AND created_at < :until
), slots AS (
    SELECT tenant_id, dow, hour, 1 AS arrivals, CAST(finished AS int) AS finished,
           CASE WHEN finished THEN ms END AS busy_ms
      FROM runs
), processing_ms AS (
    SELECT ms FROM runs WHERE finished AND ms IS NOT NULL
{_SLOTS_SQL}"""

# The planner prices the index scan as random reads, but created_at follows the insertion order
# (a worker inserts its row as it starts), so the window's rows are read in heap order; and JIT
# compiling this one statement costs seconds at 10M rows. Both only for this transaction.
_WINDOW_SETTINGS = (
    "SELECT set_config('random_page_cost', '1.1', true), set_config('jit', 'off', true)"
)


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


# The first arrival, by each status's own end of the (status, created_at) index.
_FIRST_ARRIVAL_SQL = """
SELECT date_trunc('hour', min(f.first)) AS first_hour
  FROM unnest(ARRAY['pending', 'completed', 'failed']) AS s(status),
       LATERAL (SELECT min(created_at) AS first
                  FROM enhancement_history h
                 WHERE h.status = s.status AND created_at >= :since AND created_at < :until) f
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


def _window_hours(win: Window, tz: str) -> pd.DatetimeIndex:
    """The window's hours, in `tz`."""
    since, until = (pd.Timestamp(t).tz_convert("UTC") for t in (win.since, win.until))
    return pd.date_range(since, until, freq="h", inclusive="left").tz_convert(tz)


def _hours_per_slot(win: Window, tz: str) -> pd.DataFrame:
    """How many hours of each weekday and hour of day (in `tz`) the window holds."""
    hours = _window_hours(win, tz)
    slots = pd.DataFrame({"dow": hours.day_of_week + 1, "hour": hours.hour})
    return slots.value_counts().rename("hours").reset_index()


def profile_from_rows(rows: pd.DataFrame, win: Window, tz: str) -> pd.DataFrame:
    """arrival_profile from the window query's per-slot rows."""
    columns = ["tenant_id", "name", "dow", "hour", "arrivals", "finished", "busy_ms"]
    slots = rows.loc[rows["tenant_id"].notna(), columns]
    slots = slots.astype({"dow": int, "hour": int, "arrivals": int, "finished": int})
    profile = slots.merge(_hours_per_slot(win, tz), on=["dow", "hour"])
    profile["per_hour"] = profile["arrivals"] / profile["hours"]
    profile["busy_s"] = profile.pop("busy_ms").astype(float) / 1000
    order = ["tenant_id", "name", "dow", "hour", "arrivals", "hours", "per_hour", "finished"]
    return profile[[*order, "busy_s"]].sort_values(["tenant_id", "dow", "hour"], ignore_index=True)


def _percentile(values: np.ndarray, cumulative: np.ndarray, q: float) -> float:
    """percentile_cont (linear interpolation) over sorted values with cumulative counts."""
    position = q * (cumulative[-1] - 1)
    low, high = math.floor(position), math.ceil(position)
    below, above = values[np.searchsorted(cumulative, [low, high], side="right")]
    return float(below + (position - low) * (above - below))


def service_from_counts(counts: pd.DataFrame, time_limit_s: int) -> ServiceTimes:
    """The summary of finished runs' processing times from (ms, runs) pairs: the same numbers
    as avg, stddev_samp and percentile_cont over the runs themselves."""
    counts = counts.sort_values("ms")
    ms = counts["ms"].to_numpy(dtype=float)
    runs = counts["runs"].to_numpy(dtype=np.int64)
    n = int(runs.sum())
    last = time_limit_s // HISTOGRAM_WIDTH_S
    bucket = np.minimum(ms // (HISTOGRAM_WIDTH_S * 1000), last).astype(int) * HISTOGRAM_WIDTH_S
    histogram = (
        pd.DataFrame({"bucket_s": bucket, "runs": runs})
        .groupby("bucket_s", as_index=False)["runs"]
        .sum()
        .astype(int)
    )
    if n == 0:
        return ServiceTimes(0, None, None, None, None, None, None, histogram)
    mean = float((ms * runs).sum() / n)
    sd = math.sqrt(float((runs * (ms - mean) ** 2).sum()) / (n - 1)) if n > 1 else None
    cumulative = np.cumsum(runs)
    p50, p90, p95, p99 = (_percentile(ms, cumulative, q) / 1000 for q in (0.5, 0.9, 0.95, 0.99))
    return ServiceTimes(
        n, mean / 1000, None if sd is None else sd / 1000, p50, p90, p95, p99, histogram
    )


def whole_hour_offsets(win: Window, tz: str) -> bool:
    """Whether every UTC hour of the window is one hour of the day in `tz` (no :30 offsets)."""
    return bool((_window_hours(win, tz).minute == 0).all())


def window_rows(conn: Connection, win: Window, tz: str) -> pd.DataFrame:
    """The window query's rows (_SLOTS_SQL), from the rollup where `tz` allows."""
    conn.execute(text(_WINDOW_SETTINGS))
    if whole_hour_offsets(win, tz):
        window = rollups.window_params(conn, win.since, win.until, None)
        return read_frame(conn, _ROLLED_WINDOW_SQL, {**window, "tz": tz})
    return read_frame(conn, _RAW_WINDOW_SQL, {**_params(win), "tz": tz})


def measure(win: Window, tz: str, time_limit_s: int) -> tuple[pd.DataFrame, ServiceTimes]:
    """arrival_profile and service_times of the window, from one pass over its runs."""
    with admin_scope() as conn:
        rows = window_rows(conn, win, tz)
    counts = rows.loc[rows["ms"].notna(), ["ms", "finished"]].rename(columns={"finished": "runs"})
    return profile_from_rows(rows, win, tz), service_from_counts(counts, time_limit_s)


def arrival_profile(win: Window, tz: str) -> pd.DataFrame:
    """Per tenant, ISO weekday (1 = Monday) and hour of day: average arrivals per hour, and the
    finished runs and their worker time (busy_s) for the cost shares."""
    return measure(win, tz, 0)[0]


def service_times(win: Window, time_limit_s: int) -> ServiceTimes:
    """The distribution of processing_time_ms of finished runs (worker time per job)."""
    return measure(win, "UTC", time_limit_s)[1]


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
