"""What a ticket's findings say: the Jaeger link, the filled-in summary, the commands."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from demo import fleet
from services.failures import MODES_BY_KEY
from services.investigation import lookup, narrative
from services.investigation.model import Feedback, QueuePresence
from tests.investigation_data import (
    CONTEXT,
    READ_AT,
    job,
    made_investigation,
    made_run,
    plant_tenant,
    send,
)
from tests.planting import add_run

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def fresh_now():
    """Plant relative to the moment each test starts: the suite runs for minutes, and a run
    planted 30 s "ago" at import time would be stuck (> 120 s) by the time a test reads it."""
    global NOW
    NOW = datetime.now(UTC)


@pytest.fixture
def tenant(use_db, redis_url, tenant_id):
    return plant_tenant(use_db, tenant_id)


def test_a_job_id_from_redis_is_quoted_in_the_commands(use_db, broker_url, tenant):
    hostile = 'x"; rm -rf / #'
    send(broker_url, job(tenant, "70001", 5, hostile))
    found = lookup.lookup(tenant, "70001")
    worker = [c for c in narrative.commands(found) if c.purpose.startswith("What did")][0]
    assert worker.body.endswith("| grep 'job_id: x\"; rm -rf / #'")


@pytest.mark.unit
def test_jaeger_link_searches_by_tags_and_window(monkeypatch):
    start, end = NOW - timedelta(minutes=10), NOW
    monkeypatch.setenv("JAEGER_URL", "http://jaeger.local:16686/")
    link = narrative.jaeger_link("msp-acme-corp", "12345", start, end)
    assert link.startswith("http://jaeger.local:16686/search?service=ai-agents-enhancement")
    assert "%22ticket.id%22%3A+%2212345%22" in link and "%22tenant.id%22" in link
    assert f"start={int(start.timestamp() * 1_000_000)}" in link
    assert f"end={int(end.timestamp() * 1_000_000)}" in link
    monkeypatch.delenv("JAEGER_URL")
    assert narrative.jaeger_link("msp-acme-corp", "12345", start, end) is None


def test_summary_follows_the_procedures_template(use_db, tenant, monkeypatch):
    monkeypatch.setenv("JAEGER_URL", "http://jaeger.local:16686")
    error = fleet.ERROR_MESSAGES[fleet.SDP_TIMEOUT]
    with use_db.superuser() as conn:
        add_run(
            conn,
            tenant,
            "12345",
            "failed",
            NOW - timedelta(hours=5),
            47,
            error_message=error,
            context=CONTEXT,
        )
    found = lookup.lookup(tenant, "12345")
    window = narrative.trace_window(found.runs, found.read_at)
    assert window[0] == found.latest.created_at - timedelta(minutes=5)
    link = narrative.jaeger_link(tenant, "12345", *window)
    text = narrative.summary(found, "jane.doe", "SUP-567", link, NOW)
    for line in (
        "TICKET INVESTIGATION SUMMARY",
        "Support Engineer: jane.doe",
        "Support Case: SUP-567",
        "Ticket ID: 12345",
        f"Client: Acme Test MSP (tenant_id: {tenant})",
        "1. Webhook Received: ✅ Yes",
        "2. Job Queued: ✅ Yes",
        "3. Worker Processing: ❌ Failed",
        f'   - Error: "{error}"',
        "   - Root Cause: ServiceDesk Plus update failed (no status code)",
        f"4. Distributed Trace: {link}",
        "5. Context Gathered: 3 similar tickets",
        "ROOT CAUSE:",
        "RESOLUTION:",
        "FOLLOW-UP:",
        f"- {MODES_BY_KEY['sdp_update_failed'].next_step}",
    ):
        assert line in text, line
    bodies = "\n".join(c.body for c in narrative.commands(found))
    assert "| grep 'ticket_id: 12345'" in bodies
    assert f"SELECT set_config('app.current_tenant_id', '{tenant}', true);" in bodies
    assert "SET app.current_tenant_id" not in bodies  # never the session-level form
    assert "-n production --since=6h" in bodies


def test_not_found_summary_points_at_the_webhook(use_db, tenant):
    found = lookup.lookup(tenant, "99999")
    text = narrative.summary(found, "jane", "SUP-1", None, NOW)
    assert "1. Webhook Received: ❌ No record of it" in text
    assert "webhook" in narrative.root_cause(found)[1].lower()


def feedback(kind: str, rating: int | None = None) -> Feedback:
    return Feedback(READ_AT, kind, rating, None, False, None, None)


@pytest.mark.unit
def test_feedback_in_short_for_the_tile_and_the_summary():
    given = [feedback("thumbs_down"), feedback("rating", 2), feedback("thumbs_up")]
    assert narrative.feedback_tile(given) == "2/5 👎 👍"  # ratings first, then thumbs
    assert narrative.feedback_summary(given) == "thumbs down, rated 2/5, thumbs up"
    assert narrative.feedback_tile([]) == "none" and narrative.feedback_summary([]) == "none"


@pytest.mark.unit
def test_root_cause_and_summary_from_findings_in_memory():
    delivered = made_investigation(made_run())
    cause, _ = narrative.root_cause(delivered)
    assert cause == "The enhancement was delivered to ServiceDesk Plus."
    text = narrative.summary(delivered, "jane", "SUP-9", None, READ_AT)
    assert "Date: 2026-12-01" in text and "Client: Acme (tenant_id: msp-acme-corp)" in text
    assert "3. Worker Processing: ✅ Completed on attempt 1 of 1, processing time 31 s" in text
    assert "4. Distributed Trace: JAEGER_URL is not set" in text

    rated_low = replace(delivered, feedback=(feedback("rating", 1),))
    assert "rated low by the technician" in narrative.root_cause(rated_low)[0]

    waiting = made_investigation(queued=(QueuePresence("celery", 2, 3, None, None),))
    cause, next_step = narrative.root_cause(waiting)
    assert cause.startswith("The job is still waiting in `celery` (position 2 of 3")
    assert "High Queue Depth runbook" in next_step
    assert "1. Webhook Received: ✅ Yes (the job is in the queue)" in narrative.summary(
        waiting, "jane", "SUP-9", None, READ_AT
    )
