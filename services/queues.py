"""The live Redis queues, read safely.

Jobs hold the tenant's decrypted ServiceDesk Plus API key, so a message is parsed inside one
function and only allowlisted fields leave it: never a payload, never logged, never cached.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from services.config import settings
from services.errors import SourceUnavailable

CELERY_QUEUE = "celery"
# Celery's Redis transport keeps priorities in extra lists named queue + "\x06\x16" + priority.
CELERY_LISTS = (CELERY_QUEUE, *(f"{CELERY_QUEUE}\x06\x16{p}" for p in (3, 6, 9)))
API_QUEUE = "enhancement:queue"
ALL_LISTS = (*CELERY_LISTS, API_QUEUE)
PAUSE_KEY = "system:pause_processing"
ALLOWED_JOB_FIELDS = ("job_id", "ticket_id", "tenant_id", "priority", "timestamp")
MAX_MESSAGES_READ = 5000  # per list: enough for any real backlog, bounded for the UI path


@dataclass(frozen=True)
class QueuedJob:
    queue: str  # display name: "celery", "celery (priority 3)", "enhancement:queue"
    position: int  # 1 = next to be taken
    job_id: str | None
    ticket_id: str | None
    tenant_id: str | None
    priority: str | None
    enqueued_at: datetime | None


@dataclass(frozen=True)
class QueueSnapshot:
    depth: dict[str, int]  # display queue name -> length
    jobs: tuple[QueuedJob, ...]
    paused: bool
    read_at: datetime

    @property
    def celery_depth(self) -> int:
        return sum(n for name, n in self.depth.items() if name.startswith(CELERY_QUEUE))

    @property
    def total(self) -> int:
        return sum(self.depth.values())

    def oldest_age_seconds(self, tenant_id: str | None = None) -> float | None:
        times = [j.enqueued_at for j in self.jobs if j.enqueued_at
                 and (tenant_id is None or j.tenant_id == tenant_id)]
        return (self.read_at - min(times)).total_seconds() if times else None

    def tenant_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            key = job.tenant_id or "(unknown)"
            counts[key] = counts.get(key, 0) + 1
        return counts


def display_name(key: str) -> str:
    if key.startswith(f"{CELERY_QUEUE}\x06\x16"):
        return f"{CELERY_QUEUE} (priority {key.rsplit(chr(0x16), 1)[1]})"
    return key


def client() -> redis.Redis:
    url = settings().redis_url
    if not url:
        raise SourceUnavailable("Redis", "REDIS_URL is not set")
    # Short timeouts and no retries: the page must answer even when Redis does not.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, retry=None)


def _job_fields(raw: bytes) -> dict[str, Any]:
    """Allowlisted fields of one message (a raw job or a Celery envelope around one)."""
    try:
        message = json.loads(raw)
        if isinstance(message, dict) and "body" in message and "headers" in message:
            args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            job = args[0] if args and isinstance(args[0], dict) else kwargs.get("job", kwargs)
        else:
            job = message
    except (ValueError, TypeError, KeyError, IndexError):
        return {}
    if not isinstance(job, dict):
        return {}
    return {name: job.get(name) for name in ALLOWED_JOB_FIELDS}


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def snapshot() -> QueueSnapshot:
    """Depth of every list, the allowlisted fields of each queued job, and the pause flag."""
    try:
        conn = client()
        pipe = conn.pipeline(transaction=False)
        for key in ALL_LISTS:
            pipe.llen(key)
        for key in ALL_LISTS:
            pipe.lrange(key, -MAX_MESSAGES_READ, -1)
        pipe.exists(PAUSE_KEY)
        results = pipe.execute()
    except redis.RedisError as exc:
        raise SourceUnavailable("Redis", str(exc).splitlines()[0] if str(exc) else "error") from exc
    lengths, contents, paused = results[: len(ALL_LISTS)], results[len(ALL_LISTS):-1], results[-1]
    jobs: list[QueuedJob] = []
    for key, messages in zip(ALL_LISTS, contents, strict=True):
        # LPUSH + BRPOP: the right end is taken next, so position 1 is the last element.
        for position, raw in enumerate(reversed(messages), start=1):
            fields = _job_fields(raw)
            jobs.append(QueuedJob(
                queue=display_name(key), position=position,
                job_id=_text(fields.get("job_id")), ticket_id=_text(fields.get("ticket_id")),
                tenant_id=_text(fields.get("tenant_id")), priority=_text(fields.get("priority")),
                enqueued_at=_parse_time(fields.get("timestamp")),
            ))
    return QueueSnapshot(
        depth={display_name(k): int(n) for k, n in zip(ALL_LISTS, lengths, strict=True)},
        jobs=tuple(jobs), paused=bool(paused), read_at=datetime.now(UTC),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
