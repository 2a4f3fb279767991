"""Reading a ticket on the real stack: planted runs in PostgreSQL, planted jobs in Redis, the
planted demo fleet, and the search for recent runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from demo import fleet
from demo.seed_redis import enhancement_job
from services.errors import InvalidInput
from services.failures import MODES_BY_KEY
from services.investigation import lookup, narrative
from services.timerange import TimeRange
from tests.investigation_data import (
    CONTEXT,
    SECRET_COMMENT,
    SECRET_OUTPUT,
    job,
    plant_low_rated,
    plant_searchable,
    plant_tenant,
    send,
)
from tests.planting import add_feedback, add_run, add_tenant

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def fresh_now():
    """Plant relative to the moment each test starts: the suite runs for minutes, and a run
    planted 30 s "ago" at import time would be stuck (> 120 s) by the time a test reads it."""
    global NOW
    NOW = datetime.now(UTC)


DEMO_MODES = {
    fleet.SDP_TIMEOUT: "sdp_update_failed",
    fleet.SDP_UNAUTHORIZED: "sdp_auth",
    fleet.SDP_RATE_LIMIT: "sdp_rate_limit",
    fleet.SOFT_TIME_LIMIT: "soft_time_limit",
    fleet.PLATFORM_BUG: "platform_bug",
    fleet.NODE_KEY_BUG: "platform_bug",
}


@pytest.fixture
def tenant(use_db, redis_url, tenant_id):
    return plant_tenant(use_db, tenant_id)


@pytest.fixture
def low_rated(use_db, tenant):
    return plant_low_rated(use_db, tenant, NOW)


@pytest.fixture
def searchable(use_db, tenant):
    return plant_searchable(use_db, tenant, NOW)


def test_every_failure_mode_of_the_demo_data(use_db, tenant):
    failing = [m for m in fleet.FAILURE_MODES if m not in fleet.COMPLETES_ANYWAY]
    assert set(failing) == set(DEMO_MODES)
    with use_db.superuser() as conn:
        for i, mode in enumerate(failing):
            error = fleet.ERROR_MESSAGES[mode]
            add_run(
                conn,
                tenant,
                f"F-{i}",
                "failed",
                NOW - timedelta(hours=i + 1),
                latency_s=31,
                error_message=error.format(url="https://sdp.example", ticket=f"F-{i}"),
                context="null",  # the JSON null a failed attempt keeps
            )
        add_run(
            conn,
            tenant,
            "F-unknown",
            "failed",
            NOW - timedelta(hours=9),
            latency_s=2,
            error_message="OSError: [Errno 28] No space left on device",
        )
    for i, mode in enumerate(failing):
        found = lookup.lookup(tenant, f"F-{i}")
        run = found.latest
        assert found.verdict == "failed"
        assert run.failure.key == DEMO_MODES[mode], mode
        cause, next_step = narrative.root_cause(found)
        assert next_step == MODES_BY_KEY[DEMO_MODES[mode]].next_step
        assert run.failure.label in cause
    unknown = lookup.lookup(tenant, "F-unknown")
    assert unknown.latest.failure.key == "unknown"
    assert "OSError" in narrative.root_cause(unknown)[0]


def test_a_ticket_of_another_tenant_is_not_found(use_db, broker_url, tenant, tenant_id):
    other = tenant_id + "-other"
    with use_db.superuser() as conn:
        add_tenant(conn, other, "Other MSP")
        add_run(conn, other, "55555", "completed", NOW - timedelta(hours=1), latency_s=20)
        add_feedback(conn, other, "55555", "rating", NOW, rating=5, comment="great")
    send(broker_url, job(other, "55555", 30))
    mine = lookup.lookup(tenant, "55555")
    assert not mine.found and mine.verdict == "not_found"
    assert mine.runs == () and mine.feedback == () and mine.queued == ()
    assert mine.tenant_name == "Acme Test MSP"
    theirs = lookup.lookup(other, "55555")
    assert theirs.found and len(theirs.runs) == 1 and len(theirs.feedback) == 1


def test_a_ticket_still_in_the_queue(use_db, redis_url, broker_url, tenant):
    # The queue is consumed from the right: the first job sent is taken next.
    send(broker_url, job(tenant, "other-1", 300, "job-1"))
    send(broker_url, job(tenant, "70001", 95, "job-2"), keyword=True)  # job_data=...
    send(broker_url, job(tenant, "other-2", 10, "job-3"))
    queued_at = datetime.now(UTC) - timedelta(seconds=60)
    api_job = enhancement_job(job(tenant, "70001", 60, "job-api"), queued_at)
    redis.Redis.from_url(redis_url).lpush("enhancement:queue", api_job)
    found = lookup.lookup(tenant, "70001")
    assert found.found and found.verdict == "queued" and found.runs == ()
    by_queue = {q.queue: q for q in found.queued}
    assert set(by_queue) == {"celery", "enhancement:queue"}
    assert (by_queue["celery"].position, by_queue["celery"].depth) == (2, 3)
    assert by_queue["celery"].job_id == "job-2"
    assert by_queue["celery"].age_s is None  # a Celery message has no enqueue time
    assert (by_queue["enhancement:queue"].position, by_queue["enhancement:queue"].depth) == (1, 1)
    assert 55 <= by_queue["enhancement:queue"].age_s < 90  # from created_at, not the ticket's
    assert not found.queue_stuck
    cause, _ = narrative.root_cause(found)
    assert "still waiting in `celery` (position 2 of 3, a Celery message carries no" in cause
    summary = narrative.summary(found, "jane", "SUP-1", None, NOW)
    assert "2. Job Queued: ⏳ Waiting in celery, position 2 of 3" in summary
    assert fleet.FAKE_KEY_MARKER not in repr(found) + summary
    commands = narrative.commands(found)
    worker = [c for c in commands if c.purpose.startswith("What did")]
    assert "grep 'job_id: job-2'" in worker[0].body or "grep 'job_id: job-api'" in worker[0].body
    depth = next(c.body for c in commands if c.purpose.startswith("Queue depth")).splitlines()
    broker_db, platform_db = broker_url.rsplit("/", 1)[1], redis_url.rsplit("/", 1)[1]
    assert depth[0].endswith(f"redis-cli -h redis -n {broker_db} LLEN celery")
    assert depth[3].endswith(f"-n {broker_db} LLEN $'celery\\x06\\x169'")
    assert depth[4].endswith(f"-n {platform_db} LLEN enhancement:queue")
    assert all(fleet.FAKE_KEY_MARKER not in c.body for c in commands)


def test_stuck_and_fresh_pending_rows(use_db, tenant):
    with use_db.superuser() as conn:
        add_run(conn, tenant, "70002", "pending", NOW - timedelta(minutes=20))
        add_run(conn, tenant, "70003", "pending", NOW - timedelta(seconds=30))
    stuck = lookup.lookup(tenant, "70002")
    assert stuck.latest.stuck and stuck.verdict == "stuck"
    assert "worker time limit" in narrative.root_cause(stuck)[0]
    assert "Stuck (pending for 20 min)" in narrative.summary(stuck, "jane", "SUP-1", None, NOW)
    assert any("OOMKilled" in c.purpose for c in narrative.commands(stuck))
    fresh = lookup.lookup(tenant, "70003")
    assert not fresh.latest.stuck and fresh.verdict == "pending"


def test_both_shapes_of_context_gathered(use_db, tenant):
    with use_db.superuser() as conn:
        add_run(conn, tenant, "C-obj", "completed", NOW - timedelta(hours=2), 20, context=CONTEXT)
        add_run(
            conn,
            tenant,
            "C-str",
            "completed",
            NOW - timedelta(hours=2),
            20,
            context=json.dumps(json.dumps(CONTEXT)),
        )
    as_object = lookup.lookup(tenant, "C-obj").latest.context
    as_string = lookup.lookup(tenant, "C-str").latest.context
    assert as_object == as_string
    assert as_object.summary == "3 similar tickets, 1 KB article, 2 IP matches, 1 node error"


def test_a_completed_run_with_a_context_timeout_is_explained(use_db, tenant):
    context = {**CONTEXT, "errors": [fleet.CONTEXT_TIMEOUT_ERROR]}
    with use_db.superuser() as conn:
        add_run(conn, tenant, "C-to", "completed", NOW - timedelta(hours=2), 40, context=context)
    found = lookup.lookup(tenant, "C-to")
    assert found.latest.failure is None and found.latest.context.timed_out
    assert "context gathering timed out" in narrative.root_cause(found)[0]


def test_sensitive_content_hidden_until_consent(use_db, low_rated):
    tenant = low_rated
    with use_db.superuser() as conn:
        add_feedback(conn, tenant, "67890", "thumbs_down", NOW - timedelta(hours=1))
    hidden = lookup.lookup(tenant, "67890")
    assert not hidden.revealed
    assert hidden.latest.has_output and hidden.latest.output_chars == len(SECRET_OUTPUT)
    assert hidden.latest.llm_output is None
    assert [f.has_comment for f in hidden.feedback].count(True) == 1
    assert all(f.comment is None and f.technician_email is None for f in hidden.feedback)
    assert SECRET_OUTPUT not in repr(hidden) and SECRET_COMMENT not in repr(hidden)
    assert "rated low" in narrative.root_cause(hidden)[0]

    shown = lookup.lookup(tenant, "67890", reveal=True)
    assert shown.latest.llm_output == SECRET_OUTPUT
    assert SECRET_COMMENT in [f.comment for f in shown.feedback]
    assert {f.technician_email for f in shown.feedback} == {f"tech@{tenant}.example.com"}
    summary = narrative.summary(shown, "jane", "SUP-567", None, NOW)
    assert SECRET_OUTPUT not in summary and SECRET_COMMENT not in summary
    assert "6. Feedback: thumbs down, rated 2/5" in summary


def test_redis_down_still_shows_the_database_part(use_db, tenant, monkeypatch):
    with use_db.superuser() as conn:
        add_run(
            conn,
            tenant,
            "R-1",
            "failed",
            NOW - timedelta(hours=1),
            30,
            error_message=fleet.ERROR_MESSAGES[fleet.SOFT_TIME_LIMIT],
        )
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    found = lookup.lookup(tenant, "R-1")
    assert found.latest.failure.key == "soft_time_limit"
    assert found.queued == () and "Redis is not available" in found.queue_error


def test_reruns_are_listed_newest_first(use_db, tenant):
    with use_db.superuser() as conn:
        for minutes, status in ((60, "failed"), (59, "failed"), (30, "completed")):
            add_run(
                conn,
                tenant,
                "70010",
                status,
                NOW - timedelta(minutes=minutes),
                33,
                error_message="TimeoutError: OpenAI request timed out after 30s"
                if status == "failed"
                else None,
            )
    found = lookup.lookup(tenant, "70010")
    assert found.total_runs == 3
    assert [r.status for r in found.runs] == ["completed", "failed", "failed"]
    assert [r.attempt for r in found.runs] == [3, 2, 1]
    assert "; 3 attempts)" in narrative.summary(found, "jane", "SUP-1", None, NOW)


# --- the demo fleet: the generator's and the Redis seeder's planted tickets ----------------------
PLANTED_FAILURES = {
    fleet.TICKET_SDP_TIMEOUT: "sdp_update_failed",
    fleet.TICKET_PLATFORM_BUG: "platform_bug",
    fleet.TICKET_NODE_KEY_BUG: "platform_bug",
    fleet.TICKET_SDP_UNAUTHORIZED: "sdp_auth",
    fleet.TICKET_SDP_RATE_LIMIT: "sdp_rate_limit",
    fleet.TICKET_SOFT_TIME_LIMIT: "soft_time_limit",
}


@pytest.fixture
def demo(fleet_db, fleet_redis_url, fleet_broker_url, monkeypatch):
    fleet_db.use()
    monkeypatch.setenv("REDIS_URL", fleet_redis_url)
    monkeypatch.setenv("CELERY_BROKER_URL", fleet_broker_url)
    return fleet_db


def test_the_planted_demo_tickets(demo):
    for ticket, key in PLANTED_FAILURES.items():
        found = lookup.lookup(fleet.ACME, ticket)
        assert found.verdict == "failed" and found.latest.failure.key == key, ticket
    queued = lookup.lookup(fleet.ACME, fleet.TICKET_QUEUED)
    assert queued.verdict == "queued" and queued.queued[0].queue == "celery"
    assert queued.runs == () and queued.latest is None  # no worker started it: no row yet
    waiting = lookup.lookup(fleet.ACME, fleet.TICKET_STUCK_IN_QUEUE)
    assert waiting.queued[0].queue == "enhancement:queue"  # it has a real created_at
    # From its created_at (47 min before the session's seeding), not from the ticket's
    # creation (a day and more earlier).
    assert 46 * 60 < waiting.queued[0].age_s < 3 * 3600
    assert waiting.queue_stuck and not queued.queue_stuck
    assert "the queue is stuck" in narrative.root_cause(waiting)[0]
    lost = lookup.lookup(fleet.ACME, fleet.TICKET_STALE_PENDING)
    assert lost.verdict == "stuck" and lost.queued == ()
    as_string = lookup.lookup(fleet.ACME, fleet.TICKET_CONTEXT_AS_STRING)
    with demo.superuser() as conn:
        shape = conn.execute(
            "SELECT json_typeof(context_gathered) FROM enhancement_history"
            " WHERE tenant_id = %s AND ticket_id = %s",
            (fleet.ACME, fleet.TICKET_CONTEXT_AS_STRING),
        ).fetchone()[0]
    assert shape == "string" and as_string.latest.context.readable
    assert as_string.latest.context.execution_ms is not None
    low = lookup.lookup(fleet.ACME, fleet.TICKET_LOW_RATED)
    assert low.low_rated and low.quality_concern and len(low.feedback) == 2
    rerun = lookup.lookup(fleet.ACME, fleet.TICKET_RERUN)
    assert [(r.attempt, r.status) for r in rerun.runs] == [
        (4, "completed"),
        (3, "failed"),
        (2, "failed"),
        (1, "failed"),
    ]
    assert all(r.context is None for r in rerun.runs[1:])  # JSON null: not recorded
    fallback = lookup.lookup(fleet.ACME, fleet.TICKET_LLM_TIMEOUT)
    assert fallback.verdict == "completed" and fallback.latest.failure is None
    degraded = lookup.lookup(fleet.ACME, fleet.TICKET_CONTEXT_TIMEOUT)
    assert degraded.verdict == "completed" and degraded.latest.completed_with_errors
    assert degraded.latest.context.timed_out and degraded.quality_concern
    elsewhere = lookup.lookup(fleet.GLOBEX, fleet.TICKET_SDP_TIMEOUT)
    assert not elsewhere.found
    everything = repr([queued, waiting, lost, as_string, low, rerun])
    assert fleet.FAKE_KEY_MARKER not in everything


# --- finding a ticket ----------------------------------------------------------------------------
def tickets(frame) -> list[str]:
    return frame["ticket_id"].tolist()


def test_search_by_status_window_and_error_text(searchable):
    day = TimeRange(NOW - timedelta(hours=24), datetime.now(UTC), "last 24 hours")
    assert tickets(lookup.search_runs(searchable, day, ["failed"])) == [
        "S-1",
        "S-2",
        "S-3",
    ]
    assert tickets(lookup.search_runs(searchable, day, ["stuck"])) == ["S-5"]
    assert tickets(lookup.search_runs(searchable, day, ["pending"])) == ["S-6", "S-5"]
    assert tickets(lookup.search_runs(searchable, day, ["completed", "stuck"])) == [
        "S-5",
        "S-4",
    ]
    assert len(lookup.search_runs(searchable, day)) == 6
    hits = lookup.search_runs(searchable, day, ["failed"], "  401 ")
    assert tickets(hits) == ["S-1"] and hits["cause"].tolist() == [
        "ServiceDesk Plus credentials expired (401/403)"
    ]
    week = lookup.search_runs(
        searchable, TimeRange(NOW - timedelta(days=7), day.until, "last 7 days"), ["failed"], "401"
    )
    assert tickets(week) == ["S-1", "S-old"]


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("100%", ["S-2"]),
        ("done_x", ["S-2"]),
        ("%", ["S-2"]),
        ("_", ["S-2"]),
        ("' OR 1=1 --", []),
        ("\\", []),
        ("ü😀", []),
    ],
)
def test_search_text_is_literal(searchable, needle, expected):
    found = lookup.search_runs(
        searchable, TimeRange(NOW - timedelta(hours=24), datetime.now(UTC), ""), ["failed"], needle
    )
    assert tickets(found) == expected


def test_search_text_too_long(searchable):
    with pytest.raises(InvalidInput, match="at most 200"):
        lookup.search_runs(searchable, TimeRange(NOW - timedelta(hours=1), NOW, ""), [], "x" * 201)
