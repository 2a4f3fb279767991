"""The live queue on a real Redis, the bands, the episodes on a backfilled Prometheus history,
and the Queues page under AppTest (Prometheus stopped mid-session)."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import redis
import streamlit as st
from celery import Celery
from streamlit.testing.v1 import AppTest

from demo import fleet
from demo.seed_redis import celery_app, enhancement_job, send_agent_run, send_enhancement
from services import metrics, playbooks, queues
from services.errors import SourceUnavailable
from tests.conftest import app_test, chart_labels, free_port, use_config
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
    "trace_context": "00-TRACE-MARKER-01",
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
AGENT_ID = "0d5c3a9e-8f1b-4c2d-a7e6-3b9f1e2d4c80"
THREE_DAYS = timedelta(days=3)


def job(tenant: str, ticket: str, now: datetime, ticket_age: timedelta = THREE_DAYS) -> dict:
    """webhooks.py's job_data: `timestamp` is when the ticket was created (days ago here)."""
    return {
        "job_id": f"job-{ticket}",
        "ticket_id": ticket,
        "tenant_id": tenant,
        "priority": "high",
        "timestamp": (now - ticket_age).isoformat().replace("+00:00", "Z"),
        **FORBIDDEN,
    }


def push_api_job(url: str, data: dict, queued_s: float, now: datetime) -> None:
    """LPUSH an EnhancementJob queued `queued_s` ago on enhancement:queue."""
    queued_at = now - timedelta(seconds=queued_s)
    redis.Redis.from_url(url).lpush(queues.API_QUEUE, enhancement_job(data, queued_at))


@contextmanager
def producer(broker_url: str) -> Iterator[Celery]:
    app = celery_app(broker_url)
    try:
        yield app
    finally:
        app.close()


# (Celery priority, tenant, sent as job_data=): kombu puts 0-2 in `celery`, 3-5 in its list 3,
# 6-8 in list 6, 9 in list 9.
LAYOUT = [
    (None, "t-a", False),  # what enhance_ticket.delay(job_data) sends
    (None, "t-a", True),
    (0, "t-b", False),
    (3, "t-b", False),
    (4, "t-a", True),
    (7, "t-c", False),
    (9, "t-c", False),
]


def fill(redis_url: str, broker_url: str, now: datetime) -> None:
    """Real Celery messages on the broker's database: celery 3 jobs + 1 agent run (+1
    unreadable), its lists 3/6/9: 2, 1, 1; on REDIS_URL's: enhancement:queue 2 jobs, queued
    600 s and 20 s ago for tickets created 3 days ago."""
    with producer(broker_url) as app:
        for i, (priority, tenant, keyword) in enumerate(LAYOUT):
            send_enhancement(app, job(tenant, str(100 + i), now), priority, keyword=keyword)
        send_agent_run(app, AGENT_ID, {"tenant_id": "t-agent-payload", **FORBIDDEN})
    redis.Redis.from_url(broker_url).lpush("celery", b"\x00not json at all")
    for i, queued_s in enumerate((600, 20)):
        push_api_job(redis_url, job("t-b", str(200 + i), now), queued_s, now)


