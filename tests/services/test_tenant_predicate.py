"""Defence in depth: every tenant-scoped read names its tenant, so even with row-level security
switched off (a DBA's mistake, a restored dump without policies) one tenant's views show none of
another tenant's rows. RLS stays the guarantee; this proves the second line holds on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services import feedback, health, rollups, tenant_profile, themes, weekly_review
from services.investigation import lookup
from services.timerange import TimeRange
from tests.conftest import PlatformDb
from tests.planting import add_feedback, add_history, add_runs, add_tenant, add_ticket

MINE, OTHER = "pred-mine", "pred-other"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SINCE = NOW - timedelta(days=2)
PERIOD = TimeRange(SINCE, NOW, "last 2 days")
TABLES = (
    "tenant_configs",
    "enhancement_history",
    "enhancement_feedback",
    "ticket_history",
    "dashboard.run_hours",
)


@pytest.fixture(scope="module")
def without_rls(make_platform_db) -> Iterator[PlatformDb]:
    platform = make_platform_db("norls")
    with platform.superuser() as conn:
        add_tenant(conn, MINE, "Mine")
        add_tenant(conn, OTHER, "Other")
        add_runs(conn, MINE, 10, "completed", NOW - timedelta(hours=5))
        add_runs(conn, OTHER, 20, "failed", NOW - timedelta(hours=5), error_message="KeyError: 'x'")
        add_feedback(conn, MINE, "completed-1", "thumbs_up", NOW - timedelta(hours=2))
        for i in range(3):
            add_feedback(conn, OTHER, f"failed-{i}", "thumbs_down", NOW - timedelta(hours=2))
            add_ticket(conn, OTHER, f"failed-{i}", "other tenant secret ticket text", NOW)
        add_history(conn, OTHER, 60, NOW)
        platform.use()
        rollups.refresh(NOW + timedelta(hours=1))  # the planted hours are read from rollups too
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    platform.use()
    yield platform


def test_rls_is_really_off(without_rls):
    from sqlalchemy import text

    from services import db

    with db.tenant_scope(MINE) as conn:
        for table in ("enhancement_history", "dashboard.run_hours"):
            seen = conn.execute(text(f"SELECT count(DISTINCT tenant_id) FROM {table}"))
            assert seen.scalar_one() == 2  # a query without the predicate would leak


def test_health_reads_name_their_tenant(without_rls):
    row = health.metrics(MINE, PERIOD).iloc[0]
    assert (row["tenant_id"], row["attempts"], row["failed"]) == (MINE, 10, 0)
    assert health.trend(MINE, PERIOD)["failed"].sum() == 0
    assert health.failures(MINE, PERIOD).empty


def test_feedback_and_themes_name_their_tenant(without_rls):
    summary = feedback.summary(MINE, PERIOD)
    assert summary.total.total_feedback == 1
    assert summary.total.feedback_counts["thumbs_down"] == 0
    worst = feedback.worst_rated(MINE, PERIOD, consented=True)
    assert OTHER not in worst.to_string()
    found = themes.themes(MINE, PERIOD, consented=True)
    assert found.negative_total == 0 and found.positive_total == 1


def test_investigation_and_profile_name_their_tenant(without_rls):
    assert lookup.lookup(MINE, "failed-0").runs == ()
    assert set(lookup.search_runs(MINE, PERIOD)["ticket_id"]) <= {
        f"completed-{i}" for i in range(10)
    }
    profile = tenant_profile.load(MINE, NOW)
    assert profile is not None and profile.config["tenant_id"] == MINE
    history = next(item for item in profile.checklist if "history" in item.name.lower())
    assert history.detail.startswith("0 resolved tickets")  # not the other tenant's 60


def test_weekly_review_names_its_tenant(without_rls):
    week = weekly_review.Week.of(NOW).label
    review = weekly_review.review(MINE, week, NOW)
    assert [t.tenant_id for t in review.tenants] == [MINE]
    assert review.daily["attempts"].sum() == 10
