"""Database health timings on a database of its own (created, then dropped; never the demo one,
because the page writes snapshots).

    source .stack/env && .venv/bin/python bench/dbhealth.py

1,000 distinct platform-like statements, 6 real snapshots, then 200 planted ones (two days
every 15 minutes, ~230,000 counter rows). Prints medians: each service call, and each tab of
the page under AppTest with a cold and a warm cache.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from demo import dbsetup  # noqa: E402
from services import db  # noqa: E402
from services.dbhealth import connections, relations, statements  # noqa: E402

RUNS = 5
STATEMENTS = 1000
PLANTED_SNAPSHOTS = 200


def median_ms(action: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    samples = []
    for _ in range(RUNS):
        before()
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def plant(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE bench_t (k int)")

    def workload() -> None:
        for n in range(1, STATEMENTS + 1):  # IN lists of different lengths: distinct statements
            conn.execute(f"SELECT k FROM bench_t WHERE k IN ({','.join(['1'] * n)})")

    workload()
    for _ in range(6):
        statements.take_snapshot("cron")
        workload()
    # Two days of history before the real snapshots, every 15 minutes.
    conn.execute(
        """
        WITH last AS (SELECT max(id) AS id FROM dashboard.query_snapshots),
        shots AS (
            INSERT INTO dashboard.query_snapshots (taken_at, dbid, source)
            SELECT now() - make_interval(mins => 15 * g), dbid, 'bench'
              FROM dashboard.query_snapshots, generate_series(1, %s) g
             WHERE id = (SELECT id FROM last)
            RETURNING id, taken_at)
        INSERT INTO dashboard.query_snapshot_stats
        SELECT shots.id, st.queryid, st.calls / 2, st.total_exec_ms / 2, st.max_exec_ms,
               st.rows / 2, st.shared_blks_hit, st.shared_blks_read, st.roles
          FROM shots, dashboard.query_snapshot_stats st
         WHERE st.snapshot_id = (SELECT id FROM last)
        """,
        (PLANTED_SNAPSHOTS,),
    )
    conn.execute("ANALYZE dashboard.query_snapshot_stats, dashboard.query_snapshots")


def page_ms(section: str) -> tuple[float, float]:
    """The page script alone (app.py has run the default page first), cold and warm cache."""

    def timed_page(clear: bool) -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params["section"] = section
        at.run()
        if clear:
            st.cache_data.clear()
        start = time.perf_counter()
        at.switch_page("views/slow_queries.py").run()
        if at.exception or at.error:
            raise SystemExit(f"page failed: {at.exception or [e.value for e in at.error]}")
        return (time.perf_counter() - start) * 1000

    cold = statistics.median(timed_page(clear=True) for _ in range(RUNS))
    timed_page(clear=False)
    return cold, statistics.median(timed_page(clear=False) for _ in range(RUNS))


def main() -> None:
    name = f"bench_dbhealth_{uuid.uuid4().hex[:6]}"
    dbsetup.prepare(name)
    port = os.environ["PGPORT"]
    base = f"127.0.0.1:{port}/{name}"
    os.environ["ADMIN_DATABASE_URL"] = (
        f"postgresql://dashboard_admin:{os.environ['STACK_ADMIN_PASSWORD']}@{base}"
    )
    os.environ["DATABASE_URL"] = (
        f"postgresql://dashboard_reader:{os.environ['STACK_READER_PASSWORD']}@{base}"
    )
    db.dispose_engines()
    try:
        with psycopg.connect(
            dbname=name, host=os.environ["PGHOST"], port=port, user="postgres", autocommit=True
        ) as conn:
            snapshot_ms = median_ms(lambda: statements.take_snapshot("cron"))
            plant(conn)
            rows = conn.execute("SELECT count(*) FROM dashboard.query_snapshot_stats").fetchone()
        now = datetime.now(UTC)
        shots = statements.snapshots(now - timedelta(days=3))
        first, last = int(shots["id"].iloc[0]), int(shots["id"].iloc[-1])
        queryid = int(statements.top_statements(last, first, "total", 25)["queryid"].iloc[0])
        snapshot_full_ms = median_ms(lambda: statements.take_snapshot("cron"))
        results = {
            "take_snapshot, fresh database": snapshot_ms,
            f"take_snapshot, {STATEMENTS:,}+ statements": snapshot_full_ms,
        }
        for label, action in (
            ("snapshots (3 days)", lambda: statements.snapshots(now - timedelta(days=3))),
            (
                "top_statements, delta over 2 days",
                lambda: statements.top_statements(last, first, "total", 25),
            ),
            (
                "top_statements, since reset",
                lambda: statements.top_statements(last, None, "mean", 25),
            ),
            (
                "statement_history (all snapshots)",
                lambda: statements.statement_history(queryid, now - timedelta(days=3), now),
            ),
            ("snapshot_if_stale (not stale)", lambda: statements.snapshot_if_stale(60)),
            ("connections", lambda: connections.connections(("aiagents",))),
            ("long_running", lambda: connections.long_running(60)),
            ("tables", lambda: relations.tables(0.2, 1000)),
            ("index_candidates", lambda: relations.index_candidates(10000, 0.05)),
            ("indexes", relations.indexes),
            ("duplicate_indexes", relations.duplicate_indexes),
        ):
            results[label] = median_ms(action)
        print(f"{rows[0]:,} counter rows in {len(shots)} snapshots; medians of {RUNS} runs")
        print("| call | median |\n|---|---|")
        for label, value in results.items():
            print(f"| {label} | {value:.0f} ms |")
        print("| page tab | cold | warm |\n|---|---|---|")
        for section in ("Slow queries", "Connections", "Tables and indexes"):
            cold, warm = page_ms(section)
            print(f"| {section} | {cold:.0f} ms | {warm:.0f} ms |")
    finally:
        db.dispose_engines()
        dbsetup.drop_database(name)


if __name__ == "__main__":
    main()
