"""What a ticket's findings say: the suggested root cause and next step, the procedures' TICKET
INVESTIGATION SUMMARY filled in, their commands with this ticket's values, and the Jaeger link.

Pure functions of an Investigation (services/investigation/model.py); nothing here reads data.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from services import kube, queues
from services.config import rules, settings
from services.failures import MODES_BY_KEY, UNKNOWN
from services.formatting import duration, timestamp
from services.investigation.model import Feedback, Investigation, Run


# --- links and commands -------------------------------------------------------------------------
def trace_window(runs: Iterable[Run], now: datetime) -> tuple[datetime, datetime]:
    """From a little before the first webhook to a little after the last run could have ended."""
    pad = timedelta(minutes=rules("investigation")["trace_padding_minutes"])
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
            f"processing time {duration(latest.processing_s)} ({timestamp(latest.completed_at)})"
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


def feedback_tile(feedback: Iterable[Feedback]) -> str:
    """The feedback short enough for a metric tile: ratings, then thumbs."""
    feedback = list(feedback)
    if not feedback:
        return "none"
    ratings = [f"{f.rating_value}/5" for f in feedback if f.rating_value is not None]
    thumbs = [
        "👍" if f.feedback_type == "thumbs_up" else "👎"
        for f in feedback
        if f.feedback_type in ("thumbs_up", "thumbs_down")
    ]
    return " ".join(ratings + thumbs)
