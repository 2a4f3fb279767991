"""The weekly review: ISO weeks, PASS / MARGINAL / FAIL and escalation at their boundaries (pure),
week-over-week arithmetic, and whole reviews on planted weeks (real PostgreSQL, a database of
this module's own) checked against values computed by hand, with their three exports."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from services import events, report, stats, weekly_review
from services.errors import InvalidInput
from services.weekly_review import (
    CRITICAL,
    FAIL,
    HIGH,
    MARGINAL,
    MEDIUM,
    NO_DATA,
    NONE,
    PASS,
    Change,
    MetricResult,
    Week,
    criteria,
    escalate,
    judge,
    week_over_week,
)
from tests.planting import add_feedback, add_history, add_run, add_runs, add_tenant
from ui.common import md

WEEK = Week(date(2025, 3, 10))  # 2025-W11; the week before is 2025-W10
START, PREVIOUS = WEEK.start, WEEK.previous.start
AFTER = WEEK.end + timedelta(days=1)
A, B, QUIET, GONE, LATE = "acme-wr", "busted-wr", "quiet-wr", "gone-wr", "late-wr"
CHANGED_AT, PAUSED_AT = START + timedelta(days=2, hours=9), START + timedelta(days=3, hours=14)
CONFIG_LINE = f"Wed 12 Mar 09:00 UTC: Tenant {A} ({A}) configuration changed"
PAUSE_LINE = "Thu 13 Mar 14:00 UTC: Processing paused: reason: maintenance"


def crit(key: str) -> weekly_review.Criterion:
    return next(c for c in criteria() if c.key == key)


# --- weeks -----------------------------------------------------------------------------------


@pytest.mark.unit
def test_iso_weeks_run_monday_to_monday_utc():
    week = Week.parse("2025-W11")
    assert week == WEEK and week.label == "2025-W11"
    assert week.start == datetime(2025, 3, 10, tzinfo=UTC)
    assert week.end == datetime(2025, 3, 17, tzinfo=UTC)
    assert week.previous.label == "2025-W10"
    assert Week.parse(" 2026-W53 ").monday == date(2026, 12, 28)  # 2026 has 53 ISO weeks
    assert Week.parse("2025-W01").monday == date(2024, 12, 30)  # ISO year starts in December
    assert Week.of(datetime(2025, 3, 16, 23, 59, 59, tzinfo=UTC)) == WEEK  # Sunday night
    assert Week.of(datetime(2025, 3, 17, tzinfo=UTC)).label == "2025-W12"
    assert week.span == "Mon 10 Mar – Sun 16 Mar 2025 (UTC)"
    weeks = weekly_review.recent_weeks(datetime(2025, 3, 12, 9, tzinfo=UTC), 3)
    assert [w.label for w in weeks] == ["2025-W11", "2025-W10", "2025-W09"]


@pytest.mark.parametrize(
    "label",
    ["", "2025-11", "2025-W5", "2025-W54", "2025-W53", "x" * 500, "2025-W11'; DROP TABLE x; --"],
)
@pytest.mark.unit
def test_bad_week_labels_are_invalid_input(label):
    with pytest.raises(InvalidInput):
        Week.parse(label)


# --- PASS / MARGINAL / FAIL at the boundaries (marginal_band 5%) ------------------------------


@pytest.mark.parametrize(
    ("key", "value", "verdict"),
    [
        ("success_rate", 0.95, PASS),
        ("success_rate", 0.9025, MARGINAL),
        ("success_rate", 0.9024, FAIL),
        ("success_rate", 1.0, PASS),
        ("satisfaction", 4.0, PASS),
        ("satisfaction", 3.8, MARGINAL),
        ("satisfaction", 3.79, FAIL),
        ("positive_pct", 80.0, PASS),
        ("positive_pct", 76.0, MARGINAL),
        ("positive_pct", 75.99, FAIL),
        ("p95_s", 60.0, PASS),
        ("p95_s", 63.0, MARGINAL),
        ("p95_s", 63.01, FAIL),
        ("throughput", 50.0, PASS),
        ("throughput", 100.0, PASS),
        ("throughput", 47.5, MARGINAL),
        ("throughput", 47.49, FAIL),
        ("throughput", 105.0, MARGINAL),
        ("throughput", 105.01, FAIL),
        ("throughput", 0.0, FAIL),
    ],
)
@pytest.mark.unit
def test_verdict_boundaries(key, value, verdict):
    # a point value (no interval): the thresholds themselves
    assert judge(crit(key), stats.without_interval(value, 1000, 0)) == verdict


@pytest.mark.unit
def test_no_value_or_too_small_a_sample_is_not_judged():
    assert judge(crit("satisfaction"), stats.mean_rating(None, 0, 10)) == NO_DATA
    assert judge(crit("satisfaction"), stats.mean_rating(1.0, 9, 10)) == NO_DATA  # < 10 ratings
    assert judge(crit("satisfaction"), stats.mean_rating(1.0, 10, 10)) == FAIL
    assert judge(crit("success_rate"), stats.proportion(10, 19, 20)) == NO_DATA  # < 20 runs
    assert judge(crit("success_rate"), stats.proportion(10, 20, 20)) == FAIL


@pytest.mark.unit
def test_a_share_fails_only_when_its_interval_says_so():
    # 18 of 20 (90%): the Wilson interval reaches 97%, past the 95% target: not failing
    assert judge(crit("success_rate"), stats.proportion(18, 20, 20)) == PASS
    # 900 of 1000 (90%): the interval ends at 91.7%, within 5% of the target: marginal
    assert judge(crit("success_rate"), stats.proportion(900, 1000, 20)) == MARGINAL
    # 850 of 1000: the interval ends at 87.1%, more than 5% under the target
    assert judge(crit("success_rate"), stats.proportion(850, 1000, 20)) == FAIL
    # satisfaction 3.5 on 10 ratings reaches 4.3 (PASS); on 400 ratings it ends at 3.6 (FAIL)
    assert judge(crit("satisfaction"), stats.mean_rating(3.5, 10, 10)) == PASS
    assert judge(crit("satisfaction"), stats.mean_rating(3.5, 400, 10)) == FAIL


@pytest.mark.unit
def test_fleet_throughput_target_is_the_sum_of_the_tenants():
    fleet = next(c for c in criteria(tenants_in_fleet=4) if c.key == "throughput")
    assert (fleet.low, fleet.high) == (200, 400)
    assert fleet.target_text == "200–400 tickets / day"


# --- week over week -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "now", "before", "relative", "arrow", "declined"),
    [
        ("satisfaction", 3.2, 4.0, -0.2, "↓", False),  # exactly 20% down: not more than 20%
        ("satisfaction", 3.19, 4.0, -0.2025, "↓", True),
        ("success_rate", 0.76, 0.95, -0.2, "↓", False),
        ("success_rate", 0.75, 0.95, -0.210526316, "↓", True),
        ("p95_s", 60.0, 50.0, 0.2, "↑", False),  # latency: a rise is the decline
        ("p95_s", 60.5, 50.0, 0.21, "↑", True),
        ("p95_s", 30.0, 60.0, -0.5, "↓", False),  # faster is never a decline
        ("throughput", 40.0, 50.0, -0.2, "↓", False),
        ("throughput", 39.9, 50.0, -0.202, "↓", True),
        ("throughput", 90.0, 50.0, 0.8, "↑", False),
        ("positive_pct", 80.5, 80.0, 0.00625, "→", False),  # under 1%: unchanged
    ],
)
@pytest.mark.unit
def test_week_over_week_arithmetic(key, now, before, relative, arrow, declined):
    change = week_over_week(crit(key), now, before)
    assert change.relative == pytest.approx(relative)
    assert (change.arrow, change.declined) == (arrow, declined)


@pytest.mark.unit
def test_a_large_decline_within_the_noise_does_not_escalate():
    # 30 requests last week, 20 this week: -33%, but within Poisson noise
    assert not stats.rate_differs(20, 7, 30, 7)
    assert stats.rate_differs(200, 7, 300, 7)  # the same drop on ten times the traffic is real
    change = week_over_week(crit("throughput"), 20 / 7, 30 / 7, beyond_noise=False)
    assert (change.declined, change.text) == (False, "↓ -33.3% (within noise)")
    # shares: 80% of 10 vs 100% of 10 overlap; 60% of 500 vs 90% of 500 do not
    assert not stats.proportion(8, 10, 10).differs_from(stats.proportion(10, 10, 10))
    assert stats.proportion(300, 500, 10).differs_from(stats.proportion(450, 500, 10))
    # under the minimum sample there is nothing to compare
    assert not stats.proportion(1, 4, 10).differs_from(stats.proportion(10, 10, 10))


@pytest.mark.unit
@pytest.mark.parametrize("n", [2, 5, 20, 21, 57, 100, 380, 1000, 20000])
def test_the_p95_interval_is_the_order_statistics_rounded_outward(n):
    values = np.sort(np.random.default_rng(n).lognormal(3, 0.8, n))
    low_rank, high_rank = stats.quantile_ranks(n)
    half = 1.96 * (n * 0.95 * 0.05) ** 0.5
    assert low_rank <= n * 0.95 - half or low_rank == 1
    assert high_rank >= n * 0.95 + half or high_rank == n
    # percentile_cont is numpy's linear percentile
    grid = np.quantile(values, stats.QUANTILE_GRID)
    low, high = stats.quantile_bounds(list(grid), n)
    assert low <= values[low_rank - 1] and high >= values[high_rank - 1]
    assert low <= np.quantile(values, 0.95) <= high
    if n >= 1000:  # the grid's rounding widens it by at most one step on each side
        assert low >= np.quantile(values, (low_rank - 1) / (n - 1) - 0.001)
        assert high <= np.quantile(values, (high_rank - 1) / (n - 1) + 0.001)


@pytest.mark.unit
def test_week_over_week_without_a_comparable_week():
    assert week_over_week(crit("throughput"), 10.0, None) == Change(None, "", False)
    assert week_over_week(crit("throughput"), 10.0, 0.0) == Change(None, "↑", False)
    assert week_over_week(crit("throughput"), 0.0, 0.0) == Change(0.0, "→", False)
    assert Change(-0.25, "↓", True).text == "↓ -25.0%"
    assert Change(None, "↑", False).text == "↑ new"


# --- escalation -----------------------------------------------------------------------------


UNCHANGED = Change(0.0, "→", False)


def result(
    key: str,
    value: float | None,
    verdict: str | None = None,
    change: Change = UNCHANGED,
) -> MetricResult:
    c = crit(key)
    n = 0 if verdict == NO_DATA else 1000  # NO DATA: a sample under the minimum
    e = stats.without_interval(value, n, c.min_sample)
    return MetricResult(c, value, value, n, verdict or judge(c, e), change, e)


def passing(**overrides: MetricResult) -> tuple[MetricResult, ...]:
    metrics = {
        "satisfaction": result("satisfaction", 4.5),
        "success_rate": result("success_rate", 0.99),
        "p95_s": result("p95_s", 40.0),
        "throughput": result("throughput", 70.0),
        "positive_pct": result("positive_pct", 90.0),
    }
    metrics.update(overrides)
    return tuple(metrics.values())


@pytest.mark.unit
def test_everything_passing_is_no_escalation():
    assert escalate(passing()) == weekly_review.Escalation(NONE, ())


@pytest.mark.parametrize(
    ("metric", "level"),
    [
        (result("success_rate", 0.90), HIGH),  # failing, but not below 90%
        (result("success_rate", 0.8999), CRITICAL),
        (result("p95_s", 120.0), HIGH),  # failing, but not above the 120 s SLA
        (result("p95_s", 120.5), CRITICAL),
        (result("satisfaction", 3.0), HIGH),
        (result("satisfaction", 3.9), MEDIUM),  # one marginal metric
        (result("throughput", 104.0), MEDIUM),
        (result("throughput", 120.0), HIGH),
        (result("success_rate", 0.5, verdict=NO_DATA), NONE),  # too few runs to judge
        (result("satisfaction", 4.5, change=Change(-0.21, "↓", True)), HIGH),  # > 20% decline
    ],
)
@pytest.mark.unit
def test_escalation_levels(metric, level):
    found = escalate(passing(**{metric.criterion.key: metric}))
    assert found.level == level
    assert bool(found.reasons) == (level != NONE)


@pytest.mark.unit
def test_escalation_lists_every_reason_worst_first():
    found = escalate(
        passing(success_rate=result("success_rate", 0.5), satisfaction=result("satisfaction", 3.9))
    )
    assert [r.level for r in found.reasons] == [CRITICAL, HIGH, MEDIUM]
    assert found.reasons[0].text == ("Success rate 50.0% (n = 1000 finished attempts) is below 90%")
    assert "fails its target (≥ 95.0%)" in found.reasons[1].text
    assert "marginal" in found.reasons[2].text


# --- whole reviews on planted weeks ---------------------------------------------------------


@pytest.fixture(scope="module")
def db(make_platform_db) -> Iterator:
    """A: every criterion passes in WEEK, p95 rose 50% (the only escalation: high).
    B: half its runs fail at 200 s (critical). QUIET: no traffic in WEEK. GONE is deactivated
    and LATE was onboarded after WEEK: neither is reviewed."""
    platform = make_platform_db("weekly")
    hour = timedelta(hours=1)
    with platform.superuser() as conn:
        for tenant in (A, B, QUIET, GONE, LATE):
            add_tenant(conn, tenant, name=f"Tenant {tenant}", active=tenant != GONE)
        conn.execute("UPDATE tenant_configs SET created_at = %s", (PREVIOUS - timedelta(days=30),))
        conn.execute(
            "UPDATE tenant_configs SET created_at = %s WHERE tenant_id = %s", (AFTER, LATE)
        )
        # A, this week: 380 completed (30 s) + 20 failed.
        add_runs(conn, A, 380, "completed", START, latency_s=30, step=timedelta(minutes=25))
        add_runs(conn, A, 20, "failed", START + hour, latency_s=5, step=hour)
        # A, the week before: 500 completed (20 s).
        add_runs(conn, A, 500, "completed", PREVIOUS, latency_s=20, step=timedelta(minutes=20))
        for rating in (5, 5, 4, 4, 2):
            add_feedback(conn, A, "completed-1", "rating", START + hour, rating=rating)
        for i in range(10):
            add_feedback(
                conn,
                A,
                f"completed-{i}",
                "thumbs_up" if i < 8 else "thumbs_down",
                START + hour,
                comment="network" if i >= 8 else None,
            )
            add_feedback(conn, A, f"completed-{i}", "thumbs_up", PREVIOUS + hour)
        for _ in range(5):
            add_feedback(conn, A, "completed-2", "rating", PREVIOUS + hour, rating=5)
        # Rows just outside the two weeks count for neither.
        add_run(conn, A, "late", "failed", WEEK.end, latency_s=1)
        add_run(conn, A, "early", "failed", PREVIOUS - timedelta(microseconds=1), latency_s=1)
        # B, this week: 100 completed at 200 s, 100 failed.
        add_runs(conn, B, 100, "completed", START, latency_s=200, step=hour)
        add_runs(conn, B, 100, "failed", START, latency_s=5, step=hour)
        add_feedback(conn, B, "completed-1", "rating", START, rating=1)
        # Technicians on B's failed runs; A has a deep ticket_history, B none.
        for i in range(4):
            add_feedback(conn, B, f"failed-{i}", "thumbs_down", START + 2 * hour)
        add_history(conn, A, 120, START, span_days=90)
        # What changed in W11: A's configuration, and processing paused once.
        conn.execute(
            "UPDATE tenant_configs SET updated_at = %s WHERE tenant_id = %s", (CHANGED_AT, A)
        )
        conn.execute(
            'INSERT INTO audit_log ("timestamp", "user", operation, status, details)'
            " VALUES (%s, 'ops.person', 'pause_processing', 'success', %s)",
            (PAUSED_AT, '{"reason": "maintenance"}'),
        )
        add_runs(conn, QUIET, 30, "completed", PREVIOUS, latency_s=10, step=hour)  # last week only
        add_runs(conn, GONE, 50, "failed", START, latency_s=5, step=hour)
        add_runs(conn, LATE, 50, "failed", START, latency_s=5, step=hour)
    return platform


@pytest.fixture
def use(db) -> Iterator:
    db.use()
    yield db


def values(scope: weekly_review.ScopeReview) -> dict[str, tuple]:
    return {m.criterion.key: (m.value, m.verdict, m.change.arrow) for m in scope.metrics}


def test_tenant_review_matches_hand_computed_values(use):
    review = weekly_review.review(A, "2025-W11", AFTER)
    assert review.fleet is None and review.days == 7.0 and not review.in_progress
    (scope,) = review.tenants
    assert (scope.tickets, scope.feedback) == (400, 15)
    got = values(scope)
    assert got["success_rate"] == (pytest.approx(0.95), PASS, "↓")  # 380 / 400: on target
    assert got["p95_s"] == (pytest.approx(30.0), PASS, "↑")
    assert got["throughput"] == (pytest.approx(400 / 7), PASS, "↓")
    # (5+5+4+4+2)/5 = 4.0 on 5 ratings: under the minimum of 10, neither judged nor compared
    assert got["satisfaction"] == (pytest.approx(4.0), NO_DATA, "")
    assert got["positive_pct"] == (pytest.approx(80.0), PASS, "↓")  # 8 / (8 + 2)
    changes = {m.criterion.key: m.change for m in scope.metrics}
    assert changes["p95_s"].relative == pytest.approx(0.5) and changes["p95_s"].declined
    assert changes["throughput"].relative == pytest.approx(-0.2)  # 400 vs 500 runs: not > 20%
    assert not changes["throughput"].declined
    assert changes["satisfaction"].text == "not enough data to compare"
    # 80% of 10 vs 100% of 10: a 20% drop, but the two weeks' intervals overlap
    assert changes["positive_pct"].relative == pytest.approx(-0.2)
    assert not changes["positive_pct"].declined
    assert scope.escalation.level == HIGH
    assert [r.text for r in scope.escalation.reasons] == [
        "p95 processing time rose 50.0% week over week (a decline of more than 20%, beyond the "
        "noise): 20 s → 30 s (n = 380 this week)"
    ]


# The p95's noise edge: last week 19 runs at 20 s and one at 40 s (p95 21 s, interval 20-40 s:
# at n = 20 the upper end is the slowest run); this week 15 runs at 10 s and 5 at v, so the
# p95 and its whole interval are v. A rise of +86% or more each time, but beyond the noise only
# once this week's interval clears last week's (v > 40 s; at 40 s they touch).
P95_EDGE = {"p95-below-wr": 39, "p95-at-wr": 40, "p95-above-wr": 41}


@pytest.fixture(scope="module")
def p95_edge(platform_db):
    step = timedelta(minutes=30)
    with platform_db.superuser() as conn:
        for tenant, v in P95_EDGE.items():
            add_tenant(conn, tenant)
            conn.execute(
                "UPDATE tenant_configs SET created_at = %s WHERE tenant_id = %s",
                (PREVIOUS - timedelta(days=30), tenant),
            )
            add_runs(conn, tenant, 19, "completed", PREVIOUS, latency_s=20, step=step)
            add_runs(conn, tenant, 1, "completed", PREVIOUS + 20 * step, latency_s=40)
            add_runs(conn, tenant, 15, "completed", START, latency_s=10, step=step)
            add_runs(conn, tenant, 5, "completed", START + 15 * step, latency_s=v, step=step)
    return platform_db


@pytest.mark.parametrize(("tenant", "beyond"), [(t, v > 40) for t, v in P95_EDGE.items()])
def test_a_p95_rise_escalates_only_beyond_its_interval(p95_edge, tenant, beyond):
    p95_edge.use()
    (scope,) = weekly_review.review(tenant, "2025-W11", AFTER).tenants
    p95 = next(m for m in scope.metrics if m.criterion.key == "p95_s")
    v = P95_EDGE[tenant]
    assert (p95.value, p95.previous) == (pytest.approx(v), pytest.approx(21.0))
    assert (p95.estimate.low, p95.estimate.high) == (pytest.approx(v), pytest.approx(v))
    assert p95.verdict == PASS and p95.change.relative > 0.8
    assert p95.change.declined is beyond
    assert p95.change.text.endswith("(within noise)") is not beyond
    rose = [
        r.text for r in scope.escalation.reasons if r.text.startswith("p95 processing time rose")
    ]
    assert bool(rose) is beyond
    assert f"95% interval {v} s–{v} s, n = 20 completed attempts" in p95.sample_text


def test_tenant_review_never_counts_another_tenants_rows(use):
    review = weekly_review.review(B, "2025-W11", AFTER)
    assert [s.tenant_id for s in review.tenants] == [B]
    (scope,) = review.tenants
    got = values(scope)
    assert scope.tickets == 200
    assert got["success_rate"][:2] == (0.5, FAIL)
    assert got["p95_s"][:2] == (pytest.approx(200.0), FAIL)
    assert got["satisfaction"][:2] == (1.0, NO_DATA)  # one rating: below the minimum sample
    assert scope.escalation.level == CRITICAL
    assert review.daily["attempts"].sum() == 200
    assert review.themes.negative_total == 5


def test_fleet_review_adds_up_and_leaves_out_inactive_and_later_tenants(use):
    review = weekly_review.review(None, "2025-W11", AFTER)
    assert [s.tenant_id for s in review.tenants] == [B, A, QUIET]  # worst first, then by name
    fleet = review.fleet
    # A: 400 runs, B: 200; GONE and LATE are not reviewed but their runs are the fleet's
    # traffic: 50 + 50 more.
    assert fleet.tickets == 700
    got = values(fleet)
    assert got["success_rate"][0] == pytest.approx((380 + 100) / 700)
    # 480 completed: 380 at 30 s then 100 at 200 s; p95 sits at position 0.95 * 479 = 455.05.
    assert got["p95_s"][0] == pytest.approx(200.0)
    assert got["throughput"][:2] == (pytest.approx(100.0), FAIL)  # target 3 x 50-100 = 150-300
    assert fleet.escalation.level == CRITICAL
    quiet = next(s for s in review.tenants if s.tenant_id == QUIET)
    assert values(quiet)["throughput"] == (0.0, FAIL, "↓")
    assert quiet.escalation.level == HIGH


def test_a_week_with_no_traffic(use):
    review = weekly_review.review(QUIET, "2025-W11", AFTER)
    (scope,) = review.tenants
    assert (scope.tickets, scope.feedback) == (0, 0)
    got = values(scope)
    for key in ("satisfaction", "success_rate", "p95_s", "positive_pct"):
        assert got[key] == (None, NO_DATA, "")
    assert got["throughput"] == (0.0, FAIL, "↓")
    assert [r.text for r in scope.escalation.reasons] == [
        "Throughput 0.0 tickets / day (0 tickets) is below the expected 50–100 tickets / day",
        "Throughput fell 100.0% week over week (a decline of more than 20%, beyond the noise): "
        "4.3 tickets / day → 0.0 tickets / day (n = 0 this week)",
    ]
    assert review.daily.empty and review.themes.empty
    nothing = weekly_review.review(QUIET, "2025-W05", AFTER)  # no traffic either week
    assert values(nothing.tenants[0])["throughput"] == (0.0, FAIL, "→")


def test_a_week_in_progress_and_a_future_week(use):
    review = weekly_review.review(A, "2025-W11", START + timedelta(days=3, hours=12))
    assert review.in_progress and review.days == 3.5
    # Read up to now: completed runs every 25 min for 3.5 days (202), the 20 failed ones.
    assert review.tenants[0].tickets == 222
    assert values(review.tenants[0])["throughput"][0] == pytest.approx(222 / 3.5)
    with pytest.raises(InvalidInput):
        weekly_review.review(A, "2025-W12", AFTER - timedelta(days=2))
    assert weekly_review.as_of("2025-W11", datetime(2030, 1, 1, tzinfo=UTC)) == WEEK.end


def test_exports_markdown_csv_and_html(use):
    review = weekly_review.review(None, "2025-W11", AFTER)
    markdown = report.markdown(review)
    assert markdown.startswith("# Weekly metrics review 2025-W11")
    assert "| **Fleet** | critical |" in markdown
    assert (
        f"| Tenant {A} | high | ▫️ 4.00 / 5 (n = 5)  not enough data to compare "
        "| ✅ 95.0% (n = 400)  ↓ -5.0% |" in markdown
    )
    assert "- 🔴 **CRITICAL** — Fleet:" in markdown
    assert "MARGINAL = within 5% of the target" in markdown
    table = pd.read_csv(io.StringIO(report.csv_text(review)))
    assert len(table) == 4 * 5  # fleet + 3 tenants, five criteria each
    a_p95 = table[(table["tenant_id"] == A) & (table["criterion"] == "p95 processing time")].iloc[0]
    assert (a_p95["value"], a_p95["previous_week"], a_p95["change_pct"]) == (30, 20, 50)
    assert (a_p95["verdict"], a_p95["escalation"], a_p95["trend"]) == (PASS, HIGH, "↑")
    week = WEEK.range(AFTER)
    changed = events.what_changed(
        events.combined(events.fleet_tenant_events(week), events.platform_events(week))
    )
    assert changed == [CONFIG_LINE, PAUSE_LINE]
    assert "## What changed this week" not in markdown  # only when the events are given
    with_changes = report.markdown(review, changed)
    assert f"## What changed this week\n\n- {CONFIG_LINE}\n- {PAUSE_LINE}\n" in with_changes
    assert "No onboarding, configuration change" in report.markdown(review, [])
    html = report.html_document(review, changed)
    assert f"<h2>What changed this week</h2>\n<ul><li>{CONFIG_LINE}</li>" in html
    assert "ops.person" not in with_changes + html  # operators are never named
    assert "n = the finished attempts (success rate)" in markdown  # what the cells' n count
    units = table[table["tenant_id"] == A].set_index("criterion")["sample_of"]
    assert units["Throughput"] == "tickets" and units["p95 processing time"] == "completed attempts"
    assert "request" not in markdown.lower() and "latency" not in markdown.lower()
    assert "Throughput** counts tickets" in report.how_verdicts_are_decided()
    assert html.startswith("<!DOCTYPE html>") and html.count("<html") == 1
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js inline: offline
    # scorecard, volume, latency, negative signals
    assert html.count('class="plotly-graph-div"') == 4
    assert f"Tenant {A}" in html and "critical" in html


def test_what_to_look_at_comes_from_the_runs_signals(use):
    """Fleet W11: 8 negative entries (A: 2 thumbs down and a 2-star; B: a 1-star and 4 thumbs
    down on failed runs), 12 positive (all A's). B has no ticket_history, A 120 tickets."""
    found = weekly_review.review(None, "2025-W11", AFTER).themes
    assert (found.negative_total, found.positive_total) == (8, 12)
    negative = found.negative.set_index("signal")
    assert negative.loc["history:low", "label"] == "tenant history under 50 tickets"
    assert negative.loc["history:low", "feedback"] == 5
    assert negative.loc["history:low", "lift"] == pytest.approx((6 / 9) / (1 / 13))
    assert negative.loc["failed:unknown", "label"] == "failed: Unknown failure"
    assert negative.loc["failed:unknown", "feedback"] == 4
    assert found.positive.set_index("signal").loc["history:deep", "feedback"] == 12
    markdown = report.markdown(weekly_review.review(None, "2025-W11", AFTER))
    assert "## What to look at: signals of the week's feedback" in markdown
    assert "**tenant history under 50 tickets**: 5 entries" in markdown


@pytest.mark.parametrize(
    "review",
    [
        lambda: weekly_review.review(LATE, "2025-W11", AFTER),  # onboarded after W11
        lambda: weekly_review.review(None, "2024-W50", AFTER),  # before any tenant existed
    ],
    ids=["tenant-not-yet-onboarded", "fleet-without-tenants"],
)
def test_a_week_without_tenants_renders_and_exports(use, review):
    review = review()
    assert review.tenants == ()
    markdown = report.markdown(review)
    assert markdown.startswith("# Weekly metrics review")
    table = pd.read_csv(io.StringIO(report.csv_text(review)))
    expected = len(review.scopes) * 5  # the fleet's five criteria, or nothing at all
    assert len(table) == expected and "criterion" in table.columns
    html = report.html_document(review)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


# --- the page under AppTest -----------------------------------------------------------------


def run_page(path: str, user, **query: str):
    from tests.conftest import run_page_as

    return run_page_as(user, path, **query)


def plain(markdown: str) -> str:
    """Markdown that ui.common.md escaped, as it reads on the page."""
    return markdown.replace("\\", "").replace("\u2060", "")


def test_review_page_for_a_tenant_and_the_fleet(use):
    from ui.identity import ADMIN, SUPPORT, User

    admin = User("lead@example.com", "lead", ADMIN)
    at = run_page("views/weekly_review.py", admin, week="2025-W11")
    assert not at.exception and not at.error
    # Critical escalations stand out above the list (the fleet and B).
    critical = [m.value for m in at.markdown if m.value.startswith(":red-badge")]
    assert [text.split("**")[1] for text in critical] == ["Fleet", md(f"Tenant {B}")]  # as text
    assert any("compared with 2025-W10" in c.value for c in at.caption)
    table = at.dataframe[1].value  # after the list of escalations
    assert table["Tenant"].tolist() == ["★ Fleet", f"Tenant {B}", f"Tenant {A}", f"Tenant {QUIET}"]
    assert table["Escalation"].tolist() == ["🔴 critical", "🔴 critical", "🟠 high", "🟠 high"]
    assert table.iloc[2]["p95 processing time (≤ 60 s)"] == "✅ 30 s (n = 380)  ↑ +50.0%"
    escalations = at.dataframe[0].value
    assert escalations["Tenant"].tolist() == [
        "★ Fleet",
        f"Tenant {B}",
        f"Tenant {A}",
        f"Tenant {QUIET}",
    ]
    assert any("within **5%**" in m.value for m in at.markdown)  # MARGINAL explained on the page
    # what changed this week, on the page and in the Markdown export
    assert [s.value for s in at.subheader].count("What changed this week") == 1
    assert any(f"- {PAUSE_LINE}" in plain(m.value) for m in at.markdown)
    assert not at.code  # the export's expander is closed: its text is built once opened
    at.session_state["review_markdown_open"] = True
    exported = at.run().code[0].value
    assert "## What changed this week" in exported and f"- {CONFIG_LINE}" in exported
    assert [m.label for m in at.metric] == ["🔴 Critical", "🟠 High", "🟡 Medium", "🟢 None"]

    support = User("eng@example.com", "eng", SUPPORT)
    at = run_page("views/weekly_review.py", support, week="2025-W11")
    assert not at.dataframe and "fleet review is for admins" in at.info[0].value
    at = run_page("views/weekly_review.py", support, week="2025-W11", tenant=B)
    table = at.dataframe[1].value.set_index("Criterion")  # one tenant: a row per criterion
    assert table.loc["Success rate", "This week"] == "50.0%"
    assert table.loc["Success rate", "Verdict"] == "❌ FAIL"
    assert table.loc["Satisfaction", "Verdict"] == "▫️ NO DATA"
    assert table.loc["Throughput", "Based on"] == "28.6 tickets / day (200 tickets)"
    assert "too few to judge (n = 1 ratings" in table.loc["Satisfaction", "Based on"]
    at = run_page("views/weekly_review.py", support, week="2025-W11", tenant=A)
    texts = " ".join(plain(m.value) for m in at.markdown)
    assert "Wed 12 Mar 09:00 UTC: Configuration changed" in texts
    at.session_state["review_markdown_open"] = True
    assert "Processing paused" not in texts + at.run().code[0].value  # operations: admins only
    assert all("Fleet" not in str(frame.value) for frame in at.dataframe)

    at = run_page("views/weekly_review.py", support, week="2025-W11", tenant=LATE)
    assert not at.exception and not at.error
    assert "No active tenant was configured in that week" in at.warning[0].value
    assert [b.label for b in at.get("download_button")] == [
        "Markdown (review notes)",
        "CSV (one row per tenant and criterion)",
        "HTML with charts (works offline)",
    ]

    at = run_page("views/weekly_review.py", admin, week="2025-W99")
    assert not at.exception
    assert "not a week of that year" in at.error[0].value
