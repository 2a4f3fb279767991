"""Sign-in as a person meets it, in real Chromium against a real OpenID Connect provider (the
demo one, demo/idp.py): the provider's form, a session that survives reload, new tabs, 'Present
to client' and pasted links, sign-out ending every tab, expiry, no-access, and state in the URL
that follows the user between views."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from demo import fleet
from services.config import DEFAULT_CONFIG
from tests.conftest import (
    SIGN_IN_BUTTON,
    TEST_USERS,
    PlatformDb,
    RunningApp,
    identity_provider,
    screenshot,
    sign_in,
    start_app,
    stop_process,
    visit,
    wait_for_link,
    wait_rendered,
)

pytestmark = pytest.mark.browser

MONITOR_VIEWS = {
    "Tenant health": "",
    "Tenant profile": "tenant_profile",
    "Investigation": "investigation",
    "Feedback": "feedback",
    "Weekly review": "weekly_review",
}
ADMIN_VIEWS = {
    "RLS self-test": "rls_check",
    "Data access log": "access_log",
    "Queues and scaling": "queues",
    "Database health": "slow_queries",
}
VIEWS = {**MONITOR_VIEWS, **ADMIN_VIEWS}


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def signed_in_as(page, email: str) -> bool:
    return f"Signed in as {email}" in page.inner_text("body")


def sign_ins(db: PlatformDb, email: str) -> list[str]:
    with db.superuser() as conn:
        rows = conn.execute(
            "SELECT outcome FROM dashboard.sign_ins WHERE email = %s ORDER BY id", (email,)
        ).fetchall()
    return [r[0] for r in rows]


def test_sign_in_lasts_across_reload_tabs_present_and_links(context, page, fleet_app, fleet_db):
    before = sign_ins(fleet_db, fleet_app.email)
    link = f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_SDP_TIMEOUT}"
    page.goto(f"{fleet_app.url}/{link}")  # a link from a support ticket, opened signed out
    wait_rendered(page)
    assert page.get_by_role("button", name=SIGN_IN_BUTTON).is_visible()
    assert fleet.ACME not in page.inner_text("body")
    screenshot(page, "sign_in_dashboard")
    page.get_by_role("button", name=SIGN_IN_BUTTON).click()
    page.wait_for_url(f"{identity_provider().url}/authorize**")
    screenshot(page, "sign_in_provider")
    # A wrong password stays at the provider, with its message.
    page.get_by_label("Email").fill(fleet_app.email)
    page.get_by_label("Password", exact=True).fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "not correct" in page.inner_text("body")
    seen: list[str] = []
    page.on("framenavigated", lambda f: seen.append(f.url) if f == page.main_frame else None)
    page.get_by_label("Password", exact=True).fill("test-password")
    page.get_by_role("button", name="Sign in").click()
    wait_for_link(page, fleet_app, link, seen)  # back on the link, signed in
    assert signed_in_as(page, fleet_app.email)
    assert "Investigation" in page.inner_text("body")

    page.reload()
    wait_rendered(page)
    assert signed_in_as(page, fleet_app.email) and fleet.ACME in page.url

    other = context.new_page()  # a new tab, a link pasted into it
    other.goto(f"{fleet_app.url}/feedback?tenant={fleet.UMBRELLA}")
    wait_for_link(other, fleet_app, f"feedback?tenant={fleet.UMBRELLA}")
    assert signed_in_as(other, fleet_app.email)
    assert not other.get_by_role("button", name=SIGN_IN_BUTTON).count()

    with context.expect_page() as opened:
        other.get_by_role("link", name="Present to client").click()
    present = opened.value
    wait_for_link(present, fleet_app, f"?view=client&tenant={fleet.UMBRELLA}")
    assert "Umbrella" in present.inner_text("body")
    assert not present.get_by_role("button", name=SIGN_IN_BUTTON).count()
    assert sign_ins(fleet_db, fleet_app.email) == [*before, "signed_in"]  # one sign-in, 3 tabs


def test_sign_out_in_one_tab_ends_the_others(context, page, fleet_app, fleet_db):
    email = TEST_USERS["support"][0]
    visit(page, fleet_app, f"?tenant={fleet.GLOBEX}", role="support")
    other = context.new_page()
    other.goto(f"{fleet_app.url}/weekly_review")
    wait_rendered(other)
    assert signed_in_as(other, email)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()
    # The other tab, left alone, leaves the app within the session check interval.
    other.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=15000)
    assert "Globex" not in other.inner_text("body")
    other.reload()
    wait_rendered(other)
    assert other.get_by_role("button", name=SIGN_IN_BUTTON).is_visible()
    outcomes = sign_ins(fleet_db, email)
    assert outcomes[-2:] == ["signed_in", "signed_out"]


def test_client_account_cannot_leave_its_tenant(page, fleet_app):
    visit(page, fleet_app, "", role="client")
    for link in (f"?tenant={fleet.GLOBEX}", "slow_queries", f"?view=client&tenant={fleet.INITECH}"):
        page.goto(f"{fleet_app.url}/{link}")
        wait_rendered(page)
        text = page.inner_text("body")
        assert "Acme Corp MSP" in text, link
        assert "Globex" not in page.content() and "Initech" not in page.content()
        assert not page.locator('[data-testid="stSidebarNav"]').count()


def test_a_user_without_a_role_sees_no_access(page, fleet_app, fleet_db):
    email = f"nobody-{uuid.uuid4().hex[:6]}@test.example"
    identity_provider().add_account(email)
    page.goto(f"{fleet_app.url}/tenant_profile?tenant={fleet.ACME}")
    wait_rendered(page)
    sign_in(page, email)
    page.get_by_text("No access").first.wait_for()
    screenshot(page, "no_access")
    text = page.inner_text("body").replace("\u2060", "")  # md() keeps the address as text
    assert email in text and "has no role" in text
    assert "Acme" not in text and not page.locator('[data-testid="stSidebar"]').count()
    assert sign_ins(fleet_db, email) == ["no_access"]
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()


def test_role_and_tenant_from_the_id_token_claim(page, fleet_app):
    email = f"claimed-{uuid.uuid4().hex[:6]}@test.example"  # in no users file
    identity_provider().add_account(email, dashboard_role="client", dashboard_tenant=fleet.GLOBEX)
    visit_as(page, fleet_app, f"?view=client&tenant={fleet.ACME}", email)
    assert "Globex" in page.inner_text("body") and "Acme" not in page.content()


def visit_as(page, app: RunningApp, path: str, email: str) -> None:
    page.goto(f"{app.url}/{path}")
    wait_rendered(page)
    wait_for_link(page, app, path, sign_in(page, email))


@pytest.fixture
def short_session_app(fleet_db, fleet_redis_url, tmp_path: Path):
    config = tmp_path / "dashboard.toml"
    config.write_text(
        DEFAULT_CONFIG.read_text().replace("session_minutes = 480", "session_minutes = 0.5")
    )
    app = start_app(
        {
            "DATABASE_URL": fleet_db.reader_url,
            "ADMIN_DATABASE_URL": fleet_db.admin_url,
            "REDIS_URL": fleet_redis_url,
            "DASHBOARD_CONFIG": str(config),
            "DASHBOARD_USER": f"short-{uuid.uuid4().hex[:6]}@test.example",
        }
    )
    yield app
    stop_process(app.process)


def test_session_expires_after_the_configured_time(page, short_session_app, fleet_db):
    visit(page, short_session_app, "feedback")
    assert signed_in_as(page, short_session_app.email)
    time.sleep(25)  # session_minutes = 0.5: 30 s from sign-in
    page.get_by_text("Your session has expired").wait_for(timeout=30000)
    assert page.get_by_role("button", name=SIGN_IN_BUTTON).is_visible()
    assert sign_ins(fleet_db, short_session_app.email) == ["signed_in", "expired"]


def every_pair_route(nodes: list[str]) -> list[str]:
    """A walk that takes every ordered pair of nodes (a -> b) exactly once (Hierholzer)."""
    left = {a: [b for b in nodes if b != a] for a in nodes}
    stack, route = [nodes[0]], []
    while stack:
        if left[stack[-1]]:
            stack.append(left[stack[-1]].pop())
        else:
            route.append(stack.pop())
    return route[::-1]


def sidebar_go(page, app: RunningApp, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    target = f"{app.url}/{VIEWS[title]}".rstrip("/")
    page.wait_for_url(lambda url: url.split("?")[0].rstrip("/") == target)
    wait_rendered(page)


def assert_state(page, tenant: str, range_key: str, where: str) -> None:
    assert f"tenant={tenant}" in page.url, where
    assert f"range={range_key}" in page.url, where
    picker = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Tenant")
    assert tenant in picker.input_value(), where


def test_tenant_and_range_follow_the_user_between_every_pair_of_views(page, fleet_app):
    visit(page, fleet_app, f"?tenant={fleet.GLOBEX}&range=7d", role="support")
    assert_state(page, fleet.GLOBEX, "7d", "Tenant health")
    route = every_pair_route(list(MONITOR_VIEWS))
    assert len(route) == 21  # 20 ordered pairs of 5 views
    for source, target in itertools.pairwise(route):
        sidebar_go(page, fleet_app, target)
        assert_state(page, fleet.GLOBEX, "7d", f"{source} -> {target}")
    page.reload()
    wait_rendered(page)
    assert_state(page, fleet.GLOBEX, "7d", "reload")
    page.go_back()
    wait_rendered(page)
    assert_state(page, fleet.GLOBEX, "7d", "back")
    # A link copied from a view reopens that exact view in a fresh browser, after sign-in.
    copied = page.url
    fresh = page.context.browser.new_context().new_page()
    try:
        fresh.goto(copied)
        wait_rendered(fresh)
        seen = sign_in(fresh, TEST_USERS["admin"][0])
        wait_for_link(fresh, fleet_app, copied.removeprefix(fleet_app.url), seen)
        assert_state(fresh, fleet.GLOBEX, "7d", "copied link")
    finally:
        fresh.context.close()


def test_a_views_own_filters_live_in_the_link(page, fleet_app):
    """The access log's filters are in the URL: a reload and a copied link reopen them."""
    link = "access_log?log_actor=support%40test.example&log_sensitive=true"
    visit(page, fleet_app, link)
    for _ in range(2):  # as opened, then after a reload
        assert page.get_by_label("Engineer").input_value() == "support@test.example"
        assert page.get_by_label("Sensitive content revealed only").is_checked()
        page.reload()
        wait_rendered(page)
    page.get_by_label("Purpose or parameters contain").fill("SUP-9")
    page.get_by_label("Purpose or parameters contain").press("Enter")
    wait_rendered(page)
    assert "log_text=SUP-9" in page.url and "log_actor=" in page.url


