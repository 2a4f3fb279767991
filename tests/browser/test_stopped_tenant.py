"""Tenant health with the demo's Prometheus history: a tenant gone silent (wrong webhook
secret), one whose webhooks the API rejects, one whose jobs no worker takes, in real Chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from demo import fleet
from tests.conftest import screenshot, start_app, stop_process, visit
from tests.queue_history import start_demo_prometheus

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_with_prometheus(fleet_db, fleet_redis_url):
    prometheus = start_demo_prometheus(datetime.now(UTC).replace(second=0), days=23)
    app = start_app(
        {
            "DATABASE_URL": fleet_db.reader_url,
            "ADMIN_DATABASE_URL": fleet_db.admin_url,
            "REDIS_URL": fleet_redis_url,
            "PROMETHEUS_URL": prometheus.url,
        }
    )
    yield app
    stop_process(app.process)
    prometheus.close()


VIEWPORT = {"width": 1500, "height": 1100}


def test_the_silent_tenant_is_explained(page, app_with_prometheus):
    visit(page, app_with_prometheus, f"?tenant={fleet.VANDELAY}&range=24h")
    screenshot(page, "tenant_health_silent")
    text = page.inner_text("body")
    assert "Traceback" not in text
    assert "No webhooks in the last 24 h" in text and "signing secret" in text
    assert "Enhancements stopped for one tenant" in text  # its playbook


def test_the_fleet_shows_every_stopped_case(page, app_with_prometheus):
    visit(page, app_with_prometheus, "?range=24h")
    page.set_viewport_size({"width": 1900, "height": 1500})
    screenshot(page, "tenant_health_fleet_webhooks")
    grid = page.locator('[data-testid="stDataFrame"]').first
    assert grid.is_visible()
    text = page.inner_text("body")
    assert "were not judged" not in text  # Prometheus answered
    # the grid is drawn on a canvas: count the critical tenants on the tile instead (the three
    # webhook cases and the stalled one at least)
    critical = re.search(r"Critical\s+(\d+)", text)
    assert critical and int(critical.group(1)) >= 4
