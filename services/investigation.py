"""One ticket, every hop: the procedures' "Ticket Investigation Workflow" answered from the data.

For a tenant and a ServiceDesk Plus ticket id: every enhancement run (webhook received, worker
outcome with its failure mode and next step, stuck check, context counts), the ticket's jobs still
waiting in Redis, its feedback, a Jaeger search link, the procedures' commands filled in, and the
"TICKET INVESTIGATION SUMMARY" template filled in from all of it.

All reads happen inside tenant_scope(tenant_id): a ticket of another tenant is simply not found.
Sensitive columns (llm_output, feedback_comment, technician_email) are not even selected unless
the caller says the client consented (reveal=True).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from sqlalchemy import text

from services import kube, queues
from services.config import rules, settings
from services.db import read_frame, tenant_scope, validate_tenant_id
from services.errors import DashboardError, InvalidInput
from services.failures import MODES_BY_KEY, UNKNOWN, FailureMode, classify, sql_case

TICKET_ID_MAX = 100  # enhancement_history.ticket_id is VARCHAR(100)
STATUSES = ("pending", "completed", "failed")
STUCK = "stuck"  # search filter: pending past the worker time limit


def _rules() -> dict[str, Any]:
    return rules("investigation")


# --- input --------------------------------------------------------------------------------------
def validate_ticket_id(raw: object) -> str:
    """A clean ticket id, or InvalidInput saying what is wrong (never echoing the input back)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("Enter a ticket id, for example 12345.")
    ticket = raw.strip().removeprefix("#").strip()
    if len(ticket) > TICKET_ID_MAX:
        raise InvalidInput(
            f"That ticket id is {len(ticket):,} characters long; ticket ids have at most "
            f"{TICKET_ID_MAX}."
        )
    if not re.fullmatch(_rules()["ticket_id_pattern"], ticket):
        raise InvalidInput(
            "That is not a ticket id: use the ServiceDesk Plus request number (e.g. 12345); "
            "only letters, digits and . _ : / - are allowed."
        )
    return ticket


def case_reference(purpose: str | None) -> str | None:
    """The support case a purpose names (e.g. SUP-567), or None when it names none."""
    match = re.search(_rules()["case_reference_pattern"], purpose or "")
    return match.group(0).upper() if match else None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- what a lookup returns ---------------------------------------------------------------------
@dataclass(frozen=True)
class ContextCounts:
    similar_tickets: int
    kb_articles: int
    ip_matches: int
    node_errors: tuple[tuple[str, str], ...]  # (node_name, message)
    execution_ms: int | None
    readable: bool = True

    @property
    def timed_out(self) -> bool:
        return any(node == "all" for node, _ in self.node_errors)

    @property
    def summary(self) -> str:
        if not self.readable:
            return "context_gathered could not be read"
        errors = len(self.node_errors)
        return (
            f"{_plural(self.similar_tickets, 'similar ticket')}, "
            f"{_plural(self.kb_articles, 'KB article')}, "
            f"{_plural(self.ip_matches, 'IP match', 'es')}, {_plural(errors, 'node error')}"
        )


