"""The live queue on a real Redis, the bands, the episodes on a backfilled Prometheus history,
and the Queues page under AppTest (Prometheus stopped mid-session)."""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import redis
import streamlit as st
from streamlit.testing.v1 import AppTest

from demo import fleet
from demo.seed_redis import celery_message
from services import metrics, queues
from tests.conftest import ROOT, app_test, free_port
from tests.planting import add_run, add_tenant
from tests.queue_history import (
    EXPECTED_EPISODES,
    queue_length,
    start_demo_prometheus,
    start_prometheus,
)

# Every payload field outside the allowlist carries a marker that must never come out.
FORBIDDEN = {
    "description": "DESC-MARKER printer on fire",
    "correlation_id": "CORR-MARKER-1",
    "servicedesk_url": "https://SDURL-MARKER.example.com",
    "servicedesk_api_key": "sdp-KEY-MARKER-0123456789",
    "enhancement_preferences": {"max_enhancement_length": "PREF-MARKER"},
    "tool_type": "TOOL-MARKER",
    "trace_context": {"traceparent": "00-TRACE-MARKER-01"},
}
MARKERS = (
    "DESC-MARKER",
    "CORR-MARKER",
    "SDURL-MARKER",
    "KEY-MARKER",
    "PREF-MARKER",
    "TOOL-MARKER",
    "TRACE-MARKER",
)


def job(tenant: str, ticket: str, age_s: float, now: datetime) -> dict:
    return {
        "job_id": f"job-{ticket}",
        "ticket_id": ticket,
        "tenant_id": tenant,
        "priority": "high",
        "timestamp": (now - timedelta(seconds=age_s)).isoformat().replace("+00:00", "Z"),
        **FORBIDDEN,
    }


def fill(url: str, now: datetime) -> None:
    """celery: 3 jobs (+1 unreadable); its priority lists 3/6/9: 2, 1, 1; enhancement:queue: 2."""
    client = redis.Redis.from_url(url)
    plain = ("celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169")
    layout = [
        ("celery", "t-a", 50),
        ("celery", "t-a", 40),
        ("celery", "t-b", 30),
        (plain[1], "t-b", 20),
        (plain[1], "t-a", 10),
        (plain[2], "t-c", 5),
        (plain[3], "t-c", 1),
    ]
    for i, (queue, tenant, age) in enumerate(layout):
        envelope = celery_message(job(tenant, str(100 + i), age, now), priority=0)
        client.lpush(queue, json.dumps(envelope))
    client.lpush("celery", b"\x00not json at all")
    for i, age in enumerate((600, 300)):
        client.lpush("enhancement:queue", json.dumps(job("t-b", str(200 + i), age, now)))


def test_depth_sums_the_priority_lists_and_reads_both_keys(redis_url):
    now = datetime.now(UTC)
    fill(redis_url, now)
    snap = queues.snapshot()
    assert snap.depth == {
        "celery": 4,
        "celery (priority 3)": 2,
        "celery (priority 6)": 1,
        "celery (priority 9)": 1,
        "enhancement:queue": 2,
    }
    assert snap.celery_depth == 8 and snap.total == 10
    assert snap.tenant_counts() == {"t-a": 3, "t-b": 4, "t-c": 2, "(unknown)": 1}
    oldest = queues.oldest_by_queue(snap)
    assert oldest["celery"] == pytest.approx(50, abs=5)
    assert oldest["enhancement:queue"] == pytest.approx(600, abs=5)
    shares = queues.tenant_shares(snap).set_index("tenant_id")
    assert shares.loc["t-b", ["celery", "enhancement:queue", "queued"]].tolist() == [2, 2, 4]
    assert shares["share"].sum() == pytest.approx(1)
    assert shares.loc["t-b", "oldest_s"] == pytest.approx(600, abs=5)
    assert pd.isna(shares.loc["(unknown)", "oldest_s"])
    assert not snap.paused
    redis.Redis.from_url(redis_url).set(queues.PAUSE_KEY, "true")
    assert queues.snapshot().paused


def test_no_payload_field_reaches_a_return_value_or_a_log(redis_url, caplog):
    now = datetime.now(UTC)
    fill(redis_url, now)
    raw = redis.Redis.from_url(redis_url).lrange("celery", -1, -1)[0]
    assert b"KEY-MARKER" in base64.b64decode(json.loads(raw)["body"])  # it is really there
    caplog.set_level(logging.DEBUG)
    snap = queues.snapshot()
    results = [
        snap,
        queues.assess(snap),
        queues.tenant_shares(snap).to_csv(),
        queues.oldest_by_queue(snap),
        snap.tenant_counts(),
    ]
    text = " ".join(repr(r) for r in results) + caplog.text
    for marker in MARKERS:
        assert marker not in text
    for field in FORBIDDEN:
        assert all(field not in vars(j) for j in snap.jobs)
    assert {j.ticket_id for j in snap.jobs} >= {"100", "106", "200"}  # the allowed ones arrive


