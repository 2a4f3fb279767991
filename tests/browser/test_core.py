"""Tenant health, screenshare, profile and the RLS self-test in real Chromium on the demo fleet."""

from __future__ import annotations

import re

import pytest

from demo import fleet
from tests.conftest import screenshot, visit

pytestmark = pytest.mark.browser


def open_view(page, app, path: str) -> str:
    visit(page, app, f"{path}")
    return page.inner_text("body")


def test_fleet_overview_shows_the_planted_problems(page, fleet_app):
    text = open_view(page, fleet_app, "")
    screenshot(page, "tenant_health_fleet")
    assert "Tenant health" in text
    assert "Traceback" not in text
    grid = page.locator('[data-testid="stDataFrame"]').first
    assert grid.is_visible()
    # The planted problems (the stalled tenant among them) count as critical: the tile is
    # always there, its number is what the planting decides.
    critical = page.locator('[data-testid="stMetric"]', has_text="Critical")
    assert int(critical.locator('[data-testid="stMetricValue"]').inner_text()) >= 1


def test_tenant_detail_for_the_stalled_tenant(page, fleet_app):
    text = open_view(page, fleet_app, f"?tenant={fleet.SOYLENT}&range=24h")
    screenshot(page, "tenant_health_detail")
    assert "Enhancements stopped" in text
    assert "Quick diagnosis" in text
    assert page.locator(".js-plotly-plot").count() >= 2


def test_tenant_charts_draw_events(page, fleet_app):
    # INITECH's day of expired-key failures is an incident the dashboard finds in its trend
    text = open_view(page, fleet_app, f"?tenant={fleet.INITECH}&range=7d")
    chart = page.locator(".js-plotly-plot").first
    chart.scroll_into_view_if_needed()
    screenshot(page, "tenant_health_events")
    assert "Traceback" not in text
    assert page.locator(".js-plotly-plot .annotation-text", has_text="Incident").count() >= 1
    # every ratio tile shows its sample size, and the rules are explained here too
    assert re.search(r"n = [\d,]+ finished attempts", text)
    assert re.search(r"n = [\d,]+ completed attempts", text)
    assert "How status is decided" in text


def forbidden_strings(fleet_db, tenant_id: str) -> list[str]:
    """Everything a client screen of `tenant_id` must never contain."""
    with fleet_db.superuser() as conn:
        others = conn.execute(
            "SELECT tenant_id, name FROM tenant_configs WHERE tenant_id <> %s", (tenant_id,)
        ).fetchall()
        outputs = [
            r[0][:40]
            for r in conn.execute(
                "SELECT llm_output FROM enhancement_history WHERE tenant_id = %s"
                " AND llm_output IS NOT NULL LIMIT 20",
                (tenant_id,),
            )
        ]
        emails = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT technician_email FROM enhancement_feedback WHERE tenant_id = %s"
                " AND technician_email IS NOT NULL LIMIT 20",
                (tenant_id,),
            )
        ]
    words = [value for row in others for value in row]
    return [
        *words,
        *outputs,
        *emails,
        fleet.FAKE_KEY_MARKER,
        *{event.user for event in fleet.AUDIT_EVENTS},  # operators never appear on a client screen
        "Processing paused",
        "Traceback",
        "SELECT ",
        "kubectl",
        "redis-cli",
        "HTTPStatusError",
        "TimeoutError",
        "jaeger",
        "servicedesk_api_key",
        "_encrypted",
    ]


def test_screenshare_shows_one_client_and_nothing_internal(page, fleet_app, fleet_db):
    text = open_view(page, fleet_app, f"?view=client&tenant={fleet.ACME}")
    screenshot(page, "screenshare_acme")
    html = page.content()
    assert "ticket enhancement service" in text
    assert "Tickets enhanced" in text
    # the figures say, in a client's words, how many tickets and ratings they rest on
    assert re.search(r"Based on [\d,]+ tickets", text)
    assert re.search(r"Based on [\d,]+ enhancements", text)
    assert re.search(r"Based on [\d,]+ ratings?|From [\d,]+ ratings? so far", text)
    leaks = [s for s in forbidden_strings(fleet_db, fleet.ACME) if s and s in html]
    assert leaks == []
    # No navigation, no sidebar, no tenant picker.
    assert page.locator('[data-testid="stSidebar"]').count() == 0
    assert "Tenant health" not in text


def test_profile_and_rls_self_test(page, fleet_app):
    text = open_view(page, fleet_app, f"tenant_profile?tenant={fleet.HOOLI}")
    screenshot(page, "tenant_profile")
    assert "Post-onboarding checklist" in text
    assert "kb_timeout_seconds" in text and "allowed 1-60" in text
    # Secrets are only said to be stored or not (the fleet stores no Jira token), never shown.
    assert "ServiceDesk Plus API key: set" in text and "Jira API token: missing" in text
    assert "gAAAA" not in page.content()
    text = open_view(page, fleet_app, "rls_check")
    screenshot(page, "rls_self_test")
    assert re.search(r"All \d+ checks passed", text)
    assert "FAILED" not in text
