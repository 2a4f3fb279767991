"""The data-access record on real PostgreSQL: record, filter, CSV export, the role boundaries, the
90-day purge run exactly as cron runs it, and the admin page under AppTest."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy.exc
import streamlit as st
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from services import access_log
from services.db import tenant_scope, write_scope
from tests.conftest import ROOT, app_test
from tests.planting import add_tenant

NOW = datetime.now(UTC)
WEEK = access_log.Filters(since=NOW - timedelta(days=7), until=NOW + timedelta(minutes=1))


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
    values = dict(since=WEEK.since, until=WEEK.until, tenant_id=tenant_id)
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
    assert len(filtered(logged, actor="RAJ")) == 2
    assert filtered(logged, query_kind="ticket_lookup")["row_count"].tolist() == [4, 3]
    assert filtered(logged, sensitive_only=True)["row_count"].tolist() == [4]
    assert filtered(logged, text="sup-567")["query_kind"].tolist() == ["ticket_lookup"] * 2
    assert filtered(logged, text="100%_x")["query_kind"].tolist() == ["ticket_search"]
    assert len(filtered(logged, text="%")) == 1  # a literal %: only the search has one
    assert filtered(logged, text="' OR 1=1 --").empty
    assert filtered(logged, since=NOW + timedelta(minutes=5), until=NOW + timedelta(hours=1)).empty
    assert len(filtered(None, actor="jane.doe")) >= 2  # any tenant
    with pytest.raises(access_log.InvalidInput, match="after its start"):
        filtered(logged, since=NOW, until=NOW - timedelta(days=1))
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
    assert when.tzinfo is not None and abs(when - NOW) < timedelta(minutes=5)
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
    refused = run_purge(purge_db, "--older-than-days", "0")
    assert refused.returncode == 1
    assert "Keep at least one day" in refused.stderr and "Traceback" not in refused.stderr
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