@pytest.mark.parametrize(
    ("depth", "band"),
    [
        (0, "healthy"),
        (9, "healthy"),
        (10, "target"),
        (19, "target"),
        (20, "above_target"),
        (49, "above_target"),
        (50, "elevated"),
        (100, "elevated"),
        (101, "alert"),
        (200, "alert"),
        (201, "escalate"),
        (5000, "escalate"),
    ],
)
def test_bands_follow_the_contract(depth, band):
    assert queues.classify(depth).key == band


def test_bands_are_configurable(tmp_path, monkeypatch):
    text = (ROOT / "dashboard.toml").read_text().replace("healthy_below = 10", "healthy_below = 5")
    (tmp_path / "dashboard.toml").write_text(text)
    monkeypatch.setenv("DASHBOARD_CONFIG", str(tmp_path / "dashboard.toml"))
    assert queues.classify(6).key == "target"
    assert queues.classify(6).label == "Within target (< 20)"


def test_assessment_adds_pause_and_stuck_advice(redis_url):
    now = datetime.now(UTC)
    client = redis.Redis.from_url(redis_url)
    for i in range(60):
        client.lpush("celery", json.dumps(job("t-a", str(i), 60, now)))
    calm = queues.assess(queues.snapshot())
    assert (calm.band.key, calm.severity, calm.stuck_queues) == ("elevated", "warning", ())
    assert calm.advice == (calm.band.advice,)

    client.lpush("celery", json.dumps(job("t-a", "old", 40 * 60, now)))
    client.set(queues.PAUSE_KEY, "1")
    worried = queues.assess(queues.snapshot())
    assert worried.severity == "critical" and worried.stuck_queues == ("celery",)
    assert worried.advice[0].startswith("**Paused**")
    assert worried.advice[1].startswith("**Stuck**: the oldest job in `celery` has waited 40 min")
    assert worried.advice[-1] == worried.band.advice


def test_episodes_and_bands_on_a_backfilled_history(monkeypatch):
    end = pd.Timestamp(datetime.now(UTC)).floor("60s").to_pydatetime()
    prometheus = start_prometheus(end)
    try:
        monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
        history = metrics.history("6h", end)
    finally:
        prometheus.close()
    series = history.frame["queue_length"]
    found = queues.episodes(series, 100, 5, 20, 15, 0.1)
    at = pd.Timestamp(end)
    expected = [
        (
            kind,
            at - pd.Timedelta(minutes=start),
            None if stop is None else at - pd.Timedelta(minutes=stop),
            peak,
        )
        for kind, start, stop, peak in EXPECTED_EPISODES
    ]
    assert [
        (row.kind, row.start, None if pd.isna(row.end) else row.end, row.peak)
        for row in found.itertuples()
    ] == expected
    assert found["minutes"].tolist() == [12, 31, 8]
    # a 3-minute spike is below the 5-minute rule, but a 3-minute rule lists it
    assert len(queues.episodes(series, 100, 3, 20, 15, 0.1)) == 4
    # the bands the history went through, and where it is now
    visited = {queues.classify(int(v)).key for v in series.dropna()}
    assert visited == {"healthy", "target", "above_target", "alert"}
    assert queues.classify(int(series.iloc[-1])).key == "alert"
    assert series.iloc[-1] == queue_length(0)


