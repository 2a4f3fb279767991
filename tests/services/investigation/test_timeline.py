"""The timeline steps of the investigation page, from findings built in memory (no stack)."""

from __future__ import annotations

import pytest

from services.investigation.model import ContextCounts, QueuePresence
from services.investigation.timeline import (
    BAD,
    INFO,
    MUTED,
    OK,
    WAIT,
    Step,
    clock,
    queue_steps,
    run_steps,
)
from tests.investigation_data import READ_AT, made_investigation, made_run

pytestmark = pytest.mark.unit


def tones(steps: list[Step]) -> list[str]:
    return [s.tone for s in steps]


def test_a_delivered_first_attempt():
    done = made_run()
    steps = run_steps(done, made_investigation(done))
    assert tones(steps) == [OK, OK, OK]
    assert [s.title for s in steps] == [
        "Attempt 1 started by a worker",
        "Context gathered",
        "Enhancement posted to the ticket",
    ]
    assert steps[0].time == "Dec 01, 09:40:00" and steps[1].time == ""
    assert steps[0].detail == "20 min ago · the webhook's arrival time is not stored"
    assert steps[1].detail == "3 similar tickets, 1 KB article, 0 IP matches, 0 node errors · 2.4 s"
    assert steps[2].time == "Dec 01, 09:40:31"
    assert steps[2].detail == "processing time 31 s · processing_time_ms 31,000"


def test_a_retry_that_failed_without_context():
    failed = made_run(
        "failed",
        attempt=2,
        context=None,
        error_message="HTTPStatusError: 401 Unauthorized",
        processing_time_ms=None,
    )
    steps = run_steps(failed, made_investigation(failed))
    assert steps[0].title == "Attempt 2 started: a retry of the same ticket"
    assert "Celery retries a failed attempt (up to 3 times)" in steps[0].detail
    assert (steps[1].tone, steps[1].detail) == (MUTED, "not recorded (the attempt stopped before)")
    assert steps[2].tone == BAD
    assert steps[2].title == "Failed: ServiceDesk Plus credentials expired (401/403)"
    assert steps[2].detail == "processing time 31 s"  # no processing_time_ms stored


def test_context_errors_are_escaped_notes_and_set_the_tone():
    hostile = ContextCounts(0, 0, 0, (("kb_search", "<script>x</script> 503"),), None)
    degraded = made_run(context=hostile)
    steps = run_steps(degraded, made_investigation(degraded))
    context = steps[1]
    assert context.tone == WAIT
    assert "&lt;script&gt;x&lt;/script&gt; 503" in context.detail
    assert "<script>" not in context.detail
    assert '<span class="inv-note">⚠ node <code>kb_search</code>' in context.detail
    assert (steps[2].tone, steps[2].title) == (WAIT, "Enhancement posted, completed with errors")
    timed_out = made_run(context=ContextCounts(0, 0, 0, (("all", "timeout"),), None))
    assert run_steps(timed_out, made_investigation(timed_out))[1].tone == BAD
    unreadable = made_run(context=ContextCounts(0, 0, 0, (), None, readable=False))
    step = run_steps(unreadable, made_investigation(unreadable))[1]
    assert (step.tone, step.detail) == (WAIT, "context_gathered could not be read")


def test_pending_runs_are_processing_stuck_or_queued_again():
    fresh = made_run("pending", age_s=30.0)
    steps = run_steps(fresh, made_investigation(fresh))
    assert tones(steps) == [OK, INFO]
    assert (steps[1].title, steps[1].detail) == ("Processing", "running for 30 s")
    assert steps[1].time == clock(READ_AT) == "Dec 01, 10:00:00"

    stuck = made_run("pending", stuck=True)
    steps = run_steps(stuck, made_investigation(stuck))
    assert tones(steps) == [OK, BAD] and steps[1].title == "Stuck"
    assert steps[1].detail.startswith("pending for <b>20 min</b>, longer than the 120 s worker")

    waiting = QueuePresence("celery", 1, 2, "job-1", None)
    steps = run_steps(stuck, made_investigation(stuck, queued=(waiting,)))
    assert [(s.tone, s.title) for s in steps[1:]] == [(WAIT, "A job of this ticket is queued")]


def test_a_queued_job_with_and_without_its_enqueue_time():
    api = QueuePresence("enhancement:queue", 1, 1, "job-<7>", 600.0)
    inv = made_investigation(queued=(api,))
    queued, waiting = queue_steps(inv, api)
    assert (queued.tone, queued.time) == (OK, "Dec 01, 09:50:00")
    assert queued.title == "Webhook received, job queued (its created_at)"
    assert queued.detail == "10 min ago · job <code>job-&lt;7&gt;</code>"
    assert (waiting.tone, waiting.time) == (WAIT, "Dec 01, 10:00:00")
    assert waiting.detail == (
        "position <b>1</b> of 1 in <code>enhancement:queue</code> (1 = taken next)"
    )

    celery = QueuePresence("celery", 2, 3, None, None)
    queued, waiting = queue_steps(made_investigation(queued=(celery,)), celery)
    assert (queued.time, queued.title) == ("", "Webhook received, job queued")
    assert queued.detail == "when: not recorded in a Celery message"
    assert "position <b>2</b> of 3 in <code>celery</code>" in waiting.detail
