"""Two dashboard replicas behind a real load balancer (HAProxy, cookie affinity, websockets),
driven in Chromium: a browser stays on its replica across navigation and reloads, a sign-out
reaches another replica's tab at its next page load, and when that replica stops the browser gets
a clear message and a fresh session on the other one, not a hang."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from services.config import rules
from tests.conftest import (
    SIGN_IN_BUTTON,
    TEST_USERS,
    RunningApp,
    app_secrets,
    free_port,
    screenshot,
    sign_in,
    start_app,
    stop_process,
    wait_for_http,
    wait_rendered,
)

# Starts infrastructure of its own (make test-infra, run by CI after make test).
pytestmark = [pytest.mark.browser, pytest.mark.infra]

HAPROXY = "/usr/sbin/haproxy"
COOKIE = "dashboard_replica"

# What deploy/dashboard.yaml's Ingress does with ingress-nginx, in HAProxy's words: an inserted
# cookie names the replica; a request for a replica that is down goes to another one.
CONFIG = """
defaults
    mode http
    timeout connect 2s
    # A busy replica (a 2-core machine shared by the suite) answers its health check late:
    # marked down, it would lose its browsers to the other one mid-test.
    timeout check 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    option redispatch
    retries 1
frontend web
    bind 127.0.0.1:{port}
    default_backend dashboards
backend dashboards
    balance roundrobin
    cookie {cookie} insert indirect nocache httponly
    option httpchk GET /_stcore/health
    server a 127.0.0.1:{a} check inter 1s fall 3 rise 1 cookie a
    server b 127.0.0.1:{b} check inter 1s fall 3 rise 1 cookie b
"""


@pytest.fixture
def balancer_port() -> int:
    return free_port()


@pytest.fixture
def replicas(use_db, redis_url, balancer_port) -> Iterator[dict[str, RunningApp]]:
    # As in production: every replica has the same sign-in settings, for the balancer's URL.
    secrets = app_secrets(f"http://127.0.0.1:{balancer_port}")
    apps = {}
    try:
        for name in ("a", "b"):
            apps[name] = start_app(
                {
                    "DATABASE_URL": use_db.reader_url,
                    "ADMIN_DATABASE_URL": use_db.admin_url,
                    "DASHBOARD_REPLICA": name,
                },
                secrets,
            )
        yield apps
    finally:
        for app in apps.values():
            stop_process(app.process)


@pytest.fixture
def balancer(replicas: dict[str, RunningApp], balancer_port: int) -> Iterator[str]:
    port = balancer_port
    ports = {name: app.url.rsplit(":", 1)[1] for name, app in replicas.items()}
    config = Path(tempfile.mkdtemp(prefix="dashboard-haproxy-")) / "haproxy.cfg"
    config.write_text(CONFIG.format(port=port, cookie=COOKIE, **ports))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_stcore/health")
        yield url
    finally:
        stop_process(process)


def served_by(page) -> str:
    caption = page.get_by_text("Served by replica").inner_text()
    return caption.rsplit(" ", 1)[1].strip("`")


def test_sticky_sessions_and_failover(browser, replicas, balancer) -> None:
    email = TEST_USERS["admin"][0]
    # New browsers are spread over both replicas.
    seen = set()
    for _ in range(2):
        context = browser.new_context()
        page = context.new_page()
        page.goto(balancer)
        wait_rendered(page)
        sign_in(page, email)
        seen.add(served_by(page))
        context.close()
    assert seen == {"a", "b"}

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(balancer)
    wait_rendered(page)
    sign_in(page, email)
    home = served_by(page)
    cookie = {c["name"]: c["value"] for c in context.cookies()}[COOKIE]
    assert cookie == home  # the load balancer's cookie names the replica the page shows

    # Navigating keeps the session (and its websocket) on the same replica ...
    page.get_by_role("link", name="Data access log").click()
    page.get_by_role("heading", name="Data access log").wait_for()  # not the page before it
    wait_rendered(page)
    assert served_by(page) == home
    # ... and a reload (a new Streamlit session, still signed in) comes back to it too.
    for _ in range(2):
        page.reload()
        wait_rendered(page)
        assert served_by(page) == home

    # Sign-out ends the tabs on its own replica only (the ended sign-ins are in its memory). A
    # tab of this browser whose session lives on the other replica (the balancer's cookie named
    # it when the tab opened) stays signed in until its next page load, which has no cookie.
    other = ({"a", "b"} - {home}).pop()
    context.add_cookies([{"name": COOKIE, "value": other, "url": balancer}])
    stale = context.new_page()
    stale.goto(balancer)
    wait_rendered(stale)
    assert served_by(stale) == other
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for()
    stale.wait_for_timeout(2000 * rules("auth")["session_check_s"])  # two session checks
    assert served_by(stale) == other  # still showing the app: the documented limitation
    assert not stale.get_by_role("button", name=SIGN_IN_BUTTON).count()
    stale.reload()
    # signed out once the reloaded page has drawn (wait_rendered can see the page before it)
    stale.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=30000)
    stale.close()
    # Signed in again, on the home replica, for the failover.
    context.add_cookies([{"name": COOKIE, "value": home, "url": balancer}])
    sign_in(page, email)
    assert served_by(page) == home

    # The replica goes away. The browser reconnects through the balancer to the other one;
    # Streamlit runs nothing until the next action, which then gets a fresh session there that
    # says what happened: within seconds, not a hang. The sign-in cookie holds there too.
    replicas[home].process.terminate()
    replicas[home].process.wait(timeout=10)
    started = time.monotonic()
    message = page.get_by_text("Your previous session ended")
    while not message.count() and time.monotonic() - started < 30:
        page.get_by_role("link", name="Tenant health").click()
        with contextlib.suppress(PlaywrightTimeout):
            message.wait_for(timeout=3000)
    took = time.monotonic() - started
    assert message.count(), "no message within 30 s of the replica stopping"
    wait_rendered(page)
    screenshot(page, "replica-failover")
    assert took < 20, f"the fresh session took {took:.1f} s"
    assert served_by(page) == other
    assert {c["name"]: c["value"] for c in context.cookies()}[COOKIE] == other
    page.get_by_role("link", name="Data access log").click()
    page.get_by_role("heading", name="Data access log").wait_for()
    wait_rendered(page)
    assert page.get_by_text("Your previous session ended").count() == 0  # said once
    context.close()
