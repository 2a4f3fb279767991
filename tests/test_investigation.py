"""Ticket investigation on the real stack: planted runs in PostgreSQL, planted jobs in Redis, and
the page under AppTest (purpose gate, consent, access records, hostile input)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis
import streamlit as st
from streamlit.testing.v1 import AppTest

from demo import fleet
from demo.seed_redis import celery_app, enhancement_job, send_enhancement
from services import investigation
from services.errors import InvalidInput
from services.failures import MODES_BY_KEY
from tests.conftest import app_test
from tests.planting import add_feedback, add_run, add_tenant

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def fresh_now():
    """Plant relative to the moment each test starts: the suite runs for minutes, and a run
    planted 30 s "ago" at import time would be stuck (> 120 s) by the time a test reads it."""
    global NOW
    NOW = datetime.now(UTC)


CONTEXT = {
    "similar_tickets": [{"ticket_id": "1"}, {"ticket_id": "2"}, {"ticket_id": "3"}],
    "kb_articles": [{"title": "VPN"}],
    "ip_info": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
    "errors": [{"node_name": "kb_search", "message": "KB API returned 503"}],
    "workflow_execution_time_ms": 2400,
}
SECRET_OUTPUT = "Restart the spooler on PRN-7 (secret enhancement text)"
SECRET_COMMENT = "Wrong printer entirely (secret comment)"
# What each failure mode of the demo data must be classified as.
DEMO_MODES = {
    fleet.SDP_TIMEOUT: "sdp_update_failed",
    fleet.SDP_UNAUTHORIZED: "sdp_auth",
    fleet.SDP_RATE_LIMIT: "sdp_rate_limit",
    fleet.SOFT_TIME_LIMIT: "soft_time_limit",
    fleet.PLATFORM_BUG: "platform_bug",
    fleet.NODE_KEY_BUG: "platform_bug",
}


def send(broker_url: str, *jobs: dict, keyword: bool = False) -> None:
    """Real Celery messages, as enhance_ticket.delay(job_data) sends them."""
    app = celery_app(broker_url)
    try:
        for data in jobs:
            send_enhancement(app, data, keyword=keyword)
    finally:
        app.close()


def job(tenant_id: str, ticket_id: str, age_s: float, job_id: str = "job-abc123") -> dict:
    return {
        "job_id": job_id,
        "ticket_id": ticket_id,
        "tenant_id": tenant_id,
        "priority": "high",
        # When the ticket was created: the job itself may have been queued much later.
        "timestamp": (datetime.now(UTC) - timedelta(days=2, seconds=age_s)).isoformat(),
        "description": "printer is down",
        "servicedesk_api_key": fleet.FAKE_KEY_MARKER + "123",
    }


@pytest.fixture
def tenant(use_db, redis_url, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Acme Test MSP")
    return tenant_id


# --- input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12345", "12345"), ("  12345 \t", "12345"), ("#67890", "67890"), ("OPS-42", "OPS-42")],
)
def test_ticket_ids_are_cleaned(raw, expected):
    assert investigation.validate_ticket_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a ticket id"),
        ("   ", "Enter a ticket id"),
        (None, "Enter a ticket id"),
        ("9" * 10_000, "10,000 characters"),
        ("1" * 101, "at most 100"),
        ("１２３４５", "not a ticket id"),
        ("tïcket-ü", "not a ticket id"),
        ("12345' OR '1'='1", "not a ticket id"),
        ("1; DROP TABLE enhancement_history; --", "not a ticket id"),
        ("12345\x00", "not a ticket id"),
        ("<script>alert(1)</script>", "not a ticket id"),
    ],
)
def test_hostile_ticket_ids_get_a_clear_message(raw, message):
    with pytest.raises(InvalidInput) as caught:
        investigation.validate_ticket_id(raw)
    assert message in str(caught.value)
    if raw and raw.strip():
        assert raw.strip() not in str(caught.value)  # never echoed back


def test_case_reference_is_required_in_the_purpose():
    assert investigation.case_reference("SUP-567 ticket 12345 not enhanced") == "SUP-567"
    assert investigation.case_reference("per sup-89") == "SUP-89"
    assert investigation.case_reference("routine monitoring") is None
    assert investigation.case_reference("weekly review") is None
    assert investigation.case_reference("") is None


def test_context_counts_from_both_shapes():
    as_object = investigation.parse_context(json.dumps(CONTEXT))
    as_string = investigation.parse_context(json.dumps(json.dumps(CONTEXT)))
    assert as_object == as_string
    assert (as_object.similar_tickets, as_object.kb_articles, as_object.ip_matches) == (3, 1, 2)
    assert as_object.node_errors == (("kb_search", "KB API returned 503"),)
    assert as_object.execution_ms == 2400
    assert as_object.summary == "3 similar tickets, 1 KB article, 2 IP matches, 1 node error"
    assert investigation.parse_context(None) is None
    broken = investigation.parse_context('"not json at all')
    assert broken is not None and not broken.readable
    assert not investigation.parse_context("[1, 2]").readable
    odd = investigation.parse_context(
        '{"similar_tickets": "x", "errors": 5, "workflow_execution_time_ms": NaN}'
    )
    assert odd.readable and odd.summary == (
        "0 similar tickets, 0 KB articles, 0 IP matches, 0 node errors"
    )
    assert odd.execution_ms is None


# --- the lookup ----------------------------------------------------------------------------------
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
        found = investigation.lookup(tenant, f"F-{i}")
        run = found.latest
        assert found.verdict == "failed"
        assert run.failure.key == DEMO_MODES[mode], mode
        cause, next_step = investigation.root_cause(found)
        assert next_step == MODES_BY_KEY[DEMO_MODES[mode]].next_step
        assert run.failure.label in cause
    unknown = investigation.lookup(tenant, "F-unknown")
    assert unknown.latest.failure.key == "unknown"
    assert "OSError" in investigation.root_cause(unknown)[0]


def test_a_ticket_of_another_tenant_is_not_found(use_db, broker_url, tenant, tenant_id):
    other = tenant_id + "-other"
    with use_db.superuser() as conn:
        add_tenant(conn, other, "Other MSP")
        add_run(conn, other, "55555", "completed", NOW - timedelta(hours=1), latency_s=20)
        add_feedback(conn, other, "55555", "rating", NOW, rating=5, comment="great")
    send(broker_url, job(other, "55555", 30))
    mine = investigation.lookup(tenant, "55555")
    assert not mine.found and mine.verdict == "not_found"
    assert mine.runs == () and mine.feedback == () and mine.queued == ()
    assert mine.tenant_name == "Acme Test MSP"
    theirs = investigation.lookup(other, "55555")
    assert theirs.found and len(theirs.runs) == 1 and len(theirs.feedback) == 1


def test_a_ticket_still_in_the_queue(use_db, redis_url, broker_url, tenant):
    # The queue is consumed from the right: the first job sent is taken next.
    send(broker_url, job(tenant, "other-1", 300, "job-1"))
    send(broker_url, job(tenant, "70001", 95, "job-2"), keyword=True)  # job_data=...
    send(broker_url, job(tenant, "other-2", 10, "job-3"))
    queued_at = datetime.now(UTC) - timedelta(seconds=60)
    api_job = enhancement_job(job(tenant, "70001", 60, "job-api"), queued_at)
    redis.Redis.from_url(redis_url).lpush("enhancement:queue", api_job)
    found = investigation.lookup(tenant, "70001")
    assert found.found and found.verdict == "queued" and found.runs == ()
    by_queue = {q.queue: q for q in found.queued}
    assert set(by_queue) == {"celery", "enhancement:queue"}
    assert (by_queue["celery"].position, by_queue["celery"].depth) == (2, 3)
    assert by_queue["celery"].job_id == "job-2"
    assert by_queue["celery"].age_s is None  # a Celery message has no enqueue time
    assert (by_queue["enhancement:queue"].position, by_queue["enhancement:queue"].depth) == (1, 1)
    assert 55 <= by_queue["enhancement:queue"].age_s < 90  # from created_at, not the ticket's
    assert not found.queue_stuck
    cause, _ = investigation.root_cause(found)
    assert "still waiting in `celery` (position 2 of 3, a Celery message carries no" in cause
    summary = investigation.summary(found, "jane", "SUP-1", None, NOW)
    assert "2. Job Queued: ⏳ Waiting in celery, position 2 of 3" in summary
    assert fleet.FAKE_KEY_MARKER not in repr(found) + summary
    commands = investigation.commands(found)
    worker = [c for c in commands if c.purpose.startswith("What did")]
    assert "grep 'job_id: job-2'" in worker[0].body or "grep 'job_id: job-api'" in worker[0].body
    depth = next(c.body for c in commands if c.purpose.startswith("Queue depth")).splitlines()
    broker_db, platform_db = broker_url.rsplit("/", 1)[1], redis_url.rsplit("/", 1)[1]
    assert depth[0].endswith(f"redis-cli -h redis -n {broker_db} LLEN celery")
    assert depth[3].endswith(f"-n {broker_db} LLEN $'celery\\x06\\x169'")
    assert depth[4].endswith(f"-n {platform_db} LLEN enhancement:queue")
    assert all(fleet.FAKE_KEY_MARKER not in c.body for c in commands)


def test_a_job_id_from_redis_is_quoted_in_the_commands(use_db, broker_url, tenant):
    hostile = 'x"; rm -rf / #'
    send(broker_url, job(tenant, "70001", 5, hostile))
    found = investigation.lookup(tenant, "70001")
    worker = [c for c in investigation.commands(found) if c.purpose.startswith("What did")][0]
    assert worker.body.endswith("| grep 'job_id: x\"; rm -rf / #'")


def test_stuck_and_fresh_pending_rows(use_db, tenant):
    with use_db.superuser() as conn:
        add_run(conn, tenant, "70002", "pending", NOW - timedelta(minutes=20))
        add_run(conn, tenant, "70003", "pending", NOW - timedelta(seconds=30))
    stuck = investigation.lookup(tenant, "70002")
    assert stuck.latest.stuck and stuck.verdict == "stuck"
    assert "worker time limit" in investigation.root_cause(stuck)[0]
    assert "Stuck (pending for 20 min)" in investigation.summary(stuck, "jane", "SUP-1", None, NOW)
    assert any("OOMKilled" in c.purpose for c in investigation.commands(stuck))
    fresh = investigation.lookup(tenant, "70003")
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
    as_object = investigation.lookup(tenant, "C-obj").latest.context
    as_string = investigation.lookup(tenant, "C-str").latest.context
    assert as_object == as_string
    assert as_object.summary == "3 similar tickets, 1 KB article, 2 IP matches, 1 node error"


def test_a_completed_run_with_a_context_timeout_is_explained(use_db, tenant):
    context = {**CONTEXT, "errors": [fleet.CONTEXT_TIMEOUT_ERROR]}
    with use_db.superuser() as conn:
        add_run(conn, tenant, "C-to", "completed", NOW - timedelta(hours=2), 40, context=context)
    found = investigation.lookup(tenant, "C-to")
    assert found.latest.failure is None and found.latest.context.timed_out
    assert "context gathering timed out" in investigation.root_cause(found)[0]


def test_sensitive_content_hidden_until_consent(use_db, low_rated):
    tenant = low_rated
    with use_db.superuser() as conn:
        add_feedback(conn, tenant, "67890", "thumbs_down", NOW - timedelta(hours=1))
    hidden = investigation.lookup(tenant, "67890")
    assert not hidden.revealed
    assert hidden.latest.has_output and hidden.latest.output_chars == len(SECRET_OUTPUT)
    assert hidden.latest.llm_output is None
    assert [f.has_comment for f in hidden.feedback].count(True) == 1
    assert all(f.comment is None and f.technician_email is None for f in hidden.feedback)
    assert SECRET_OUTPUT not in repr(hidden) and SECRET_COMMENT not in repr(hidden)
    assert "rated low" in investigation.root_cause(hidden)[0]

    shown = investigation.lookup(tenant, "67890", reveal=True)
    assert shown.latest.llm_output == SECRET_OUTPUT
    assert SECRET_COMMENT in [f.comment for f in shown.feedback]
    assert {f.technician_email for f in shown.feedback} == {f"tech@{tenant}.example.com"}
    summary = investigation.summary(shown, "jane", "SUP-567", None, NOW)
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
    found = investigation.lookup(tenant, "R-1")
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
    found = investigation.lookup(tenant, "70010")
    assert found.total_runs == 3
    assert [r.status for r in found.runs] == ["completed", "failed", "failed"]
    assert [r.attempt for r in found.runs] == [3, 2, 1]
    assert "; 3 attempts)" in investigation.summary(found, "jane", "SUP-1", None, NOW)


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
        found = investigation.lookup(fleet.ACME, ticket)
        assert found.verdict == "failed" and found.latest.failure.key == key, ticket
    queued = investigation.lookup(fleet.ACME, fleet.TICKET_QUEUED)
    assert queued.verdict == "queued" and queued.queued[0].queue == "celery"
    assert queued.runs == () and queued.latest is None  # no worker started it: no row yet
    waiting = investigation.lookup(fleet.ACME, fleet.TICKET_STUCK_IN_QUEUE)
    assert waiting.queued[0].queue == "enhancement:queue"  # it has a real created_at
    # From its created_at (47 min before the session's seeding), not from the ticket's
    # creation (a day and more earlier).
    assert 46 * 60 < waiting.queued[0].age_s < 3 * 3600
    assert waiting.queue_stuck and not queued.queue_stuck
    assert "the queue is stuck" in investigation.root_cause(waiting)[0]
    lost = investigation.lookup(fleet.ACME, fleet.TICKET_STALE_PENDING)
    assert lost.verdict == "stuck" and lost.queued == ()
    as_string = investigation.lookup(fleet.ACME, fleet.TICKET_CONTEXT_AS_STRING)
    with demo.superuser() as conn:
        shape = conn.execute(
            "SELECT json_typeof(context_gathered) FROM enhancement_history"
            " WHERE tenant_id = %s AND ticket_id = %s",
            (fleet.ACME, fleet.TICKET_CONTEXT_AS_STRING),
        ).fetchone()[0]
    assert shape == "string" and as_string.latest.context.readable
    assert as_string.latest.context.execution_ms is not None
    low = investigation.lookup(fleet.ACME, fleet.TICKET_LOW_RATED)
    assert low.low_rated and low.quality_concern and len(low.feedback) == 2
    rerun = investigation.lookup(fleet.ACME, fleet.TICKET_RERUN)
    assert [(r.attempt, r.status) for r in rerun.runs] == [
        (4, "completed"),
        (3, "failed"),
        (2, "failed"),
        (1, "failed"),
    ]
    assert all(r.context is None for r in rerun.runs[1:])  # JSON null: not recorded
    fallback = investigation.lookup(fleet.ACME, fleet.TICKET_LLM_TIMEOUT)
    assert fallback.verdict == "completed" and fallback.latest.failure is None
    degraded = investigation.lookup(fleet.ACME, fleet.TICKET_CONTEXT_TIMEOUT)
    assert degraded.verdict == "completed" and degraded.latest.completed_with_errors
    assert degraded.latest.context.timed_out and degraded.quality_concern
    elsewhere = investigation.lookup(fleet.GLOBEX, fleet.TICKET_SDP_TIMEOUT)
    assert not elsewhere.found
    everything = repr([queued, waiting, lost, as_string, low, rerun])
    assert fleet.FAKE_KEY_MARKER not in everything


# --- links, commands, summary ----------------------------------------------------------------
def test_jaeger_link_searches_by_tags_and_window(monkeypatch):
    start, end = NOW - timedelta(minutes=10), NOW
    monkeypatch.setenv("JAEGER_URL", "http://jaeger.local:16686/")
    link = investigation.jaeger_link("msp-acme-corp", "12345", start, end)
    assert link.startswith("http://jaeger.local:16686/search?service=ai-agents-enhancement")
    assert "%22ticket.id%22%3A+%2212345%22" in link and "%22tenant.id%22" in link
    assert f"start={int(start.timestamp() * 1_000_000)}" in link
    assert f"end={int(end.timestamp() * 1_000_000)}" in link
    monkeypatch.delenv("JAEGER_URL")
    assert investigation.jaeger_link("msp-acme-corp", "12345", start, end) is None


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
    found = investigation.lookup(tenant, "12345")
    window = investigation.trace_window(found.runs, found.read_at)
    assert window[0] == found.latest.created_at - timedelta(minutes=5)
    link = investigation.jaeger_link(tenant, "12345", *window)
    text = investigation.summary(found, "jane.doe", "SUP-567", link, NOW)
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
    bodies = "\n".join(c.body for c in investigation.commands(found))
    assert "| grep 'ticket_id: 12345'" in bodies
    assert f"SELECT set_config('app.current_tenant_id', '{tenant}', true);" in bodies
    assert "SET app.current_tenant_id" not in bodies  # never the session-level form
    assert "-n production --since=6h" in bodies


def test_not_found_summary_points_at_the_webhook(use_db, tenant):
    found = investigation.lookup(tenant, "99999")
    text = investigation.summary(found, "jane", "SUP-1", None, NOW)
    assert "1. Webhook Received: ❌ No record of it" in text
    assert "webhook" in investigation.root_cause(found)[1].lower()


# --- finding a ticket ----------------------------------------------------------------------------
@pytest.fixture
def searchable(use_db, tenant, tenant_id):
    other = tenant_id + "-x"
    with use_db.superuser() as conn:
        add_tenant(conn, other)
        add_run(
            conn,
            tenant,
            "S-1",
            "failed",
            NOW - timedelta(hours=1),
            30,
            error_message="HTTPStatusError: 401 Unauthorized",
        )
        add_run(
            conn,
            tenant,
            "S-2",
            "failed",
            NOW - timedelta(hours=2),
            30,
            error_message="progress 100% done_x",
        )
        add_run(
            conn,
            tenant,
            "S-3",
            "failed",
            NOW - timedelta(hours=3),
            30,
            error_message="progress 1000 doneXx",
        )
        add_run(conn, tenant, "S-4", "completed", NOW - timedelta(hours=4), 30)
        add_run(conn, tenant, "S-5", "pending", NOW - timedelta(minutes=30))
        add_run(conn, tenant, "S-6", "pending", NOW - timedelta(seconds=20))
        add_run(
            conn,
            tenant,
            "S-old",
            "failed",
            NOW - timedelta(days=3),
            30,
            error_message="HTTPStatusError: 401 Unauthorized",
        )
        add_run(
            conn,
            other,
            "S-9",
            "failed",
            NOW - timedelta(hours=1),
            30,
            error_message="HTTPStatusError: 401 Unauthorized",
        )
    return tenant


def tickets(frame) -> list[str]:
    return frame["ticket_id"].tolist()


def test_search_by_status_window_and_error_text(searchable):
    since = NOW - timedelta(hours=24)
    now = datetime.now(UTC)
    assert tickets(investigation.search_runs(searchable, since, now, ["failed"])) == [
        "S-1",
        "S-2",
        "S-3",
    ]
    assert tickets(investigation.search_runs(searchable, since, now, ["stuck"])) == ["S-5"]
    assert tickets(investigation.search_runs(searchable, since, now, ["pending"])) == ["S-6", "S-5"]
    assert tickets(investigation.search_runs(searchable, since, now, ["completed", "stuck"])) == [
        "S-5",
        "S-4",
    ]
    assert len(investigation.search_runs(searchable, since, now)) == 6
    hits = investigation.search_runs(searchable, since, now, ["failed"], "  401 ")
    assert tickets(hits) == ["S-1"] and hits["cause"].tolist() == [
        "ServiceDesk Plus credentials expired (401/403)"
    ]
    week = investigation.search_runs(searchable, NOW - timedelta(days=7), now, ["failed"], "401")
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
    found = investigation.search_runs(
        searchable, NOW - timedelta(hours=24), datetime.now(UTC), ["failed"], needle
    )
    assert tickets(found) == expected


def test_search_text_too_long(searchable):
    with pytest.raises(InvalidInput, match="at most 200"):
        investigation.search_runs(searchable, NOW - timedelta(hours=1), NOW, [], "x" * 201)


# --- the page ------------------------------------------------------------------------------------
@pytest.fixture
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def open_page(purpose: str | None = None, **query) -> AppTest:
    at = app_test()
    for key, value in query.items():
        at.query_params[key] = value
    if purpose is not None:
        at.session_state["purpose"] = purpose
    at.run()
    return at.switch_page("views/investigation.py").run()


def access_records(db, tenant_id: str) -> list[tuple]:
    """This page's records for the tenant (AppTest's first run also opens the default page)."""
    with db.superuser() as conn:
        return conn.execute(
            "SELECT query_kind, purpose, query_params, row_count, sensitive_revealed, actor"
            " FROM dashboard.data_access_log WHERE tenant_id = %s"
            " AND query_kind IN ('ticket_lookup', 'ticket_search') ORDER BY id",
            (tenant_id,),
        ).fetchall()


def page_text(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.caption, *at.code, *at.text_area)]
    parts += [str(e.body) for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def low_rated(use_db, tenant):
    with use_db.superuser() as conn:
        add_run(conn, tenant, "67890", "completed", NOW - timedelta(hours=3), 21, context=CONTEXT)
        conn.execute(
            "UPDATE enhancement_history SET llm_output = %s WHERE tenant_id = %s",
            (SECRET_OUTPUT, tenant),
        )
        add_feedback(
            conn,
            tenant,
            "67890",
            "rating",
            NOW - timedelta(hours=2),
            rating=2,
            comment=SECRET_COMMENT,
        )
    return tenant


def test_nothing_is_read_before_a_case_is_named(use_db, low_rated, fresh_caches):
    at = open_page(tenant=low_rated, ticket="67890")
    assert not at.exception
    assert at.text_input(key="ticket").value == "67890"  # the deep link survives the gate
    assert any("Which support case" in m.value for m in at.markdown)
    assert access_records(use_db, low_rated) == []
    assert SECRET_OUTPUT not in page_text(at)


def test_deep_link_lookup_records_the_access(use_db, low_rated, fresh_caches):
    at = open_page("SUP-567 ticket rated low", tenant=low_rated, ticket="67890")
    assert not at.exception
    text = page_text(at)
    assert "Ticket `67890`" in text and "Enhancement delivered" in text
    assert "Acme Test MSP" in text and "Case **SUP\\-567**" in text
    assert SECRET_OUTPUT not in text and SECRET_COMMENT not in text
    assert "TICKET INVESTIGATION SUMMARY" in at.text_area[0].value
    # One record: the lookup. The collapsed search ran no query and recorded nothing.
    assert access_records(use_db, low_rated) == [
        (
            "ticket_lookup",
            "SUP-567 ticket rated low",
            {"ticket_id": "67890"},
            2,
            False,
            "engineer@test.example",
        )
    ]

    at.checkbox[0].check().run()  # the client consented
    assert not at.exception
    text = page_text(at)
    assert SECRET_OUTPUT in text
    feedback = at.dataframe[-1].value
    assert SECRET_COMMENT in feedback["Comment"].tolist()
    records = access_records(use_db, low_rated)
    assert [(r[0], r[4]) for r in records] == [("ticket_lookup", False), ("ticket_lookup", True)]
    at.run()  # a rerun of the same lookup is not a new access
    assert len(access_records(use_db, low_rated)) == 2


@pytest.mark.parametrize("raw", ["9" * 10_000, "１２３", "1' OR '1'='1", "   ", "x\u202e\u0000"])
def test_hostile_ticket_ids_on_the_page(use_db, tenant, fresh_caches, raw):
    at = open_page("SUP-1 hostile input", tenant=tenant, ticket=raw)
    assert not at.exception
    messages = " ".join(str(e.body) for e in (*at.error, *at.warning))
    assert "ticket id" in messages.lower()
    assert not [r for r in access_records(use_db, tenant) if r[0] == "ticket_lookup"]


def test_ticket_of_another_tenant_on_the_page(use_db, tenant, tenant_id, fresh_caches):
    other = tenant_id + "-b"
    with use_db.superuser() as conn:
        add_tenant(conn, other)
        add_run(
            conn, other, "31337", "failed", NOW, 30, error_message="HTTPStatusError: 401 b-only"
        )
    at = open_page("SUP-2 cross tenant", tenant=tenant, ticket="31337")
    assert not at.exception
    assert "no enhancement run and no queued job for this tenant" in page_text(at)
    assert "b-only" not in page_text(at)
    assert [r[3] for r in access_records(use_db, tenant) if r[0] == "ticket_lookup"] == [0]


def test_search_on_the_page_opens_the_ticket(use_db, searchable, fresh_caches):
    at = open_page("SUP-3 find it", tenant=searchable)
    assert not at.exception
    results = at.dataframe[0].value
    assert results["Ticket"].tolist() == ["S-1", "S-2", "S-3"]
    kinds = [r[0] for r in access_records(use_db, searchable)]
    assert kinds == ["ticket_search"]
    at.session_state["ticket"] = "S-1"  # what selecting the first row does
    at.run()
    assert not at.exception
    assert "ServiceDesk Plus credentials expired" in page_text(at)
    assert [r[0] for r in access_records(use_db, searchable)] == ["ticket_search", "ticket_lookup"]
