"""Queues and scaling timings on the demo stack, read-only: the Redis snapshot, every history
range from Prometheus, and the capacity SQL on the demo database, plus the pure model.

Run with the demo stack up: `source .stack/env && .venv/bin/python bench/queues_capacity.py`.
Prints medians over several runs (the page itself is not run here: it records each access,
and the demo database is not written to).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services import capacity, metrics, queues  # noqa: E402
from services.config import rules  # noqa: E402

RUNS = 7


def median_ms(action: Callable[[], object]) -> tuple[float, float]:
    """(first call, median of the following RUNS calls) in milliseconds."""
    samples = []
    for _ in range(RUNS + 1):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples[0], statistics.median(samples[1:])


def main() -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cap = rules("capacity")
    win = capacity.measured_window(now, cap["history_days"])
    profile = capacity.arrival_profile(win, cap["timezone"])
    service = capacity.service_times(win, rules("platform")["celery_time_limit_s"])
    load = capacity.hourly_load(profile)

    def propose() -> capacity.Proposal:
        return capacity.propose(
            load, service.mean_s, 4, 300, 0.95, cap["max_workers"], floor=cap["min_workers"]
        )

    proposal = propose()
    usage = capacity.tenant_usage(profile)
    print(
        f"window {win.since:%Y-%m-%d %H:%M} .. {win.until:%Y-%m-%d %H:%M} ({win.days:.1f} d), "
        f"{int(usage['runs'].sum()):,} finished runs, {len(profile):,} profile rows; "
        f"peak {proposal.peak_label} {proposal.peak_per_hour:.0f} jobs/h, "
        f"mean service {service.mean_s:.1f} s -> HPA {proposal.workers_min}/"
        f"{proposal.workers_peak}"
    )
    cases: list[tuple[str, Callable[[], object]]] = [
        ("queues.snapshot + assess (demo Redis)", lambda: queues.assess(queues.snapshot())),
        *(
            (f"metrics.history {key}", lambda key=key: metrics.history(key, now))
            for key in metrics.history_ranges()
        ),
        ("metrics.current (HPA)", metrics.current),
        ("capacity.measured_window", lambda: capacity.measured_window(now, cap["history_days"])),
        (
            "capacity.arrival_profile (+ usage)",
            lambda: capacity.arrival_profile(win, cap["timezone"]),
        ),
        ("capacity.service_times", lambda: capacity.service_times(win, 120)),
        ("capacity.propose (168 hours)", propose),
        (
            "simulation, 20,000 jobs",
            lambda: capacity.simulated_share_within(
                proposal.peak_per_hour,
                (proposal.workers_peak or 1) * 4,
                service.histogram,
                300,
                cap["simulation_jobs"],
            ),
        ),
    ]
    print(f"{'call':<40}{'first':>10}{'median':>10}")
    for label, action in cases:
        first, median = median_ms(action)
        print(f"{label:<40}{first:>8.0f}ms{median:>8.0f}ms")


if __name__ == "__main__":
    main()
