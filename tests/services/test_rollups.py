"""The hourly rollups give the raw computation's figures to the last digit: before any refresh,
after one (rolled hours plus the open hour's raw tail), after a run finished in an hour already
rolled, and after the next refresh; the refresh is idempotent, skips while another run holds
its lock, and the reader role sees only its own tenant's rollup rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from psycopg.rows import dict_row
from sqlalchemy import text

from services import capacity, health, rollups, stats, weekly_review
from services.config import rules
from services.db import job_lock, read_frame, scope, tenant_scope
from services.failures import sql_case
from services.timerange import TimeRange
from tests.planting import add_run, add_tenant

NOW = datetime(2026, 11, 20, 12, 30, 17, 250000, tzinfo=UTC)  # a Friday, mid-hour
TENANTS = ("rollup-a", "rollup-b")
ERRORS = (
    "Task exceeded soft time limit (100s)",
    "HTTPStatusError: 401 Unauthorized",
    "TimeoutError: read timed out",
    "RuntimeError: Failed to update ticket 7 via ServiceDesk Plus API",
    "KeyError: 'ticket'",
    "something odd",
)
STUCK_S = rules("health")["stuck_pending_seconds"]
SOLO_AT = NOW - timedelta(hours=3, minutes=10)

# The original definitions, straight over the platform's table (the spec the rollups match).
_REFERENCE_SQL = f"""
SELECT tenant_id, count(*) AS attempts, count(DISTINCT ticket_id) AS tickets,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'pending'
                          AND created_at < %(now)s - make_interval(secs => %(stuck_s)s)) AS stuck,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {health.LATENCY_S})
           FILTER (WHERE status = 'completed') AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY {health.LATENCY_S})
           FILTER (WHERE status = 'completed') AS p95_s,
       percentile_cont({stats.QUANTILE_GRID_SQL}) WITHIN GROUP (ORDER BY {health.LATENCY_S})
           FILTER (WHERE status = 'completed') AS p95_grid,
       max(created_at) AS last_attempt,
       (SELECT count(*) FROM (SELECT 1 FROM enhancement_history x
                               WHERE x.tenant_id = e.tenant_id AND x.created_at >= %(since)s
                                 AND x.created_at < %(until)s
                               GROUP BY ticket_id HAVING bool_or(status = 'completed')) s)
           AS tickets_enhanced,
       (SELECT count(*) FROM (SELECT 1 FROM enhancement_history x
                               WHERE x.tenant_id = e.tenant_id AND x.created_at >= %(since)s
                                 AND x.created_at < %(until)s GROUP BY ticket_id
                              HAVING NOT bool_or(status IN ('completed', 'pending'))) s)
           AS tickets_failed,
       (SELECT json_object_agg(mode, n) FROM (
            SELECT {sql_case()} AS mode, count(*) AS n FROM enhancement_history x
             WHERE x.tenant_id = e.tenant_id AND x.status = 'failed' AND x.created_at >= %(since)s
               AND x.created_at < %(until)s GROUP BY 1) m) AS failures_by_cause
  FROM enhancement_history e
 WHERE created_at >= %(since)s AND created_at < %(until)s
 GROUP BY tenant_id ORDER BY tenant_id
"""

_WEEKS_REFERENCE_SQL = f"""
SELECT tenant_id, this_week, day, GROUPING(tenant_id) AS g_tenant, GROUPING(day) AS g_day,
       count(DISTINCT (tenant_id, ticket_id)) AS tickets, count(*) AS attempts,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_s)
           FILTER (WHERE status = 'completed') AS p95_s,
       percentile_cont({stats.QUANTILE_GRID_SQL}) WITHIN GROUP (ORDER BY latency_s)
           FILTER (WHERE status = 'completed') AS p95_grid
  FROM (SELECT tenant_id, ticket_id, status, created_at >= %(start)s AS this_week,
               date_trunc('day', created_at, 'UTC') AS day, {health.LATENCY_S} AS latency_s
          FROM enhancement_history
         WHERE created_at >= %(previous_start)s AND created_at < %(end)s) e
 GROUP BY GROUPING SETS ((tenant_id, this_week), (this_week), (day))