def parse_context(raw: str | None) -> ContextCounts | None:
    """Counts from context_gathered, stored either as a JSON object or a JSON string holding it.

    None when nothing was recorded: SQL NULL, or the JSON null the platform's ORM writes for a
    row that failed (or is still pending) before context gathering finished."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
        if isinstance(value, str):
            value = json.loads(value)
    except ValueError:
        return ContextCounts(0, 0, 0, (), None, readable=False)
    if value is None:
        return None
    if not isinstance(value, dict):
        return ContextCounts(0, 0, 0, (), None, readable=False)

    def count(key: str) -> int:
        items = value.get(key)
        return len(items) if isinstance(items, list) else 0

    listed = value.get("errors")
    errors = tuple(
        # The workflow writes "node_name"; some code paths write "node".
        (str(e.get("node_name", e.get("node", "?")))[:60], str(e.get("message", ""))[:200])
        for e in (listed if isinstance(listed, list) else [])
        if isinstance(e, dict)
    )
    elapsed = value.get("workflow_execution_time_ms")
    return ContextCounts(
        count("similar_tickets"),
        count("kb_articles"),
        count("ip_info"),
        errors,
        int(elapsed) if isinstance(elapsed, int | float) and math.isfinite(elapsed) else None,
    )


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    created_at: datetime
    completed_at: datetime | None
    processing_time_ms: int | None
    error_message: str | None
    context: ContextCounts | None
    has_output: bool
    output_chars: int
    llm_output: str | None  # only when revealed
    stuck: bool
    age_s: float
    attempt: int = 1  # 1 = the ticket's first attempt; each retry is its own row

    @property
    def completed_with_errors(self) -> bool:
        """Delivered, but a context node failed (LLM errors and context timeouts complete)."""
        return self.status == "completed" and bool(self.context and self.context.node_errors)

    @property
    def failure(self) -> FailureMode | None:
        if self.status != "failed":
            return None
        errors = self.context.node_errors if self.context else ()
        return classify(
            self.error_message,
            json.dumps([{"node_name": node, "message": message} for node, message in errors])
            if errors
            else None,
        )

    @property
    def processing_s(self) -> float | None:
        """Processing time of this attempt: completed_at - created_at (the worker's start)."""
        if self.completed_at is None:
            return None
        return (self.completed_at - self.created_at).total_seconds()


@dataclass(frozen=True)
class Feedback:
    created_at: datetime
    feedback_type: str
    rating_value: int | None
    enhancement_id: str | None
    has_comment: bool
    comment: str | None  # only when revealed
    technician_email: str | None  # only when revealed


@dataclass(frozen=True)
class QueuePresence:
    queue: str  # `celery` (over its priority lists) or `enhancement:queue`
    position: int  # 1 = taken next
    depth: int
    job_id: str | None
    age_s: float | None  # since enhancement:queue's created_at; None: a Celery message has none

    @property
    def waited(self) -> str:
        """How long the job has waited, or why that is not known."""
        if self.age_s is None:
            return "a Celery message carries no enqueue time"
        return f"queued {duration(self.age_s)} ago"


@dataclass(frozen=True)
class Investigation:
    tenant_id: str
    tenant_name: str | None  # None: no such tenant
    ticket_id: str
    runs: tuple[Run, ...]  # newest first
    total_runs: int
    feedback: tuple[Feedback, ...]
    queued: tuple[QueuePresence, ...]
    queue_error: str | None  # Redis could not be read
    queue_paused: bool
    revealed: bool
    read_at: datetime

    @property
    def found(self) -> bool:
        return bool(self.runs or self.queued)

    @property
    def latest(self) -> Run | None:
        return self.runs[0] if self.runs else None

    @property
    def webhook_note(self) -> str:
        """When the webhook arrived, as far as anything stored says."""
        queued = [q for q in self.queued if q.age_s is not None]
        if queued:
            oldest = max(q.age_s for q in queued)
            return (
                f"the job was queued at {when(self.read_at - timedelta(seconds=oldest))} "
                "(its created_at in Redis)"
            )
        if not self.runs:
            return "no record of it"
        first = min(self.runs, key=lambda r: r.attempt)
        started = f"attempt {first.attempt}" if first.attempt > 1 else "the first attempt"
        return (
            f"the webhook's arrival time is not stored; {started} started at "
            f"{when(first.created_at)}"
        )

    @property
    def row_count(self) -> int:
        return len(self.runs) + len(self.feedback) + len(self.queued)

    @property
    def queue_stuck(self) -> bool:
        """A job of this ticket waited longer than the queue's stuck threshold (30 min)."""
        limit_s = rules("queue")["oldest_job_stuck_minutes"] * 60
        return any(q.age_s is not None and q.age_s > limit_s for q in self.queued)

    @property
    def low_rated(self) -> bool:
        """A thumbs down, or a rating below the red-flag line, for this ticket."""
        red_flag = rules("health")["rating_red_flag"]
        return any(
            f.feedback_type == "thumbs_down"
            or (f.rating_value is not None and f.rating_value < red_flag)
            for f in self.feedback
        )

    @property
    def quality_concern(self) -> bool:
        """Delivered, but rated low or written without context (context gathering timed out)."""
        latest = self.latest
        if self.queued or latest is None or latest.status != "completed":
            return False
        return self.low_rated or bool(latest.context and latest.context.timed_out)

    @property
    def verdict(self) -> str:
        """One word for the ticket: queued, stuck, pending, failed, completed or not_found."""
        if self.queued:
            return "queued"
        if not self.latest:
            return "not_found"
        return STUCK if self.latest.stuck else self.latest.status


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
    limit = int(_rules()["max_runs"])
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


# --- links and commands -------------------------------------------------------------------------
def trace_window(runs: Iterable[Run], now: datetime) -> tuple[datetime, datetime]:
    """From a little before the first webhook to a little after the last run could have ended."""
    pad = timedelta(minutes=_rules()["trace_padding_minutes"])
    limit = timedelta(seconds=rules("platform")["celery_time_limit_s"])
    runs = list(runs)
    if not runs:
        return now - timedelta(hours=24), now
    start = min(r.created_at for r in runs) - pad
    end = max(r.completed_at or r.created_at + limit for r in runs) + pad
    return start, min(end, now)


def jaeger_link(tenant_id: str, ticket_id: str, start: datetime, end: datetime) -> str | None:
    """A Jaeger search by the platform's span tags and the time window; None without JAEGER_URL."""
    base = settings().jaeger_url
    if not base:
        return None
    query = {
        "service": rules("platform")["jaeger_service"],
        "tags": json.dumps({"ticket.id": ticket_id, "tenant.id": tenant_id}),
        "start": int(start.timestamp() * 1_000_000),  # Jaeger wants microseconds
        "end": int(end.timestamp() * 1_000_000),
        "lookback": "custom",
        "limit": 20,
    }
    return f"{base.rstrip('/')}/search?{urlencode(query)}"


@dataclass(frozen=True)
class Command:
    step: str
    purpose: str
    language: str
    body: str


def commands(inv: Investigation) -> list[Command]:
    """The procedures' commands with this ticket's values, quoted for the shell (a job id comes
    from Redis, not from our validation); tenant and ticket ids are validated for the SQL."""
    ticket, tenant = inv.ticket_id, inv.tenant_id
    oldest_age_h = max((r.age_s for r in inv.runs), default=0) / 3600
    since = f"{max(1, math.ceil(oldest_age_h + 0.25))}h"  # a quarter hour of margin
    cluster = kube.names()
    api, worker = cluster.logs(cluster.api, since), cluster.logs(cluster.worker, since)
    job_ids = sorted({q.job_id for q in inv.queued if q.job_id})
    by_ticket = shlex.quote(f"ticket_id: {ticket}")
    worker_grep = shlex.quote(f"job_id: {job_ids[0]}" if job_ids else f"ticket_id={ticket}")
    found = [
        Command("Step 2", "Was the webhook received?", "bash", f"{api} | grep {by_ticket}"),
        Command(
            "Step 3",
            "Was the job queued?",
            "bash",
            f'{api} | grep -A5 {by_ticket} | grep "Job queued"',
        ),
        Command("Step 4", "What did the worker do?", "bash", f"{worker} | grep {worker_grep}"),
        Command(
            "Step 4",
            "Queue depth (stuck or slow jobs): celery is the sum of its 4 lists",
            "bash",
            queues.cli_commands(),
        ),
    ]
    if inv.latest and inv.latest.status == "pending":
        found.append(
            Command(
                "Step 4",
                "Worker health (crashes, OOMKilled)",
                "bash",
                cluster.worker_pods(),
            )
        )
    found.append(
        Command(
            "Data access",
            "The run in the database (psql, RLS context first, for this transaction only)",
            "sql",
            # Transaction-local, unlike the procedures' session-level SET: through a pooler
            # a session setting would follow the connection to its next user.
            "BEGIN;\n"
            f"SELECT set_config('app.current_tenant_id', {_sql_literal(tenant)}, true);\n"
            "SELECT id, ticket_id, status, error_message, created_at, completed_at\n"
            f"  FROM enhancement_history WHERE tenant_id = {_sql_literal(tenant)}\n"
            f"   AND ticket_id = {_sql_literal(ticket)}\n"
            " ORDER BY created_at DESC LIMIT 5;\n"
            "COMMIT;",
        )
    )
    return found


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- the summary --------------------------------------------------------------------------------
def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "–"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.0f} d"


