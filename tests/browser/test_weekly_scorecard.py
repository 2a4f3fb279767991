"""The weekly review's fleet scorecard chart is built only when its expander is open: a
collapsed expander's content is still sent and drawn (500 tenants at 10M cost seconds)."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot, visit, wait_rendered

pytestmark = pytest.mark.browser

EXPANDER = "Every tenant's criteria as a chart"


def charts_in(expander) -> int:
    return expander.locator('[data-testid="stPlotlyChart"]').count()


def test_scorecard_chart_drawn_only_once_opened(browser, fleet_app):
    page = browser.new_context(viewport={"width": 1400, "height": 950}).new_page()
    visit(page, fleet_app, "weekly_review")
    expander = page.locator('[data-testid="stExpander"]').filter(has_text=EXPANDER)
    expander.wait_for()
    summary = expander.locator("summary")
    if expander.locator("details").get_attribute("open") is not None:
        summary.click()  # a small fleet starts open: close it first
        wait_rendered(page)
    assert charts_in(expander) == 0
    summary.click()
    wait_rendered(page)
    expander.locator('[data-testid="stPlotlyChart"]').wait_for(timeout=15000)
    assert charts_in(expander) == 1
    screenshot(page, "weekly_scorecard_open")
    summary.click()  # closed again: the chart is no longer sent
    wait_rendered(page)
    assert charts_in(expander) == 0
    page.context.close()
