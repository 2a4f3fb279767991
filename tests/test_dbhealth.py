"""Database health on the private stack: a known slow statement and a sequential-scan-heavy table
are found, snapshot deltas match hand-computed values, connection counts match connections this
test opens, and a database without pg_stat_statements gets instructions, not an error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from services import dbhealth
from services.errors import InvalidInput, QueryTimeout, SourceUnavailable
from tests.conftest import ROOT, PlatformDb, app_test

SLOW_SLEEP_S = 1.0  # well above any set-up statement of the database, even on a loaded machine
SLOW_RUNS = 2
SEQ_SCANS = 15
BIG_ROWS = 20000


def plant_workload(db: PlatformDb) -> None:
    """A slow statement, a large table read only by sequential scans (with an unused and a
    duplicate index), and a table with half of its rows dead and autovacuum off."""
    with db.superuser() as conn:
        conn.execute("CREATE TABLE dbh_slow (id int)")
        conn.execute("INSERT INTO dbh_slow VALUES (1)")
        conn.execute("CREATE TABLE dbh_big (id int, k int, pad text)")
        conn.execute(
            "INSERT INTO dbh_big SELECT i, i %% 100, md5(i::text) FROM generate_series(1, %s) i",
            (BIG_ROWS,),
        )
        conn.execute("CREATE INDEX dbh_big_id ON dbh_big (id)")
        conn.execute("CREATE INDEX dbh_big_id_pad ON dbh_big (id, pad)")
        conn.execute(
            "CREATE TABLE dbh_dead (id int) WITH (autovacuum_enabled = false,"
            " toast.autovacuum_enabled = false)"
        )
        conn.execute("INSERT INTO dbh_dead SELECT generate_series(1, 2000)")
        conn.execute("DELETE FROM dbh_dead WHERE id > 1000")
        conn.execute("VACUUM dbh_slow")
        # Like the platform's tables (schema/grants.sql): the admin role may read them.
        conn.execute("GRANT SELECT ON dbh_slow, dbh_big, dbh_dead TO dashboard_admin")
        for _ in range(SLOW_RUNS):
            conn.execute("SELECT pg_sleep(%s) FROM dbh_slow", (SLOW_SLEEP_S,))
        for i in range(SEQ_SCANS):
            conn.execute("SELECT count(*) FROM dbh_big WHERE k = %s", (i,))
    # The connection is closed: its table statistics are flushed. Wait until they are visible.
    wait_for(
        lambda: (
            _stat(db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'dbh_dead'")
            == 1000
        )
    )
    wait_for(
        lambda: (
            (_stat(db, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'dbh_big'") or 0)
            >= SEQ_SCANS
        )
    )


def _stat(db: PlatformDb, sql: str):
    with db.superuser() as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def health_db(make_platform_db) -> PlatformDb:
    db = make_platform_db("dbhealth")
    plant_workload(db)
    return db


@pytest.fixture
def hdb(health_db: PlatformDb) -> Iterator[PlatformDb]:
    health_db.use()
    st.cache_data.clear()
    yield health_db
    st.cache_data.clear()


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


# --- slow queries --------------------------------------------------------------------------------


def test_the_slow_statement_tops_the_mean_time_ranking(hdb):
    snapshot_id = dbhealth.take_snapshot("page")
    top = dbhealth.top_statements(snapshot_id, None, "mean", 10)
    slow = top.iloc[0]
    assert "dbh_slow" in slow["query"] and "pg_sleep" in slow["query"]
    assert slow["calls"] == SLOW_RUNS
    assert slow["mean_ms"] >= SLOW_SLEEP_S * 1000
    calls, total_ms, _ = raw_counters(hdb, "FROM dbh_slow")
    assert (slow["calls"], slow["total_ms"]) == (calls, pytest.approx(total_ms))
    assert slow["share"] == pytest.approx(slow["total_ms"] / slow["all_total_ms"])
    assert "postgres" in slow["roles"]


def test_the_seq_scan_statement_is_counted(hdb):
    snapshot_id = dbhealth.take_snapshot("page")
    scans = row_for(dbhealth.top_statements(snapshot_id, None, "calls", 500), "FROM dbh_big")
    assert scans["calls"] == SEQ_SCANS and scans["rows"] == SEQ_SCANS  # count(*): one row each


def test_the_dashboards_own_statements_can_be_left_out(hdb):
    snapshot_id = dbhealth.take_snapshot("page")
    everything = dbhealth.top_statements(snapshot_id, None, "total", 500)
    own = ("dashboard_reader", "dashboard_admin", "pg_monitor")
    platform = dbhealth.top_statements(snapshot_id, None, "total", 500, exclude_roles=own)
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
        a = dbhealth.take_snapshot("page")
        run(5)
        b_counters = raw_counters(hdb, statement)
        b = dbhealth.take_snapshot("page")
        run(2)
        c = dbhealth.take_snapshot("page")
    # Hand-computed: 5 runs between a and b returning 1+2+3+1+2 rows (k <= 1, 2, 3, 1, 2).
    delta = row_for(dbhealth.top_statements(b, a, "total", 500), statement)
    assert delta["calls"] == b_counters[0] - a_counters[0] == 5
    assert delta["rows"] == b_counters[2] - a_counters[2] == 9
    assert delta["total_ms"] == pytest.approx(b_counters[1] - a_counters[1])
    assert delta["mean_ms"] == pytest.approx((b_counters[1] - a_counters[1]) / 5)
    assert not delta["reset_between"]
    assert row_for(dbhealth.top_statements(b, None, "total", 500), statement)["calls"] == 8

    shots = dbhealth.snapshots(datetime.now(UTC) - timedelta(hours=1)).set_index("id")
    history = dbhealth.statement_history(
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
            top = dbhealth.top_statements(ids[1], ids[0], "total", 10).set_index("queryid")
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
    dbhealth.take_snapshot("page")
    assert dbhealth.snapshot_if_stale(max_age_minutes=60) is None
    fresh = dbhealth.snapshot_if_stale(max_age_minutes=0)
    assert fresh is not None
    shots = dbhealth.snapshots(datetime.now(UTC) - timedelta(minutes=5))
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


# --- EXPLAIN -------------------------------------------------------------------------------------


def test_explain_plans_without_running(hdb):
    plan = dbhealth.explain("SELECT count(*) FROM dbh_big WHERE k = 7;")
    assert "Seq Scan on dbh_big" in plan and "actual time" not in plan
    started = time.monotonic()
    assert "Result" in dbhealth.explain("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 2  # planned, not slept
    with hdb.superuser() as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS dbh_seq")
        before = conn.execute("SELECT last_value FROM dbh_seq").fetchone()[0]
        dbhealth.explain("SELECT nextval('dbh_seq')")
        assert conn.execute("SELECT last_value FROM dbh_seq").fetchone()[0] == before
    # Literals and comments may hold ';' and keywords.
    assert "Result" in dbhealth.explain("SELECT ';' AS semi, 'DELETE' AS word -- ; done")


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM dbh_big WHERE pad <> 'delete from dbh_big; update'",
        "/* DELETE */ SELECT E'it\\'s; DELETE' AS s;",
        "SELECT 'a'';DELETE FROM dbh_big' AS s ; -- trailing",
        "VALUES (1, 'insert'), (2, 'into')",
        "SELECT k FROM dbh_big UNION ALL SELECT 1 ORDER BY 1 LIMIT 3",
        "WITH w AS (SELECT k FROM dbh_big) SELECT count(*) FROM w",
        "SELECT 'délété ✓' AS s",
    ],
)
def test_explain_accepts_plain_selects_whatever_their_literals_say(hdb, statement):
    assert "cost=" in dbhealth.explain(statement)  # a plan, not an error
    assert _stat(hdb, "SELECT count(*) FROM dbh_big") == BIG_ROWS


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("", "Paste a SELECT"),
        ("EXPLAIN ANALYZE SELECT 1", "Only a SELECT statement"),
        ("DELETE FROM dbh_big", "Only a SELECT statement"),
        ("SELECT 1; DELETE FROM dbh_big", "Only one statement"),
        ("WITH d AS (DELETE FROM dbh_big RETURNING *) SELECT * FROM d", "contains DELETE"),
        ("SELECT * INTO dbh_copy FROM dbh_big", "contains INTO"),
        ("SELECT * FROM dbh_big WHERE k = $1", "Replace the placeholders"),
        # The keyword filter's blind spot: E'\'' is one string, so the DELETE is a statement.
        ("SELECT E'\\'' ; DELETE FROM dbh_big", "Only one statement"),
        ("SELECT E'\\'';DELETE FROM dbh_big;--'", "Only one statement"),
        ("SELECT E'x\\\\' ; DELETE FROM dbh_big", "Only one statement"),
        ("SELECT $$;$$; DELETE FROM dbh_big", "Only one statement"),
        ("SELECT 1 /* ; */ ; SELECT 2", "Only one statement"),
        ("SELECT * FROM dbh_big FOR UPDATE", "contains FOR UPDATE/SHARE"),
        ("SELECT 1 UNION SELECT k FROM (SELECT k FROM dbh_big FOR SHARE) s", "FOR UPDATE/SHARE"),
        ("WITH d AS (UPDATE dbh_big SET k = 0 RETURNING k) SELECT 1", "contains UPDATE"),
        (
            "WITH a AS (SELECT 1), b AS (INSERT INTO dbh_big VALUES (1) RETURNING 1) TABLE a",
            "INSERT",
        ),
        ("SELECT 1 FROM dbh_big WHERE", "not valid SQL: syntax error"),
        ("/* only a comment */", "Paste a SELECT"),
        ("UPDATE dbh_big SET k = 0", "Only a SELECT statement"),
        ("SELECT * FROM no_such_table", "could not plan that statement"),
        ("SELECT servicedesk_api_key_encrypted FROM tenant_configs", "permission denied"),
    ],
)
def test_explain_refuses_with_a_clear_message(hdb, statement, message):
    with pytest.raises(InvalidInput, match=message):
        dbhealth.explain(statement)
    assert _stat(hdb, "SELECT count(*) FROM dbh_big") == BIG_ROWS


def test_explain_stops_at_the_timeout(hdb):
    """The planner folds an IMMUTABLE function call into a constant, so planning runs it."""
    with hdb.superuser() as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION dbh_slow_constant() RETURNS int IMMUTABLE"
            " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN 1; END $$"
        )
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        dbhealth.explain("SELECT dbh_slow_constant()", timeout_ms=300)
    assert time.monotonic() - started < 2


# --- connections ---------------------------------------------------------------------------------


@pytest.fixture
def platform_role(hdb) -> Iterator[tuple[str, str]]:
    """A login role standing in for the platform's database user (roles are per server)."""
    role, password = f"dbh_platform_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with hdb.superuser() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    yield role, password
    with hdb.superuser() as conn:
        conn.execute(f"DROP ROLE {role}")


