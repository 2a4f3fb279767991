"""Backfill Prometheus with the demo's queue, worker, HPA and webhook-counter history.

    python -m demo.backfill_prometheus --data-dir DIR [--days 30] [--now ISO]
        [--tickets-per-day-scale 1] [--seed 42]

Writes 1-minute samples as OpenMetrics (timestamps in seconds, a final `# EOF`) for what the
exporters beside the platform publish (celery-exporter, kube-state-metrics) and for the API's
enhancement_requests_total, then turns them into TSDB blocks with `promtool tsdb
create-blocks-from openmetrics`. The queue episodes, HPA scale-ups and the worker outage come
from demo.fleet, like the queue waits in the database. A marker file in DIR records the newest
sample and the counters' last values: a re-run while that sample is under an hour old does
nothing, a later one fills only the gap since, continuing the counters, so blocks never overlap
and counters never reset. A running Prometheus picks new blocks up within about a minute.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from demo import fleet
from demo.generate import parse_now
from services import kube

MARKER = "demo-backfill.json"
FRESH_SECONDS = 3600
PROMTOOL_TIMEOUT_SECONDS = 300
BLOCK_HOURS = 54  # one of Prometheus's own compaction ranges (2 h x 3^3)
NAMESPACE, DEPLOYMENT, HPA = kube.names().namespace, kube.names().worker, kube.names().hpa
MIN_REPLICAS, MAX_REPLICAS = 3, 10
JOBS_PER_EXTRA_WORKER = 12  # how the CPU-based HPA ends up tracking the backlog
WORKERS = tuple(
    f"celery@ai-agents-worker-5f7d9c8b6-{s}"
    for s in (
        "h2x9k",
        "m4q7z",
        "p8d2w",
        "r5t1n",
        "v3c6j",
        "w9b4f",
        "x7k2m",
        "z1g8s",
        "b6n3q",
        "d2v5r",
    )
)
RUNTIME_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, math.inf)
RUNTIME_MEDIAN_S, RUNTIME_SIGMA = 18.5, 0.45  # as the generator's processing_time_ms
REJECTED_SHARE = 0.0005  # webhooks the API could not queue (a Redis error now and then)
RETRY_FACTOR = 1.04  # task runs per webhook, Celery retries included


@dataclass
class Result:
    skipped: bool
    start: datetime | None
    end: datetime
    samples: int
    seconds: float

    def line(self, data_dir: Path) -> str:
        if self.skipped:
            return f"{data_dir}: history is fresh (newest sample < 1 h old), nothing to do"
        return (
            f"{data_dir}: backfilled {self.samples} samples {self.start:%Y-%m-%d %H:%M} .. "
            f"{self.end:%Y-%m-%d %H:%M} UTC in {self.seconds:.1f} s"
        )


@dataclass
class Family:
    """One metric family: its series as (labelled name, timestamps, values)."""

    name: str
    kind: str
    help_text: str
    series: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, name: str, labels: dict[str, str], ts: np.ndarray, values: np.ndarray) -> None:
        key = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        self.series.append((key, ts, values))


def _write_openmetrics(path: Path, families: list[Family], lo: int, hi: int) -> int:
    """Samples with lo <= timestamp < hi, one family at a time, each series in time order."""
    samples = 0
    with path.open("w") as out:
        for f in families:
            out.write(f"# HELP {f.name} {f.help_text}\n# TYPE {f.name} {f.kind}\n")
            for key, ts, values in f.series:
                a, b = np.searchsorted(ts, [lo, hi])
                out.write(
                    "".join(
                        f"{key} {v} {t}\n"
                        for t, v in zip(ts[a:b].tolist(), values[a:b].tolist(), strict=True)
                    )
                )
                samples += int(b - a)
        out.write("# EOF\n")
    return samples


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """`a` delayed by k samples (the first value held)."""
    return np.concatenate([np.repeat(a[:1], k), a[:-k]])


def _rolling_max(a: np.ndarray, window: int) -> np.ndarray:
    out = a.copy()
    for k in range(1, window):
        out = np.maximum(out, _shift(a, k))
    return out


def _hour_share(ts: np.ndarray) -> np.ndarray:
    """fleet.hourly_weight, blended linearly into the next hour so curves have no steps."""
    frac = (ts % 3600) / 3600
    return fleet.hourly_weight(ts) * (1 - frac) + fleet.hourly_weight(ts + 3600) * frac


def _counter(start: float, increments: np.ndarray) -> np.ndarray:
    return start + np.cumsum(increments)


def _families(
    ts: np.ndarray,
    now: datetime,
    scale: float,
    rng: np.random.Generator,
    counters: dict[str, float],
) -> tuple[list[Family], dict[str, float]]:
    """All the series over `ts`, and the counters' last values."""
    families: list[Family] = []
    last: dict[str, float] = {}
    share = _hour_share(ts)
    busy = share * 24  # 1 = an average hour
    queued = fleet.queued_runs()
    raw_depth = sum(1 for r in queued if r.queue == fleet.ENHANCEMENT_QUEUE)

    ripple = 1 + 0.35 * np.sin(2 * np.pi * ts / (37 * 60))
    celery = rng.poisson(0.3 + 4.5 * busy * ripple) + np.round(fleet.queue_backlog(ts, now))
    raw = rng.poisson(0.25 * busy)
    # What seed_redis leaves: the queued runs' jobs and the agent runs.
    celery[-3:] = len(queued) - raw_depth + len(fleet.PLANTED_AGENT_RUNS)
    raw[-3:] = raw_depth
    queue = Family("celery_queue_length", "gauge", "Number of tasks in the queue.")
    queue.add("celery_queue_length", {"queue_name": fleet.CELERY_QUEUE}, ts, celery.astype(int))
    queue.add("celery_queue_length", {"queue_name": fleet.ENHANCEMENT_QUEUE}, ts, raw)
    families.append(queue)

    # HPA: scale up a minute after the backlog, down only after 5 quiet minutes; new pods
    # take 2 minutes to become available.
    desired = np.clip(
        MIN_REPLICAS + np.ceil(np.maximum(celery - 6, 0) / JOBS_PER_EXTRA_WORKER),
        MIN_REPLICAS,
        MAX_REPLICAS,
    ).astype(int)
    current = _rolling_max(_shift(desired, 1), 5)
    ready = np.minimum(current, _shift(current, 2))
    down = np.zeros((len(WORKERS), len(ts)), bool)
    for outage in fleet.WORKER_OUTAGES:
        down[outage.worker] |= outage.mask(ts, now)
    hpa = {"horizontalpodautoscaler": HPA, "namespace": NAMESPACE}
    for name, values, help_text in (
        (
            "kube_horizontalpodautoscaler_status_current_replicas",
            current,
            "Current number of replicas of pods managed by this autoscaler.",
        ),
        (
            "kube_horizontalpodautoscaler_spec_min_replicas",
            np.full(len(ts), MIN_REPLICAS),
            "Lower limit for the number of pods that can be set by the autoscaler.",
        ),
        (
            "kube_horizontalpodautoscaler_spec_max_replicas",
            np.full(len(ts), MAX_REPLICAS),
            "Upper limit for the number of pods that can be set by the autoscaler.",
        ),
    ):
        family = Family(name, "gauge", help_text)
        family.add(name, hpa, ts, values)
        families.append(family)
    available = Family(
        "kube_deployment_status_replicas_available",
        "gauge",
        "The number of available replicas per deployment.",
    )
    available.add(
        available.name,
        {"deployment": DEPLOYMENT, "namespace": NAMESPACE},
        ts,
        ready - down.sum(axis=0),
    )
    families.append(available)
    # celery-exporter keeps reporting a vanished worker as down for 5 minutes.
    workers = Family(
        "celery_worker_up", "gauge", "Indicates if a worker has recently sent a heartbeat."
    )
    listed = _rolling_max(current, 6)
    for i, host in enumerate(WORKERS):
        present = i < listed
        if present.any():
            up = (i < ready) & ~down[i]
            workers.add(workers.name, {"hostname": host}, ts[present], up[present].astype(int))
    families.append(workers)

    requests = Family("enhancement_requests", "counter", "Total enhancement requests by tenant.")
    expected_total = np.zeros(len(ts))
    for t in fleet.build_fleet():
        onboarded = t.onboarded_at(now).timestamp()
        stopped = (
            math.inf
            if t.stopped_days_ago is None
            else (now - timedelta(days=t.stopped_days_ago)).timestamp()
        )
        expected = t.tickets_per_day * scale * share / 60 * (ts < stopped) * (ts >= onboarded)
        if t.refused_hours is not None:  # bad signature: refused before any counter moves
            expected = expected * (ts < t.episode_start(now, t.refused_hours).timestamp())
        expected_total += expected
        received = rng.poisson(expected)
        rejected_share = np.full(len(ts), REJECTED_SHARE)
        if t.rejected_hours is not None:  # Redis errors at the API: HTTP 503, counted
            since = t.episode_start(now, t.rejected_hours).timestamp()
            rejected_share[ts >= since] = t.rejected_share
        rejected = rng.binomial(received, rejected_share)
        exported = ts >= onboarded  # the series appears with the tenant's first webhook
        for status, increments in (
            ("received", received),
            ("queued", received - rejected),
            ("rejected", rejected),
        ):
            key = f"enhancement_requests_total/{t.tenant_id}/{status}"
            values = _counter(counters.get(key, 0), increments)
            last[key] = float(values[-1])
            requests.add(
                "enhancement_requests_total",
                {"tenant_id": t.tenant_id, "status": status},
                ts[exported],
                values[exported].astype(int),
            )
    families.append(requests)

    # celery-exporter's task runtime histogram, same latency shape as the database.
    cdf = [
        0.5 * (1 + math.erf(math.log(b / RUNTIME_MEDIAN_S) / (RUNTIME_SIGMA * math.sqrt(2))))
        if b != math.inf
        else 1.0
        for b in RUNTIME_BUCKETS
    ]
    runs = rng.poisson(expected_total * RETRY_FACTOR)
    cumulative = np.cumsum(rng.multinomial(runs, np.diff([0.0, *cdf])), axis=1)
    labels = {"name": fleet.TASK_NAME, "queue_name": fleet.CELERY_QUEUE}
    runtime = Family("celery_task_runtime", "histogram", "Histogram of task runtime measurements.")
    for j, bound in enumerate(RUNTIME_BUCKETS):
        le = "+Inf" if bound == math.inf else repr(bound)
        key = f"celery_task_runtime_bucket/{le}"
        values = _counter(counters.get(key, 0), cumulative[:, j])
        last[key] = float(values[-1])
        runtime.add("celery_task_runtime_bucket", {**labels, "le": le}, ts, values.astype(int))
    count = _counter(counters.get("celery_task_runtime_count", 0), runs)
    seconds = _counter(
        counters.get("celery_task_runtime_sum", 0),
        runs * RUNTIME_MEDIAN_S * math.exp(RUNTIME_SIGMA**2 / 2) * rng.uniform(0.9, 1.1, len(ts)),
    )
    last["celery_task_runtime_count"] = float(count[-1])
    last["celery_task_runtime_sum"] = float(seconds[-1])
    runtime.add("celery_task_runtime_count", labels, ts, count.astype(int))
    runtime.add("celery_task_runtime_sum", labels, ts, np.round(seconds, 3))
    families.append(runtime)
    return families, last