def test_depth_on_both_databases_with_real_celery_messages(redis_url, broker_url):
    now = datetime.now(UTC)
    fill(redis_url, broker_url, now)
    platform, broker = redis.Redis.from_url(redis_url), redis.Redis.from_url(broker_url)
    assert platform.exists(*queues.CELERY_LISTS) == 0 and broker.exists(queues.API_QUEUE) == 0
    snap = queues.snapshot()
    assert snap.depth == {
        "celery": 5,
        "celery (priority 3)": 2,
        "celery (priority 6)": 1,
        "celery (priority 9)": 1,
        "enhancement:queue": 2,
    }
    assert snap.celery_depth == sum(broker.llen(k) for k in queues.CELERY_LISTS) == 9
    assert snap.total == 11
    tickets = {j.ticket_id: j for j in snap.jobs if j.ticket_id}
    lists = [tickets[str(100 + i)].queue for i in range(len(LAYOUT))]
    assert lists == ["celery"] * 3 + ["celery (priority 3)"] * 2 + [
        "celery (priority 6)",
        "celery (priority 9)",
    ]
    # Positions run over all of celery's lists, in the order its workers take them.
    assert [tickets[str(100 + i)].position for i in range(len(LAYOUT))] == [1, 2, 3, 6, 7, 8, 9]
    assert tickets["101"].tenant_id == "t-a" and tickets["104"].job_id == "job-104"  # job_data=
    agent = next(j for j in snap.jobs if j.task == queues.AGENT_TASK)
    assert (agent.agent_id, agent.tenant_id, agent.owner, agent.position) == (
        AGENT_ID,
        None,
        queues.AGENT_RUNS,
        4,
    )
    assert snap.tenant_counts() == {"t-a": 3, "t-b": 4, "t-c": 2, "(agent runs)": 1, "(unknown)": 1}
    # A Celery message has no enqueue time: no age is made up from the ticket's `timestamp`.
    assert all(j.enqueued_at is None for j in snap.jobs if j.family == "celery")
    assert snap.oldest_age_seconds(queue="celery") is None
    assert snap.oldest_age_seconds(queue="enhancement:queue") == pytest.approx(600, abs=5)
    shares = queues.tenant_shares(snap).set_index("tenant_id")
    assert shares.loc["t-b", ["celery", "enhancement:queue", "queued"]].tolist() == [2, 2, 4]
    assert shares.loc["t-b", "celery_next"] == 3 and shares.loc["(agent runs)", "celery_next"] == 4
    assert shares["share"].sum() == pytest.approx(1)
    assert shares.loc["t-b", "oldest_s"] == pytest.approx(600, abs=5)
    assert pd.isna(shares.loc["t-a", "oldest_s"])  # only Celery jobs: no wait to show


def test_positions_are_the_order_a_celery_consumer_takes(redis_url, broker_url):
    now = datetime.now(UTC)
    fill(redis_url, broker_url, now)
    redis.Redis.from_url(broker_url).lpop("celery")  # the unreadable one: kombu cannot take it
    expected = sorted(
        (j for j in queues.snapshot().jobs if j.family == "celery"), key=lambda j: j.position
    )
    taken = []
    with producer(broker_url) as app, app.connection_for_read(url=broker_url) as conn:
        consumer = conn.SimpleQueue("celery", no_ack=True)
        for _ in expected:
            args, kwargs, _embed = consumer.get(timeout=2).payload
            job_data = args[0] if args and isinstance(args[0], dict) else kwargs.get("job_data")
            taken.append(job_data["ticket_id"] if job_data else args[0])
        consumer.close()
    assert taken == [j.ticket_id or j.agent_id for j in expected]


def test_pause_flag_lives_on_the_platform_database(redis_url, broker_url):
    now = datetime.now(UTC)
    fill(redis_url, broker_url, now)
    redis.Redis.from_url(broker_url).set(queues.PAUSE_KEY, "true")  # not where the platform puts it
    assert not queues.snapshot().paused
    redis.Redis.from_url(redis_url).set(queues.PAUSE_KEY, "true")
    snap = queues.snapshot()
    assert snap.paused and snap.celery_depth == 9  # paused on db 0, the lists read on db 1