def test_connections_are_counted_by_source(hdb, platform_role):
    role, password = platform_role
    app = f"dbh-test-{uuid.uuid4().hex[:6]}"

    def connect() -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=os.environ["PGPORT"],
            dbname=hdb.name,
            user=role,
            password=password,
            application_name=app,
        )

    opened = [connect() for _ in range(4)]
    sleeper = threading.Thread(target=lambda: opened[0].execute("SELECT pg_sleep(4)"))
    try:
        opened[1].execute("SELECT 1")  # not committed: idle in transaction
        for conn in opened[2:]:
            conn.autocommit = True
            conn.execute("SELECT 1")  # idle
        sleeper.start()
        wait_for(
            lambda: _stat(
                hdb,
                "SELECT count(*) FROM pg_stat_activity"
                f" WHERE application_name = '{app}' AND state = 'active'",
            )
        )
        time.sleep(1.2)
        conns = dbhealth.connections((role,))
        ours = conns.by_source[conns.by_source["application"] == app]
        assert len(ours) == 1
        row = ours.iloc[0]
        assert (row["database"], row["user"], bool(row["platform"])) == (hdb.name, role, True)
        assert (row["active"], row["idle"], row["idle_in_transaction"], row["total"]) == (
            1,
            2,
            1,
            4,
        )
        assert conns.count("total", platform_only=True) == 4
        assert conns.max_connections == int(_stat(hdb, "SHOW max_connections"))

        server, pools, capacity = dbhealth.connection_usage(conns, 1, 4, 0.9)
        assert (pools.used, pools.limit, pools.share, pools.warn) == (4, 4, 1.0, True)
        assert (server.used, server.limit) == (conns.count("total"), conns.max_connections)
        assert (capacity.used, capacity.limit) == (4, conns.max_connections)
        roomy = dbhealth.connection_usage(conns, 1, 10, 0.9)[1]
        assert (roomy.used, roomy.share, roomy.warn) == (4, 0.4, False)

        slow = dbhealth.long_running(1.0)
        mine = slow[slow["application"] == app]
        assert sorted(mine["state"]) == ["active", "idle in transaction"]
        active = mine[mine["state"] == "active"].iloc[0]
        assert active["query_seconds"] >= 1.0 and "pg_sleep" in active["query"]
    finally:
        if sleeper.ident:  # started
            sleeper.join()
        for conn in opened:
            conn.close()


