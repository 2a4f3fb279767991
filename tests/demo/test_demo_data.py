"""The demo data: a real throwaway database, two Redis databases and a throwaway Prometheus.

Needs the private stack: `source .stack/env` before running pytest.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import redis

from demo import dbsetup, fleet
from demo.backfill_prometheus import backfill
from demo.generate import generate
from demo.seed_redis import QUEUES, seed
from services.db import PLATFORM_TABLES as TABLES

NOW = datetime(2025, 11, 26, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
DAYS = 30
# context_gathered may be a JSON string holding the object: unwrap it.
CONTEXT = (
    "CASE json_typeof(context_gathered) WHEN 'string'"
    " THEN (context_gathered #>> '{}')::json ELSE context_gathered END"
)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    if "STACK_READER_PASSWORD" not in os.environ:
        pytest.fail("source .stack/env first: these tests need the private stack")
    name = f"test_demo_{os.getpid()}"
    dbsetup.prepare(name)
    try:
        generate(psycopg.conninfo.make_conninfo(dbname=name), days=DAYS, now=NOW)
        yield name
    finally:
        dbsetup.drop_database(name)


@pytest.fixture
def db(database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(psycopg.conninfo.make_conninfo(dbname=database)) as conn:
        yield conn


def one(conn: psycopg.Connection, query: str, *params: object) -> object:
    return conn.execute(query, params).fetchone()[0]


def checksums(conn: psycopg.Connection) -> dict[str, str]:
    return {
        t: one(conn, f"SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {t} t")
        for t in TABLES
    }


def test_same_seed_and_now_give_the_same_rows(database: str, db: psycopg.Connection) -> None:
    before = checksums(db)
    db.commit()  # end the snapshot: the reload truncates the tables
    again = generate(psycopg.conninfo.make_conninfo(dbname=database), days=DAYS, now=NOW)
    assert checksums(db) == before
    assert (
        again.counts["enhancement_history"]
        == one(db, "SELECT count(*) FROM enhancement_history")
        > 30_000
    )


def test_fleet_shape(db: psycopg.Connection) -> None:
    assert one(db, "SELECT count(*) FROM tenant_configs") == len(fleet.TENANTS)
    per_day = dict(
        db.execute(
            "SELECT tenant_id, count(*) / %s::float FROM enhancement_history GROUP BY 1", (DAYS,)
        ).fetchall()
    )
    assert per_day[fleet.GLOBEX] > 500
    assert sum(50 <= n <= 110 for n in per_day.values()) >= 4
    # Newly onboarded: a few days of traffic, under 50 resolved tickets of context.
    assert one(db, "SELECT count(*) FROM ticket_history WHERE tenant_id = %s", fleet.NEWCO) < 50
    assert one(
        db, "SELECT min(created_at) FROM enhancement_history WHERE tenant_id = %s", fleet.NEWCO
    ) > NOW - timedelta(days=4)
    # Established tenants: 100+ resolved tickets spanning 30+ days.
    spans = db.execute(
        "SELECT tenant_id, count(*), max(resolved_date) - min(resolved_date)"
        " FROM ticket_history WHERE tenant_id <> %s GROUP BY 1",
        (fleet.NEWCO,),
    ).fetchall()
    assert all(n >= 100 and span > timedelta(days=30) for _, n, span in spans)
    # Inactive: flag off, traffic stopped weeks ago.
    assert (
        one(db, "SELECT is_active FROM tenant_configs WHERE tenant_id = %s", fleet.WAYNE) is False
    )
    assert one(
        db, "SELECT max(created_at) FROM enhancement_history WHERE tenant_id = %s", fleet.WAYNE
    ) < NOW - timedelta(days=14)
    assert uuid.UUID(fleet.HOOLI)
    assert (
        one(db, "SELECT count(*) FROM enhancement_history WHERE tenant_id = %s", fleet.HOOLI) > 1000
    )
    assert (
        one(
            db,
            "SELECT (enhancement_preferences->>'kb_timeout_seconds')::int"
            " FROM tenant_configs WHERE tenant_id = %s",
            fleet.HOOLI,
        )
        > 60
    )


def test_enhancements_stopped_for_one_tenant(db: psycopg.Connection) -> None:
    recent = db.execute(
        "SELECT status, count(*) FROM enhancement_history WHERE tenant_id = %s"
        " AND created_at > %s - interval '4 hours' GROUP BY 1",
        (fleet.SOYLENT, NOW),
    ).fetchall()
    assert [s for s, _ in recent] == ["pending"] and recent[0][1] >= 10


def test_stopped_tenants_without_rows(db: psycopg.Connection) -> None:
    """Refused webhooks and jobs no worker takes leave no rows; rejected ones leave fewer."""

    def attempts(tenant: str, hours: float) -> int:
        return one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE tenant_id = %s"
            " AND created_at > %s - make_interval(hours => %s)",
            tenant,
            NOW,
            hours,
        )

    assert attempts(fleet.VANDELAY, 30) == 0 and attempts(fleet.VANDELAY, 48) > 0
    assert attempts(fleet.PENDANT, 8) == 0 and attempts(fleet.PENDANT, 24) > 0
    assert attempts(fleet.KRAMERICA, 3) > 0


def test_incident_gives_a_bad_success_rate(db: psycopg.Connection) -> None:
    rate = (
        "SELECT avg((status = 'completed')::int) FROM enhancement_history"
        " WHERE tenant_id = %s AND status <> 'pending' AND created_at > %s"
    )
    assert one(db, rate, fleet.INITECH, NOW - timedelta(days=7)) < 0.8
    assert one(db, rate, fleet.ACME, NOW - timedelta(days=7)) > 0.9
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE tenant_id = %s"
            " AND error_message LIKE 'HTTPStatusError: 401 Unauthorized%%'",
            fleet.INITECH,
        )
        > 50
    )


def test_statuses_timings_and_failure_modes(db: psycopg.Connection) -> None:
    assert {r[0] for r in db.execute("SELECT DISTINCT status FROM enhancement_history")} == {
        "pending",
        "completed",
        "failed",
    }
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE status = 'pending'"
            " AND (completed_at IS NOT NULL OR processing_time_ms IS NOT NULL)",
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE status <> 'pending' AND ("
            "completed_at IS NULL OR processing_time_ms IS NULL OR completed_at"
            " < created_at + processing_time_ms * interval '1 ms')",
        )
        == 0
    )
    p50, p99, slowest = db.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_time_ms),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY processing_time_ms),"
        " max(processing_time_ms) FROM enhancement_history WHERE status = 'completed'"
    ).fetchone()
    assert 15_000 <= p50 <= 25_000 and p99 > 50_000 and slowest < fleet.SOFT_TIME_LIMIT_MS
    for mode, message in fleet.ERROR_MESSAGES.items():
        if message is None:
            continue
        prefix = message.split("{")[0]
        assert (
            one(
                db,
                "SELECT count(*) FROM enhancement_history WHERE status = 'failed'"
                " AND starts_with(error_message, %s)",
                prefix,
            )
            > 0
        ), mode
    # context timeouts and LLM errors complete (errors entry, fallback text): never failures
    assert (
        one(
            db,
            f"SELECT count(*) FROM enhancement_history WHERE status = 'completed'"
            f" AND error_message IS NULL AND ({CONTEXT})->'errors'->0->>'node_name'"
            f" = 'all' AND ({CONTEXT})->'errors'->0->>'message' = 'Timeout after 30s'",
        )
        > 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE status = 'completed'"
            " AND llm_output = %s",
            fleet.LLM_FALLBACK_OUTPUT,
        )
        > 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE status = 'failed'"
            " AND error_message IS NULL",
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT min(processing_time_ms) FROM enhancement_history"
            " WHERE error_message = 'Task exceeded soft time limit (100s)'",
        )
        >= 100_000
    )
    # json.dumps on success; the JSON null a row is inserted with on failed and pending rows
    shapes = dict(
        db.execute(
            "SELECT status, array_agg(DISTINCT coalesce(json_typeof(context_gathered), 'SQL NULL'))"
            " FROM enhancement_history GROUP BY 1"
        ).fetchall()
    )
    assert shapes == {"completed": ["string"], "failed": ["null"], "pending": ["null"]}
    assert (
        one(
            db,
            f"SELECT count(*) FROM enhancement_history WHERE status = 'completed'"
            f" AND ({CONTEXT})->>'workflow_execution_time_ms' IS NULL",
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_history WHERE status = 'pending'"
            " AND created_at < %s - interval '120 seconds'",
            NOW,
        )
        > 5
    )
    assert (
        one(
            db,
            "SELECT max(n) FROM (SELECT count(*) n FROM enhancement_history"
            " GROUP BY tenant_id, ticket_id) runs",
        )
        >= 4  # a failed attempt and up to 3 Celery retries, each its own row
    )


def test_planted_tickets(db: psycopg.Connection) -> None:
    def runs(ticket: str) -> list[tuple]:
        return db.execute(
            "SELECT status, error_message, json_typeof(context_gathered)"
            " FROM enhancement_history WHERE tenant_id = %s AND ticket_id = %s"
            " ORDER BY created_at",
            (fleet.ACME, ticket),
        ).fetchall()

    assert runs(fleet.TICKET_SDP_TIMEOUT) == [
        ("failed", "RuntimeError: Failed to update ticket 12345 via ServiceDesk Plus API", "null")
    ]
    assert runs(fleet.TICKET_PLATFORM_BUG) == [
        ("failed", "AttributeError: 'TenantConfig' object has no attribute 'base_url'", "null")
    ]
    assert runs(fleet.TICKET_NODE_KEY_BUG) == [("failed", "KeyError: 'node_name'", "null")]
    assert runs(fleet.TICKET_LLM_TIMEOUT) == [("completed", None, "string")]
    assert runs(fleet.TICKET_LOW_RATED)[0][0] == "completed"
    rated = db.execute(
        "SELECT rating_value, feedback_comment FROM enhancement_feedback"
        " WHERE tenant_id = %s AND ticket_id = %s AND feedback_type = 'rating'",
        (fleet.ACME, fleet.TICKET_LOW_RATED),
    ).fetchall()
    assert len(rated) == 1 and rated[0][0] <= 2 and rated[0][1]
    assert runs(fleet.TICKET_CONTEXT_AS_STRING) == [("completed", None, "string")]
    assert runs(fleet.TICKET_STALE_PENDING) == [("pending", None, "null")]
    assert [r[0] for r in runs(fleet.TICKET_RERUN)] == ["failed"] * 3 + ["completed"]
    assert runs(fleet.TICKET_CONTEXT_TIMEOUT) == [("completed", None, "string")]
    # Still in the queue: no worker started it, so the platform has written no row yet.
    assert runs(fleet.TICKET_STUCK_IN_QUEUE) == []


def test_feedback(db: psycopg.Connection) -> None:
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_feedback WHERE (feedback_type = 'rating')"
            " <> (rating_value IS NOT NULL)",
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_feedback f WHERE NOT EXISTS ("
            "SELECT 1 FROM enhancement_history e WHERE e.id = f.enhancement_id"
            " AND e.tenant_id = f.tenant_id AND e.ticket_id = f.ticket_id"
            " AND e.status = 'completed')",
        )
        == 0
    )
    assert (
        one(db, "SELECT count(*) FROM enhancement_feedback WHERE feedback_comment IS NOT NULL")
        > 100
    )
    # The ticket kind shows in ticket_history's description: network/VPN enhancements are
    # rated much worse.
    network = [d for k in fleet.KINDS if k.name in ("network", "vpn") for d in k.descriptions]
    by_theme = dict(
        db.execute(
            "SELECT h.description = ANY(%s), avg(f.rating_value) FROM enhancement_feedback f"
            " JOIN ticket_history h USING (tenant_id, ticket_id) WHERE f.tenant_id = %s"
            " GROUP BY 1",
            (network, fleet.UMBRELLA),
        ).fetchall()
    )
    # ~50 ratings of other kinds, expected mean 4.18 (std of the mean about 0.14)
    assert by_theme[True] < 3.0 and by_theme[False] > 3.8
    assert by_theme[False] - by_theme[True] > 1.0
    assert (
        one(
            db,
            "SELECT count(*) FROM enhancement_feedback f WHERE f.tenant_id <> %s"
            " AND NOT EXISTS (SELECT 1 FROM ticket_history h WHERE"
            " h.tenant_id = f.tenant_id AND h.ticket_id = f.ticket_id)",
            fleet.NEWCO,
        )
        == 0
    )


def test_other_tables(db: psycopg.Connection) -> None:
    keys = [r[0] for r in db.execute("SELECT servicedesk_api_key_encrypted FROM tenant_configs")]
    assert all(k.startswith("gAAAAA") and len(k) > 100 for k in keys)
    assert {r[0] for r in db.execute("SELECT DISTINCT operation FROM audit_log")} == {
        "pause_processing",
        "resume_processing",
        "clear_queue",
        "sync_tenant_configs",
    }
    assert {r[0] for r in db.execute("SELECT DISTINCT source FROM ticket_history")} == {
        "bulk_import",
        "webhook_resolved",
    }
    assert one(db, "SELECT count(DISTINCT tenant_id) FROM system_inventory") == len(fleet.TENANTS)


def test_redis_queues_match_the_database(db: psycopg.Connection, redis_url, broker_url) -> None:
    client, broker = redis.Redis.from_url(redis_url), redis.Redis.from_url(broker_url)
    depths = seed(client, broker_url, NOW)
    assert depths == {
        "celery": 7,
        "celery\x06\x163": 3,
        "celery\x06\x166": 3,
        "celery\x06\x169": 1,
        "enhancement:queue": 5,
    }
    # Two databases: the Celery lists on the broker's, the platform's own keys on REDIS_URL's.
    assert client.exists(*QUEUES[:-1]) == 0 and broker.exists(fleet.ENHANCEMENT_QUEUE) == 0
    assert client.exists(fleet.PAUSE_KEY) == 0
    jobs, keyword_jobs, agent_runs = [], 0, []
    for queue in QUEUES[:-1]:
        for raw in broker.lrange(queue, 0, -1):
            message = json.loads(raw)  # what the real celery library wrote
            assert message["properties"]["body_encoding"] == "base64"
            args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            if message["headers"]["task"] == fleet.AGENT_TASK_NAME:
                agent_runs.append(args[0])
                continue
            assert message["headers"]["task"] == fleet.TASK_NAME
            keyword_jobs += "job_data" in kwargs
            jobs.append(args[0] if args else kwargs["job_data"])
    assert agent_runs == list(fleet.PLANTED_AGENT_RUNS) and keyword_jobs == 2
    raw_jobs = [json.loads(raw) for raw in client.lrange(fleet.ENHANCEMENT_QUEUE, 0, -1)]
    assert len(jobs + raw_jobs) == 18 and len({j["tenant_id"] for j in jobs}) >= 5
    fields = {
        "job_id",
        "ticket_id",
        "tenant_id",
        "description",
        "priority",
        "timestamp",
        "correlation_id",
        "servicedesk_url",
        "servicedesk_api_key",
        "enhancement_preferences",
        "tool_type",
        "trace_context",
    }
    assert all(set(j) == fields for j in jobs)  # webhooks.py's job_data
    assert all(set(j) == fields | {"created_at"} for j in raw_jobs)  # EnhancementJob
    for job in jobs + raw_jobs:
        assert job["servicedesk_api_key"].startswith(fleet.FAKE_KEY_MARKER)
        assert (  # a queued job has no row: the worker writes one when it starts
            one(
                db,
                "SELECT count(*) FROM enhancement_history WHERE tenant_id = %s AND ticket_id = %s",
                job["tenant_id"],
                job["ticket_id"],
            )
            == 0
        )
    # created_at is the queue time (naive UTC, as pydantic writes utcnow()); the ticket itself
    # was created earlier. Workers BRPOP from the right: the oldest job is next.
    tail = json.loads(client.lindex(fleet.ENHANCEMENT_QUEUE, -1))
    assert tail["ticket_id"] == fleet.TICKET_STUCK_IN_QUEUE
    queued = datetime.fromisoformat(tail["created_at"]).replace(tzinfo=UTC)
    assert NOW - queued == timedelta(seconds=47 * 60)
    assert datetime.fromisoformat(tail["timestamp"]) < queued - timedelta(days=1)
    seed(client, broker_url, NOW, paused=True)
    assert client.get(fleet.PAUSE_KEY) == b"true" and broker.exists(fleet.PAUSE_KEY) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_backfill(tmp_path: Path) -> None:
    data = tmp_path / "tsdb"
    first = backfill(data, days=10, now=NOW)
    assert not first.skipped and first.samples > 10 * 1440 * 40
    assert backfill(data, days=10, now=NOW + timedelta(minutes=30)).skipped
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 60s\n")
    port = _free_port()
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=3650d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def query(promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql, "time": NOW.timestamp()}
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)["data"]["result"]

    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        depth = {
            r["metric"]["queue_name"]: float(r["value"][1]) for r in query("celery_queue_length")
        }
        assert depth == {"celery": 14, "enhancement:queue": 5}  # what seed_redis leaves
        peak = query('max_over_time(celery_queue_length{queue_name="celery"}[10d])')
        assert float(peak[0]["value"][1]) > 200
        stuck = query('count_over_time((celery_queue_length{queue_name="celery"} > 200)[10d:1m])')
        assert float(stuck[0]["value"][1]) > 15
        hpa = query("max_over_time(kube_horizontalpodautoscaler_status_current_replicas[10d])")
        assert float(hpa[0]["value"][1]) == 10
        assert len(query("enhancement_requests_total")) == 3 * len(fleet.TENANTS)
        assert len(query("celery_worker_up")) >= 3
        hour = {
            (r["metric"]["tenant_id"], r["metric"]["status"]): float(r["value"][1])
            for r in query("increase(enhancement_requests_total[3h])")
        }
        assert hour[(fleet.VANDELAY, "received")] == 0  # wrong secret: nothing counted
        assert hour[(fleet.KRAMERICA, "rejected")] > 0.4 * hour[(fleet.KRAMERICA, "received")]
        assert hour[(fleet.PENDANT, "queued")] > 10  # queued; no rows (test above)
        assert hour[(fleet.ACME, "received")] > 10
    finally:
        server.terminate()
        server.wait(timeout=30)
