"""The app shell and the Tenant Health page under AppTest, on a real database and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import app_test, use_config
from tests.planting import add_run, add_runs, add_tenant

pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.fixture
def stalled_tenant(use_db, redis_url, tenant_id):
    """Webhooks keep arriving for the last 90 minutes, nothing completed since 3 hours ago."""
    now = datetime.now(UTC)
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Stalled Works")
        add_runs(
            conn,
            tenant_id,
            60,
            "completed",
            now - timedelta(hours=10),
            latency_s=25,
            step=timedelta(minutes=7),
        )
        for i in range(15):
            add_run(conn, tenant_id, f"stuck-{i}", "pending", now - timedelta(minutes=6 * i + 1))
    return tenant_id


def run_app(**query) -> AppTest:
    at = app_test()
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_fleet_overview_explains_the_stalled_tenant(stalled_tenant):
    at = run_app()
    assert not at.exception
    assert at.title[0].value == "Tenant health"
    table = at.dataframe[0].value
    row = table[table["Tenant id"] == stalled_tenant].iloc[0]
    assert row["Status"].endswith("critical")
    assert "Enhancements stopped" in row["Why"]
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Critical", "Degraded", "Healthy"]
    assert int(at.metric[0].value) >= 1
    # every ratio with its interval and n: 60 completed attempts at 25 s, the pending ones
    # not finished
    assert row["Success: interval, n"] == (
        "100.0% (95% interval 94.0%–100.0%, n = 60 finished attempts)"
    )
    assert row["p95: interval, n"] == "25 s (95% interval 25 s–25 s, n = 60 completed attempts)"
    assert row["Rating"] == "– (n = 0 ratings)"


def test_tenant_detail_from_a_deep_link(stalled_tenant):
    at = run_app(tenant=stalled_tenant, range="7d")
    assert not at.exception
    assert at.title[0].value == "Stalled Works"
    attention = [e.label for e in at.expander]
    assert any("Enhancements stopped" in label for label in attention)
    texts = " ".join(m.value for m in at.markdown)
    assert "kubectl logs deployment/ai-agents-api" in texts and stalled_tenant in texts
    assert at.segmented_control[0].value == "7d"


@pytest.mark.parametrize("changed", [False, True], ids=["shipped", "changed-toml"])
def test_tenant_detail_shows_each_n_and_the_live_rules(
    stalled_tenant, changed, tmp_path, monkeypatch
):
    p95_min = 75 if changed else 20
    if changed:
        use_config(tmp_path, monkeypatch, "min_runs_p95 = 20 ", f"min_runs_p95 = {p95_min} ")
    at = run_app(tenant=stalled_tenant, range="7d")
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert "n = 60 finished attempts" in captions
    assert "n = 0 ratings" in captions and "n = 0 votes" in captions
    p95 = "n = 60 completed attempts"
    assert (p95 + f": too few to judge (needs {p95_min})" if changed else p95) in captions
    (rules,) = [e for e in at.expander if e.label == "How status is decided"]
    text = " ".join(m.value for m in rules.markdown)
    assert "p95 processing time over 120 s" in text and "success below 95%" in text
    assert f"p95 from {p95_min} completed attempts" in text
    assert "success rate from 20 finished attempts" in text and "from 10 votes" in text


def test_unknown_tenant_in_the_url_falls_back_to_the_fleet(stalled_tenant):
    at = run_app(tenant="no-such-tenant")
    assert not at.exception
    assert any("No tenant “no\\-such\\-tenant” is known" in w.value for w in at.warning)
    assert at.title[0].value == "Tenant health"


def test_database_down_is_a_message_not_a_traceback(stalled_tenant, monkeypatch):
    monkeypatch.setenv("ADMIN_DATABASE_URL", "postgresql://dashboard_admin:x@127.0.0.1:1/x")
    at = run_app()
    assert not at.exception
    assert any("PostgreSQL is not available" in e.value for e in at.error)


def test_redis_down_still_shows_health(stalled_tenant, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    at = run_app(tenant=stalled_tenant)
    assert not at.exception
    assert any("Redis is not available" in e.value for e in at.error)
    assert at.title[0].value == "Stalled Works"
    assert any(m.label == "Queued now" and m.value == "–" for m in at.metric)


def test_empty_platform_database_says_so(make_platform_db):
    make_platform_db("empty").use()
    at = run_app()
    assert not at.exception and not at.error
    assert any("No tenants are configured" in i.value for i in at.info)
