"""The Database health page in real Chromium, on a database with a planted workload."""

from __future__ import annotations

import pytest

from services.dbhealth import statements
from tests.conftest import PlatformDb, screenshot, start_app, stop_process, visit, wait_rendered
from tests.dbhealth_workload import plant_workload

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def workload_db(make_platform_db) -> PlatformDb:
    """The planted workload, then three rounds of more work, each closed by a snapshot, so
    the page has deltas and a trend to show."""
    db = make_platform_db("dbh_browser")
    plant_workload(db)
    db.use()
    statements.take_snapshot("cron")
    with db.superuser() as conn:
        for round_ in range(1, 4):
            for _ in range(round_):
                conn.execute("SELECT pg_sleep(%s) FROM dbh_slow", (0.05 * round_,))
            for k in range(5 * round_):
                conn.execute("SELECT count(*) FROM dbh_big WHERE k = %s", (k,))
            statements.take_snapshot("cron")
    return db


@pytest.fixture(scope="module")
def app(workload_db, browser):
    running = start_app(
        {
            "DATABASE_URL": workload_db.reader_url,
            "ADMIN_DATABASE_URL": workload_db.admin_url,
            "DASHBOARD_ROLE": "admin",
            "DASHBOARD_USER": "dba.check@example.com",
        }
    )
    yield running
    stop_process(running.process)


VIEWPORT = {"width": 1500, "height": 1700}


def open_tab(page, name: str, expect: str) -> str:
    page.get_by_role("tab", name=name).click()
    page.get_by_text(expect).first.wait_for(timeout=30000)
    wait_rendered(page)
    return page.inner_text("body")


def test_database_health_in_the_browser(page, app, workload_db):
    visit(page, app, "slow_queries")
    page.get_by_text("Time in statements").wait_for(timeout=30000)
    wait_rendered(page)
    text = page.inner_text("body")
    assert "Database health" in text and "Traceback" not in text
    assert "Between snapshots" in text and "Explain a statement" in text
    assert page.locator(".js-plotly-plot").count() == 1  # the trend of the top statement
    assert page.locator('[data-testid="stDataFrame"]').count() == 1
    screenshot(page, "db_health")

    page.get_by_label("SELECT statement").fill("SELECT * FROM dbh_big WHERE k = 3")
    page.get_by_role("button", name="Explain", exact=True).click()
    page.get_by_text("Seq Scan on dbh_big").wait_for(timeout=30000)

    text = open_tab(page, "Connections", "Connections by source")
    assert "Platform pools" in text and "max_connections is" in text
    screenshot(page, "db_health_connections")

    text = open_tab(page, "Tables and indexes", "Duplicate indexes")
    assert "dbh_dead" in text and "50% dead tuples" in text
    assert "Sequential scans on large tables" in text
    screenshot(page, "db_health_tables")
    assert "section=Tables+and+indexes" in page.url or "section=Tables%20and" in page.url
