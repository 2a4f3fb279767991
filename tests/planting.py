"""Plant platform rows for tests (as the superuser, which RLS does not apply to)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import psycopg


def add_tenant(
    conn: psycopg.Connection,
    tenant_id: str,
    name: str | None = None,
    active: bool = True,
    preferences: dict | None = None,
) -> None:
    conn.execute(
        "INSERT INTO tenant_configs (tenant_id, name, servicedesk_url,"
        " servicedesk_api_key_encrypted, webhook_signing_secret_encrypted,"
        " enhancement_preferences, is_active)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            tenant_id,
            name or f"Tenant {tenant_id}",
            f"https://{tenant_id}.example.com",
            f"gAAAAA-secret-key-of-{tenant_id}",
            f"gAAAAA-webhook-secret-of-{tenant_id}",
            json.dumps(preferences or {}),
            active,
        ),
    )


def add_run(
    conn: psycopg.Connection,
    tenant_id: str,
    ticket_id: str,
    status: str,
    created_at: datetime,
    latency_s: float | None = None,
    error_message: str | None = None,
    context: dict | str | None = None,
) -> str:
    """One run; its id. A str `context` is stored as given (e.g. a JSON string holding the
    object, as the worker's json.dumps leaves it)."""
    completed_at = created_at + timedelta(seconds=latency_s) if latency_s is not None else None
    return conn.execute(
        "INSERT INTO enhancement_history (tenant_id, ticket_id, status, created_at, completed_at,"
        " processing_time_ms, error_message, context_gathered) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
        " RETURNING id::text",
        (
            tenant_id,
            ticket_id,
            status,
            created_at,
            completed_at,
            int(latency_s * 1000) if latency_s is not None else None,
            error_message,
            None
            if context is None
            else (context if isinstance(context, str) else json.dumps(context)),
        ),
    ).fetchone()[0]


def add_runs(
    conn: psycopg.Connection,
    tenant_id: str,
    count: int,
    status: str,
    start: datetime,
    latency_s: float = 20.0,
    error_message: str | None = None,
    step: timedelta = timedelta(minutes=1),
) -> None:
    """`count` runs one `step` apart from `start`, all with the same status and latency."""
    with conn.cursor().copy(
        "COPY enhancement_history (tenant_id, ticket_id, status, created_at, completed_at,"
        " error_message) FROM STDIN"
    ) as copy:
        for i in range(count):
            created = start + i * step
            done = created + timedelta(seconds=latency_s) if status != "pending" else None
            copy.write_row((tenant_id, f"{status}-{i}", status, created, done, error_message))


def add_feedback(
    conn: psycopg.Connection,
    tenant_id: str,
    ticket_id: str,
    kind: str,
    created_at: datetime,
    rating: int | None = None,
    comment: str | None = None,
    enhancement_id: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO enhancement_feedback (tenant_id, ticket_id, feedback_type, rating_value,"
        " feedback_comment, technician_email, created_at, enhancement_id)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
        (
            tenant_id,
            ticket_id,
            kind,
            rating,
            comment,
            f"tech@{tenant_id}.example.com",
            created_at,
            enhancement_id,
        ),
    )


def add_ticket(
    conn: psycopg.Connection,
    tenant_id: str,
    ticket_id: str,
    description: str,
    resolved: datetime,
    resolution: str = "Resolved with the user.",
    source: str = "webhook_resolved",
) -> None:
    """One ticket_history row with the platform's columns only (no subject, priority, tags)."""
    conn.execute(
        "INSERT INTO ticket_history (tenant_id, ticket_id, description, resolution,"
        " resolved_date, source, ingested_at) VALUES (%s,%s,%s,%s,%s,%s,%s)",
        (tenant_id, ticket_id, description, resolution, resolved, source, resolved),
    )


def add_history(
    conn: psycopg.Connection, tenant_id: str, count: int, newest: datetime, span_days: int = 60
) -> None:
    """`count` bulk-imported tickets resolved over `span_days` up to `newest`."""
    with conn.cursor().copy(
        "COPY ticket_history (tenant_id, ticket_id, description, resolution, resolved_date,"
        " source, ingested_at) FROM STDIN"
    ) as copy:
        for i in range(count):
            when = newest - timedelta(days=span_days * i / max(count - 1, 1))
            copy.write_row(
                (tenant_id, f"h-{i}", "resolved ticket", "fixed", when, "bulk_import", newest)
            )
