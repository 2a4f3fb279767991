"""What a ticket investigation is made of: the ticket id and case reference a lookup starts from,
the runs, feedback and queued jobs it finds, the counts parsed from context_gathered, and the
plain-text formats (times, durations) everything about a ticket is told in.

Nothing here reads a database or Redis (services/investigation/lookup.py does).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.config import rules
from services.errors import InvalidInput
from services.failures import FailureMode, classify
from services.formatting import duration, plural, timestamp

TICKET_ID_MAX = 100  # enhancement_history.ticket_id is VARCHAR(100)
STATUSES = ("pending", "completed", "failed")
STUCK = "stuck"  # search filter: pending past the worker time limit


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
    if not re.fullmatch(rules("investigation")["ticket_id_pattern"], ticket):
        raise InvalidInput(
            "That is not a ticket id: use the ServiceDesk Plus request number (e.g. 12345); "
            "only letters, digits and . _ : / - are allowed."
        )
    return ticket


def case_reference(purpose: str | None) -> str | None:
    """The support case a purpose names (e.g. SUP-567), or None when it names none."""
    match = re.search(rules("investigation")["case_reference_pattern"], purpose or "")
    return match.group(0).upper() if match else None


# --- how times and counts are told ----------------------------------------------------------------
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
            f"{plural(self.similar_tickets, 'similar ticket')}, "
            f"{plural(self.kb_articles, 'KB article')}, "
            f"{plural(self.ip_matches, 'IP match', 'es')}, {plural(errors, 'node error')}"
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
                f"the job was queued at {timestamp(self.read_at - timedelta(seconds=oldest))} "
                "(its created_at in Redis)"
            )
        if not self.runs:
            return "no record of it"
        first = min(self.runs, key=lambda r: r.attempt)
        started = f"attempt {first.attempt}" if first.attempt > 1 else "the first attempt"
        return (
            f"the webhook's arrival time is not stored; {started} started at "
            f"{timestamp(first.created_at)}"
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
