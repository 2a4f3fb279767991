"""Health metrics on planted data (real PostgreSQL) and the rules at their boundaries (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services import health
from services.timerange import TimeRange
from tests.planting import add_feedback, add_history, add_run, add_runs, add_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)
PERIOD = TimeRange(SINCE, NOW, "last 24 hours")


def base_row(**overrides):
    row = dict(
        is_active=True,
        attempts=100,
        tickets=100,
        newest_attempt=NOW,
        completed=100,
        failed=0,
        pending=0,
        stuck=0,
        success_rate=1.0,
        p50_s=20.0,
        p95_s=40.0,
        since_last_completed=0,
        last_completed=NOW,
        avg_rating=4.5,
        ratings=100,
        thumbs_up=90,
        thumbs_down=10,
        history_tickets=200,
        as_of=NOW,
    )
    row.update(overrides)
    return row


@pytest.mark.unit
def test_healthy_row_passes_every_rule():
    verdict = health.assess(base_row())
    assert verdict.status == health.HEALTHY
    assert verdict.reasons == ()


@pytest.mark.parametrize(
    ("completed", "failed", "status"),
    [
        (96, 4, health.HEALTHY),  # 96%: above the 95% target
        (94, 6, health.HEALTHY),  # 94% of 100: the interval (87.5-97.2%) reaches the target
        (900, 100, health.DEGRADED),  # 90% of 1000: interval 88.0-91.7%, under 95% not 90%
        (870, 130, health.CRITICAL),  # 87% of 1000: interval 84.8-89.0%, wholly under 90%
        (14, 6, health.CRITICAL),  # 70% of 20 (the minimum): interval 48-85%
        (13, 6, health.HEALTHY),  # 19 attempts: too few to judge, whatever the share
    ],
)
@pytest.mark.unit
def test_success_rate_boundaries(completed, failed, status):
    row = base_row(
        completed=completed, failed=failed, success_rate=completed / (completed + failed)
    )
    assert health.assess(row).status == status


@pytest.mark.unit
def test_too_few_to_judge_is_a_note_naming_its_n():
    verdict = health.assess(base_row(completed=13, failed=6))
    note = next(r for r in verdict.reasons if r.rule == "success_rate")
    assert note.severity == health.NOT_JUDGED
    assert "too few to judge (n = 19 finished attempts, needs 20)" in note.text
    assert verdict.failing == ()


@pytest.mark.parametrize(
    ("up", "down", "judged", "status"),
    [
        (2, 1, False, health.HEALTHY),  # the tenant: 67% of 3 votes
        (4, 5, False, health.HEALTHY),  # 9 votes, just under the minimum of 10
        (3, 7, True, health.DEGRADED),  # 10 votes, 30%: interval 11-60%, under 70%
        (5, 5, True, health.HEALTHY),  # 10 votes, 50%: interval 24-76% reaches 70%
        (90, 60, True, health.DEGRADED),  # 60% of 150: interval 52-68%, just under 70%
        (95, 55, True, health.HEALTHY),  # 63% of 150: interval 55-71%, just over 70%
    ],
)
@pytest.mark.unit
def test_positive_feedback_at_its_minimum_sample_and_interval_edge(up, down, judged, status):
    verdict = health.assess(base_row(thumbs_up=up, thumbs_down=down))
    assert verdict.status == status
    positive = next((r for r in verdict.reasons if r.rule == "positive"), None)
    if not judged:
        assert positive.severity == health.NOT_JUDGED and f"n = {up + down} votes" in positive.text
    elif status == health.DEGRADED:
        assert f"n = {up + down} votes" in positive.text


@pytest.mark.parametrize(
    ("rating", "n", "status"),
    [
        (1.0, 9, health.HEALTHY),  # 9 ratings: too few
        (1.0, 10, health.DEGRADED),  # 10 ratings of 1: interval 1.0-2.1
        (1.76, 10, health.DEGRADED),  # rescaled Wilson 1.21-2.9996: just under 3.0
        (1.77, 10, health.HEALTHY),  # 1.21-3.01: just reaches it
        (2.8, 400, health.DEGRADED),  # 2.61-2.996
        (2.81, 400, health.HEALTHY),  # 2.62-3.006
    ],
)
@pytest.mark.unit
def test_rating_at_its_minimum_sample_and_interval_edge(rating, n, status):
    assert health.assess(base_row(avg_rating=rating, ratings=n)).status == status


@pytest.mark.parametrize(
    ("completed", "status"),
    [(19, health.HEALTHY), (20, health.CRITICAL)],  # p95 of 200 s judged from 20 completed
)
@pytest.mark.unit
def test_p95_needs_its_minimum_sample(completed, status):
    row = base_row(completed=completed, attempts=completed, p95_s=200.0)
    verdict = health.assess(row)
    assert verdict.status == status
    assert f"n = {completed} completed attempts" in verdict.summary


@pytest.mark.parametrize(
    ("p95", "status"),
    [
        (60.0, health.HEALTHY),
        (61.0, health.DEGRADED),
        (120.0, health.DEGRADED),
        (121.0, health.CRITICAL),
    ],
)
@pytest.mark.unit
def test_latency_boundaries(p95, status):
    assert health.assess(base_row(p95_s=p95)).status == status


@pytest.mark.unit
def test_stopped_enhancements_are_critical_even_with_good_ratios():
    row = base_row(since_last_completed=12, last_completed=NOW - timedelta(hours=3))
    verdict = health.assess(row)
    assert verdict.status == health.CRITICAL
    stalled = [r for r in verdict.reasons if r.rule == "stalled"]
    assert "12 attempts" in stalled[0].text and "3.0 h ago" in stalled[0].text


@pytest.mark.parametrize(
    ("waiting", "silent_minutes", "stalled"),
    [(2, 180, False), (3, 180, True), (3, 60, False), (3, 61, True), (50, 30, False)],
)
@pytest.mark.unit
def test_stall_needs_both_waiting_webhooks_and_silence(waiting, silent_minutes, stalled):
    row = base_row(
        since_last_completed=waiting, last_completed=NOW - timedelta(minutes=silent_minutes)
    )
    assert ("stalled" in {r.rule for r in health.assess(row).reasons}) == stalled


def test_stall_counts_only_webhooks_that_should_have_finished(use_db, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
        add_run(conn, tenant_id, "done", "completed", NOW - timedelta(hours=5), latency_s=20)
        add_run(conn, tenant_id, "before", "failed", NOW - timedelta(hours=6), 5, "boom")
        for seconds in (30, 60, 90, 300, 600, 1200):  # three are younger than the time limit
            add_run(conn, tenant_id, f"p{seconds}", "pending", NOW - timedelta(seconds=seconds))
        add_run(conn, tenant_id, "f", "failed", NOW - timedelta(hours=2), 5, "boom")
    row = health.metrics(tenant_id, PERIOD).iloc[0]
    assert row.since_last_completed == 4  # 3 old pending + 1 failed after the last completion
    assert "stalled" in {r.rule for r in health.assess(row.to_dict()).reasons}


@pytest.mark.unit
def test_quality_and_context_rules():
    rules = {
        r.rule
        for r in health.assess(
            base_row(avg_rating=1.5, thumbs_up=30, thumbs_down=70, history_tickets=49)
        ).reasons
    }
    assert rules == {"rating", "positive", "history"}
    assert (
        health.assess(
            base_row(avg_rating=3.0, thumbs_up=70, thumbs_down=30, history_tickets=50)
        ).status
        == health.HEALTHY
    )


@pytest.mark.unit
def test_inactive_tenant_is_not_alarmed():
    assert health.assess(base_row(is_active=False, attempts=0)).status == health.INACTIVE


@pytest.mark.unit
def test_old_queued_job_is_critical():
    assert health.assess(base_row(), queue_oldest_s=31 * 60).status == health.CRITICAL
    assert health.assess(base_row(), queue_oldest_s=29 * 60).status == health.HEALTHY


@pytest.fixture
def planted(use_db, tenant_id):
    """One tenant with a known mix; a second tenant whose rows must never be counted."""
    other = f"{tenant_id}-x"
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Planted Co")
        add_tenant(conn, other, "Other Co")
        start = NOW - timedelta(hours=20)
        # 40 completed with latencies 1..40 s, 8 failed (5 SDP 401, 3 LLM), 2 pending (1 stale).
        for i in range(40):
            add_run(
                conn, tenant_id, f"c{i}", "completed", start + timedelta(minutes=i), latency_s=i + 1
            )
        add_runs(
            conn,
            tenant_id,
            5,
            "failed",
            start,
            10,
            "HTTPStatusError: 401 Unauthorized for url https://sdp/api/v3/requests",
        )
        add_runs(
            conn,
            tenant_id,
            3,
            "failed",
            start,
            30,
            "TimeoutError: OpenAI request timed out after 30s",
        )
        add_run(conn, tenant_id, "p-old", "pending", NOW - timedelta(minutes=10))
        add_run(conn, tenant_id, "p-new", "pending", NOW - timedelta(seconds=30))
        add_run(conn, tenant_id, "old", "failed", NOW - timedelta(days=3), 5, "outside window")
        add_runs(conn, other, 500, "failed", start, 5, "HTTPStatusError: 429 Too Many Requests")
        for rating in (5, 4, 2):
            add_feedback(conn, tenant_id, "c1", "rating", start, rating=rating)
        add_feedback(conn, tenant_id, "c1", "thumbs_up", start)
        add_feedback(conn, tenant_id, "c2", "thumbs_up", start)
        add_feedback(conn, tenant_id, "c3", "thumbs_down", start)
        add_history(conn, tenant_id, 30, NOW)
    return tenant_id, other


def test_tenant_metrics_match_hand_computed_values(planted):
    tenant, _ = planted
    frame = health.metrics(tenant, PERIOD)
    assert len(frame) == 1  # RLS: the other tenant's config row is invisible too
    row = frame.iloc[0]
    assert (row.attempts, row.completed, row.failed, row.pending, row.stuck) == (50, 40, 8, 2, 1)
    assert row.success_rate == pytest.approx(40 / 48)
    assert row.p50_s == pytest.approx(20.5)  # median of 1..40
    assert row.p95_s == pytest.approx(1 + 0.95 * 39)  # percentile_cont, linear interpolation
    assert row.failures_by_cause == {"sdp_auth": 5, "llm_error": 3}
    assert row.avg_rating == pytest.approx(11 / 3)
    assert (row.ratings, row.thumbs_up, row.thumbs_down) == (3, 2, 1)
    positive = health.ratios(dict(row))["positive"]
    assert (positive.value, positive.n, positive.judged) == (pytest.approx(2 / 3), 3, False)
    assert row.history_tickets == 30
    verdict = health.assess(row.to_dict())
    # 40 of 48 (83%): the interval (70.4-91.3%) is under the 95% target, not wholly under 90%
    assert verdict.status == health.DEGRADED
    assert {r.rule for r in verdict.reasons} >= {"success_rate", "stuck", "positive", "history"}
    assert "n = 48 finished attempts" in verdict.summary


def test_fleet_and_tenant_views_agree(planted):
    tenant, other = planted
    fleet = health.metrics(None, PERIOD).set_index("tenant_id")
    assert fleet.loc[other, "failed"] == 500
    mine = health.metrics(tenant, PERIOD).iloc[0]
    for column in ("attempts", "completed", "failed", "p95_s", "avg_rating"):
        assert fleet.loc[tenant, column] == pytest.approx(mine[column])


def test_trend_and_failure_breakdown(planted):
    tenant, _ = planted
    trend = health.trend(tenant, PERIOD)
    assert trend["attempts"].sum() == 50
    assert trend["failed"].sum() == 8
    failures = health.failures(tenant, PERIOD)
    assert dict(zip(failures["mode"], failures["attempts"], strict=True)) == {
        "sdp_auth": 5,
        "llm_error": 3,
    }
    assert failures.iloc[0]["cause"].startswith("ServiceDesk Plus credentials")


def test_unknown_tenant_has_no_metrics(use_db):
    assert health.metrics("no-such-tenant", PERIOD).empty


def test_failure_cause_ignores_similar_tickets_text(use_db, tenant_id):
    """Only the context's errors entries classify a failure, in either JSON shape."""
    context = {
        "similar_tickets": [{"subject": "401 Unauthorized on VPN"}],
        "errors": [{"node_name": "all", "message": "Timeout after 30s"}],
    }
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
        add_run(conn, tenant_id, "obj", "failed", NOW - timedelta(hours=1), 5, None, context)
        add_run(
            conn,
            tenant_id,
            "str",
            "failed",
            NOW - timedelta(hours=1),
            5,
            None,
            json.dumps(json.dumps(context)),
        )
        add_run(
            conn,
            tenant_id,
            "llm",
            "failed",
            NOW - timedelta(hours=1),
            5,
            "TimeoutError: OpenAI request timed out after 30s",
            {"similar_tickets": [{"subject": "401 Unauthorized"}]},
        )
    row = health.metrics(tenant_id, PERIOD).iloc[0]
    assert row.failures_by_cause == {"context_timeout": 2, "llm_error": 1}


@pytest.mark.unit
def test_a_low_rating_on_few_ratings_is_a_note_not_a_failing_rule():
    # what a client screen lists comes from `failing`: never a ratio on too small a sample
    verdict = health.assess(base_row(avg_rating=1.0, ratings=3, thumbs_up=0, thumbs_down=3))
    assert verdict.status == health.HEALTHY and verdict.failing == ()
    assert {r.rule for r in verdict.reasons} == {"rating", "positive"}
    assert all(r.severity == health.NOT_JUDGED for r in verdict.reasons)