def test_the_demo_history_episodes_and_bands(monkeypatch):
    """demo.fleet's three backlog episodes, as demo.backfill_prometheus writes them."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    prometheus = start_demo_prometheus(now, days=10)
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    expected = {
        "above-100-for-8-minutes": ("alert", {"Above 100"}),
        "above-200-not-draining": ("escalate", {"Above 100", "Not draining (15 min)"}),
        "elevated-lunchtime": ("elevated", {"Not draining (15 min)"}),  # 25 min at 70
    }
    try:
        for episode in fleet.QUEUE_EPISODES:
            band, kinds = expected[episode.name]
            begins = pd.Timestamp(fleet.day_clock(now, episode.days_ago, episode.start_hour))
            ends = begins + pd.Timedelta(
                minutes=episode.rise_minutes + episode.plateau_minutes + episode.fall_minutes
            )
            series = metrics.history("6h", (begins + pd.Timedelta(hours=3)).to_pydatetime())
            queue = series.frame["queue_length"]
            found = queues.episodes(queue, 100, 5, 20, 15, 0.1)
            overlapping = found[(found["start"] <= ends) & (found["end"].fillna(ends) >= begins)]
            assert set(overlapping["kind"]) == kinds, episode.name
            assert queues.classify(int(queue[begins:ends].max())).key == band, episode.name
    finally:
        prometheus.close()


def test_episodes_are_split_by_missing_data():
    index = pd.date_range("2025-01-01", periods=30, freq="60s", tz="UTC")
    values = [150.0] * 30
    values[10] = float("nan")  # a scrape gap
    found = queues.episodes(pd.Series(values, index=index), 100, 5, 20, 15, 0.1)
    above = found[found["kind"] == "Above 100"]
    assert above["minutes"].tolist() == [10, 19]
    assert above["end"].isna().tolist() == [False, True]
    assert queues.episodes(pd.Series(dtype=float), 100, 5, 20, 15, 0.1).empty


# --- The page ----------------------------------------------------------------------------------


@pytest.fixture
def page_env(use_db, redis_url, tenant_id):
    """A tenant with a week of finished runs and queued jobs; caches emptied around the test."""
    now = datetime.now(UTC)
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, f"Queue Test {tenant_id}")
        for i in range(40):
            add_run(
                conn,
                tenant_id,
                f"q-{i}",
                "completed",
                now - timedelta(hours=4 * i + 1),
                latency_s=30 + i % 7,
            )
    client = redis.Redis.from_url(redis_url)
    for i in range(25):
        client.lpush("celery", json.dumps(job(tenant_id, f"j{i}", 30 + i, now)))
    st.cache_data.clear()
    yield tenant_id
    st.cache_data.clear()


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "error", "warning", "info", "success")
        for e in getattr(at, kind)
    ]
    parts += [str(m.value) for m in at.metric] + [m.label for m in at.metric]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(str(p) for p in parts)


def test_page_survives_prometheus_stopping_mid_session(page_env, monkeypatch):
    end = pd.Timestamp(datetime.now(UTC)).floor("60s").to_pydatetime()
    prometheus = start_prometheus(end)
    try:
        monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
        at = app_test().run()
        at.switch_page("views/queues.py").run()
        assert not at.exception
        assert at.title[0].value == "Queues and scaling"
        tiles = {m.label: m.value for m in at.metric}
        assert tiles["Jobs in celery"] == "25" and tiles["Processing"] == "Running"
        assert at.info[0].value.startswith("**Above target")  # 25 jobs: the band's advice
        assert "Celery workers up: no data" in texts(at)  # the missing exporter is named
        assert at.dataframe[1].value["kind"].tolist() == [k for k, *_ in EXPECTED_EPISODES]
        assert re.fullmatch(r"\d+ / \d+", tiles["Proposed HPA min / max"])
        assert "min 2, max 10, 3 workers running" in texts(at)
        assert at.download_button[0].label == "Download the proposal for client approval"
        text = texts(at)
        for marker in MARKERS:
            assert marker not in text

        prometheus.stop()  # mid-session: the next range the user picks meets a dead Prometheus
        at.segmented_control(key="history").set_value("6h").run()
        assert not at.exception
        errors = [e.value for e in at.error]
        assert any(e.startswith("Prometheus is not available") for e in errors)
        tiles = {m.label: m.value for m in at.metric}
        assert tiles["Jobs in celery"] == "25"  # the live queue is still there
        assert "Proposed HPA min / max" in tiles
        assert "Traceback" not in texts(at)
    finally:
        prometheus.close()


def test_without_prometheus_the_proposal_names_only_the_client_in_focus(
    page_env, use_db, monkeypatch
):
    other = f"{page_env}-other"
    with use_db.superuser() as conn:
        add_tenant(conn, other, "Another Client MSP")
        add_run(conn, other, "o-1", "completed", datetime.now(UTC) - timedelta(hours=2), 40)
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    at = app_test()
    at.query_params["tenant"] = page_env
    at.run()
    at.switch_page("views/queues.py").run()
    assert not at.exception
    assert any(e.value.startswith("Prometheus is not available") for e in at.error)
    assert {m.label: m.value for m in at.metric}["Jobs in celery"] == "25"
    shares = at.dataframe[-1].value.set_index("tenant_id")
    assert shares.loc[other, "name"] == "Another Client MSP"  # the page shows every tenant...
    text = at.code[0].value
    assert f"Share of Queue Test {page_env}: $" in text  # ...the text only its own share
    assert "Current: HPA min unknown / max unknown, unknown workers running now." in text
    assert "kubectl patch hpa ai-agents-worker-hpa -n ai-agents-production" in text
    with use_db.superuser() as conn:
        names = conn.execute(
            "SELECT tenant_id, name FROM tenant_configs WHERE tenant_id <> %s", (page_env,)
        ).fetchall()
        kinds = {
            r[0]
            for r in conn.execute(
                "SELECT query_kind FROM dashboard.data_access_log WHERE tenant_id = '*'"
            ).fetchall()
        }
    for tenant, name in names:
        assert tenant not in text and name not in text
    assert {"queue_live", "capacity"} <= kinds  # the cross-tenant reads are on record
