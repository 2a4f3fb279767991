"""Faults and misconfiguration: a frozen or stopped PostgreSQL or Redis gives a message within
5 s on every view and the user's place survives it; an unsafe role gets a refusal, not data; an
access that cannot be recorded shows no data; URL input is shown as text, never as markup.

Everything here runs on a PostgreSQL cluster and a Redis server of this module's own."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from demo import dbsetup
from services import db, queues
from services.errors import SourceUnavailable
from tests.conftest import (
    RunningApp,
    app_test,
    page_text,
    screenshot,
    start_app,
    use_config,
    visit,
    wait_rendered,
)
from tests.faults import PrivatePostgres, PrivateRedis
from tests.planting import add_feedback, add_runs, add_tenant

TENANT, OTHER = "fault-acme", "fault-globex"
DATABASE = "faults"
MESSAGE_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres.create()
    with cluster.environment():
        dbsetup.prepare(DATABASE)
    now = datetime.now(UTC)
    with psycopg.connect(cluster.superuser_url(DATABASE), autocommit=True) as conn:
        for tenant, name in ((TENANT, "Acme Fault Drill"), (OTHER, "Globex Fault Drill")):
            add_tenant(conn, tenant, name)
            add_runs(conn, tenant, 30, "completed", now - timedelta(hours=5))
            add_feedback(conn, tenant, "completed-1", "thumbs_up", now - timedelta(hours=1))
    yield cluster
    db.dispose_engines()
    cluster.destroy()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis.create()
    yield server
    server.stop()


def urls(cluster: PrivatePostgres) -> dict[str, str]:
    return {
        "DATABASE_URL": cluster.role_url(
            "dashboard_reader", os.environ["STACK_READER_PASSWORD"], DATABASE
        ),
        "ADMIN_DATABASE_URL": cluster.role_url(
            "dashboard_admin", os.environ["STACK_ADMIN_PASSWORD"], DATABASE
        ),
    }


def redis_urls(server: PrivateRedis) -> dict[str, str]:
    """Both of the platform's Redis databases on the server under test: a fault hits both."""
    return {"REDIS_URL": server.url(0), "CELERY_BROKER_URL": server.url(1)}


@pytest.fixture
def use_cluster(cluster, redis_server, monkeypatch) -> PrivatePostgres:
    for key, value in {**urls(cluster), **redis_urls(redis_server)}.items():
        monkeypatch.setenv(key, value)
    db.dispose_engines()
    yield cluster
    db.dispose_engines()


def count_runs() -> int:
    with db.tenant_scope(TENANT) as conn:
        return conn.execute(
            text("SELECT count(*) FROM enhancement_history WHERE tenant_id = :t"), {"t": TENANT}
        ).scalar_one()


def retry_after() -> float:
    from services.config import rules

    return float(rules("database")["retry_after_s"])


# --- the gateway ----------------------------------------------------------------------------


def test_frozen_postgres_is_an_error_within_5_s_and_recovers(use_cluster):
    assert count_runs() == 30  # a pooled connection now exists: the frozen server keeps it open
    with use_cluster.frozen():
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="did not answer"):
            count_runs()
        assert time.monotonic() - started < MESSAGE_WITHIN_S
        # The next section of the same view fails at once instead of waiting again.
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            count_runs()
        assert time.monotonic() - started < 0.5
    time.sleep(retry_after())
    assert count_runs() == 30  # the same process, no restart


def test_new_connection_to_a_frozen_server_gives_up_in_time(use_cluster):
    db.dispose_engines()  # no pooled connection: the connection attempt itself must end
    with use_cluster.frozen():
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            count_runs()
        assert time.monotonic() - started < MESSAGE_WITHIN_S
    time.sleep(retry_after())
    assert count_runs() == 30