# --- tables and indexes --------------------------------------------------------------------------


def test_the_seq_scan_heavy_table_is_an_index_candidate(hdb):
    candidates = dbhealth.index_candidates(min_rows=10000, seq_share_flag=0.05)
    big = candidates[candidates["table"] == "dbh_big"].iloc[0]
    assert big["live_rows"] == BIG_ROWS and big["seq_scan"] >= SEQ_SCANS
    assert big["seq_share"] == 1.0 and big["idx_scan"] == 0
    assert big["seq_tup_read"] >= SEQ_SCANS * BIG_ROWS
    assert "dbh_dead" not in set(candidates["table"])  # small tables are not candidates


def test_unused_and_duplicate_indexes(hdb):
    index_frame = dbhealth.indexes().set_index("index")
    assert index_frame.loc["dbh_big_id", "unused"] and index_frame.loc["dbh_big_id_pad", "unused"]
    assert not index_frame.loc["tenant_configs_pkey", "unused"]  # primary keys are needed
    duplicates = dbhealth.duplicate_indexes().set_index("index")
    assert duplicates.loc["dbh_big_id", "covered_by"] == "dbh_big_id_pad"
    assert "dbh_big_id_pad" not in duplicates.index
    # The platform's own schema has one: (tenant_id) leads two other indexes.
    assert duplicates.loc["ix_enhancement_history_tenant_id", "covered_by"] == (
        "ix_enhancement_history_tenant_ticket, ix_history_tenant_status_created"
    )