def _plural(n: int, word: str, suffix: str = "s") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{suffix}"


def root_cause(inv: Investigation) -> tuple[str, str]:
    """(suggested root cause, next step) for the ticket's current state."""
    latest, limit = inv.latest, rules("health")["stuck_pending_seconds"]
    if inv.queued:
        q = inv.queued[0]
        paused = (
            " Processing is paused (system:pause_processing is set)." if inv.queue_paused else ""
        )
        stuck = (
            f" Waiting longer than {rules('queue')['oldest_job_stuck_minutes']} min means the "
            "queue is stuck."
            if inv.queue_stuck
            else ""
        )
        return (
            f"The job is still waiting in `{q.queue}` (position {q.position} of {q.depth}, "
            f"{q.waited}): no worker has taken it yet.{stuck}{paused}",
            "Check the queue depth and the workers (High Queue Depth runbook); if the queue is "
            "draining, tell the client the enhancement is on its way.",
        )
    if latest is None:
        return (
            "No enhancement run and no queued job for this ticket: the webhook most likely never "
            "reached the platform (or was rejected).",
            "Check the ServiceDesk Plus webhook configuration (URL, active, signing secret) and "
            "the API logs for 401 signature validation failures (step 2).",
        )
    if latest.stuck:
        return (
            f"The run has been pending for {duration(latest.age_s)}, longer than the {limit} s "
            "worker time limit, and its job is in no queue: the worker most likely crashed or "
            "was OOMKilled while processing it.",
            "Check worker health (restarts, OOMKilled) and the worker logs for this ticket, then "
            "re-queue the ticket.",
        )
    if latest.status == "pending":
        return (
            "A worker is processing the ticket right now.",
            "Wait for the worker's time limit before treating it as stuck.",
        )
    failure = latest.failure
    if failure is not None:
        return (
            f"{failure.label}: {latest.error_message or 'see the context errors'}",
            failure.next_step,
        )
    if latest.context and latest.context.timed_out:
        return (
            "The enhancement was delivered, but context gathering timed out: it was written "
            "without similar tickets, KB articles or IP data.",
            MODES_BY_KEY["context_timeout"].next_step,
        )
    if inv.low_rated:
        return (
            "The enhancement was delivered but rated low by the technician: a quality issue.",
            "Quality investigation (step 6): review the enhancement and its context with the "
            "client; share the example with Engineering if it shows a pattern.",
        )
    if latest.completed_with_errors:
        node, message = latest.context.node_errors[0]
        return (
            f"The enhancement was delivered, with errors: context node `{node}` failed "
            f"({message}), so it was written with less context. Not a failure: the platform "
            "completes a run when a context source or the LLM fails (an LLM error posts a "
            "fallback text).",
            "If the client finds it unhelpful, check that source (KB API, ticket_history, "
            "inventory) for this tenant; re-queue the ticket once it answers.",
        )
    return (
        "The enhancement was delivered to ServiceDesk Plus.",
        "If the client says it was not received, check the ticket's comments on the ServiceDesk "
        "Plus side.",
    )


