"""Reading one tenant's ticket: its runs and feedback from PostgreSQL, its jobs still waiting in
Redis, and the search for recent runs by status, window and error text.

All reads happen inside tenant_scope(tenant_id): a ticket of another tenant is simply not found.
Sensitive columns (llm_output, feedback_comment, technician_email) are not even selected unless
the caller says the client consented (reveal=True).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import text

from services import queues
from services.config import rules
from services.db import read_frame, tenant_scope, validate_tenant_id
from services.errors import DashboardError, InvalidInput
from services.failures import MODES_BY_KEY, sql_case
from services.investigation.model import (
    STATUSES,
    STUCK,
    Feedback,
    Investigation,
    QueuePresence,
    Run,
    parse_context,
    validate_ticket_id,
)
from services.timerange import TimeRange

# --- the lookup ---------------------------------------------------------------------------------
RUNS_SQL = """
SELECT id::text AS run_id, status, created_at, completed_at, processing_time_ms, error_message,
       context_gathered::text AS context_json,
       coalesce(length(llm_output), 0) > 0 AS has_output,
       coalesce(length(llm_output), 0) AS output_chars,
       CASE WHEN :reveal THEN llm_output END AS llm_output,
       status = 'pending' AND created_at < now() - make_interval(secs => :stuck_s) AS stuck,
       extract(epoch FROM now() - created_at)::float AS age_s,
       row_number() OVER (ORDER BY created_at, id) AS attempt,
       count(*) OVER () AS total_runs
  FROM enhancement_history
 WHERE tenant_id = :tenant AND ticket_id = :ticket
 ORDER BY created_at DESC
 LIMIT :limit
"""

FEEDBACK_SQL = """
SELECT created_at, feedback_type, rating_value, enhancement_id::text AS enhancement_id,
       coalesce(length(feedback_comment), 0) > 0 AS has_comment,
       CASE WHEN :reveal THEN feedback_comment END AS comment,
       CASE WHEN :reveal THEN technician_email END AS technician_email
  FROM enhancement_feedback
 WHERE tenant_id = :tenant AND ticket_id = :ticket
 ORDER BY created_at DESC
 LIMIT :limit
"""


def lookup(tenant_id: str, ticket_id: str, reveal: bool = False) -> Investigation:
    """Everything about one ticket of one tenant. reveal=True only after client consent."""
    tenant_id, ticket = validate_tenant_id(tenant_id), validate_ticket_id(ticket_id)
    limit = int(rules("investigation")["max_runs"])
    params = {
        "tenant": tenant_id,
        "ticket": ticket,
        "reveal": reveal,
        "limit": limit,
        "stuck_s": rules("health")["stuck_pending_seconds"],
    }
    with tenant_scope(tenant_id) as conn:
        name = conn.execute(
            text("SELECT name FROM tenant_configs WHERE tenant_id = :tenant"), params
        ).scalar_one_or_none()
        run_rows = conn.execute(text(RUNS_SQL), params).mappings().all()
        feedback_rows = conn.execute(text(FEEDBACK_SQL), params).mappings().all()
    runs = tuple(
        Run(
            run_id=r["run_id"],
            status=r["status"],
            created_at=r["created_at"],
            completed_at=r["completed_at"],
            processing_time_ms=r["processing_time_ms"],
            error_message=r["error_message"],
            context=parse_context(r["context_json"]),
            has_output=r["has_output"],
            output_chars=r["output_chars"],
            llm_output=r["llm_output"],
            stuck=r["stuck"],
            age_s=r["age_s"],
            attempt=r["attempt"],
        )
        for r in run_rows
    )
    feedback = tuple(Feedback(**dict(r)) for r in feedback_rows)
    queued, queue_error, paused = _queue_presence(tenant_id, ticket)
    if queued:  # still waiting for a worker: a slow queue, not a worker that died on it
        runs = tuple(replace(r, stuck=False) for r in runs)
    return Investigation(
        tenant_id=tenant_id,
        tenant_name=name,
        ticket_id=ticket,
        runs=runs,
        total_runs=run_rows[0]["total_runs"] if run_rows else 0,
        feedback=feedback,
        queued=queued,
        queue_error=queue_error,
        queue_paused=paused,
        revealed=reveal,
        read_at=datetime.now(UTC),
    )


def _queue_presence(
    tenant_id: str, ticket_id: str
) -> tuple[tuple[QueuePresence, ...], str | None, bool]:
    """This ticket's jobs in the live queues (allowlisted fields only); Redis down is reported."""
    try:
        snap = queues.snapshot()
    except DashboardError as exc:
        return (), str(exc), False
    found = tuple(
        QueuePresence(
            queue=job.family,
            position=job.position,
            depth=snap.depth_of(job.family),
            job_id=job.job_id,
            age_s=(snap.read_at - job.enqueued_at).total_seconds() if job.enqueued_at else None,
        )
        for job in snap.jobs
        if job.tenant_id == tenant_id and job.ticket_id == ticket_id
    )
    return found, None, snap.paused


