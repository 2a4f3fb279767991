"""The platform's failure modes, as the procedures name them, with their next steps.

One ordered list drives both the Python classifier (investigation of one run) and the SQL CASE
expression (aggregates over many runs), so the two can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.config import rules


@dataclass(frozen=True)
class FailureMode:
    key: str
    label: str
    pattern: str  # POSIX/Python-compatible regex, matched case-insensitively
    next_step: str


# Order matters: the first match wins. A bug in the platform's own code is recognised by the
# Python exception type the worker writes first (f"{type(exc).__name__}: {exc}"); the exception
# types that mean something outside the code (TimeoutError, HTTPStatusError, the RuntimeError
# the ServiceDesk Plus client raises, openai.*) are not in that list and keep their own classes.
PLATFORM_BUG_TYPES = (
    "KeyError",
    "AttributeError",
    "TypeError",
    "NameError",
    "ValueError",
    "IndexError",
    "UnboundLocalError",
    "ZeroDivisionError",
    "AssertionError",
    "ImportError",
    "ModuleNotFoundError",
    "NotImplementedError",
    "RecursionError",
    "ValidationError",
)
FAILURE_MODES: tuple[FailureMode, ...] = (
    FailureMode(
        "soft_time_limit",
        f"Soft time limit ({rules('platform')['celery_soft_time_limit_s']} s)",
        r"soft time limit|time ?limit exceeded",
        "The whole job ran past Celery's limit: open the trace to find the slow span "
        "(context gathering, LLM or ServiceDesk Plus), then re-queue once it has recovered.",
    ),
    FailureMode(
        "platform_bug",
        "Platform bug (Python exception in the worker)",
        r"^\s*(" + "|".join(PLATFORM_BUG_TYPES) + r")\M",
        "A bug in the platform's own code, not the tenant's setup: escalate to Engineering with "
        "this text (error_message verbatim), the ticket id and the time; re-queueing will fail "
        "the same way until it is fixed.",
    ),
    FailureMode(
        "context_timeout",
        "Context gathering timeout",
        r"node(_name)?\W+all\W|context gathering.*(timeout|timed out)",
        "Slow context sources: check slow queries on ticket_history and the KB API, "
        "and the tenant's kb_timeout_seconds preference.",
    ),
    FailureMode(
        "llm_error",
        "LLM timeout or error",
        r"openai|openrouter|llm|gpt|ratelimiterror|apitimeouterror|completion",
        "OpenAI service issue or rate limit: check the provider status and the LLM span; "
        "re-queue after it recovers; escalate to Engineering if it persists.",
    ),
    FailureMode(
        "sdp_auth",
        "ServiceDesk Plus credentials expired (401/403)",
        r"\m40[13]\M|unauthori[sz]ed|forbidden|invalid api key",
        "Ask the client for a new ServiceDesk Plus API key and follow the credential-update "
        "procedure; validate with a test enhancement.",
    ),
    FailureMode(
        "sdp_rate_limit",
        "ServiceDesk Plus rate limit (429)",
        r"\m429\M|too many requests",
        "The client's ServiceDesk Plus is throttling us: check their API limits and the "
        "tenant's volume; spread re-queues out.",
    ),
    FailureMode(
        "sdp_update_failed",
        "ServiceDesk Plus update failed (no status code)",
        r"failed to update ticket .* via servicedesk",
        "The ticket update was refused or never answered, and the platform kept no status code: "
        "check in ServiceDesk Plus that the ticket still exists and is open, that the tenant's "
        "servicedesk_url answers, and the api.servicedesk_plus.update_ticket span; then re-queue.",
    ),
    FailureMode(
        "sdp_error",
        "ServiceDesk Plus API error",
        r"servicedesk|sdp|httpstatuserror|connecterror|read ?timeout",
        "ServiceDesk Plus API slow or failing: check its latency in the trace and the ticket id; "
        "re-queue once it answers.",
    ),
    FailureMode(
        "timeout",
        "Timeout (TimeoutError)",
        r"timeouterror|timed out",
        "A call inside the worker timed out: open the trace for the slow span (context sources, "
        "LLM or ServiceDesk Plus) and re-queue once it answers again.",
    ),
)

UNKNOWN = FailureMode(
    "unknown",
    "Unknown failure",
    "",
    "Read the error and the worker logs for this job; escalate to Engineering with the ticket id.",
)
MODES_BY_KEY = {mode.key: mode for mode in (*FAILURE_MODES, UNKNOWN)}


def _python_pattern(pattern: str) -> str:
    # PostgreSQL's \m and \M (word start/end) are \b in Python.
    return pattern.replace(r"\m", r"\b").replace(r"\M", r"\b")


_COMPILED = [(mode, re.compile(_python_pattern(mode.pattern), re.I)) for mode in FAILURE_MODES]


def classify(error_message: str | None, context_errors: str | None = None) -> FailureMode:
    """The failure mode of one failed run, from its error text and its context-gathering errors."""
    text = " ".join(part for part in (error_message, context_errors) if part)
    for mode, regex in _COMPILED:
        if regex.search(text):
            return mode
    return UNKNOWN


def sql_case(error_column: str = "error_message", context_column: str = "context_gathered") -> str:
    """SQL expression giving the failure-mode key of a row (same order as classify).

    Only the context's `errors` entries count (not similar tickets' text), whether the column
    holds a JSON object or a JSON string holding one; JSON null (not recorded) adds nothing."""
    errors = (
        f"(CASE WHEN json_typeof({context_column}) = 'string'"
        f" THEN ({context_column} #>> '{{}}')::json -> 'errors'"
        f" ELSE {context_column} -> 'errors' END)::text"
    )
    text = f"concat_ws(' ', {error_column}, {errors})"
    whens = " ".join(f"WHEN {text} ~* '{mode.pattern}' THEN '{mode.key}'" for mode in FAILURE_MODES)
    return f"CASE {whens} ELSE 'unknown' END"
