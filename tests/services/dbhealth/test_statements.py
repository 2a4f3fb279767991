"""Slow statements on the private stack: a known slow statement is found, snapshot deltas match
hand-computed values, the cron command snapshots and prunes, and a database without
pg_stat_statements gets instructions, not an error. Unit tests: what the page shows of them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from services.dbhealth import statements
from services.errors import InvalidInput, SourceUnavailable
from tests.conftest import ROOT, PlatformDb
from tests.dbhealth_workload import SEQ_SCANS, SLOW_RUNS, SLOW_SLEEP_S


def raw_counters(db: PlatformDb, marker: str) -> tuple[int, float, int]:
    """calls, total ms and rows of this database's statement containing `marker`, read
    straight from pg_stat_statements as the superuser."""
    with db.superuser() as conn:
        return conn.execute(
            "SELECT sum(calls)::int, sum(total_exec_time), sum(rows)::int FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND toplevel AND query LIKE %s AND query NOT LIKE '%%pg_stat_statements%%'",
            (f"%{marker}%",),
        ).fetchone()


def row_for(frame, marker: str):
    rows = frame[frame["query"].str.contains(marker, regex=False)]
    assert len(rows) == 1, f"expected one statement with {marker!r}, got {len(rows)}"
    return rows.iloc[0]


# --- on the stack --------------------------------------------------------------------------------


def test_the_slow_statement_tops_the_mean_time_ranking(hdb):
    snapshot_id = statements.take_snapshot("page")
    top = statements.top_statements(snapshot_id, None, "mean", 10)
    slow = top.iloc[0]
    assert "dbh_slow" in slow["query"] and "pg_sleep" in slow["query"]
    assert slow["calls"] == SLOW_RUNS
    assert slow["mean_ms"] >= SLOW_SLEEP_S * 1000
    calls, total_ms, _ = raw_counters(hdb, "FROM dbh_slow")
    assert (slow["calls"], slow["total_ms"]) == (calls, pytest.approx(total_ms))
    assert slow["share"] == pytest.approx(slow["total_ms"] / slow["all_total_ms"])
    assert "postgres" in slow["roles"]


def test_the_seq_scan_statement_is_counted(hdb):
    snapshot_id = statements.take_snapshot("page")
    scans = row_for(statements.top_statements(snapshot_id, None, "calls", 500), "FROM dbh_big")
    assert scans["calls"] == SEQ_SCANS and scans["rows"] == SEQ_SCANS  # count(*): one row each


def test_the_dashboards_own_statements_can_be_left_out(hdb):
    snapshot_id = statements.take_snapshot("page")
    everything = statements.top_statements(snapshot_id, None, "total", 500)
    own = ("dashboard_reader", "dashboard_admin", "pg_monitor")
    platform = statements.top_statements(snapshot_id, None, "total", 500, exclude_roles=own)
    assert everything["roles"].isin(own).any()  # the snapshot's own reads, for one
    assert not platform["roles"].isin(own).any()
    assert row_for(platform, "FROM dbh_slow")["calls"] == SLOW_RUNS
    assert platform["share"].sum() == pytest.approx(1.0)
    assert len(platform) < len(everything)


def test_snapshot_deltas_match_the_counters(hdb):
    marker = f"dbh_probe_{uuid.uuid4().hex[:6]}"
    with hdb.superuser() as conn:
        conn.execute(f"CREATE TABLE {marker} (k int)")
        conn.execute(f"INSERT INTO {marker} SELECT generate_series(1, 100)")

        def run(times: int) -> None:
            for i in range(times):
                conn.execute(f"SELECT k FROM {marker} WHERE k <= %s", (i % 3 + 1,))

        run(3)
        statement = f"FROM {marker} WHERE"
        a_counters = raw_counters(hdb, statement)
        a = statements.take_snapshot("page")
        run(5)
        b_counters = raw_counters(hdb, statement)
        b = statements.take_snapshot("page")
        run(2)
        c = statements.take_snapshot("page")
    # Hand-computed: 5 runs between a and b returning 1+2+3+1+2 rows (k <= 1, 2, 3, 1, 2).
    delta = row_for(statements.top_statements(b, a, "total", 500), statement)
    assert delta["calls"] == b_counters[0] - a_counters[0] == 5
    assert delta["rows"] == b_counters[2] - a_counters[2] == 9
    assert delta["total_ms"] == pytest.approx(b_counters[1] - a_counters[1])
    assert delta["mean_ms"] == pytest.approx((b_counters[1] - a_counters[1]) / 5)
    assert not delta["reset_between"]
    assert row_for(statements.top_statements(b, None, "total", 500), statement)["calls"] == 8

    shots = statements.snapshots(datetime.now(UTC) - timedelta(hours=1)).set_index("id")
    history = statements.statement_history(
        int(delta["queryid"]), shots.loc[a, "taken_at"], shots.loc[c, "taken_at"]
    )
    assert history["taken_at"].tolist() == [shots.loc[b, "taken_at"], shots.loc[c, "taken_at"]]
    assert history["calls"].tolist() == [5, 2]
    assert history["total_ms"].iloc[0] == pytest.approx(delta["total_ms"])


def test_delta_arithmetic_on_planted_snapshots(hdb):
    """Counters that went down (a reset) count from zero; a new statement counts in full."""
    texts = {1: "SELECT dbh planted one", 2: "SELECT dbh planted reset", 3: "SELECT dbh new"}
    before = {1: (10, 100.0, 20), 2: (100, 1000.0, 100), 4: (3, 30.0, 3)}
    after = {1: (15, 160.0, 30), 2: (4, 40.0, 8), 3: (7, 70.0, 7)}
    with hdb.superuser() as conn:
        dbid = conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
        ids = []
        for days, stats in ((3, before), (2, after)):
            ids.append(
                conn.execute(
                    "INSERT INTO dashboard.query_snapshots (taken_at, dbid, source)"
                    " VALUES (now() - make_interval(days => %s), %s, 'test') RETURNING id",
                    (days, dbid),
                ).fetchone()[0]
            )
            for queryid, (calls, ms, rows) in stats.items():
                conn.execute(
                    "INSERT INTO dashboard.query_snapshot_stats VALUES"
                    " (%s, %s, %s, %s, %s, %s, 0, 0, 'aiagents')",
                    (ids[-1], queryid, calls, ms, ms, rows),
                )
        for queryid, query in texts.items():
            conn.execute(
                "INSERT INTO dashboard.query_texts (dbid, queryid, query) VALUES (%s, %s, %s)",
                (dbid, queryid, query),
            )
        try:
            top = statements.top_statements(ids[1], ids[0], "total", 10).set_index("queryid")
        finally:
            conn.execute("DELETE FROM dashboard.query_snapshots WHERE id = ANY(%s)", (ids,))
            conn.execute("DELETE FROM dashboard.query_texts WHERE queryid IN (1, 2, 3)")
    assert top.index.tolist() == [3, 1, 2]  # 70 ms, 60 ms, 40 ms; 4 is gone
    assert top.loc[1, ["calls", "total_ms", "rows", "mean_ms"]].tolist() == [5, 60.0, 10, 12.0]
    assert top.loc[2, ["calls", "total_ms", "rows"]].tolist() == [4, 40.0, 8]
    assert top.loc[3, ["calls", "total_ms", "rows"]].tolist() == [7, 70.0, 7]
    assert top["reset_between"].tolist() == [False, False, True]
    assert top["share"].tolist() == pytest.approx([70 / 170, 60 / 170, 40 / 170])
    assert top.loc[1, "all_total_ms"] == 170 and top.loc[1, "all_calls"] == 16
    assert top.loc[2, "query"] == texts[2]


def test_a_page_load_snapshots_only_when_the_last_is_stale(hdb):
    statements.take_snapshot("page")
    assert statements.snapshot_if_stale(max_age_minutes=60) is None
    fresh = statements.snapshot_if_stale(max_age_minutes=0)
    assert fresh is not None
    shots = statements.snapshots(datetime.now(UTC) - timedelta(minutes=5))
    assert shots.iloc[-1]["id"] == fresh and shots.iloc[-1]["source"] == "page"


def test_the_cron_command_snapshots_and_prunes(hdb):
    with hdb.superuser() as conn:
        old = conn.execute(
            "INSERT INTO dashboard.query_snapshots (taken_at, dbid, source)"
            " SELECT now() - interval '40 days', oid, 'cron' FROM pg_database"
            " WHERE datname = current_database() RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO dashboard.query_snapshot_stats VALUES (%s, 99, 1, 1, 1, 1, 0, 0, 'x')",
            (old,),
        )
        conn.execute(
            "INSERT INTO dashboard.query_texts (dbid, queryid, query)"
            " SELECT dbid, 99, 'SELECT old' FROM dashboard.query_snapshots"
            " WHERE id = %s",
            (old,),
        )
    done = subprocess.run(
        [sys.executable, "-m", "services.dbhealth", "snapshot"],
        cwd=ROOT,
        env={**os.environ, "ADMIN_DATABASE_URL": hdb.admin_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 old snapshot(s) deleted" in done.stdout
    with hdb.superuser() as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM dashboard.query_snapshots WHERE id = %s", (old,)
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM dashboard.query_texts WHERE queryid = 99"
            ).fetchone()[0]
            == 0
        )
        newest = conn.execute(
            "SELECT source, (SELECT count(*) FROM dashboard.query_snapshot_stats"
            " WHERE snapshot_id = s.id) FROM dashboard.query_snapshots s"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert newest[0] == "cron" and newest[1] > 0


def test_a_missing_extension_gives_instructions(bare_db):
    bare_db.use()
    status = statements.extension_status()
    assert (status.preloaded, status.installed, status.ready) == (True, False, False)
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in status.instructions()
    assert "Restart" not in status.instructions()  # already preloaded: no restart needed
    with pytest.raises(SourceUnavailable, match="pg_stat_statements"):
        statements.take_snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "services.dbhealth", "snapshot"],
        cwd=ROOT,
        env={**os.environ, "ADMIN_DATABASE_URL": bare_db.admin_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "not enabled" in done.stderr and "Traceback" not in done.stderr


# --- what the page shows (no stack) --------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
RESET = datetime(2026, 3, 1, tzinfo=UTC)


def planted_shots(*minutes: float, resets: tuple[datetime, ...] | None = None) -> pd.DataFrame:
    """Snapshots 1, 2, … taken `minutes` after T0, all counting since RESET unless told."""
    return pd.DataFrame(
        {
            "id": range(1, len(minutes) + 1),
            "taken_at": [T0 + timedelta(minutes=m) for m in minutes],
            "source": "cron",
            "stats_reset": list(resets or [RESET] * len(minutes)),
        }
    )


def planted_top(reset_between: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "queryid": [11, 12],
            "query": ["SELECT *\n  FROM   dbh_big\tWHERE k = 1", "SELECT 1"],
            "calls": [4, 1],
            "total_ms": [1500.0, 500.0],
            "mean_ms": [375.0, 500.0],
            "rows": [8, 1],
            "rows_per_call": [2.0, 1.0],
            "share": [0.75, 0.25],
            "cache_hit_ratio": [0.5, None],
            "max_exec_ms": [900.0, 500.0],
            "reset_between": [reset_between, False],
            "roles": ["aiagents", "aiagents, postgres"],
            "all_total_ms": [2000.0, 2000.0],
            "all_calls": [5, 5],
            "all_statements": [2, 2],
        }
    )


@pytest.mark.unit
def test_an_unknown_sort_is_refused_before_any_query():
    with pytest.raises(InvalidInput, match="Sort by one of: Total time, Mean time"):
        statements.top_statements(1, None, "slowest")


@pytest.mark.unit
def test_instructions_without_the_preloaded_library_say_to_restart():
    unloaded = statements.ExtensionStatus(preloaded=False, installed=False).instructions()
    assert "shared_preload_libraries" in unloaded and "Restart PostgreSQL" in unloaded
    assert "1. Add it to `shared_preload_libraries`" in unloaded
    assert "3. In the platform database" in unloaded and "no restart is needed" not in unloaded
    preloaded = statements.ExtensionStatus(preloaded=True, installed=False).instructions()
    assert "1. In the platform database" in preloaded and "no restart is needed" in preloaded
    assert statements.ExtensionStatus(preloaded=True, installed=True).ready


@pytest.mark.unit
def test_statements_are_shown_on_one_line_cut_to_the_width():
    queries = pd.Series(["SELECT a,\n       b\tFROM t  ", "x" * 170, "y" * 160])
    shown = statements.one_line(queries).tolist()
    assert shown[0] == "SELECT a, b FROM t"
    assert shown[1] == "x" * 159 + "…" and len(shown[1]) == 160
    assert shown[2] == "y" * 160  # exactly the width: not cut
    assert statements.one_line(pd.Series(["abcdef"]), width=4).tolist() == ["abc…"]


@pytest.mark.unit
def test_snapshots_taken_in_the_same_second_keep_distinct_labels():
    labels = statements.snapshot_labels(planted_shots(0, 0))
    assert labels == {
        1: "#1 · Mar 02 09:00:00 UTC (cron)",
        2: "#2 · Mar 02 09:00:00 UTC (cron)",
    }


@pytest.mark.unit
def test_the_snapshots_note_counts_them_and_ages_the_newest():
    note = statements.snapshots_note(
        planted_shots(0, 15, 30), "last 24 hours", 30, now=T0 + timedelta(minutes=35)
    )
    assert note.startswith("3 snapshots in the last 24 hours (sidebar); the newest is 5 min old.")
    assert "older than 30 min" in note and "python -m services.dbhealth snapshot" in note


@pytest.mark.unit
def test_a_window_needs_from_older_than_to():
    shots = planted_shots(0, 15, 30)
    assert statements.window_problem(shots, 1, 3) is None
    assert statements.window_problem(shots, None, 1) is None  # since the reset
    assert (
        statements.window_problem(shots, 3, 1) == "Pick a *From* snapshot that is older than *To*."
    )
    assert statements.window_problem(shots, 2, 2) is not None


@pytest.mark.unit
def test_the_window_summary_between_two_snapshots():
    shots = planted_shots(0, 15, 30)
    summary = statements.window_summary(planted_top(), shots, to_id=3, from_id=1)
    assert summary.tiles() == [
        ("Time in statements", "2.0 s"),
        ("Calls", "5"),
        ("Statements", "2"),
        ("Window", "30 min"),
    ]
    assert not summary.reset and summary.until == T0 + timedelta(minutes=30)


@pytest.mark.unit
def test_the_window_summary_since_the_reset_and_after_one():
    since_reset = statements.window_summary(planted_top(), planted_shots(0, 15), 2, None)
    assert since_reset.length == "since reset" and not since_reset.reset
    # The two snapshots count from different resets: the window contains one.
    reset_again = planted_shots(0, 15, resets=(RESET, T0 + timedelta(minutes=5)))
    assert statements.window_summary(planted_top(), reset_again, 2, 1).reset
    # Only one statement's counters went down (top_statements' reset_between).
    assert statements.window_summary(planted_top(True), planted_shots(0, 15), 2, 1).reset


@pytest.mark.unit
def test_the_statements_table_leaves_the_maximum_out_of_a_window():
    since_reset = statements.statements_table(planted_top(), window=False)
    assert since_reset.columns.tolist() == [
        "Statement",
        "Share of time",
        "Total (s)",
        "Mean (ms)",
        "Calls",
        "Rows",
        "Rows / call",
        "Cache hit",
        "Max (ms)",
        "Run by",
    ]
    assert since_reset["Total (s)"].tolist() == [1.5, 0.5]
    assert since_reset["Statement"].iloc[0] == "SELECT * FROM dbh_big WHERE k = 1"
    window = statements.statements_table(planted_top(), window=True)
    assert "Max (ms)" not in window.columns and len(window.columns) == 9


@pytest.mark.unit
def test_the_statement_heading_says_who_runs_it_and_how_long_it_takes():
    row = pd.Series({"roles": "aiagents", "mean_ms": 1234.56})
    heading = statements.statement_heading(row)
    assert heading == "**Selected statement** · run by aiagents · 1,234.6 ms on average"