# --- finding a ticket without its id ------------------------------------------------------------
# One branch per status, each newest-first through (tenant_id, status, created_at DESC) and
# limited, then merged: a single ORDER BY over several statuses would sort every run of a busy
# tenant's window (a third of a million rows for the busiest demo tenant over 30 days).
_SEARCH_BRANCH = """(
SELECT ticket_id, status, created_at, completed_at, processing_time_ms, error_message,
       context_gathered
  FROM enhancement_history
 WHERE tenant_id = :tenant AND status = '{status}' AND created_at >= :since AND created_at < :until
   AND (CAST(:pattern AS text) IS NULL OR error_message ILIKE :pattern ESCAPE '\\'){extra}
 ORDER BY created_at DESC
 LIMIT :limit)"""
_SEARCH_BRANCHES = {
    status: _SEARCH_BRANCH.format(status=status, extra="") for status in STATUSES
} | {
    STUCK: _SEARCH_BRANCH.format(
        status="pending", extra="\n   AND created_at < now() - make_interval(secs => :stuck_s)"
    )
}
_SEARCH_SQL = f"""
SELECT ticket_id, status,
       status = 'pending' AND created_at < now() - make_interval(secs => :stuck_s) AS stuck,
       created_at, completed_at, processing_time_ms,
       CASE WHEN status = 'failed' THEN {sql_case()} END AS mode,
       left(error_message, 200) AS error
  FROM ({{branches}}) picked
 ORDER BY created_at DESC
 LIMIT :limit
"""


def search_runs(
    tenant_id: str,
    period: TimeRange,
    statuses: Iterable[str] = (),
    error_text: str = "",
) -> pd.DataFrame:
    """Recent runs of one tenant by status (or "stuck"), time window and error text."""
    tenant_id = validate_tenant_id(tenant_id)
    wanted = [s for s in _SEARCH_BRANCHES if s in set(statuses)] or list(STATUSES)
    if "pending" in wanted and STUCK in wanted:
        wanted.remove(STUCK)  # stuck runs are pending runs
    needle = (error_text or "").strip()
    limits = rules("investigation")
    if len(needle) > limits["max_search_text"]:
        raise InvalidInput(
            f"Search for at most {limits['max_search_text']} characters of error text."
        )
    params = {
        "tenant": tenant_id,
        **period.params,
        "stuck_s": rules("health")["stuck_pending_seconds"],
        "pattern": f"%{_escape_like(needle)}%" if needle else None,
        "limit": int(limits["search_limit"]),
    }
    # Only constant branches from _SEARCH_BRANCHES are joined in; every value is a parameter.
    sql = _SEARCH_SQL.replace(
        "{branches}", "\n UNION ALL\n".join(_SEARCH_BRANCHES[s] for s in wanted)
    )
    with tenant_scope(tenant_id) as conn:
        frame = read_frame(conn, sql, params)
    frame["cause"] = frame["mode"].map({key: mode.label for key, mode in MODES_BY_KEY.items()})
    return frame


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