def _mark(ok: bool | None) -> str:
    return {True: "✅", False: "❌", None: "⏳"}[ok]


def summary(
    inv: Investigation, engineer: str, case: str, trace_url: str | None, today: datetime
) -> str:
    """The procedures' TICKET INVESTIGATION SUMMARY, filled in. No sensitive content in it."""
    latest = inv.latest
    client = f"{inv.tenant_name or 'unknown tenant'} (tenant_id: {inv.tenant_id})"
    lines = [
        "TICKET INVESTIGATION SUMMARY",
        "============================",
        f"Date: {today.astimezone(UTC):%Y-%m-%d}",
        f"Support Engineer: {engineer}",
        f"Support Case: {case}",
        f"Ticket ID: {inv.ticket_id}",
        f"Client: {client}",
        "Issue Reported: [what the client reported]",
        "",
        "FINDINGS:",
        "---------",
    ]
    if latest:
        attempts = f"; {inv.total_runs} attempts" if inv.total_runs > 1 else ""
        lines.append(f"1. Webhook Received: ✅ Yes ({inv.webhook_note}{attempts})")
    elif inv.queued:
        lines.append("1. Webhook Received: ✅ Yes (the job is in the queue)")
    else:
        lines.append("1. Webhook Received: ❌ No record of it")
    if inv.queued:
        q = inv.queued[0]
        job = f", job_id: {q.job_id}" if q.job_id else ""
        lines.append(
            f"2. Job Queued: ⏳ Waiting in {q.queue}, position {q.position} of "
            f"{q.depth}, {q.waited}{job}"
        )
    elif latest:
        lines.append("2. Job Queued: ✅ Yes (a worker picked it up)")
    else:
        lines.append("2. Job Queued: ❌ Not in any queue")
    if latest is None:
        lines.append("3. Worker Processing: ⏳ Not started")
    elif latest.stuck:
        lines.append(f"3. Worker Processing: ❌ Stuck (pending for {duration(latest.age_s)})")
    elif latest.status == "pending":
        lines.append(f"3. Worker Processing: ⏳ In progress ({duration(latest.age_s)})")
    elif latest.status == "completed":
        done = "Completed with errors" if latest.completed_with_errors else "Completed"
        lines.append(
            f"3. Worker Processing: ✅ {done} on attempt {latest.attempt} of {inv.total_runs}, "
            f"processing time {duration(latest.processing_s)} ({when(latest.completed_at)})"
        )
    else:
        failure = latest.failure or UNKNOWN
        lines += [
            f"3. Worker Processing: ❌ Failed (attempt {latest.attempt} of {inv.total_runs})",
            f'   - Error: "{(latest.error_message or "no error message")[:300]}"',
            f"   - Root Cause: {failure.label}",
        ]
    lines.append(f"4. Distributed Trace: {trace_url or 'JAEGER_URL is not set'}")
    if latest and latest.status != "pending":
        context = latest.context.summary if latest.context else "not recorded"
        lines.append(f"5. Context Gathered: {context}")
    if inv.feedback:
        lines.append(f"6. Feedback: {feedback_summary(inv.feedback)}")
    cause, next_step = root_cause(inv)
    lines += [
        "",
        "ROOT CAUSE:",
        "-----------",
        f"Suggested: {cause}",
        "",
        "RESOLUTION:",
        "-----------",
        "1. [what was done]",
        "",
        "FOLLOW-UP:",
        "----------",
        f"- {next_step}",
    ]
    return "\n".join(lines) + "\n"