def own_filters(page) -> tuple[str, bool, bool]:
    """The own filters this walk sets, as each admin view shows them."""
    main = page.locator('[data-testid="stMain"]')
    actor = main.get_by_label("Engineer")
    week = main.get_by_role("radiogroup", name="Range").get_by_role("radio", name="7d")
    tables = main.get_by_role("tab", name="Tables and indexes")
    return (
        actor.input_value() if actor.count() else "",
        week.count() > 0 and week.is_checked(),
        tables.count() > 0 and tables.get_attribute("aria-selected") == "true",
    )


def test_admin_views_keep_the_state_and_their_own_filters(page, fleet_app):
    """As admin: each Admin view to and from a Monitor view keeps tenant and range; then each
    Admin view's own filter (access-log engineer, Queues history range, Database health
    section) survives sidebar navigation away and back, and the back button, with tenant and
    range."""
    visit(page, fleet_app, f"?tenant={fleet.GLOBEX}&range=7d", role="admin")
    monitor = list(MONITOR_VIEWS)
    route = [monitor[0]]
    for admin_view, next_monitor in zip(ADMIN_VIEWS, monitor[1:], strict=True):
        route += [admin_view, next_monitor]
    for source, target in itertools.pairwise(route):
        sidebar_go(page, fleet_app, target)
        assert_state(page, fleet.GLOBEX, "7d", f"{source} -> {target}")

    main = page.locator('[data-testid="stMain"]')
    sidebar_go(page, fleet_app, "Data access log")
    main.get_by_label("Engineer").fill("support@test.example")
    main.get_by_label("Engineer").press("Enter")
    wait_rendered(page)
    sidebar_go(page, fleet_app, "Queues and scaling")
    main.get_by_role("radiogroup", name="Range").get_by_role("radio", name="7d").click()
    wait_rendered(page)
    sidebar_go(page, fleet_app, "Database health")
    main.get_by_role("tab", name="Tables and indexes").click()
    wait_rendered(page)
    filters = {
        "Data access log": ("support@test.example", False, False),
        "Queues and scaling": ("", True, False),
        "Database health": ("", False, True),
    }
    in_url = {
        "Data access log": "log_actor=support%40test.example",
        "Queues and scaling": "history=7d",
        "Database health": "section=Tables",
    }
    # Away (to a Monitor view) and back to each, by the sidebar.
    for view, shown in filters.items():
        sidebar_go(page, fleet_app, "Tenant health")
        sidebar_go(page, fleet_app, view)
        assert in_url[view] in page.url, view
        assert own_filters(page) == shown, view
        assert_state(page, fleet.GLOBEX, "7d", f"back to {view}")
    screenshot(page, "admin_filters_after_navigation")
    # The back button walks the same views in reverse, with tenant, range and each view's own
    # filter. (A sidebar hop leaves more than one history entry, some without the view's own
    # parameter, hence up to six presses per view.)
    away = "Tenant health"
    for view in (away, "Queues and scaling", away, "Data access log", away, "Database health"):
        for _ in range(6):
            page.go_back()
            wait_rendered(page)
            if urlparse(page.url).path.strip("/") == VIEWS[view]:
                break
        assert urlparse(page.url).path.strip("/") == VIEWS[view], f"back to {view}"
        assert_state(page, fleet.GLOBEX, "7d", f"back to {view}")
        if view in filters:  # restored by a second run right after the back button's one
            deadline = time.monotonic() + 10
            while own_filters(page) != filters[view] and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            wait_rendered(page)
            assert own_filters(page) == filters[view], f"back to {view}"
            assert in_url[view] in page.url, f"back to {view}"
    screenshot(page, "admin_filters_after_back")
