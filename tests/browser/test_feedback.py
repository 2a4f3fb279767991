"""The feedback view and the weekly review in real Chromium on three weeks of demo data, the
consent rule for comments, the link to the investigation view, and the three exports: the HTML
one opened offline with its charts drawn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from demo import fleet
from demo.generate import generate
from services import weekly_review
from tests.conftest import (
    ARTIFACTS,
    RunningApp,
    screenshot,
    start_app,
    stop_process,
    visit,
    wait_rendered,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_db(make_platform_db):
    """Three weeks of the demo fleet (two whole weeks to compare), at half the volume."""
    platform = make_platform_db("fbbrowser")
    with platform.superuser() as conn:
        generate(conn, days=22, scale=0.5)
    return platform


@pytest.fixture(scope="module")
def app(demo_db, browser) -> Iterator[RunningApp]:
    served = start_app(
        {"DATABASE_URL": demo_db.reader_url, "ADMIN_DATABASE_URL": demo_db.admin_url}
    )
    yield served
    stop_process(served.process)


VIEWPORT = {"width": 1500, "height": 3000}


def open_view(page, app: RunningApp, path: str) -> str:
    visit(page, app, f"{path}")
    text = page.inner_text("body")
    assert "Traceback" not in text and "Something went wrong" not in text
    return text


def charts_drawn(page) -> int:
    """Plotly charts that have drawn their SVG."""
    return page.locator(".js-plotly-plot .main-svg").count()


def consent_box(page, label: str):
    return page.locator('[data-testid="stCheckbox"]', has_text=label).locator("input")


def test_fleet_feedback_view(page, app):
    text = open_view(page, app, "feedback?range=7d")
    screenshot(page, "feedback_fleet")
    assert "Feedback · fleet" in text
    for tile in ("Average rating", "Positive", "Thumbs up / down", "Ratings", "Total feedback"):
        assert tile in text
    assert "Worst-rated enhancements" in text and "Themes: negative versus positive" in text
    assert charts_drawn(page) >= 4  # over time, distribution, thumbs, themes
    assert "Feedback comments" not in text  # no consent box across tenants


def test_tenant_comments_need_a_case_and_consent(page, app, demo_db):
    text = open_view(page, app, f"feedback?tenant={fleet.UMBRELLA}&range=30d")
    assert "Feedback · Umbrella Network Solutions" in text
    consent = consent_box(page, "The client consented to showing feedback comments")
    assert consent.is_disabled()  # no support case named yet
    screenshot(page, "feedback_tenant")

    purpose = page.get_by_label("Purpose of access", exact=True)
    purpose.fill("SUP-567 network enhancements rated low")
    purpose.press("Enter")
    wait_rendered(page)
    consent = consent_box(page, "feedback comments and ticket text for SUP-567")
    assert consent.is_enabled()
    consent.check(force=True)  # the input is visually hidden behind Streamlit's own box
    wait_rendered(page)
    screenshot(page, "feedback_tenant_consent")
    with demo_db.superuser() as conn:
        records = conn.execute(
            "SELECT query_kind, purpose, sensitive_revealed FROM dashboard.data_access_log"
            " WHERE tenant_id = %s ORDER BY id",
            (fleet.UMBRELLA,),
        ).fetchall()
    assert ("tenant_feedback", "routine monitoring", False) in records
    assert ("feedback_comments", "SUP-567 network enhancements rated low", True) in records

    # Example tickets of the negative themes open the investigation view of that ticket.
    link = page.locator(f'a[href*="investigation?tenant={fleet.UMBRELLA}&ticket="]').first
    href = link.get_attribute("href")
    ticket = href.rsplit("ticket=", 1)[1]
    with page.context.expect_page() as opened:
        link.click()
    investigation = opened.value
    investigation.wait_for_load_state()
    wait_rendered(investigation)
    # A new tab opens signed in (the sign-in cookie), straight on the deep link.
    assert investigation.url.endswith(f"/investigation?tenant={fleet.UMBRELLA}&ticket={ticket}")
    assert "Investigation" in investigation.inner_text("body")


def test_weekly_review_exports_open_offline_with_charts(page, app, browser):
    week = weekly_review.recent_weeks(datetime.now(UTC), 2)[1]  # the last whole week
    text = open_view(page, app, f"weekly_review?week={week.label}")
    screenshot(page, "weekly_review")
    assert "Weekly metrics review" in text and f"compared with {week.previous.label}" in text
    assert "Escalations" in text and "Success criteria" in text
    assert "How PASS / MARGINAL / FAIL and the escalation level are decided" in text
    assert charts_drawn(page) >= 3  # scorecard, volume and success, p95

    def download(label: str) -> Path:
        with page.expect_download() as started:
            page.get_by_role("button", name=label).click()
        path = ARTIFACTS / started.value.suggested_filename
        started.value.save_as(path)
        return path

    markdown = download("Markdown (review notes)").read_text()
    assert markdown.startswith(f"# Weekly metrics review {week.label}")
    assert "| Tenant | Escalation | Satisfaction (≥ 4.00 / 5) |" in markdown
    assert "## What changed this week" in markdown and "(n = " in markdown
    assert "What changed this week" in text
    csv = pd.read_csv(download("CSV (one row per tenant and criterion)"))
    assert set(csv["criterion"]) == {
        "Satisfaction",
        "Success rate",
        "p95 processing time",
        "Throughput",
        "Positive feedback",
    }
    assert set(csv["week"]) == {week.label}
    export = download("HTML with charts (works offline)")
    assert export.name == f"weekly-review-{week.label}-fleet.html"

    offline = browser.new_context(viewport={"width": 1300, "height": 900}, offline=True)
    try:
        view = offline.new_page()
        view.goto(export.as_uri())
        view.wait_for_function(
            "() => window.Plotly && document.querySelectorAll("
            "'.plotly-graph-div .main-svg').length >= 3",
            timeout=30000,
        )
        view.wait_for_timeout(500)
        drawn = view.evaluate(
            "() => [...document.querySelectorAll('.plotly-graph-div')]"
            ".map(d => d.querySelectorAll('.bars path, .scatterlayer path')"
            ".length)"
        )
        assert len(drawn) >= 3 and all(n > 0 for n in drawn)  # every chart has its marks
        assert f"Weekly metrics review {week.label}" in view.inner_text("body")
        assert "What changed this week" in view.inner_text("body")
        view.screenshot(path=str(ARTIFACTS / "weekly_review_export.png"), full_page=True)
    finally:
        offline.close()