def test_stopped_postgres_is_an_error_and_a_restart_recovers(use_cluster):
    assert count_runs() == 30
    use_cluster.stop()
    try:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            count_runs()
        assert time.monotonic() - started < MESSAGE_WITHIN_S
    finally:
        use_cluster.start()
    time.sleep(retry_after())
    assert count_runs() == 30  # the stale pooled connection is replaced transparently


def test_frozen_redis_is_an_error_within_5_s(use_cluster, redis_server):
    assert queues.snapshot().total == 0
    with redis_server.frozen():
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="Redis"):
            queues.snapshot()
        assert time.monotonic() - started < MESSAGE_WITHIN_S
    assert queues.snapshot().total == 0


def test_the_redis_timeouts_come_from_the_config(use_cluster, redis_server, tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "socket_timeout_s = 2 ", "socket_timeout_s = 0.3 ")
    assert queues.snapshot().total == 0
    with redis_server.frozen():
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="Redis"):
            queues.snapshot()
        assert time.monotonic() - started < 1.5  # not the default 2 s per read


# --- refusals, in the app -------------------------------------------------------------------


VIEWS = (
    "tenant_health",
    "tenant_profile",
    "investigation",
    "feedback",
    "weekly_review",
    "rls_check",
    "access_log",
    "queues",
    "slow_queries",
)
UNSAFE = {  # how a role escapes RLS: what the refusal says
    "superuser": "is a superuser",
    "bypassrls": "has BYPASSRLS",
    "owner": "owns platform tables (enhancement_history)",
}


@contextmanager
def unsafe_role(cluster: PrivatePostgres, kind: str) -> Iterator[str]:
    """A URL of a role RLS does not apply to, with the dashboard roles' privileges; gone after."""
    if kind == "superuser":
        yield cluster.superuser_url(DATABASE)
        return
    role = f"fault_{kind}"
    with psycopg.connect(cluster.superuser_url(DATABASE), autocommit=True) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'enhancement_history'"
        ).fetchone()[0]
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        conn.execute(f"GRANT dashboard_reader, dashboard_admin TO {role}")
        if kind == "bypassrls":
            conn.execute(f"ALTER ROLE {role} BYPASSRLS")
        else:
            conn.execute(f"ALTER TABLE enhancement_history OWNER TO {role}")
        try:
            yield cluster.role_url(role, "pw", DATABASE)
        finally:
            db.dispose_engines()
            conn.execute(f"ALTER TABLE enhancement_history OWNER TO {owner}")
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("kind", UNSAFE)
@pytest.mark.parametrize("variable", ["DATABASE_URL", "ADMIN_DATABASE_URL"])
def test_an_unsafe_role_is_refused_on_every_view(use_cluster, monkeypatch, variable, kind):
    with unsafe_role(use_cluster, kind) as url:
        monkeypatch.setenv(variable, url)
        db.dispose_engines()
        at = app_test(role="admin")
        # One check in app.py refuses for every page: each page once, the other kinds on two.
        for view in VIEWS if kind == "owner" else VIEWS[:1] + VIEWS[-1:]:
            if view != "tenant_health":  # the landing view
                at.switch_page(f"views/{view}.py")
            at.query_params["tenant"] = TENANT
            at.run()
            assert not at.exception, view
            errors = " ".join(e.value for e in at.error)
            assert UNSAFE[kind] in errors and variable in errors, (view, errors)
            assert not at.metric and not at.dataframe, f"{view} showed data"
            assert "Fault Drill" not in page_text(at), view  # no tenant's name either
        # The client screen says only that its data is unavailable.
        screen = app_test(role="admin")
        screen.query_params.update(view="client", tenant=TENANT)
        screen.run()
        shown = page_text(screen)
        assert "temporarily unavailable" in shown and "Fault Drill" not in shown
        assert variable not in shown and "RLS" not in shown and not screen.metric