def feedback_summary(feedback: Iterable[Feedback]) -> str:
    parts = []
    for f in feedback:
        if f.feedback_type == "rating" and f.rating_value is not None:
            parts.append(f"rated {f.rating_value}/5")
        else:
            parts.append(f.feedback_type.replace("_", " "))
    return ", ".join(parts) or "none"


# --- finding a ticket without its id ------------------------------------------------------------
# One branch per status, each newest-first through (tenant_id, status, created_at DESC) and
# limited, then merged: a single ORDER BY over several statuses would sort every run of a busy
# tenant's window (a third of a million rows for the busiest demo tenant over 30 days).
_SEARCH_BRANCH = """(
SELECT ticket_id, status, created_at, completed_at, processing_time_ms, error_message,
       context_gathered
  FROM enhancement_history
 WHERE tenant_id = :tenant AND status = '{status}' AND created_at >= :since AND created_at <= :now
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
    since: datetime,
    now: datetime,
    statuses: Iterable[str] = (),
    error_text: str = "",
) -> pd.DataFrame:
    """Recent runs of one tenant by status (or "stuck"), time window and error text."""
    tenant_id = validate_tenant_id(tenant_id)
    wanted = [s for s in _SEARCH_BRANCHES if s in set(statuses)] or list(STATUSES)
    if "pending" in wanted and STUCK in wanted:
        wanted.remove(STUCK)  # stuck runs are pending runs
    needle = (error_text or "").strip()
    if len(needle) > _rules()["max_search_text"]:
        raise InvalidInput(
            f"Search for at most {_rules()['max_search_text']} characters of error text."
        )
    params = {
        "tenant": tenant_id,
        "since": since,
        "now": now,
        "stuck_s": rules("health")["stuck_pending_seconds"],
        "pattern": f"%{_escape_like(needle)}%" if needle else None,
        "limit": int(_rules()["search_limit"]),
    }
    # Only constant branches from _SEARCH_BRANCHES are joined in; every value is a parameter.
    sql = _SEARCH_SQL.replace(
        "{branches}", "\n UNION ALL\n".join(_SEARCH_BRANCHES[s] for s in wanted)
    )
    with tenant_scope(tenant_id) as conn:
        frame = read_frame(conn, sql, params)
    frame["cause"] = frame["mode"].map({key: mode.label for key, mode in MODES_BY_KEY.items()})
    return frame
