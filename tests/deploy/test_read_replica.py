"""Reads from a real hot standby (pg_basebackup -R of a private cluster, streaming), the
dashboard's own writes on the primary: the views work, their access records land on the
primary, and the Database health view shows the standby's replication lag."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
import streamlit as st

from demo import dbsetup
from services import access_log, db
from services.dbhealth import connections
from services.errors import SourceUnavailable
from services.weekly_review import Week
from tests.conftest import (
    app_test,
    free_port,
    page_text,
    screenshot,
    start_app,
    stop_process,
    visit,
)
from tests.faults import PG_BIN, PrivatePostgres, _as_postgres
from tests.planting import add_feedback, add_run, add_runs, add_tenant
from ui.common import md

# Starts infrastructure of its own (make test-infra, run by CI after make test).
pytestmark = pytest.mark.infra

DATABASE = "replicated"
URL_VARIABLES = ("DATABASE_URL", "ADMIN_DATABASE_URL", "DASHBOARD_WRITE_URL", "ADMIN_WRITE_URL")
TENANT = "replica-acme"
TICKET = "67890"
OTHER = "replica-globex"
LAST_WEEK_RUNS = 13


def make_standby(primary: PrivatePostgres) -> PrivatePostgres:
    """A streaming hot standby of `primary` on a port of its own."""
    base = Path(tempfile.mkdtemp(prefix="dashboard-standby-", dir="/var/tmp"))
    shutil.chown(base, "postgres", "postgres")
    standby = PrivatePostgres(base, free_port())
    _as_postgres("mkdir", "-p", str(standby.socket_dir))
    _as_postgres(
        str(PG_BIN / "pg_basebackup"), "-h", str(primary.socket_dir), "-p", str(primary.port),
        "-U", "postgres", "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
    )  # fmt: skip
    with open(standby.data / "postgresql.conf", "a") as conf:  # later lines win
        conf.write(
            f"port = {standby.port}\nunix_socket_directories = '{standby.socket_dir}'\n"
            "hot_standby = on\n"
        )
    standby.start()
    return standby


def role_urls(cluster: PrivatePostgres) -> tuple[str, str]:
    return (
        cluster.role_url("dashboard_reader", os.environ["STACK_READER_PASSWORD"], DATABASE),
        cluster.role_url("dashboard_admin", os.environ["STACK_ADMIN_PASSWORD"], DATABASE),
    )


def superuser(cluster: PrivatePostgres) -> psycopg.Connection:
    return psycopg.connect(cluster.superuser_url(DATABASE), autocommit=True)


def wait_replayed(primary: PrivatePostgres, standby: PrivatePostgres) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    with superuser(primary) as conn:
        # The insert position: with synchronous_commit off the last commit may not be written yet.
        target = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    deadline = time.monotonic() + 30
    with superuser(standby) as conn:
        while not conn.execute(
            "SELECT pg_last_wal_replay_lsn() >= CAST(%s AS pg_lsn)", (target,)
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[PrivatePostgres, PrivatePostgres]]:
    primary = PrivatePostgres.create()
    standby = None
    try:
        with primary.environment():
            dbsetup.prepare(DATABASE)
        with superuser(primary) as conn:
            add_tenant(conn, TENANT, "Replica Acme")
            now = datetime.now(UTC)
            add_runs(conn, TENANT, 20, "completed", now - timedelta(hours=2))
            add_run(conn, TENANT, TICKET, "completed", now - timedelta(hours=3), 21)
            add_feedback(conn, TENANT, TICKET, "rating", now - timedelta(hours=2), rating=2)
            # The weekly review's default is the last complete week: the tenant existed then.
            conn.execute("UPDATE tenant_configs SET created_at = %s", (now - timedelta(days=30),))
            last_week = Week.of(now).start - timedelta(days=6)
            add_runs(conn, TENANT, LAST_WEEK_RUNS, "completed", last_week)
            # The RLS self-test compares two tenants that both have rows.
            add_tenant(conn, OTHER, "Replica Globex")
            add_runs(conn, OTHER, 5, "failed", now - timedelta(hours=1))
        standby = make_standby(primary)
        wait_replayed(primary, standby)
        yield primary, standby
    finally:
        db.dispose_engines()
        if standby is not None:
            standby.destroy()
        primary.destroy()


@pytest.fixture
def reads_on_standby(clusters, monkeypatch) -> tuple[PrivatePostgres, PrivatePostgres]:
    primary, standby = clusters
    reader, admin = role_urls(standby)
    writer, admin_writer = role_urls(primary)
    for key, value in zip(URL_VARIABLES, (reader, admin, writer, admin_writer), strict=True):
        monkeypatch.setenv(key, value)
    db.dispose_engines()
    yield primary, standby
    db.dispose_engines()


def records(cluster: PrivatePostgres) -> list[tuple[str, str]]:
    with superuser(cluster) as conn:
        return conn.execute(
            "SELECT query_kind, tenant_id FROM dashboard.data_access_log ORDER BY id"
        ).fetchall()


class View(NamedTuple):
    """A view as a user opens it, the access record it must write (on the primary) and a text
    only the data it read (on the standby) can put on the page."""

    page: str | None  # None: the home page
    query: dict[str, str]
    record: tuple[str, str]
    shown: str
    state: dict[str, str] = {}


VIEWS = {
    "fleet health": View(None, {}, ("fleet_health", "*"), "Replica Acme"),
    "tenant detail": View(None, {"tenant": TENANT}, ("tenant_health", TENANT), "Replica Acme"),
    "tenant profile": View(
        "tenant_profile",
        {"tenant": TENANT},
        ("tenant_profile", TENANT),
        md("replica-acme.example.com"),  # as the page writes platform text: escaped markdown
    ),
    "investigation lookup": View(
        "investigation",
        {"tenant": TENANT, "ticket": TICKET},
        ("ticket_lookup", TENANT),
        "Enhancement delivered",
        {"purpose": "SUP-9 replica"},
    ),
    "feedback": View(
        "feedback", {"tenant": TENANT}, ("tenant_feedback", TENANT), "Average rating 2.00"
    ),
    "weekly review": View(
        "weekly_review",
        {"tenant": TENANT},
        ("weekly_review", TENANT),
        f"({LAST_WEEK_RUNS} tickets)",
    ),
    "queues": View("queues", {}, ("capacity", "*"), "Replica Acme"),
    # The home page's record, replayed to the standby the log is read from.
    "access log": View("access_log", {}, ("access_log", "*"), "fleet_health"),
    "RLS self-test": View(
        "rls_check", {}, ("rls_self_test", "*"), "checks passed: each tenant sees only its own"
    ),
    "client screen": View(
        None,
        {"view": "client", "tenant": TENANT},
        ("client_screenshare", TENANT),
        "Replica Acme: ticket enhancement service",
    ),
}


@pytest.mark.parametrize("view", VIEWS)
def test_views_read_the_standby_and_record_on_the_primary(reads_on_standby, redis_url, view):
    primary, standby = reads_on_standby
    case = VIEWS[view]
    with superuser(standby) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    st.cache_data.clear()
    before = len(records(primary))
    at = app_test(role="admin")
    for key, value in case.query.items():
        at.query_params[key] = value
    for key, value in case.state.items():
        at.session_state[key] = value
    at.run()  # the home page first, as a browser opens the app
    if case.page:
        wait_replayed(primary, standby)  # so the access log has the home page's record to show
        at = at.switch_page(f"views/{case.page}.py").run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert case.shown in page_text(at)
    # The record is the primary's (the standby is read-only), and streams to the standby.
    assert case.record in records(primary)[before:]
    wait_replayed(primary, standby)
    assert records(standby) == records(primary)


def test_the_database_health_view_shows_the_replication_lag(reads_on_standby):
    primary, standby = reads_on_standby
    state = connections.replication()
    assert state.standby
    [row] = state.streams.to_dict("records")
    assert row["state"] == "streaming" and row["lag_seconds"] >= 0
    # The primary sees the same standby in pg_stat_replication.
    os.environ["ADMIN_DATABASE_URL"] = role_urls(primary)[1]
    primary_view = connections.replication()
    assert not primary_view.standby
    assert primary_view.streams["state"].tolist() == ["streaming"]
    os.environ["ADMIN_DATABASE_URL"] = role_urls(standby)[1]
    lag = open_health_section("Connections")
    captions = " ".join(c.value for c in lag.caption)
    assert "reads from a hot standby" in captions and "behind the primary" in captions
    assert any("lag_seconds" in frame.value.columns for frame in lag.dataframe)
    # The slow-query tab's snapshot is taken on the primary, the server that can write.
    open_health_section("Slow queries")
    with superuser(primary) as conn:
        assert conn.execute("SELECT count(*) FROM dashboard.query_snapshots").fetchone()[0] == 1


def open_health_section(section: str):
    at = app_test(role="admin")
    at.query_params["section"] = section
    at.run()
    at = at.switch_page("views/slow_queries.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_writes_aimed_at_the_standby_fail_with_a_clear_message(reads_on_standby, monkeypatch):
    primary, standby = reads_on_standby
    monkeypatch.delenv("DASHBOARD_WRITE_URL")  # the default: writes go where the reads go
    db.dispose_engines()
    with pytest.raises(SourceUnavailable, match="read-only server .a standby.: point"):
        access_log.record(access_log.Access("a@test.example", "support", TENANT, "SUP-1", "x"))


@pytest.mark.browser
def test_the_lag_in_the_browser(reads_on_standby, browser):
    app = start_app({key: os.environ[key] for key in URL_VARIABLES})
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        visit(page, app, "slow_queries?section=Connections")
        page.get_by_role("heading", name="Replication").wait_for()
        assert page.get_by_text("reads from a hot standby").count()
        screenshot(page, "db_health_replication")
        page.close()
    finally:
        stop_process(app.process)