def test_access_that_cannot_be_recorded_shows_no_data_even_from_cache(use_cluster):
    warm = app_test(role="support")
    warm.query_params["tenant"] = TENANT
    warm.run()
    assert not warm.error and warm.metric  # the data is now in the cache
    with psycopg.connect(use_cluster.superuser_url(DATABASE), autocommit=True) as conn:
        conn.execute("ALTER TABLE dashboard.data_access_log RENAME TO data_access_log_away")
        try:
            for view in ("views/tenant_health.py", "views/tenant_profile.py", "views/feedback.py"):
                at = app_test(role="support", email="other@test.example")  # a new session
                at.query_params["tenant"] = TENANT
                at.run()
                if view != "views/tenant_health.py":
                    at.switch_page(view).run()
                assert any("could not be recorded" in e.value for e in at.error), view
                assert not at.metric, f"{view} showed data it could not record"
        finally:
            conn.execute("ALTER TABLE dashboard.data_access_log_away RENAME TO data_access_log")


def test_control_characters_in_the_purpose_are_recorded_cleaned(use_cluster):
    at = app_test(role="support", email="nul@test.example")
    at.query_params["tenant"] = TENANT
    at.run()
    at.text_input(key="purpose").input("SUP-7\x00 drill\x07\x1b[31m").run()
    assert not at.exception and not at.error and at.metric
    with psycopg.connect(use_cluster.superuser_url(DATABASE), autocommit=True) as conn:
        purposes = [
            row[0]
            for row in conn.execute(
                "SELECT purpose FROM dashboard.data_access_log WHERE actor = 'nul@test.example'"
            )
        ]
    assert "SUP-7 drill[31m" in purposes  # the data shown was recorded, as typed less controls
    assert not any(ch < " " for purpose in purposes for ch in purpose)


def test_a_client_asking_for_another_tenant_sees_its_own_and_is_recorded(use_cluster):
    at = app_test(role="client", email="client@fault.example", tenant_id=TENANT)
    at.query_params["tenant"] = OTHER
    at.run()
    assert not at.exception
    assert "Globex Fault Drill" not in page_text(at) and "Acme Fault Drill" in page_text(at)
    with psycopg.connect(use_cluster.superuser_url(DATABASE), autocommit=True) as conn:
        refused = conn.execute(
            "SELECT tenant_id, query_params->>'asked_tenant' FROM dashboard.data_access_log"
            " WHERE actor = 'client@fault.example' AND query_kind = 'access_refused'"
        ).fetchall()
    assert refused == [(TENANT, OTHER)]


# --- the browser ----------------------------------------------------------------------------

NAVIGATION = (
    "Tenant profile",
    "Investigation",
    "Feedback",
    "Weekly review",
    "RLS self-test",
    "Data access log",
    "Queues and scaling",
    "Database health",
)


@pytest.fixture(scope="module")
def fault_app(cluster, redis_server) -> Iterator[RunningApp]:
    app = start_app({**urls(cluster), **redis_urls(redis_server)})
    yield app
    app.process.terminate()
    app.process.wait(timeout=10)


def open_with_purpose(page, app: RunningApp) -> None:
    visit(page, app, f"?tenant={TENANT}")
    purpose = page.get_by_role("textbox", name="Purpose of access")
    purpose.fill("SUP-1 fault drill")
    purpose.press("Enter")
    wait_rendered(page)
    assert "Acme Fault Drill" in page.inner_text('[data-testid="stMain"]')


def click_view(page, title: str) -> float:
    """Click a view in the sidebar; seconds until its script run has ended."""
    started = time.monotonic()
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.wait_for_timeout(150)  # the run starts
    wait_rendered(page, timeout_ms=20000)
    return time.monotonic() - started - 0.3  # wait_rendered's settle time is not the app's


