"""The investigation page under AppTest on the real stack: purpose gate, consent, access
records, hostile input, another tenant's ticket, and the search opening a ticket."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import app_test, page_text
from tests.investigation_data import (
    SECRET_COMMENT,
    SECRET_OUTPUT,
    plant_low_rated,
    plant_searchable,
    plant_tenant,
)
from tests.planting import add_run, add_tenant

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def fresh_now():
    """Plant relative to the moment each test starts: the suite runs for minutes, and a run
    planted 30 s "ago" at import time would be stuck (> 120 s) by the time a test reads it."""
    global NOW
    NOW = datetime.now(UTC)


@pytest.fixture
def tenant(use_db, redis_url, tenant_id):
    return plant_tenant(use_db, tenant_id)


@pytest.fixture
def low_rated(use_db, tenant):
    return plant_low_rated(use_db, tenant, NOW)


@pytest.fixture
def searchable(use_db, tenant):
    return plant_searchable(use_db, tenant, NOW)


@pytest.fixture
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def open_page(purpose: str | None = None, **query) -> AppTest:
    at = app_test()
    for key, value in query.items():
        at.query_params[key] = value
    if purpose is not None:
        at.session_state["purpose"] = purpose
    at.run()
    return at.switch_page("views/investigation.py").run()


def access_records(db, tenant_id: str) -> list[tuple]:
    """This page's records for the tenant (AppTest's first run also opens the default page)."""
    with db.superuser() as conn:
        return conn.execute(
            "SELECT query_kind, purpose, query_params, row_count, sensitive_revealed, actor"
            " FROM dashboard.data_access_log WHERE tenant_id = %s"
            " AND query_kind IN ('ticket_lookup', 'ticket_search') ORDER BY id",
            (tenant_id,),
        ).fetchall()


def test_nothing_is_read_before_a_case_is_named(use_db, low_rated, fresh_caches):
    at = open_page(tenant=low_rated, ticket="67890")
    assert not at.exception
    assert at.text_input(key="ticket").value == "67890"  # the deep link survives the gate
    assert any("Which support case" in m.value for m in at.markdown)
    assert access_records(use_db, low_rated) == []
    assert SECRET_OUTPUT not in page_text(at)


def test_deep_link_lookup_records_the_access(use_db, low_rated, fresh_caches):
    at = open_page("SUP-567 ticket rated low", tenant=low_rated, ticket="67890")
    assert not at.exception
    text = page_text(at)
    assert "Ticket `67890`" in text and "Enhancement delivered" in text
    assert "Acme Test MSP" in text and "Case **SUP\\-567**" in text
    assert SECRET_OUTPUT not in text and SECRET_COMMENT not in text
    assert "TICKET INVESTIGATION SUMMARY" in at.text_area[0].value
    # One record: the lookup. The collapsed search ran no query and recorded nothing.
    assert access_records(use_db, low_rated) == [
        (
            "ticket_lookup",
            "SUP-567 ticket rated low",
            {"ticket_id": "67890"},
            2,
            False,
            "engineer@test.example",
        )
    ]

    at.checkbox[0].check().run()  # the client consented
    assert not at.exception
    text = page_text(at)
    assert SECRET_OUTPUT in text
    feedback = at.dataframe[-1].value
    assert SECRET_COMMENT in feedback["Comment"].tolist()
    records = access_records(use_db, low_rated)
    assert [(r[0], r[4]) for r in records] == [("ticket_lookup", False), ("ticket_lookup", True)]
    at.run()  # a rerun of the same lookup is not a new access
    assert len(access_records(use_db, low_rated)) == 2


@pytest.mark.parametrize("raw", ["9" * 10_000, "１２３", "1' OR '1'='1", "   ", "x\u202e\u0000"])
def test_hostile_ticket_ids_on_the_page(use_db, tenant, fresh_caches, raw):
    at = open_page("SUP-1 hostile input", tenant=tenant, ticket=raw)
    assert not at.exception
    messages = " ".join(str(e.body) for e in (*at.error, *at.warning))
    assert "ticket id" in messages.lower()
    assert not [r for r in access_records(use_db, tenant) if r[0] == "ticket_lookup"]


def test_ticket_of_another_tenant_on_the_page(use_db, tenant, tenant_id, fresh_caches):
    other = tenant_id + "-b"
    with use_db.superuser() as conn:
        add_tenant(conn, other)
        add_run(
            conn, other, "31337", "failed", NOW, 30, error_message="HTTPStatusError: 401 b-only"
        )
    at = open_page("SUP-2 cross tenant", tenant=tenant, ticket="31337")
    assert not at.exception
    assert "no enhancement run and no queued job for this tenant" in page_text(at)
    assert "b-only" not in page_text(at)
    assert [r[3] for r in access_records(use_db, tenant) if r[0] == "ticket_lookup"] == [0]


def test_search_on_the_page_opens_the_ticket(use_db, searchable, fresh_caches):
    at = open_page("SUP-3 find it", tenant=searchable)
    assert not at.exception
    results = at.dataframe[0].value
    assert results["Ticket"].tolist() == ["S-1", "S-2", "S-3"]
    kinds = [r[0] for r in access_records(use_db, searchable)]
    assert kinds == ["ticket_search"]
    at.session_state["ticket"] = "S-1"  # what selecting the first row does
    at.run()
    assert not at.exception
    assert "ServiceDesk Plus credentials expired" in page_text(at)
    assert [r[0] for r in access_records(use_db, searchable)] == ["ticket_search", "ticket_lookup"]
