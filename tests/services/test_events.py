"""Chart events on planted rows (real PostgreSQL): a tenant's own events in its scope, platform
operations in admin scope without operators' names, incidents found in a trend, and the chart
drawing them with hover text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy.exc import DBAPIError

from services import charts, events
from services.db import tenant_scope
from services.errors import DashboardError
from services.timerange import TimeRange
from tests.planting import add_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=7)
PERIOD = TimeRange(SINCE, NOW, "last 7 days")
OPERATOR = "ops.person@aiagents.example"


@pytest.fixture(scope="module")
def planted(make_platform_db):
    db = make_platform_db("events")
    with db.superuser() as conn:
        add_tenant(conn, "ev-new", name="New Co")
        add_tenant(conn, "ev-old", name="Old Co")
        add_tenant(conn, "ev-other", name="Other Co")
        conn.execute(
            "UPDATE tenant_configs SET created_at = %s, updated_at = %s WHERE tenant_id = 'ev-new'",
            (NOW - timedelta(days=2), NOW - timedelta(days=2)),
        )
        conn.execute(
            "UPDATE tenant_configs SET created_at = %s, updated_at = %s WHERE tenant_id = 'ev-old'",
            (NOW - timedelta(days=90), NOW - timedelta(days=1)),
        )
        conn.execute(
            "UPDATE tenant_configs SET created_at = %s, updated_at = %s"
            " WHERE tenant_id = 'ev-other'",
            (NOW - timedelta(days=3), NOW - timedelta(hours=5)),
        )
        for hours, operation, status, details in (
            (
                30,
                "pause_processing",
                "success",
                '{"reason": "queue above 200", "queue_depth": 247}',
            ),
            (29, "resume_processing", "success", '{"paused_seconds": 900}'),
            (28, "clear_queue", "failure", '{"error": "confirmation token expired"}'),
            (27, "rotate_keys", "success", "{}"),  # not an operation drawn on the charts
            (24 * 30, "sync_tenant_configs", "success", "{}"),  # outside the range
        ):
            conn.execute(
                'INSERT INTO audit_log ("timestamp", "user", operation, status, details)'
                " VALUES (%s, %s, %s, %s, %s)",
                (NOW - timedelta(hours=hours), OPERATOR, operation, status, details),
            )
    db.use()
    return db


def test_tenant_events_are_its_own_onboarding_and_config_changes(planted):
    new = events.tenant_events("ev-new", PERIOD)
    assert new["kind"].tolist() == ["onboarded"]  # created and never changed since
    old = events.tenant_events("ev-old", PERIOD)
    assert old["kind"].tolist() == ["config_changed"]  # onboarded before the range
    assert old["at"].tolist() == [pd.Timestamp(NOW - timedelta(days=1))]
    assert "Other" not in " ".join(old["detail"])


def test_platform_events_never_name_the_operator(planted):
    found = events.platform_events(PERIOD)
    assert found["kind"].tolist() == ["pause_processing", "resume_processing", "clear_queue"]
    assert found["label"].tolist() == [
        "Processing paused",
        "Processing resumed",
        "Queue cleared (failure)",
    ]
    assert "queue depth: 247" in found["detail"][0]
    assert OPERATOR not in found.to_string() and "ops.person" not in found.to_string()


def test_the_reader_role_cannot_read_audit_log(planted):
    with pytest.raises((DBAPIError, DashboardError)), tenant_scope("ev-old") as conn:
        conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar()


def test_for_tenant_adds_platform_operations_only_when_asked(planted):
    client = events.for_tenant("ev-old", PERIOD)
    assert set(client["kind"]) == {"config_changed"}
    admin = events.for_tenant("ev-old", PERIOD, with_platform=True)
    assert set(admin["kind"]) == {
        "config_changed",
        "pause_processing",
        "resume_processing",
        "clear_queue",
    }
    assert admin["at"].is_monotonic_increasing


def test_fleet_events_name_the_tenant(planted):
    found = events.fleet_tenant_events(PERIOD)
    assert set(found["label"]) == {
        "New Co onboarded",
        "Old Co configuration changed",
        "Other Co onboarded",
        "Other Co configuration changed",
    }
    lines = events.what_changed(found)
    assert lines[0] == "Tue 17 Nov 12:00 UTC: Other Co (ev-other) onboarded"  # oldest first


def _trend(rows):
    hours = pd.date_range(NOW - timedelta(hours=len(rows)), periods=len(rows), freq="h", tz="UTC")
    frame = pd.DataFrame(rows, columns=["completed", "failed"])
    frame["bucket"] = hours
    frame["attempts"] = frame["completed"] + frame["failed"]
    frame["success_rate"] = frame["completed"] / frame["attempts"]
    frame["p95_s"] = 30.0
    return frame


@pytest.mark.unit
def test_incidents_are_buckets_judged_below_the_critical_line():
    # 5/10 (too few to judge), 10/40 failed twice in a row (one episode), 36/40 (interval
    # 77-96% reaches 90%: not an incident), then 0 of 30
    trend = _trend([(5, 5), (30, 10), (25, 15), (36, 4), (0, 30)])
    found = events.incidents(trend)
    assert found["at"].tolist() == [trend["bucket"][1], trend["bucket"][4]]
    assert "10 of 40 attempts failed" in found["detail"][0]


@pytest.mark.unit
def test_chart_draws_events_in_range_with_hover_text():
    trend = _trend([(30, 0), (30, 0), (0, 30)])
    marks = events.combined(
        events.incidents(trend),
        pd.DataFrame(
            [
                {
                    "at": trend["bucket"][0],
                    "kind": "config_changed",
                    "label": "Configuration changed",
                    "detail": "Configuration changed",
                },
                {
                    "at": NOW - timedelta(days=30),
                    "kind": "onboarded",
                    "label": "Service started",
                    "detail": "Service started",
                },
            ]
        ),
    )
    fig = charts.with_events(charts.volume_and_success(trend, 0.95), marks)
    labels = [a.text for a in fig.layout.annotations if a.hovertext]
    # the incident is in the last bucket: its label reads leftwards from its line
    assert labels == ["▾ Configuration changed", "Incident: low success rate ▾"]
    assert all("UTC: " in a.hovertext for a in fig.layout.annotations if a.hovertext)
    assert sum(1 for s in fig.layout.shapes if s.line.dash == "dot" and s.yref == "paper") == 2