def test_dead_tuples_and_vacuum_times(hdb):
    table_frame = dbhealth.tables(dead_ratio_warning=0.2, dead_rows_min=500).set_index("table")
    dead = table_frame.loc["dbh_dead"]
    assert (dead["live_rows"], dead["dead_rows"], dead["dead_ratio"]) == (1000, 1000, 0.5)
    assert dead["needs_vacuum"] and pd.isna(dead["last_any_vacuum"])
    assert pd.notna(table_frame.loc["dbh_slow", "last_vacuum"])
    assert not table_frame.loc["dbh_slow", "needs_vacuum"]
    assert table_frame.loc["dbh_big", "total_bytes"] > table_frame.loc["dbh_big", "table_bytes"]


# --- without pg_stat_statements ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_db(make_platform_db) -> PlatformDb:
    db = make_platform_db("dbh_noext")
    with db.superuser() as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
    return db


def test_a_missing_extension_gives_instructions(bare_db):
    bare_db.use()
    status = dbhealth.extension_status()
    assert (status.preloaded, status.installed, status.ready) == (True, False, False)
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in status.instructions()
    assert "Restart" not in status.instructions()  # already preloaded: no restart needed
    unloaded = dbhealth.ExtensionStatus(preloaded=False, installed=False).instructions()
    assert "shared_preload_libraries" in unloaded and "Restart PostgreSQL" in unloaded
    with pytest.raises(SourceUnavailable, match="pg_stat_statements"):
        dbhealth.take_snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "services.dbhealth", "snapshot"],
        cwd=ROOT,
        env={**os.environ, "ADMIN_DATABASE_URL": bare_db.admin_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "not enabled" in done.stderr and "Traceback" not in done.stderr


# --- the page under AppTest ----------------------------------------------------------------------


def open_page(section: str) -> AppTest:
    at = app_test()
    at.query_params["section"] = section
    at.run()
    return at.switch_page("views/slow_queries.py").run()


def access_kinds(db: PlatformDb) -> list[tuple[str, str, dict]]:
    with db.superuser() as conn:
        return conn.execute(
            "SELECT query_kind, tenant_id, query_params FROM dashboard.data_access_log ORDER BY id"
        ).fetchall()


def test_the_page_ranks_explains_and_records(hdb):
    at = open_page("Slow queries")
    assert not at.exception and not at.error
    at.segmented_control(key="dbh_mode").set_value("Since reset").run()
    at.segmented_control(key="dbh_sort").set_value("mean").run()
    statements = at.dataframe[0].value
    assert statements["Mean (ms)"].is_monotonic_decreasing
    slow = statements[statements["Statement"].str.contains("FROM dbh_slow", regex=False)]
    assert slow["Calls"].tolist() == [SLOW_RUNS]
    assert [m.label for m in at.metric][:3] == ["Time in statements", "Calls", "Statements"]
    at.text_area(key="dbh_explain").input("SELECT * FROM dbh_big WHERE k = 3")
    next(b for b in at.button if b.label == "Explain").click().run()
    assert not at.error
    assert any("Seq Scan on dbh_big" in code.value for code in at.code)
    kinds = access_kinds(hdb)
    assert ("db_health", "*") in {(k, t) for k, t, _ in kinds}
    assert ("db_explain", "*", {"statement": "SELECT * FROM dbh_big WHERE k = 3"}) in kinds
    # A refused attempt is shown as such and recorded too.
    trick = "SELECT E'\\'' ; DELETE FROM dbh_big"
    at.text_area(key="dbh_explain").input(trick)
    next(b for b in at.button if b.label == "Explain").click().run()
    assert any("Only one statement" in e.value for e in at.error)
    refused = [p for k, _, p in access_kinds(hdb) if k == "explain_refused"]
    assert refused[-1]["statement"] == trick and "Only one statement" in refused[-1]["reason"]


def test_the_connections_and_tables_tabs(hdb):
    at = open_page("Connections")
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert labels == [
        "Server connections",
        "Platform pools",
        "Pool capacity",
        "Active",
        "Idle",
        "Idle in transaction",
    ]
    # dashboard.toml: 20 per pod x (2 API + 3 worker) = 100 = max_connections of the stack.
    assert any("Pool capacity vs max_connections: 100%" in w.value for w in at.warning)
    at = open_page("Tables and indexes")
    assert not at.exception and not at.error
    tiles = {m.label: m.value for m in at.metric}
    assert int(tiles["Index candidates"]) >= 1 and int(tiles["Duplicate indexes"]) >= 1
    assert any("dbh_dead" in w.value and "50% dead" in w.value for w in at.warning)


def test_the_page_without_the_extension_explains_how_to_enable_it(bare_db):
    bare_db.use()
    st.cache_data.clear()
    at = open_page("Slow queries")
    assert not at.exception and not at.error
    assert any("CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in w.value for w in at.warning)
    at = open_page("Connections")
    assert not at.exception and not at.error and len(at.metric) == 6


def test_support_engineers_cannot_open_it(hdb, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ROLE", "support")
    at = app_test().run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/slow_queries.py").run()
