"""The data-access record on real PostgreSQL: record, filter, CSV export, the role boundaries, the
90-day purge run exactly as cron runs it, and the admin page under AppTest."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
import sqlalchemy.exc
import streamlit as st
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from services import access_log
from services.db import tenant_scope, write_scope
from services.errors import SourceUnavailable
from services.timerange import TimeRange
from tests.conftest import ROOT, app_test
from tests.planting import add_tenant


def this_week() -> TimeRange:
    """The week up to a minute from now, read when a test runs (the suite takes minutes)."""
    now = datetime.now(UTC)
    return TimeRange(now - timedelta(days=7), now + timedelta(minutes=1), "the test week")


def access(tenant_id: str, **overrides) -> access_log.Access:
    values = dict(
        actor="jane.doe@example.com",
        actor_role="support",
        tenant_id=tenant_id,
        purpose="SUP-567 ticket 12345 never enhanced",
        query_kind="ticket_lookup",
        query_params={"ticket_id": "12345"},
        row_count=3,
    )
    values.update(overrides)
    return access_log.Access(**values)


@pytest.fixture
def logged(use_db, tenant_id):
    """Four records of one tenant, by two engineers, one revealing sensitive content."""
    access_log.record(access(tenant_id))
    access_log.record(access(tenant_id, sensitive_revealed=True, row_count=4))
    access_log.record(
        access(
            tenant_id,
            actor="raj.patel@example.com",
            query_kind="ticket_search",
            purpose='=HYPERLINK("http://evil") SUP-9',
            query_params={"status": ["failed"], "error_text": "100%_x"},
        )
    )
    access_log.record(
        access(
            tenant_id,
            actor="raj.patel@example.com",
            query_kind="tenant_health",
            purpose="weekly review",
            query_params={"range": "7d"},
        )
    )
    return tenant_id


def filtered(tenant_id: str, **overrides) -> pd.DataFrame:
    values = dict(period=this_week(), tenant_id=tenant_id)
    values.update(overrides)
    return access_log.list_records(access_log.Filters(**values), limit=100)


def test_records_are_listed_newest_first(logged):
    frame = filtered(logged)
    assert frame["query_kind"].tolist() == [
        "tenant_health",
        "ticket_search",
        "ticket_lookup",
        "ticket_lookup",
    ]
    first = frame.iloc[-1]
    assert (first["actor"], first["actor_role"], first["tenant_id"]) == (
        "jane.doe@example.com",
        "support",
        logged,
    )
    assert first["purpose"] == "SUP-567 ticket 12345 never enhanced"
    assert first["query_params"] == '{"ticket_id": "12345"}'
    assert (first["row_count"], bool(first["sensitive_revealed"])) == (3, False)


def test_filters(logged):
    now = datetime.now(UTC)
    assert len(filtered(logged, actor="RAJ")) == 2
    assert filtered(logged, query_kind="ticket_lookup")["row_count"].tolist() == [4, 3]
    assert filtered(logged, sensitive_only=True)["row_count"].tolist() == [4]
    assert filtered(logged, text="sup-567")["query_kind"].tolist() == ["ticket_lookup"] * 2
    assert filtered(logged, text="100%_x")["query_kind"].tolist() == ["ticket_search"]
    assert len(filtered(logged, text="%")) == 1  # a literal %: only the search has one
    assert filtered(logged, text="' OR 1=1 --").empty
    assert filtered(
        logged, period=TimeRange(now + timedelta(minutes=5), now + timedelta(hours=1), "")
    ).empty
    assert len(filtered(None, actor="jane.doe")) >= 2  # any tenant
    with pytest.raises(access_log.InvalidInput, match="after its start"):
        filtered(logged, period=TimeRange(now, now - timedelta(days=1), ""))
    with pytest.raises(access_log.InvalidInput, match="200 characters"):
        filtered(logged, actor="x" * 201)


def test_csv_export_round_trips_and_defuses_formulas(logged):
    frame = filtered(logged)
    raw = access_log.to_csv(frame)
    back = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    assert list(back.columns) == list(access_log.COLUMNS)
    assert len(back) == 4
    assert back["tenant_id"].unique().tolist() == [logged]
    assert sorted(back["row_count"].tolist()) == ["3", "3", "3", "4"]
    # A purpose typed as a spreadsheet formula is exported as text.
    assert '\'=HYPERLINK("http://evil") SUP-9' in back["purpose"].tolist()
    when = datetime.fromisoformat(back["accessed_at"].iloc[0])
    assert when.tzinfo is not None and abs(when - datetime.now(UTC)) < timedelta(minutes=5)
    assert back["sensitive_revealed"].tolist().count("True") == 1


def test_the_reader_role_can_record_but_never_read_or_delete(use_db, tenant_id):
    access_log.record(access(tenant_id))
    denied = pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied")
    with denied, tenant_scope(tenant_id) as conn:
        conn.execute(text("SELECT count(*) FROM dashboard.data_access_log"))
    denied = pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied")
    with denied, write_scope() as conn:
        conn.execute(text("DELETE FROM dashboard.data_access_log"))
    assert len(filtered(tenant_id)) == 1


# --- append-only: every write goes through dashboard.record_access() -----------------------------
def stored(db, tenant_id: str) -> list[tuple]:
    with db.superuser() as conn:
        return conn.execute(
            "SELECT actor, purpose, query_params FROM dashboard.data_access_log"
            " WHERE tenant_id = %s ORDER BY id",
            (tenant_id,),
        ).fetchall()


def test_purposes_lose_control_characters_and_are_capped(use_db, tenant_id):
    access_log.record(access(tenant_id, purpose="SUP-1\x00\x07 ticket\n12345\x1b[31m red\u0085"))
    access_log.record(access(tenant_id, purpose="  Überprüfung «SUP-2» 'quoted' ; -- as typed "))
    access_log.record(access(tenant_id, purpose="x" * 2000, query_params={"q": "a\x00b\tc"}))
    rows = stored(use_db, tenant_id)
    assert [r[1] for r in rows[:2]] == [
        "SUP-1 ticket 12345[31m red",
        "Überprüfung «SUP-2» 'quoted' ; -- as typed",
    ]
    assert len(rows[2][1]) == access_log.PURPOSE_MAX and rows[2][1].endswith("…")
    assert rows[2][2] == {"q": "ab c"}
    with pytest.raises(access_log.RecordRefused, match="no purpose"):
        access_log.record(access(tenant_id, purpose="\x00\x01 \n"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"actor": ""}, "plausible email"),
        ({"actor": "bob"}, "plausible email"),
        ({"actor": "a@b"}, "plausible email"),
        ({"actor": "evil@example.com\nforged"}, "plausible email"),
        ({"actor_role": "root"}, "unknown role"),
        ({"tenant_id": "a'; DROP"}, "invalid tenant id"),
        ({"query_kind": "Lookup!"}, "invalid query kind"),
    ],
)
def test_implausible_records_are_refused_with_a_clear_error(use_db, tenant_id, overrides, message):
    with pytest.raises(access_log.RecordRefused, match=message) as refused:
        access_log.record(access(overrides.pop("tenant_id", tenant_id), **overrides))
    assert str(refused.value).startswith("the access record was refused: ")
    assert stored(use_db, tenant_id) == []


def test_service_actors_and_refusal_kinds_are_recorded(use_db, tenant_id):
    access_log.record(access(tenant_id, actor="cron", actor_role="service"))
    access_log.record(
        access(tenant_id, query_kind=access_log.ACCESS_REFUSED, query_params={"reason": "x"})
    )
    assert [r[0] for r in stored(use_db, tenant_id)] == ["cron", "jane.doe@example.com"]


CALL = "SELECT dashboard.record_access(%s, 'support', %s, %s, 'ticket_lookup', '{}', 1, false)"


@pytest.mark.parametrize("role", ["reader", "admin"])
def test_the_database_rechecks_what_the_roles_send(use_db, tenant_id, role):
    """A role going around services/access_log.py meets the same rules in the function."""
    url = use_db.reader_url if role == "reader" else use_db.admin_url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for actor, purpose, error in (
            ("bob", "SUP-1", "actor must be an email"),
            ("jane@example.com", "SUP-1\x07", "without control characters"),
            ("jane@example.com", "x" * 501, "1-500 characters"),
            ("jane@example.com", "  ", "1-500 characters"),
        ):
            with pytest.raises(psycopg.errors.CheckViolation, match=error):
                conn.execute(CALL, (actor, tenant_id, purpose))
        with pytest.raises(psycopg.DataError):  # NUL never reaches the server as text
            conn.execute(CALL, ("jane@example.com", tenant_id, "SUP\x00"))
        conn.execute(CALL, ("jane@example.com", tenant_id, "SUP-1"))
    assert [r[1] for r in stored(use_db, tenant_id)] == ["SUP-1"]


@pytest.mark.parametrize("role", ["reader", "admin"])
def test_neither_role_can_change_delete_or_insert_directly(use_db, tenant_id, role):
    access_log.record(access(tenant_id))
    url = use_db.reader_url if role == "reader" else use_db.admin_url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for sql in (
            "UPDATE dashboard.data_access_log SET purpose = 'x'",
            "DELETE FROM dashboard.data_access_log",
            "TRUNCATE dashboard.data_access_log",
            "INSERT INTO dashboard.data_access_log (actor, actor_role, tenant_id, purpose,"
            " query_kind, accessed_at)"
            " VALUES ('a@b.c', 'support', 't', 'p', 'k', now() - interval '1 year')",
            "SELECT nextval('dashboard.data_access_log_id_seq')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        if role == "reader":  # only the admin role may call the purge
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT dashboard.purge_access_log(90, 10)")
        else:  # and even it cannot purge recent records
            with pytest.raises(psycopg.errors.CheckViolation, match="at least 90 days"):
                conn.execute("SELECT dashboard.purge_access_log(1, 10)")
    assert len(stored(use_db, tenant_id)) == 1


def test_an_unreachable_database_raises_a_dashboard_error(use_db, tenant_id, monkeypatch):
    from services import db

    monkeypatch.setenv("DATABASE_URL", use_db.reader_url.replace(os.environ["PGPORT"], "1", 1))
    db.dispose_engines()
    try:
        with pytest.raises(SourceUnavailable, match="PostgreSQL is not available"):
            access_log.record(access(tenant_id))
    finally:
        monkeypatch.undo()
        use_db.use()


# --- purge ---------------------------------------------------------------------------------------
@pytest.fixture
def purge_db(make_platform_db):
    """A database of its own: the purge deletes across every tenant."""
    return make_platform_db("purge")


def plant_aged(db, tenant_id: str, days_old: float, count: int = 1) -> None:
    with db.superuser() as conn:
        conn.execute(
            "INSERT INTO dashboard.data_access_log (accessed_at, actor, actor_role, tenant_id,"
            " purpose, query_kind) SELECT now() - make_interval(secs => %s), 'old@example.com',"
            " 'support', %s, 'SUP-1', 'ticket_lookup' FROM generate_series(1, %s)",
            (days_old * 86400, tenant_id, count),
        )


def ages(db) -> list[int]:
    with db.superuser() as conn:
        rows = conn.execute(
            "SELECT extract(day FROM now() - accessed_at)::int FROM dashboard.data_access_log"
            " ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def run_purge(db, *args: str) -> subprocess.CompletedProcess:
    """The command cron runs, as its own process, with the admin role's URL only."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["ADMIN_DATABASE_URL"] = db.admin_url
    return subprocess.run(
        [sys.executable, "-m", "services.access_log", "purge", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_purge_from_cron_deletes_records_older_than_90_days(purge_db, tenant_id):
    plant_aged(purge_db, tenant_id, 400)
    plant_aged(purge_db, tenant_id, 91, count=access_log.PURGE_BATCH + 2)  # more than one batch
    plant_aged(purge_db, tenant_id, 90.01)
    plant_aged(purge_db, tenant_id, 89.9)
    plant_aged(purge_db, tenant_id, 1)
    plant_aged(purge_db, tenant_id, 0)
    done = run_purge(purge_db, "--older-than-days", "90")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"purged {access_log.PURGE_BATCH + 4} access records older than 90 days"
    )
    assert ages(purge_db) == [0, 1, 89]
    again = run_purge(purge_db)  # default retention from dashboard.toml
    assert again.returncode == 0 and "purged 0 access records older than 90 days" in again.stdout


def test_purge_refuses_nonsense_and_reports_an_unreachable_database(purge_db):
    for days in ("0", "89"):
        refused = run_purge(purge_db, "--older-than-days", days)
        assert refused.returncode == 1
        assert "kept at least 90 days" in refused.stderr and "Traceback" not in refused.stderr
    unreachable = purge_db.__class__(
        purge_db.name, purge_db.reader_url, purge_db.admin_url.replace(os.environ["PGPORT"], "1", 1)
    )
    down = run_purge(unreachable)
    assert down.returncode == 1
    assert "PostgreSQL is not available" in down.stderr and "Traceback" not in down.stderr


# --- the admin page ------------------------------------------------------------------------------
@pytest.fixture
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def open_log_page() -> AppTest:
    at = app_test()
    at.run()
    return at.switch_page("views/access_log.py").run()


def test_admin_page_lists_filters_and_records_its_own_use(use_db, logged, fresh_caches):
    with use_db.superuser() as conn:
        add_tenant(conn, logged, "Logged MSP")
    at = open_log_page()
    assert not at.exception
    assert at.title[0].value == "Data access log"
    at.selectbox(key="log_tenant").set_value(logged).run()
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["Tenant"]) == {logged}
    assert at.metric[0].value == "4" and at.metric[3].value == "1"
    at.toggle(key="log_sensitive").set_value(True).run()
    assert len(at.dataframe[0].value) == 1
    at.text_input(key="log_actor").set_value("nobody-at-all").run()
    assert not at.exception and any("No access records" in str(i.body) for i in at.info)
    with use_db.superuser() as conn:
        views = conn.execute(
            "SELECT query_params FROM dashboard.data_access_log"
            " WHERE query_kind = 'access_log' AND tenant_id = '*' ORDER BY id"
        ).fetchall()
    assert {"tenant": logged, "sensitive_only": True}.items() <= views[-2][0].items()
    assert views[-1][0]["actor"] == "nobody-at-all"


def test_support_engineers_cannot_open_the_log(use_db, logged, fresh_caches, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ROLE", "support")
    at = app_test().run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/access_log.py").run()
