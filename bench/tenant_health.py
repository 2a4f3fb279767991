"""Tenant Health timings on the demo database: page script (cold and warm cache) vs its SQL.

Run with the demo stack up: `make bench` (or `source .stack/env && .venv/bin/python
bench/tenant_health.py`). Prints medians over several runs; targets: cold <= 1.5 s,
warm <= 0.3 s, page/SQL ratio <= 1.5.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from sqlalchemy import text  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from services import db, health, queues  # noqa: E402

RUNS = 7


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(action: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    samples = []
    for _ in range(RUNS):
        before()
        samples.append(timed(action))
    return statistics.median(samples)


def run_page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if at.exception or at.error:
        raise SystemExit(f"page failed: {at.exception or [e.value for e in at.error]}")
    return at


def main() -> None:
    with db.admin_scope() as conn:
        rows = conn.execute(text("SELECT count(*) FROM enhancement_history")).scalar_one()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    print(f"enhancement_history rows: {rows:,}; {RUNS} runs each, medians")
    print(f"{'view':<28}{'SQL alone':>11}{'page cold':>11}{'page warm':>11}{'cold/SQL':>10}")
    tenant = health.fleet_metrics(now - timedelta(days=1), now).sort_values("attempts").iloc[-1]
    for label, query, range_days in (
        ("fleet, 24h", {}, 1),
        ("fleet, 7d", {"range": "7d"}, 7),
        ("fleet, 30d", {"range": "30d"}, 30),
        (f"tenant {tenant.tenant_id}, 24h", {"tenant": tenant.tenant_id}, 1),
        (f"tenant {tenant.tenant_id}, 30d", {"tenant": tenant.tenant_id, "range": "30d"}, 30),
    ):
        since = now - timedelta(days=range_days)
        if "tenant" in query:

            def sql(t=query["tenant"], s=since):
                health.tenant_metrics(t, s, now)
                health.tenant_trend(t, s, now)
                health.tenant_failures(t, s, now)
                queues.snapshot()
        else:

            def sql(s=since):
                health.fleet_metrics(s, now)
                queues.snapshot()

        sql_s = median_of(sql)
        # One AppTest per view: its first run pays a one-off harness cost (scanning installed
        # packages for components), which is not the page's time.
        app = run_page(query)
        cold = median_of(app.run, before=st.cache_data.clear)
        warm = median_of(app.run)
        print(f"{label:<28}{sql_s:>10.3f}s{cold:>10.3f}s{warm:>10.3f}s{cold / sql_s:>10.2f}")


if __name__ == "__main__":
    main()
