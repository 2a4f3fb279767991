"""Planted data the investigation tests share (services, page): a tenant, a low-rated ticket with
sensitive content, runs to search, real Celery messages for the queue; and findings built in
memory for the tests that need no stack."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from demo import fleet
from demo.seed_redis import celery_app, send_enhancement
from services.investigation.model import ContextCounts, Investigation, QueuePresence, Run
from tests.conftest import PlatformDb
from tests.planting import add_feedback, add_run, add_tenant

CONTEXT = {
    "similar_tickets": [{"ticket_id": "1"}, {"ticket_id": "2"}, {"ticket_id": "3"}],
    "kb_articles": [{"title": "VPN"}],
    "ip_info": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
    "errors": [{"node_name": "kb_search", "message": "KB API returned 503"}],
    "workflow_execution_time_ms": 2400,
}


SECRET_OUTPUT = "Restart the spooler on PRN-7 (secret enhancement text)"
SECRET_COMMENT = "Wrong printer entirely (secret comment)"
# What each failure mode of the demo data must be classified as.


def send(broker_url: str, *jobs: dict, keyword: bool = False) -> None:
    """Real Celery messages, as enhance_ticket.delay(job_data) sends them."""
    app = celery_app(broker_url)
    try:
        for data in jobs:
            send_enhancement(app, data, keyword=keyword)
    finally:
        app.close()


def job(tenant_id: str, ticket_id: str, age_s: float, job_id: str = "job-abc123") -> dict:
    return {
        "job_id": job_id,
        "ticket_id": ticket_id,
        "tenant_id": tenant_id,
        "priority": "high",
        # When the ticket was created: the job itself may have been queued much later.
        "timestamp": (datetime.now(UTC) - timedelta(days=2, seconds=age_s)).isoformat(),
        "description": "printer is down",
        "servicedesk_api_key": fleet.FAKE_KEY_MARKER + "123",
    }


def plant_tenant(db: PlatformDb, tenant_id: str) -> str:
    with db.superuser() as conn:
        add_tenant(conn, tenant_id, "Acme Test MSP")
    return tenant_id


def plant_low_rated(db: PlatformDb, tenant: str, now: datetime) -> str:
    """Ticket 67890: delivered with CONTEXT and secret text, rated 2/5 with a secret comment."""
    with db.superuser() as conn:
        add_run(conn, tenant, "67890", "completed", now - timedelta(hours=3), 21, context=CONTEXT)
        conn.execute(
            "UPDATE enhancement_history SET llm_output = %s WHERE tenant_id = %s",
            (SECRET_OUTPUT, tenant),
        )
        add_feedback(
            conn,
            tenant,
            "67890",
            "rating",
            now - timedelta(hours=2),
            rating=2,
            comment=SECRET_COMMENT,
        )
    return tenant


def plant_searchable(db: PlatformDb, tenant: str, now: datetime) -> str:
    """Runs of every status to search, one a week old, and a 401 of another tenant."""
    other = tenant + "-x"
    with db.superuser() as conn:
        add_tenant(conn, other)
        add_run(
            conn,
            tenant,
            "S-1",
            "failed",
            now - timedelta(hours=1),
            30,
            error_message="HTTPStatusError: 401 Unauthorized",
        )
        add_run(
            conn,
            tenant,
            "S-2",
            "failed",
            now - timedelta(hours=2),
            30,
            error_message="progress 100% done_x",
        )
        add_run(
            conn,
            tenant,
            "S-3",
            "failed",
            now - timedelta(hours=3),
            30,
            error_message="progress 1000 doneXx",
        )
        add_run(conn, tenant, "S-4", "completed", now - timedelta(hours=4), 30)
        add_run(conn, tenant, "S-5", "pending", now - timedelta(minutes=30))
        add_run(conn, tenant, "S-6", "pending", now - timedelta(seconds=20))
        add_run(
            conn,
            tenant,
            "S-old",
            "failed",
            now - timedelta(days=3),
            30,
            error_message="HTTPStatusError: 401 Unauthorized",
        )
        add_run(
            conn,
            other,
            "S-9",
            "failed",
            now - timedelta(hours=1),
            30,
            error_message="HTTPStatusError: 401 Unauthorized",
        )
    return tenant


# --- findings in memory (unit tests) --------------------------------------------------------------
READ_AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
STARTED = READ_AT - timedelta(minutes=20)


def made_run(status: str = "completed", **changes) -> Run:
    """A run started 20 min before READ_AT: 31 s to complete or fail, or still pending."""
    base = Run(
        run_id="r-1",
        status=status,
        created_at=STARTED,
        completed_at=STARTED + timedelta(seconds=31) if status != "pending" else None,
        processing_time_ms=31_000 if status != "pending" else None,
        error_message=None,
        context=ContextCounts(3, 1, 0, (), 2400),
        has_output=status == "completed",
        output_chars=120,
        llm_output=None,
        stuck=False,
        age_s=1200.0,
    )
    return replace(base, **changes)


def made_investigation(*runs: Run, queued: tuple[QueuePresence, ...] = ()) -> Investigation:
    return Investigation(
        tenant_id="msp-acme-corp",
        tenant_name="Acme",
        ticket_id="12345",
        runs=runs,
        total_runs=len(runs),
        feedback=(),
        queued=queued,
        queue_error=None,
        queue_paused=False,
        revealed=False,
        read_at=READ_AT,
    )