def backfill(
    data_dir: Path,
    *,
    days: float = 30,
    now: datetime | None = None,
    scale: float = 1.0,
    seed: int = 42,
) -> Result:
    """Backfill `data_dir` (a Prometheus --storage.tsdb.path) up to `now`."""
    started = time.monotonic()
    now = now or parse_now(None)
    end = int(now.timestamp()) // 60 * 60
    marker_path = data_dir / MARKER
    marker = json.loads(marker_path.read_text()) if marker_path.exists() else {}
    newest = marker.get("newest_sample")
    if newest is not None and end - newest < FRESH_SECONDS:
        return Result(True, None, now, 0, time.monotonic() - started)
    start = int(now.timestamp() - days * 86400) // 60 * 60
    if newest is not None:
        start = max(start, newest + 60)
    ts = np.arange(start, end + 1, 60, dtype=np.int64)
    families, counters = _families(
        ts, now, scale, np.random.default_rng([seed, start // 60]), marker.get("counters", {})
    )

    # promtool re-reads its whole input for every block it cuts, so each file holds exactly
    # one block's window. Blocks are built aside and moved in whole: a running Prometheus never
    # sees a half-written one (it ignores the staging directory's non-ULID name).
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / "demo-backfill-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    samples = 0
    block = BLOCK_HOURS * 3600
    try:
        for lo in range(start // block * block, end + 1, block):
            path = staging / "window.om"
            samples += _write_openmetrics(path, families, lo, lo + block)
            subprocess.run(
                [
                    "timeout",
                    str(PROMTOOL_TIMEOUT_SECONDS),
                    "promtool",
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "--quiet",
                    f"--max-block-duration={BLOCK_HOURS}h",
                    str(path),
                    str(staging),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            path.unlink()
        for made in staging.iterdir():
            made.rename(data_dir / made.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker_path.write_text(
        json.dumps(
            {
                "newest_sample": int(ts[-1]),
                "oldest_sample": marker.get("oldest_sample", int(ts[0])),
                "seed": seed,
                "scale": scale,
                "counters": counters,
            },
            indent=1,
        )
    )
    return Result(
        False,
        datetime.fromtimestamp(int(ts[0]), UTC),
        datetime.fromtimestamp(int(ts[-1]), UTC),
        samples,
        time.monotonic() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="Prometheus --storage.tsdb.path"
    )
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--now", help="ISO timestamp, UTC if naive (default: now, to the minute)")
    parser.add_argument(
        "--tickets-per-day-scale",
        type=float,
        default=1.0,
        help="as given to demo.generate, so counters match the database",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    result = backfill(
        args.data_dir,
        days=args.days,
        now=parse_now(args.now),
        scale=args.tickets_per_day_scale,
        seed=args.seed,
    )
    print(result.line(args.data_dir))


if __name__ == "__main__":
    main()