"""

# The capacity measurement's original query (Queues and scaling), straight over the table.
_CAPACITY_REFERENCE_SQL = """
WITH runs AS MATERIALIZED (
    SELECT tenant_id, extract(isodow FROM created_at AT TIME ZONE 'UTC')::int AS dow,
           extract(hour FROM created_at AT TIME ZONE 'UTC')::int AS hour,
           status IN ('completed', 'failed') AS finished, processing_time_ms AS ms
      FROM enhancement_history WHERE created_at >= %(since)s AND created_at < %(until)s
), arrivals AS (
    SELECT tenant_id, dow, hour, count(*) AS arrivals,
           count(*) FILTER (WHERE finished) AS finished,
           coalesce(sum(ms) FILTER (WHERE finished), 0) AS busy_ms
      FROM runs GROUP BY 1, 2, 3
)
SELECT a.tenant_id, coalesce(c.name, a.tenant_id) AS name, a.dow, a.hour, a.arrivals,
       a.finished, a.busy_ms, NULL::int AS ms
  FROM arrivals a LEFT JOIN tenant_configs c USING (tenant_id)
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, count(*), NULL, ms
  FROM runs WHERE finished AND ms IS NOT NULL GROUP BY ms
"""
CAPACITY_ORDER = ["tenant_id", "dow", "hour", "ms"]

FIGURES = (
    "attempts",
    "tickets",
    "tickets_enhanced",
    "tickets_failed",
    "completed",
    "failed",
    "pending",
    "stuck",
    "p50_s",
    "p95_s",
    "p95_grid",
    "last_attempt",
    "failures_by_cause",
)


def _plant(conn) -> dict[str, str]:
    """Ten days of runs in the shapes the platform writes: completed ones with microsecond
    processing times, failures of every cause, retries of a ticket across an hour boundary and
    days later, pending ones (abandoned, and still running in a closed hour and the open one).
    Returns the ids of the runs the test finishes later."""
    rng = random.Random(16)
    for tenant in TENANTS:
        add_tenant(conn, tenant)
    start = NOW - timedelta(days=10)
    minute = start
    i = 0
    while minute < NOW - timedelta(minutes=1):
        tenant = TENANTS[i % 2]
        status = rng.choices(("completed", "failed", "pending"), (0.8, 0.17, 0.03))[0]
        add_run(
            conn,
            tenant,
            f"t-{i}",
            status,
            minute,
            latency_s=rng.uniform(1, 150) if status != "pending" else None,
            error_message=rng.choice(ERRORS) if status == "failed" else None,
        )
        minute += timedelta(seconds=rng.randint(200, 1500), microseconds=rng.randint(0, 999999))
        i += 1
    # A ticket retried across an hour boundary (failed at :55, completed at :05), one re-run
    # two days later, and one that failed in two hours and is pending in a third.
    boundary = rollups.floor_hour(NOW - timedelta(hours=30))
    add_run(conn, "rollup-a", "retry", "failed", boundary - timedelta(minutes=5), 3.5, ERRORS[2])
    add_run(conn, "rollup-a", "retry", "completed", boundary + timedelta(minutes=5), 12.25)
    add_run(conn, "rollup-b", "rerun", "completed", NOW - timedelta(days=4), 8.0)
    add_run(conn, "rollup-b", "rerun", "failed", NOW - timedelta(days=2), 2.0, ERRORS[1])
    for hours in (50, 26):
        add_run(conn, "rollup-a", "open", "failed", NOW - timedelta(hours=hours), 1.5, ERRORS[0])
    # A ticket with one attempt, whose re-run comes after its hour was rolled up.
    add_run(conn, "rollup-a", "solo", "failed", SOLO_AT, 2.0, ERRORS[2])
    running = {
        # pending in an hour the first refresh rolls, finished afterwards
        "closed_hour": add_run(
            conn, "rollup-a", "open", "pending", NOW - timedelta(hours=5, minutes=7)
        ),
        # pending in the open hour
        "open_hour": add_run(conn, "rollup-b", "late", "pending", NOW - timedelta(minutes=4)),
    }
    return running


def _reference(conn, since: datetime, until: datetime) -> dict[str, dict]:
    params = {"since": since, "until": until, "now": NOW, "stuck_s": STUCK_S}
    rows = conn.execute(_REFERENCE_SQL, params).fetchall()
    return {r["tenant_id"]: r for r in rows}


def _figures(row: dict) -> dict:
    found = {key: row[key] for key in FIGURES}
    found["failures_by_cause"] = dict(found["failures_by_cause"] or {})
    found["p50_s"] = None if found["p50_s"] is None else float(found["p50_s"])
    found["p95_s"] = None if found["p95_s"] is None else float(found["p95_s"])
    grid = found["p95_grid"]  # the p95's interval comes from these (services.stats)
    found["p95_grid"] = None if grid is None or grid != grid else [float(v) for v in grid]
    found["last_attempt"] = found["last_attempt"].astimezone(UTC)
    for key in FIGURES[:8]:
        found[key] = int(found[key])
    return found


WINDOWS = (timedelta(hours=24), timedelta(days=7), timedelta(days=30), timedelta(hours=3))


def _assert_health_equal(db) -> None:
    with db.superuser() as conn:
        conn.row_factory = dict_row
        for window in WINDOWS:
            period = TimeRange(NOW - window, NOW, "test window")
            expected = _reference(conn, period.since, period.until)
            fleet = health.metrics(None, period).set_index("tenant_id")
            for tenant in TENANTS:
                want = _figures(expected[tenant])
                assert _figures(fleet.loc[tenant].to_dict()) == want, (window, tenant)
                one = health.metrics(tenant, period).iloc[0].to_dict()
                assert _figures(one) == want, (window, tenant, "tenant scope")


def _assert_weeks_equal(db) -> None:
    week = weekly_review.Week.of(NOW)
    days = weekly_review._days_elapsed(week, NOW)
    end = week.start + timedelta(days=days)
    params = {"start": week.start, "end": end, "previous_start": week.previous.start}
    with db.superuser() as conn:
        conn.row_factory = dict_row
        expected = conn.execute(_WEEKS_REFERENCE_SQL, params).fetchall()
    with scope(None) as conn:
        rows, daily = weekly_review._weeks(conn, week, days, None)
    for r in expected:
        if r["g_day"] == 0:
            continue
        key = (None if r["g_tenant"] else r["tenant_id"], bool(r["this_week"]))
        got = rows[key]
        for column in ("tickets", "attempts", "completed", "failed"):
            assert int(got[column]) == r[column], (key, column)
        assert float(got["p95_s"]) == r["p95_s"], key
        assert [float(v) for v in got["p95_grid"]] == r["p95_grid"], key
    days_expected = sorted(
        (r for r in expected if r["g_day"] == 0 and r["day"] >= week.start), key=lambda r: r["day"]
    )
    assert [int(v) for v in daily["tickets"]] == [r["tickets"] for r in days_expected]
    assert [float(v) for v in daily["p95_s"]] == [r["p95_s"] for r in days_expected]
    assert [int(v) for v in daily["completed"]] == [r["completed"] for r in days_expected]


def _assert_capacity_equal(db) -> None:
    """The capacity window's rows, from the rollup (UTC) and raw (a :30 zone), as the original
    query gives them."""
    win = capacity.window(NOW, 7)
    with db.superuser() as conn:
        conn.row_factory = dict_row
        rows = conn.execute(_CAPACITY_REFERENCE_SQL, {"since": win.since, "until": win.until})
        expected = pd.DataFrame(rows.fetchall()).sort_values(CAPACITY_ORDER, ignore_index=True)
    with scope(None) as conn:
        rolled = capacity.window_rows(conn, win, "UTC")
        raw = capacity.window_rows(conn, win, "Asia/Kolkata")
    rolled = rolled.sort_values(CAPACITY_ORDER, ignore_index=True)
    numbers = ["arrivals", "finished", "busy_ms", "ms"]
    assert rolled[["tenant_id", "name"]].equals(expected[["tenant_id", "name"]])
    for frame in (rolled, expected):
        frame[numbers] = frame[numbers].astype(float)
    pd.testing.assert_frame_equal(rolled, expected, check_dtype=False)
    assert int(raw["arrivals"].sum()) == int(expected["arrivals"].sum())
    assert int(raw["busy_ms"].sum()) == int(expected["busy_ms"].sum())


def _run_hours(db) -> list[tuple]:
    with db.superuser() as conn:
        return conn.execute(
            f"SELECT {rollups.COLUMNS} FROM dashboard.run_hours ORDER BY tenant_id, hour"
        ).fetchall()


def _linked_tickets(db, tenant: str, hour: datetime) -> list[str]:
    with db.superuser() as conn:
        row = conn.execute(
            "SELECT linked_tickets FROM dashboard.run_hours WHERE tenant_id = %s AND hour = %s",
            (tenant, hour),
        ).fetchone()
    return row[0]


@pytest.fixture(scope="module")
def rollup_db(make_platform_db):
    db = make_platform_db("rollups")
    with db.superuser() as conn:
        running = _plant(conn)
    return db, running


def test_rollup_figures_equal_the_raw_computation(rollup_db):
    db, running = rollup_db
    db.use()

    # No rollup yet: every window is read raw.
    _assert_health_equal(db)
    _assert_weeks_equal(db)
    _assert_capacity_equal(db)

    done = rollups.refresh(NOW)
    assert done.rolled_until == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the open hour: raw
    assert done.hours_rolled == rollups.BACKFILL_DAYS * 24
    with scope(None) as conn:
        window = rollups.window_params(conn, NOW - timedelta(hours=24), NOW, None)
    assert window["covered_until"] == done.rolled_until and window["stale"] == []
    assert window["raw_from"] == [NOW - timedelta(hours=24), done.rolled_until]
    _assert_health_equal(db)
    _assert_weeks_equal(db)
    _assert_capacity_equal(db)

    # A run finishes after its hour was rolled up: that hour is read raw until the next refresh.
    with db.superuser() as conn:
        conn.execute(
            "UPDATE enhancement_history SET status = 'completed',"
            " completed_at = created_at + interval '33.123457 seconds' WHERE id = %s",
            (running["closed_hour"],),
        )
        conn.execute(
            "UPDATE enhancement_history SET status = 'failed', completed_at = %s,"
            " error_message = %s WHERE id = %s",
            (NOW - timedelta(minutes=1), ERRORS[3], running["open_hour"]),
        )
    with scope(None) as conn:
        window = rollups.window_params(conn, NOW - timedelta(hours=24), NOW, None)
    assert window["stale"] == [rollups.floor_hour(NOW - timedelta(hours=5, minutes=7))]
    _assert_health_equal(db)
    _assert_weeks_equal(db)
    _assert_capacity_equal(db)

    again = rollups.refresh(NOW)
    assert again.hours_rolled == 3  # the last two closed hours and the stale one
    with scope(None) as conn:
        assert rollups.window_params(conn, NOW - timedelta(days=30), NOW, None)["stale"] == []
    _assert_health_equal(db)
    _assert_weeks_equal(db)
    _assert_capacity_equal(db)

    # Idempotent: another run changes nothing.
    before = _run_hours(db)
    rollups.refresh(NOW)
    assert _run_hours(db) == before

    # A ticket counted as solo in a rolled hour gets another attempt (in the open hour): until
    # a refresh lists it as linked there, that hour is read raw.
    solo_hour = rollups.floor_hour(SOLO_AT)
    assert "solo" not in _linked_tickets(db, "rollup-a", solo_hour)
    with db.superuser() as conn:
        add_run(conn, "rollup-a", "solo", "completed", NOW - timedelta(minutes=2), 5.5)
    with scope(None) as conn:
        window = rollups.window_params(conn, NOW - timedelta(hours=24), NOW, None)
    assert window["stale"] == [solo_hour]
    _assert_health_equal(db)
    _assert_weeks_equal(db)

    # The refresh that rolls the re-run's hour rolls the solo hour again, linked.
    later = rollups.refresh(NOW + timedelta(hours=1))
    assert later.hours_rolled == 3 + 1  # the last two rolled again, the new one, the solo hour
    assert "solo" in _linked_tickets(db, "rollup-a", solo_hour)
    with scope(None) as conn:
        assert rollups.window_params(conn, NOW - timedelta(hours=24), NOW, None)["stale"] == []
    _assert_health_equal(db)
    _assert_weeks_equal(db)


def test_refresh_skips_while_another_run_holds_the_lock(rollup_db, capsys):
    db, _ = rollup_db
    db.use()
    with job_lock(rollups.LOCK) as ours:
        assert ours
        assert rollups.main(["refresh"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_reader_sees_only_its_tenants_rollup_rows(rollup_db):
    db, _ = rollup_db
    db.use()
    rollups.refresh(NOW)
    with tenant_scope("rollup-a") as conn:
        seen = read_frame(conn, "SELECT DISTINCT tenant_id FROM dashboard.run_hours")
        assert list(seen["tenant_id"]) == ["rollup-a"]
        other = conn.execute(
            text("SELECT count(*) FROM dashboard.run_hours WHERE tenant_id = 'rollup-b'")
        ).scalar()
        assert other == 0
    with db.superuser() as conn:
        total = conn.execute(
            "SELECT count(DISTINCT tenant_id) FROM dashboard.run_hours"
        ).fetchone()[0]
    assert total == len(TENANTS)
