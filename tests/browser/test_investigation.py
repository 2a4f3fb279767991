"""The investigation page in real Chromium on the demo fleet: a pasted deep link, the purpose
gate, the timeline, consent, and the summary download."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from demo import fleet
from tests.conftest import ARTIFACTS, screenshot, visit, wait_rendered

pytestmark = pytest.mark.browser


VIEWPORT = {"width": 1500, "height": 1100}


@pytest.fixture
def app(fleet_app):
    return fleet_app


def state_case(page, case: str) -> None:
    field = page.get_by_label("Support case and purpose")
    field.fill(case)
    field.press("Enter")
    page.get_by_text("TICKET INVESTIGATION SUMMARY").first.wait_for(state="attached")
    wait_rendered(page)


def test_deep_link_to_a_rerun_ticket_shows_every_hop(page, app):
    visit(page, app, f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_RERUN}")
    assert "Which support case is this for?" in page.inner_text("body")
    assert "Attempt 1 of" not in page.inner_text("body")  # nothing read before the purpose

    state_case(page, "SUP-567 ticket 70010 failed three times")
    text = page.inner_text("body")
    assert "Enhancement delivered" in text
    # one webhook, four attempts: each retry its own row, numbered oldest first
    assert "Attempt 4 of 4 · retry of the same ticket" in text and "Attempt 1 of 4" in text
    assert "Attempt 2 started: a retry of the same ticket" in text
    assert text.count("Failed: ServiceDesk Plus update failed (no status code)") == 3
    assert "the webhook's arrival time is not stored; the first attempt started at" in text
    assert "not recorded (the attempt stopped before)" in text  # JSON null context
    assert "Search Jaeger for this run" in text
    assert fleet.FAKE_KEY_MARKER not in page.content()
    query = parse_qs(urlparse(page.url).query)
    assert query["tenant"] == [fleet.ACME] and query["ticket"] == [fleet.TICKET_RERUN]
    page.set_viewport_size({"width": 1500, "height": 2300})  # Streamlit scrolls inside the page
    wait_rendered(page)
    screenshot(page, "investigation_timeline")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download as Markdown").click()
    saved = ARTIFACTS / "investigation_summary.md"
    download.value.save_as(saved)
    summary = saved.read_text()
    assert "TICKET INVESTIGATION SUMMARY" in summary and "Support Case: SUP-567" in summary
    assert f"Ticket ID: {fleet.TICKET_RERUN}" in summary


def test_low_rated_ticket_reveals_content_only_with_consent(page, app, fleet_db):
    with fleet_db.superuser() as conn:
        output = conn.execute(
            "SELECT llm_output FROM enhancement_history WHERE tenant_id = %s AND ticket_id = %s",
            (fleet.ACME, fleet.TICKET_LOW_RATED),
        ).fetchone()[0]
    comment = fleet.PLANTED_FEEDBACK[0].comment
    visit(page, app, f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_LOW_RATED}")
    state_case(page, "SUP-568 enhancement not helpful")
    text = page.inner_text("body")
    assert "rated low by the technician" in text
    assert output.splitlines()[0] not in page.content() and comment not in page.content()

    page.get_by_text("The client consented").click()
    wait_rendered(page)
    page.get_by_text("Enhancement text posted to the ticket").click()
    wait_rendered(page)
    assert output.splitlines()[0] in page.inner_text("body")
    page.set_viewport_size({"width": 1500, "height": 2900})
    wait_rendered(page)
    screenshot(page, "investigation_consented")


def test_stuck_ticket_and_hostile_input(page, app):
    visit(page, app, f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_STALE_PENDING}")
    state_case(page, "SUP-569 no enhancement after 20 min")
    assert "worker time limit" in page.inner_text("body")
    screenshot(page, "investigation_stuck")

    field = page.get_by_label("ServiceDesk Plus ticket id")
    field.fill("1' OR '1'='1; DROP TABLE enhancement_history; --")
    field.press("Enter")
    wait_rendered(page)
    text = page.inner_text("body")
    assert "That is not a ticket id" in text and "Traceback" not in text


def test_queued_tickets_show_their_wait_or_their_place(page, app):
    """A Celery job shows its place in the queue (it has no enqueue time); an
    enhancement:queue job its wait since created_at (47 min here: stuck)."""
    visit(page, app, f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_QUEUED}")
    state_case(page, "SUP-570 enhancement not there yet")
    text = page.inner_text("body")
    assert "Waiting in celery" in text and "(1 = taken next)" in text
    assert "not recorded in a Celery message" in text
    assert "a Celery message carries no enqueue time" in text
    assert fleet.FAKE_KEY_MARKER not in page.content()
    screenshot(page, "investigation_queued_celery")

    visit(page, app, f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_STUCK_IN_QUEUE}")
    state_case(page, "SUP-571 enhancement not there after 45 min")
    text = page.inner_text("body")
    assert "Waiting in enhancement:queue" in text and "the queue is stuck" in text
    page.get_by_text("Copy-ready commands from the procedures").click()
    page.get_by_text("Queue depth (stuck or slow jobs)").wait_for()
    commands = page.locator('[data-testid="stCode"]').all_inner_texts()
    assert any("redis-cli -h redis -n 15 LLEN celery" in c for c in commands)  # broker db
    assert any("-n 14 LLEN enhancement:queue" in c for c in commands)
    assert fleet.FAKE_KEY_MARKER not in page.content()
    page.set_viewport_size({"width": 1500, "height": 2300})
    wait_rendered(page)
    screenshot(page, "investigation_queued_api")


def test_the_lookups_are_in_the_admin_access_log(page, app):
    visit(page, app, f"investigation?tenant={fleet.ACME}&ticket={fleet.TICKET_SDP_TIMEOUT}")
    state_case(page, "SUP-570 ticket 12345 never enhanced")
    visit(page, app, "access_log")
    page.get_by_label("Purpose or parameters contain").fill("SUP-570")
    page.get_by_label("Purpose or parameters contain").press("Enter")
    wait_rendered(page)
    grid = page.locator('[data-testid="stDataFrame"]').first
    assert grid.is_visible()
    assert "Sensitive reveals" in page.inner_text("body")
    screenshot(page, "access_log")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = download.value.path().read_text()
    assert "ticket_lookup" in exported and "SUP-570 ticket 12345 never enhanced" in exported
    assert fleet.TICKET_SDP_TIMEOUT in exported
