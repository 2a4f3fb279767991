"""Every page works with one pooled connection per database URL: no page holds a connection
while it waits for a second one. Held that way by as many sessions as there are connections,
the pool has none left, and every one of those sessions fails as busy after pool_wait_s (ten
concurrent sessions did, on five connections, before services/health.py stopped it)."""

from __future__ import annotations

import pytest
import streamlit as st

from demo import fleet
from services import db
from tests.conftest import app_test, use_pool
from tests.views.test_roles import ADMIN_PAGES, SUPPORT_PAGES


@pytest.fixture
def one_connection(tmp_path, monkeypatch):
    use_pool(tmp_path, monkeypatch, size=1, wait_s=2)
    st.cache_data.clear()
    yield
    db.dispose_engines()


def messages(at) -> list[str]:
    return [e.value for e in (*at.error, *at.warning)]


@pytest.mark.parametrize("tenant", [None, fleet.GLOBEX], ids=["fleet", "tenant"])
def test_every_page_renders_with_one_connection_per_pool(fleet_db, one_connection, tenant):
    fleet_db.use()
    for page in (*SUPPORT_PAGES, *ADMIN_PAGES):
        at = app_test("admin")
        if tenant:
            at.query_params["tenant"] = tenant
        at.run()
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, page
        assert not [m for m in messages(at) if "busy" in m or "did not answer" in m], page
        assert at.title or at.header, page  # the page drew, not only a message


def test_the_client_screen_renders_with_one_connection_per_pool(fleet_db, one_connection):
    fleet_db.use()
    at = app_test("admin")
    at.query_params["view"] = "client"
    at.query_params["tenant"] = fleet.GLOBEX
    at.run()
    assert not at.exception
    assert not [m for m in messages(at) if "busy" in m or "unavailable" in m]
    assert at.title[0].value.startswith("Globex")
