"""The steps of the investigation page's timeline: one list per queued job, one per attempt.

Each step is (time, tone, title, detail); detail is HTML in which every value from the data is
escaped, so the page can draw it as it is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.config import rules
from services.formatting import ago, duration
from services.investigation.model import Investigation, QueuePresence, Run

OK, BAD, WAIT, INFO, MUTED = "ok", "bad", "wait", "info", "muted"


@dataclass(frozen=True)
class Step:
    time: str  # "Dec 01, 10:00:00", or "" when not known
    tone: str  # OK, BAD, WAIT, INFO or MUTED: the colour of the step's dot
    title: str  # plain text
    detail: str  # HTML, values escaped


def esc(value: object) -> str:
    return html.escape(str(value))


def clock(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%b %d, %H:%M:%S") if value else ""


def queue_steps(inv: Investigation, q: QueuePresence) -> list[Step]:
    """A job still waiting: when it was queued (if Redis says), and its place in the queue."""
    queued_at = inv.read_at - timedelta(seconds=q.age_s) if q.age_s is not None else None
    job = f" · job <code>{esc(q.job_id)}</code>" if q.job_id else ""
    return [
        Step(
            clock(queued_at),
            OK,
            "Webhook received, job queued" + (" (its created_at)" if q.age_s is not None else ""),
            f"{esc(ago(q.age_s, never='') or 'when: not recorded in a Celery message')}{job}",
        ),
        Step(
            clock(inv.read_at),
            WAIT,
            "Waiting for a worker",
            f"position <b>{q.position}</b> of {q.depth} in <code>{esc(q.queue)}</code> "
            "(1 = taken next)",
        ),
    ]


def run_steps(run: Run, inv: Investigation) -> list[Step]:
    """One attempt: started, then processing or stuck, or its context and its outcome."""
    # created_at is when a worker started this attempt (the worker inserts the row then).
    if run.attempt == 1:
        started = (
            "Attempt 1 started by a worker",
            f"{esc(ago(run.age_s, never=''))} · the webhook's arrival time is not stored",
        )
    else:
        started = (
            f"Attempt {run.attempt} started: a retry of the same ticket",
            f"{esc(ago(run.age_s, never=''))} · Celery retries a failed attempt (up to 3 times)",
        )
    steps = [Step(clock(run.created_at), OK, *started)]
    if run.status == "pending":
        if inv.queued:
            steps.append(
                Step("", WAIT, "A job of this ticket is queued", "no worker has taken it yet")
            )
            return steps
        if run.stuck:
            steps.append(
                Step(
                    clock(inv.read_at),
                    BAD,
                    "Stuck",
                    f"pending for <b>{esc(duration(run.age_s))}</b>, longer than the "
                    f"{rules('health')['stuck_pending_seconds']} s worker time limit: the worker "
                    "most likely died",
                )
            )
        else:
            steps.append(
                Step(
                    clock(inv.read_at),
                    INFO,
                    "Processing",
                    f"running for {esc(duration(run.age_s))}",
                )
            )
        return steps
    c = run.context
    if c is None:
        steps.append(
            Step("", MUTED, "Context gathered", "not recorded (the attempt stopped before)")
        )
    else:
        elapsed = f" · {esc(duration(c.execution_ms / 1000))}" if c.execution_ms is not None else ""
        notes = "".join(
            f'<br><span class="inv-note">⚠ node <code>{esc(node)}</code>: {esc(message)}</span>'
            for node, message in c.node_errors
        )
        tone = BAD if c.timed_out else WAIT if c.node_errors or not c.readable else OK
        steps.append(Step("", tone, "Context gathered", esc(c.summary) + elapsed + notes))
    took = f"processing time {esc(duration(run.processing_s))}"
    if run.processing_time_ms is not None:
        took += f" · processing_time_ms {run.processing_time_ms:,}"
    if run.completed_with_errors:
        steps.append(
            Step(clock(run.completed_at), WAIT, "Enhancement posted, completed with errors", took)
        )
    elif run.status == "completed":
        steps.append(Step(clock(run.completed_at), OK, "Enhancement posted to the ticket", took))
    else:
        label = run.failure.label if run.failure else "Failed"
        steps.append(Step(clock(run.completed_at), BAD, f"Failed: {label}", took))
    return steps
