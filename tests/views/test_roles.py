"""Sign-in and roles: each role gets exactly its pages, a client only its own tenant's screen,
and a signed-out visitor nothing but the sign-in page (AppTest and the real browser)."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from demo import fleet
from tests.browser.test_core import forbidden_strings
from tests.conftest import ROOT, TEST_USERS, app_test, screenshot, visit, wait_rendered

ADMIN_PAGES = ("rls_check", "access_log", "queues", "slow_queries")
SUPPORT_PAGES = ("tenant_health", "tenant_profile", "investigation", "feedback", "weekly_review")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()


def page_is_reachable(at: AppTest, page: str) -> bool:
    try:
        at.switch_page(f"views/{page}.py").run()
    except ValueError:  # AppTest: the page is not registered for this user
        return False
    return not at.exception


def test_signed_out_gets_only_the_sign_in_page(fleet_db):
    """Without an identity provider configured nobody gets in, and the page says why."""
    fleet_db.use()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["AI Agents · Support"]
    assert any("No identity provider is set up" in e.value for e in at.error)
    assert not at.text_input and not at.button  # no password form: sign-in is OIDC only
    assert len(at.sidebar) == 0 and not at.selectbox  # no tenant picker, no tenant names
    for page in (*SUPPORT_PAGES, *ADMIN_PAGES):
        assert not page_is_reachable(at, page), page


def test_admin_reaches_every_page(fleet_db):
    fleet_db.use()
    for page in (*SUPPORT_PAGES, *ADMIN_PAGES):
        assert page_is_reachable(app_test("admin").run(), page), page


def test_support_reaches_tenant_pages_but_no_admin_page(fleet_db):
    fleet_db.use()
    at = app_test("support").run()
    # Support engineers work one tenant at a time: no fleet table.
    assert not at.dataframe
    assert any("Pick a tenant" in i.value for i in at.info)
    for page in SUPPORT_PAGES:
        assert page_is_reachable(app_test("support").run(), page), page
    for page in ADMIN_PAGES:
        assert not page_is_reachable(app_test("support").run(), page), page


def test_client_is_bound_to_its_tenant_whatever_the_url(fleet_db):
    fleet_db.use()
    at = app_test("client", tenant_id=fleet.ACME)
    at.query_params["view"] = "client"
    at.query_params["tenant"] = fleet.GLOBEX
    at.run()
    assert not at.exception
    assert at.title[0].value.startswith("Acme Corp MSP")
    for page in (*SUPPORT_PAGES, *ADMIN_PAGES):
        assert not page_is_reachable(app_test("client", tenant_id=fleet.ACME).run(), page)


@pytest.mark.browser
def test_client_in_the_browser_sees_only_its_own_tenant(browser, fleet_app, fleet_db):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        page.goto(f"{fleet_app.url}/investigation?tenant={fleet.GLOBEX}&ticket=1")
        wait_rendered(page)
        screenshot(page, "sign_in")
        visit(page, fleet_app, f"?view=client&tenant={fleet.GLOBEX}", role="client")
        screenshot(page, "screenshare_client_user")
        html = page.content()
        assert "Acme Corp MSP" in page.inner_text("body")
        leaks = [s for s in forbidden_strings(fleet_db, fleet.ACME) if s and s in html]
        assert leaks == []
        # Editing the URL to another tenant or page changes nothing.
        visit(page, fleet_app, f"slow_queries?tenant={fleet.INITECH}", role="client")
        assert "Acme Corp MSP" in page.inner_text("body")
        assert "Initech" not in page.content()
    finally:
        page.close()


@pytest.mark.browser
def test_deep_link_survives_sign_in(browser, fleet_app):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        visit(page, fleet_app, f"tenant_profile?tenant={fleet.HOOLI}", role="support")
        assert "Post-onboarding checklist" in page.inner_text("body")
        assert f"tenant={fleet.HOOLI}" in page.url
        assert TEST_USERS["support"][0] in page.inner_text("body")
    finally:
        page.close()


def test_identity_provider_is_the_only_way_in(fleet_db):
    """With [auth] in secrets, sign-in goes through st.login (OIDC); no local password form."""
    fleet_db.use()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1/oauth2callback",
        "cookie_secret": "x",
        "client_id": "x",
        "client_secret": "x",
        "server_metadata_url": "http://127.0.0.1:1/.well-known/openid",
    }
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in with your company account"]
    assert not at.text_input
