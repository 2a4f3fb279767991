"""Tenant profile: preferences against their ranges, the onboarding checklist on planted tenants,
and secrets reported only as set/missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services import playbooks, tenant_profile
from tests.planting import add_feedback, add_history, add_runs, add_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def by_name(items):
    return {item.name: item for item in items}


@pytest.mark.unit
def test_preferences_are_checked_against_their_ranges():
    items = by_name(
        tenant_profile.check_preferences(
            {
                "max_enhancement_length": 2000,
                "kb_timeout_seconds": 90,
                "include_monitoring": "yes",
                "gpt4_model": "gpt-4",
            }
        )
    )
    assert items["max_enhancement_length"].ok
    assert (
        not items["kb_timeout_seconds"].ok and "allowed 1-60" in items["kb_timeout_seconds"].detail
    )
    assert not items["include_monitoring"].ok
    assert not items["gpt4_model"].ok and "not a setting" in items["gpt4_model"].detail
    defaults = by_name(tenant_profile.check_preferences({}))
    assert all(item.ok and "default" in item.detail for item in defaults.values())


def test_onboarded_tenant_passes_the_checklist(use_db, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Onboarded Ltd", preferences={"kb_timeout_seconds": 20})
        add_runs(conn, tenant_id, 30, "completed", NOW - timedelta(days=2))
        add_history(conn, tenant_id, 120, NOW, span_days=45)
        conn.execute(
            "INSERT INTO system_inventory (tenant_id, ip_address, hostname)"
            " VALUES (%s, '10.0.0.5', 'fw-1')",
            (tenant_id,),
        )
        add_feedback(conn, tenant_id, "completed-1", "thumbs_up", NOW - timedelta(days=1))
    profile = tenant_profile.load(tenant_id, NOW)
    assert profile is not None
    assert all(item.ok for item in profile.checklist), profile.checklist
    assert profile.secrets == {
        "ServiceDesk Plus API key": True,
        "Webhook signing secret": True,
        "Jira API token": False,
    }
    # The secrets themselves are nowhere in what the profile returns.
    assert "gAAAAA" not in repr(profile)
    assert profile.config["enhancement_preferences"] == {"kb_timeout_seconds": 20}


def test_new_tenant_fails_the_right_items(use_db, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Brand New", active=True)
        add_runs(conn, tenant_id, 3, "pending", NOW - timedelta(hours=1))
        add_history(conn, tenant_id, 20, NOW, span_days=5)
    items = by_name(tenant_profile.load(tenant_id, NOW).checklist)
    assert items["Tickets arriving"].ok
    assert not items["A first enhancement completed"].ok
    assert not items["Enough ticket history for context"].ok
    assert "20 resolved tickets over 5 days" in items["Enough ticket history for context"].detail
    assert not items["System inventory present"].ok
    assert not items["Feedback flowing"].ok


def test_inactive_tenant_and_unknown_tenant(use_db, tenant_id):
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Gone Away", active=False)
    items = by_name(tenant_profile.load(tenant_id, NOW).checklist)
    assert not items["Tenant configured and active"].ok
    assert tenant_profile.load("t-not-there", NOW) is None


@pytest.mark.unit
def test_cheatsheet_marks_firing_scenarios():
    scenarios = {
        s.name: s
        for s in playbooks.cheatsheet(
            "msp-acme-corp", {"stalled": "Enhancements stopped: 12 webhooks"}, "2026-11-20"
        )
    }
    stopped = scenarios["Enhancements stopped for one tenant"]
    assert stopped.state == "firing" and "12 webhooks" in stopped.detail
    assert 'grep "tenant_id: msp-acme-corp"' in stopped.playbook.diagnosis
    assert scenarios["Slow enhancements for one tenant"].state == "clear"
    assert scenarios["Tenant cannot access feedback API"].state == "manual"


def test_first_enhancement_is_the_earliest_completion_not_the_earliest_start(use_db, tenant_id):
    from tests.planting import add_run

    start = NOW - timedelta(days=3)
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Slow Start Ltd")
        add_run(conn, tenant_id, "slow", "completed", start, latency_s=300)  # done at +5 min
        add_run(conn, tenant_id, "quick", "completed", start + timedelta(minutes=1), latency_s=60)
        add_run(conn, tenant_id, "later", "completed", start + timedelta(minutes=4), latency_s=1)
        add_run(conn, tenant_id, "failed", "failed", start - timedelta(minutes=1), latency_s=1)
    profile = tenant_profile.load(tenant_id, NOW)
    assert profile is not None
    first = by_name(profile.checklist)["A first enhancement completed"]
    assert (
        first.ok
        and first.detail == f"first completed {start + timedelta(minutes=2):%Y-%m-%d %H:%M} UTC"
    )
