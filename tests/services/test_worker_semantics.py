"""What the real worker writes, read right: one row per attempt (retries included), its real
failure texts, JSON null context, and a stopped tenant found from Prometheus' webhook counters
when PostgreSQL has no rows for it (contract sections 1 and 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from demo import fleet
from services import health
from services.db import tenant_scope
from services.failures import classify, sql_case
from services.investigation import lookup, narrative
from services.investigation.model import parse_context
from services.timerange import TimeRange
from tests.planting import add_run, add_tenant
from tests.queue_history import serve_openmetrics, start_demo_prometheus
from tests.services.test_health import base_row

# The texts the real worker stores (f"{type(exc).__name__}: {exc}", or Celery's soft limit),
# with the class each must get, in Python and in SQL alike.
REAL_TEXTS = {
    "RuntimeError: Failed to update ticket 12345 via ServiceDesk Plus API": "sdp_update_failed",
    "Task exceeded soft time limit (100s)": "soft_time_limit",
    "TimeoutError: ": "timeout",
    "TimeoutError: timed out waiting for the context sources": "timeout",
    "HTTPStatusError: 401 Unauthorized for url 'https://sdp.example/api/v3/requests/1'": (
        "sdp_auth"
    ),
    "HTTPStatusError: 429 Too Many Requests for url 'https://sdp.example/api/v3/requests/1'": (
        "sdp_rate_limit"
    ),
    "HTTPStatusError: 500 Internal Server Error for url 'https://sdp.example/api/v3/requests/1'": (
        "sdp_error"
    ),
    "AttributeError: 'TenantConfig' object has no attribute 'base_url'": "platform_bug",
    "KeyError: 'node_name'": "platform_bug",
    "TypeError: 'NoneType' object is not subscriptable": "platform_bug",
    "NameError: name 'settings' is not defined": "platform_bug",
    "ValueError: invalid literal for int() with base 10: 'abc'": "platform_bug",
    "openai.RateLimitError: 429 rate limit reached for openai/gpt-4o-mini": "llm_error",
    "OSError: [Errno 28] No space left on device": "unknown",
}
CONTEXT = {
    "similar_tickets": [{"ticket_id": "1"}],
    "kb_articles": [],
    "ip_info": [],
    "errors": [],
    "workflow_execution_time_ms": 2100,
}
NOW = datetime.now(UTC)


@pytest.mark.parametrize(("message", "key"), REAL_TEXTS.items())
def test_real_failure_texts_classify_the_same_in_python_and_sql(use_db, message, key):
    assert classify(message).key == key
    with tenant_scope("any-tenant") as conn:
        in_sql = conn.execute(
            text(
                f"SELECT {sql_case('m', 'c')} FROM (SELECT CAST(:m AS text) AS m,"
                " CAST('null' AS json) AS c) row"
            ),
            {"m": message},
        ).scalar_one()
    assert in_sql == key


@pytest.mark.unit
def test_platform_bugs_say_escalate_with_the_text():
    bug = classify("KeyError: 'node_name'")
    assert "escalate to Engineering with this text" in bug.next_step
    # the exception types that mean something outside the code keep their classes
    assert classify("TimeoutError: ServiceDesk Plus did not answer").key != "platform_bug"


@pytest.mark.parametrize("key", ["node_name", "node"])
def test_node_errors_under_either_key(use_db, key):
    context = json.dumps({**CONTEXT, "errors": [{key: "all", "message": "Timeout after 30s"}]})
    parsed = parse_context(json.dumps(context))  # a JSON string holding the object
    assert parsed.node_errors == (("all", "Timeout after 30s"),) and parsed.timed_out
    with tenant_scope("any-tenant") as conn:
        in_sql = conn.execute(
            text(
                f"SELECT {sql_case('m', 'c')} FROM (SELECT CAST(NULL AS text) AS m,"
                " CAST(:c AS json) AS c) row"
            ),
            {"c": json.dumps(context)},
        ).scalar_one()
    assert in_sql == "context_timeout"


@pytest.mark.unit
def test_json_null_context_is_not_recorded():
    assert parse_context("null") is None  # the ORM's None, not unreadable
    assert parse_context(None) is None
    assert not parse_context("{broken").readable


def plant_retried_ticket(conn, tenant_id: str, start: datetime) -> None:
    """Ticket R: 3 failed attempts then a completed one (4 rows); ticket F: failed once, given
    up; ticket P: a first attempt still running."""
    sdp = "RuntimeError: Failed to update ticket R via ServiceDesk Plus API"
    for i in range(3):
        add_run(conn, tenant_id, "R", "failed", start + timedelta(seconds=40 * i), 30, sdp, "null")
    add_run(
        conn,
        tenant_id,
        "R",
        "completed",
        start + timedelta(seconds=130),
        20,
        context=json.dumps(json.dumps(CONTEXT)),
    )
    add_run(conn, tenant_id, "F", "failed", start, 5, "KeyError: 'node_name'", "null")
    add_run(conn, tenant_id, "P", "pending", NOW - timedelta(seconds=20), context="null")


def test_tickets_and_attempts_and_both_success_rates(use_db, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
        plant_retried_ticket(conn, tenant_id, NOW - timedelta(hours=2))
    row = health.metrics(tenant_id, TimeRange(NOW - timedelta(hours=24), NOW, "last 24 h")).iloc[0]
    assert (row.attempts, row.tickets) == (6, 3)
    assert (row.completed, row.failed, row.pending) == (1, 4, 1)
    assert row.success_rate == pytest.approx(1 / 5)  # by attempt
    assert (row.tickets_enhanced, row.tickets_failed) == (1, 1)  # P is still open
    assert row.ticket_success_rate == pytest.approx(1 / 2)  # by ticket
    assert row.failures_by_cause == {"sdp_update_failed": 3, "platform_bug": 1}
    trend = health.trend(tenant_id, TimeRange(NOW - timedelta(hours=24), NOW, "last 24 h"))
    assert trend["attempts"].sum() == 6
    # distinct tickets per hour: R, F and P (R's 4 attempts may straddle an hour boundary)
    assert 3 <= trend["tickets"].sum() <= 4


def test_the_timeline_numbers_the_attempts_of_one_ticket(use_db, redis_url, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
        plant_retried_ticket(conn, tenant_id, NOW - timedelta(hours=2))
    found = lookup.lookup(tenant_id, "R")
    assert [(r.attempt, r.status) for r in found.runs] == [
        (4, "completed"),
        (3, "failed"),
        (2, "failed"),
        (1, "failed"),
    ]
    assert found.runs[-1].context is None  # JSON null: not recorded
    assert found.runs[-1].failure.key == "sdp_update_failed"
    assert found.runs[0].processing_s == pytest.approx(20)
    note = found.webhook_note
    assert note.startswith("the webhook's arrival time is not stored; the first attempt started")
    summary = narrative.summary(found, "jane", "SUP-1", None, NOW)
    assert "Completed on attempt 4 of 4, processing time 20 s" in summary
    assert "5. Context Gathered: 1 similar ticket" in summary
    failed = lookup.lookup(tenant_id, "F")
    assert failed.latest.failure.key == "platform_bug"
    assert "5. Context Gathered: not recorded" in narrative.summary(
        failed, "jane", "SUP-1", None, NOW
    )


def test_completed_with_errors_is_not_a_failure(use_db, redis_url, tenant_id):
    context = {**CONTEXT, "errors": [{"node": "kb_search", "message": "KB API returned 503"}]}
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
        add_run(
            conn,
            tenant_id,
            "E",
            "completed",
            NOW - timedelta(minutes=5),
            18,
            context=json.dumps(json.dumps(context)),
        )
    found = lookup.lookup(tenant_id, "E")
    assert found.verdict == "completed" and found.latest.failure is None
    assert found.latest.completed_with_errors
    assert "with errors: context node `kb_search` failed" in narrative.root_cause(found)[0]


# --- the stopped-tenant rules on a real Prometheus ----------------------------------------------
END = pd.Timestamp(NOW).floor("1h").to_pydatetime()
WEEKS = 5
PER_HOUR = 20


def webhooks(tenant: str, minutes_ago: int) -> tuple[int, int]:
    """(received, rejected) webhooks in the minute `minutes_ago` before END."""
    per_min = PER_HOUR / 60
    week_min = minutes_ago % (7 * 24 * 60)
    if tenant == "t-silent" and minutes_ago < 6 * 60:  # wrong secret for the last 6 h
        return 0, 0
    if tenant == "t-quiet" and week_min < 6 * 60:  # never sends at this hour of the week
        return 0, 0
    if tenant == "t-rejected" and minutes_ago < 3 * 60:  # Redis errors: half rejected
        return per_min, per_min / 2
    return per_min, 0


def openmetrics() -> str:
    """5-minute samples over the 25 hours before END and before the same moment of each past
    week (all the rules read), the counters running on through the gaps."""
    week = 7 * 24 * 60
    minutes = [m for m in range(WEEKS * week, -1, -5) if m % week <= 25 * 60]
    lines = ["# TYPE enhancement_requests counter"]
    for tenant in ("t-silent", "t-quiet", "t-rejected", "t-unattempted"):
        totals = {"received": 0.0, "queued": 0.0, "rejected": 0.0}
        series = {s: [] for s in totals}
        for m in minutes:
            received, rejected = (5 * v for v in webhooks(tenant, m))
            totals["received"] += received
            totals["rejected"] += rejected
            totals["queued"] += received - rejected
            at = (END - timedelta(minutes=m)).timestamp()
            for status, total in totals.items():
                series[status].append(
                    f'enhancement_requests_total{{tenant_id="{tenant}",status="{status}"}}'
                    f" {total:g} {at:.0f}"
                )
        for status in totals:
            lines += series[status]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus():
    running = serve_openmetrics(openmetrics())
    yield running
    running.close()


@pytest.fixture
def traffic(prometheus, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    return health.read_traffic(None, END)


def row(**overrides):
    """A healthy tenant's metrics as of END (test_health's row)."""
    return base_row(newest_attempt=END, last_completed=END, as_of=END) | overrides


def rules_of(traffic, tenant, **overrides):
    verdict = health.assess(row(**overrides), traffic=traffic.of(tenant), queued_now=0)
    return {r.rule: r for r in verdict.reasons}, verdict.status


def test_a_silent_tenant_is_flagged_with_the_webhook_secret_cause(traffic):
    assert traffic.unavailable is None and traffic.of("t-silent").weeks == 4
    reasons, status = rules_of(
        traffic, "t-silent", attempts=0, tickets=0, newest_attempt=END - timedelta(hours=6)
    )
    assert status == health.CRITICAL
    silent = reasons["webhooks_silent"]
    assert silent.text.startswith("No webhooks in the last 6 h, against about 120 usually")
    assert "webhook configuration or its signing secret" in silent.text
    assert "no_traffic" not in reasons and "queued_unattempted" not in reasons


def test_a_tenant_quiet_at_its_usual_quiet_hour_is_not_flagged(traffic):
    quiet = traffic.of("t-quiet")
    assert sum(quiet.received[:6]) == 0 and sum(quiet.usual[:6]) == pytest.approx(0, abs=1)
    reasons, status = rules_of(traffic, "t-quiet")
    assert status == health.HEALTHY and not reasons


def test_rejected_webhooks_are_flagged(traffic):
    reasons, status = rules_of(traffic, "t-rejected")
    rejected = reasons["webhooks_rejected"]
    assert rejected.severity == health.CRITICAL  # half of the last hour's: still going on
    assert rejected.text.startswith("30 of 480 webhooks rejected by the API in the last 24 h")
    assert status == health.CRITICAL and "webhooks_silent" not in reasons


def test_queued_webhooks_without_attempts_are_flagged(traffic, use_db, tenant_id):
    reasons, _ = rules_of(traffic, "t-unattempted", newest_attempt=END - timedelta(hours=3))
    assert reasons["queued_unattempted"].text == (
        "60 webhooks queued in the last 3 h but no worker started an attempt for this tenant "
        "(last attempt 3.0 h ago): workers down or processing stopped"
    )
    assert "queued_unattempted" not in rules_of(traffic, "t-unattempted")[0]
    # the newest attempt comes from PostgreSQL, whatever the time range looked at
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
        add_run(conn, tenant_id, "old", "completed", NOW - timedelta(hours=3), 20)
    metrics = health.metrics(tenant_id, TimeRange(NOW - timedelta(hours=1), NOW, "last 1 h")).iloc[
        0
    ]
    assert metrics.attempts == 0
    assert metrics.newest_attempt == pd.Timestamp(NOW - timedelta(hours=3))


@pytest.mark.unit
def test_without_prometheus_the_rules_are_not_judged(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    traffic = health.read_traffic(None, END)
    assert traffic.unavailable == (
        "webhook traffic could not be judged: Prometheus is not available: "
        "PROMETHEUS_URL is not set"
    )
    assert health.assess(row(), traffic=traffic.of("t-silent")).status == health.HEALTHY


def test_a_prometheus_without_webhook_counts_is_not_judged(traffic, monkeypatch):
    other_tenant = health.read_traffic("t-no-such-tenant", END)
    assert other_tenant.unavailable == (
        "Prometheus holds no webhook counts (enhancement_requests_total)"
    )


@pytest.mark.parametrize("tenant_id", [fleet.VANDELAY, fleet.KRAMERICA, fleet.PENDANT])
@pytest.mark.unit
def test_a_planted_episode_spans_enough_webhooks_at_any_hour_of_the_week(tenant_id):
    """At night or on a Sunday "the last 3 h" holds two webhooks: the episode stretches back
    until it spans enough to judge, so the demo shows its cases whenever it is built."""
    t = fleet.tenant(tenant_id)
    hours = t.refused_hours or t.rejected_hours or t.unattempted_hours
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    for hour in range(7 * 24):
        now = monday + timedelta(hours=hour, minutes=17)
        start = t.episode_start(now, hours)
        assert start <= now - timedelta(hours=hours)
        ends = np.arange(start.timestamp(), now.timestamp(), 60.0) + 60
        expected = t.tickets_per_day / 60 * fleet.hourly_weight(ends - 1).sum()
        assert expected >= fleet.EPISODE_MIN_WEBHOOKS, (now, expected)
        assert start >= now - timedelta(hours=max(hours, 24)), now


def test_the_demo_history_plants_each_stopped_case(monkeypatch):
    """demo.backfill_prometheus: a silent tenant (wrong secret), one whose webhooks the API
    rejects, one whose jobs are queued but never attempted; an ordinary tenant passes."""
    now = END
    running = start_demo_prometheus(now, days=23)  # 3 past weeks of the same hours
    try:
        monkeypatch.setenv("PROMETHEUS_URL", running.url)
        traffic = health.read_traffic(None, now)
    finally:
        running.close()
    assert traffic.unavailable is None
    vandelay, pendant = fleet.tenant(fleet.VANDELAY), fleet.tenant(fleet.PENDANT)
    found = {
        tenant: rules_of(traffic, tenant, newest_attempt=newest)[0]
        for tenant, newest in (
            (fleet.VANDELAY, vandelay.episode_start(now, vandelay.refused_hours)),
            (fleet.KRAMERICA, now),
            (fleet.PENDANT, pendant.episode_start(now, pendant.unattempted_hours)),
            (fleet.ACME, now),
        )
    }
    assert "signing secret" in found[fleet.VANDELAY]["webhooks_silent"].text
    assert "webhooks rejected by the API" in found[fleet.KRAMERICA]["webhooks_rejected"].text
    assert "queued_unattempted" in found[fleet.PENDANT]
    assert not {"webhooks_silent", "webhooks_rejected", "queued_unattempted"} & set(
        found[fleet.ACME]
    )