def test_one_database_when_no_broker_url_is_set(redis_url, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL")
    now = datetime.now(UTC)
    with producer(redis_url) as app:
        send_enhancement(app, job("t-a", "1", now))
    push_api_job(redis_url, job("t-a", "2", now), 5, now)
    snap = queues.snapshot()
    assert (snap.depth["celery"], snap.depth["enhancement:queue"]) == (1, 1)


def test_broker_down_is_reported(redis_url, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/1")
    with pytest.raises(
        SourceUnavailable,
        match=r"^Redis is not available: the Celery broker \(CELERY_BROKER_URL\): ",
    ):
        queues.snapshot()


def test_wait_is_measured_from_the_queue_time_not_the_ticket(redis_url, broker_url):
    now = datetime.now(UTC)
    push_api_job(redis_url, job("t-a", "fresh", now), 20, now)  # ticket created 3 days ago
    with producer(broker_url) as app:
        for i in range(60):
            send_enhancement(app, job("t-a", f"c{i}", now))
    calm = queues.assess(queues.snapshot())
    assert (calm.band.key, calm.severity, calm.stuck_queues) == ("elevated", "warning", ())
    assert calm.advice == (calm.band.advice,)
    assert queues.snapshot().oldest_age_seconds("t-a") == pytest.approx(20, abs=5)

    push_api_job(redis_url, job("t-a", "old", now, timedelta(minutes=41)), 40 * 60, now)
    redis.Redis.from_url(redis_url).set(queues.PAUSE_KEY, "1")
    worried = queues.assess(queues.snapshot())
    assert worried.severity == "critical" and worried.stuck_queues == ("enhancement:queue",)
    assert worried.advice[0].startswith("**Paused**")
    assert worried.advice[1].startswith(
        "**Stuck**: the oldest job in `enhancement:queue` has waited 40 min"
    )
    assert worried.advice[-1] == worried.band.advice


def test_no_payload_field_reaches_a_return_value_or_a_log(redis_url, broker_url, caplog):
    now = datetime.now(UTC)
    fill(redis_url, broker_url, now)
    tail = json.loads(redis.Redis.from_url(broker_url).lindex("celery", -1))
    assert "KEY-MARKER" in base64.b64decode(tail["body"]).decode()  # it is really there...
    assert "KEY-MARKER" in tail["headers"]["argsrepr"]  # ...and Celery repeats it in a header
    caplog.set_level(logging.DEBUG)
    snap = queues.snapshot()
    results = [
        snap,
        queues.assess(snap),
        queues.tenant_shares(snap).to_csv(),
        snap.tenant_counts(),
        queues.cli_commands(),
    ]
    text = " ".join(repr(r) for r in results) + caplog.text
    for marker in (*MARKERS, "t-agent-payload"):
        assert marker not in text
    for field in FORBIDDEN:
        assert all(field not in vars(j) for j in snap.jobs)
    assert {j.ticket_id for j in snap.jobs} >= {"100", "106", "200"}  # the allowed ones arrive


def test_redis_cli_commands_read_each_list_on_its_database(redis_url, broker_url):
    fill(redis_url, broker_url, datetime.now(UTC))
    redis.Redis.from_url(redis_url).set(queues.PAUSE_KEY, "true")
    lines = queues.cli_commands().splitlines()
    broker_db, platform_db = broker_url.rsplit("/", 1)[1], redis_url.rsplit("/", 1)[1]
    assert lines[0].endswith(f"redis-cli -h redis -n {broker_db} LLEN celery")
    assert lines[1].endswith(f"-n {broker_db} LLEN $'celery\\x06\\x163'")
    assert lines[4].endswith(f"-n {platform_db} LLEN enhancement:queue")
    slow = playbooks.for_rule("queue_stuck", "t-a")
    assert f"`redis-cli -h redis -n {broker_db} LLEN celery` and its priority lists" in (
        slow.diagnosis
    )
    # Run as printed (bash quoting and all) against this Redis: they give the page's numbers.
    port = redis_url.split(":")[-1].split("/")[0]
    local = queues.cli_commands(f"redis-cli -p {port}")
    out = subprocess.run(
        ["bash", "-c", local], capture_output=True, text=True, check=True
    ).stdout.split()
    snap = queues.snapshot()
    assert [int(n) for n in out] == [*snap.depth.values(), 1]


@pytest.mark.unit
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


@pytest.mark.unit
def test_bands_are_configurable(tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "healthy_below = 10", "healthy_below = 5")
    assert queues.classify(6).key == "target"
    assert queues.classify(6).label == "Within target (< 20)"


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


@pytest.mark.unit
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
def page_env(use_db, broker_url, tenant_id):
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
    with producer(broker_url) as app:
        for i in range(25):
            send_enhancement(app, job(tenant_id, f"j{i}", now))
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


def test_page_survives_prometheus_stopping_mid_session(page_env, use_db, monkeypatch):
    end = pd.Timestamp(datetime.now(UTC)).floor("60s").to_pydatetime()
    prometheus = start_prometheus(end)
    with use_db.superuser() as conn:  # an operation the history chart marks (for admins)
        cleared = conn.execute(
            'INSERT INTO audit_log ("timestamp", "user", operation, status, details)'
            " VALUES (%s, 'ops.person', 'clear_queue', 'success', '{}') RETURNING id",
            (end - timedelta(minutes=30),),
        ).fetchone()[0]
    try:
        monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
        at = app_test().run()
        at.session_state["redis_cli_open"] = True  # a closed expander's content is not built
        at.switch_page("views/queues.py").run()
        assert not at.exception
        assert at.title[0].value == "Queues and scaling"
        assert "Queue cleared" in chart_labels(at)[0]  # the queue history
        tiles = {m.label: m.value for m in at.metric}
        assert tiles["Jobs in celery"] == "25" and tiles["Processing"] == "Running"
        assert tiles["Oldest in enhancement:queue"] == "–"  # Celery messages have no age
        broker_db = os.environ["CELERY_BROKER_URL"].rsplit("/", 1)[1]
        assert f"-n {broker_db} LLEN celery" in at.code[0].value
        assert "judged by that band and shown by their place" in texts(at)
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
        with use_db.superuser() as conn:
            conn.execute("DELETE FROM audit_log WHERE id = %s", (cleared,))


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
    assert not at.code  # closed expanders: their content is built only once opened
    at.session_state["redis_cli_open"] = at.session_state["proposal_text_open"] = True
    at.run()
    assert any(e.value.startswith("Prometheus is not available") for e in at.error)
    assert {m.label: m.value for m in at.metric}["Jobs in celery"] == "25"
    shares = at.dataframe[-1].value.set_index("tenant_id")
    assert shares.loc[other, "name"] == "Another Client MSP"  # the page shows every tenant...
    text = at.code[-1].value  # the proposal's preview (the first is the redis-cli commands)
    assert f"Share of Queue Test {page_env}: $" in text  # ...the text only its own share
    assert "Current: HPA min unknown / max unknown, unknown workers running now." in text
    assert "kubectl patch hpa ai-agents-worker-hpa -n production" in text
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


def test_tenant_health_judges_the_wait_from_created_at(use_db, redis_url, broker_url, tenant_id):
    """The fleet table and a tenant's page: a job queued seconds ago for a ticket created 3
    days ago is not stuck, Celery jobs count as queued, a job queued 35 min ago is stuck."""
    now = datetime.now(UTC)
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, "Queue Health MSP")
        for i in range(40):
            add_run(conn, tenant_id, f"h-{i}", "completed", now - timedelta(minutes=30 * i + 5), 30)
    push_api_job(redis_url, job(tenant_id, "fresh", now), 15, now)
    with producer(broker_url) as app:
        send_enhancement(app, job(tenant_id, "celery-1", now))
        send_agent_run(app, AGENT_ID, {"tenant_id": tenant_id, **FORBIDDEN})
    st.cache_data.clear()
    fleet_page = app_test().run()
    row = fleet_page.dataframe[0].value.set_index("Tenant id").loc[tenant_id]
    assert row["Queued"] == 2 and "queued job" not in row["Why"]  # the agent run is no tenant's
    at = app_test()
    at.query_params["tenant"] = tenant_id
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Queued now"] == "2"
    assert not any("queued job" in e.label for e in at.expander)

    push_api_job(redis_url, job(tenant_id, "old", now), 35 * 60, now)
    at.run()
    assert any("Oldest queued job waiting 35 min" in e.label for e in at.expander)
    text = texts(at) + " ".join(e.label for e in at.expander)
    for marker in MARKERS:
        assert marker not in text
    st.cache_data.clear()