@pytest.mark.browser
def test_every_view_says_so_within_5_s_when_postgres_freezes(page, fault_app, cluster):
    open_with_purpose(page, fault_app)
    with cluster.frozen():
        for title in NAVIGATION:
            seconds = click_view(page, title)
            main = page.inner_text('[data-testid="stMain"]')
            assert "PostgreSQL is not available" in main or "could not be recorded" in main, title
            assert "Traceback" not in main
            assert seconds < MESSAGE_WITHIN_S, f"{title}: {seconds:.1f} s"
        screenshot(page, "fault_postgres_frozen")
    time.sleep(retry_after())
    # Back on its feet: the same tenant and purpose, with its data, without restarting the app.
    click_view(page, "Feedback")
    main = page.inner_text('[data-testid="stMain"]')
    assert "not available" not in main
    assert TENANT in main
    screenshot(page, "fault_postgres_recovered")
    assert f"tenant={TENANT}" in page.url
    purpose = page.get_by_role("textbox", name="Purpose of access")
    assert purpose.input_value() == "SUP-1 fault drill"


@pytest.mark.browser
def test_stopped_postgres_keeps_the_tenant_and_comes_back(page, fault_app, cluster):
    open_with_purpose(page, fault_app)
    cluster.stop()
    try:
        seconds = click_view(page, "Tenant profile")
        main = page.inner_text('[data-testid="stMain"]')
        assert "PostgreSQL is not available" in main or "could not be recorded" in main
        assert seconds < MESSAGE_WITHIN_S
        visit(page, fault_app, f"?tenant={TENANT}")  # a new session while it is down
    finally:
        cluster.start()
    time.sleep(retry_after())
    click_view(page, "Tenant profile")
    main = page.inner_text('[data-testid="stMain"]')
    assert "Acme Fault Drill" in main and "not available" not in main
    assert f"tenant={TENANT}" in page.url


REDIS_VIEWS = ("Tenant health", "Queues and scaling")  # the views that read the live queues


@pytest.mark.browser
def test_frozen_or_stopped_redis_is_a_message_and_recovers(page, fault_app, redis_server):
    open_with_purpose(page, fault_app)
    for outage in (redis_server.frozen, stopped(redis_server)):
        with outage():
            for title in REDIS_VIEWS:
                seconds = click_view(page, title)
                main = page.inner_text('[data-testid="stMain"]')
                assert "Redis is not available" in main, title
                assert seconds < MESSAGE_WITHIN_S, f"{title}: {seconds:.1f} s"
        click_view(page, "Tenant health")
        main = page.inner_text('[data-testid="stMain"]')
        assert "Redis is not available" not in main and "Acme Fault Drill" in main


def stopped(redis_server: PrivateRedis):
    @contextmanager
    def outage() -> Iterator[None]:
        redis_server.stop()
        try:
            yield
        finally:
            redis_server.start()

    return outage


@pytest.mark.browser
def test_client_screen_during_an_outage_shows_only_public_words(page, fault_app, cluster):
    visit(page, fault_app, f"?view=client&tenant={TENANT}")
    with cluster.frozen():
        visit(page, fault_app, f"?view=client&tenant={TENANT}")  # a new session
        body = page.inner_text("body")
        screenshot(page, "fault_client_screen")
    assert "temporarily unavailable" in body
    for internal in ("PostgreSQL", "127.0.0.1", str(cluster.port), "5432", "DATABASE_URL"):
        assert internal not in body
    time.sleep(retry_after())


@pytest.mark.browser
def test_markup_in_the_url_is_shown_as_text(page, fault_app):
    crafted = "[click](http://evil.example/x)![img](http://evil.example/a.png)<b>bold</b>"
    from urllib.parse import quote

    visit(page, fault_app, f"?tenant={quote(crafted)}")
    links = page.locator('a[href*="evil.example"]')
    assert links.count() == 0, links.first.evaluate("e => e.outerHTML")
    assert page.locator('img[src*="evil.example"]').count() == 0
    assert page.locator('b:text("bold")').count() == 0
    screenshot(page, "fault_markup_in_url")
    assert "[click](http" in page.inner_text("body")  # shown as the text it is
