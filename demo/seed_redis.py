"""Fill the demo Redis with the platform's queues: Celery messages and raw enhancement jobs.

    python -m demo.seed_redis [--redis-url URL] [--now ISO] [--paused]

Clears and refills `celery`, Celery's priority lists (`celery\\x06\\x163` etc.) and
`enhancement:queue` with the jobs of demo.fleet's planted pending runs, so every queued ticket
has its pending enhancement_history row (use the same --now as demo.generate). The oldest job
is 47 minutes old: the "stuck queue" rule fires. The pause flag is cleared unless --paused.
Each job holds a fake ServiceDesk Plus key marked "sdp-FAKE-KEY-DO-NOT-SHOW-".
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import uuid
from datetime import datetime

import redis

from demo import fleet
from demo.generate import parse_now

QUEUES = (fleet.CELERY_QUEUE, *fleet.CELERY_PRIORITY_QUEUES, fleet.ENHANCEMENT_QUEUE)
TICKET_PRIORITY = {0: "high", 3: "medium", 6: "low", 9: "low"}  # by Celery priority
API_ORIGIN = "gen1@ai-agents-api-7c9d8f6b5-x2kqp"
PAUSE_TTL_SECONDS = 86400  # the platform sets the flag with a 24 h safety TTL


def _uuid(*parts: str) -> str:
    """A stable UUID4-shaped id, so re-seeding gives the same jobs."""
    return str(uuid.UUID(bytes=hashlib.md5(":".join(parts).encode()).digest(), version=4))


def job(run: fleet.PlantedRun, now: datetime) -> dict:
    """The job dict the API builds from the webhook and the tenant's config."""
    t = fleet.tenant(run.tenant_id)
    kind = fleet.KINDS[fleet.KIND_NAMES.index(run.kind)]
    trace = hashlib.sha256(f"trace:{run.tenant_id}:{run.ticket_id}".encode()).hexdigest()
    key = hashlib.sha256(f"key:{run.tenant_id}".encode()).hexdigest()[:24]
    return {
        "job_id": _uuid("job", run.tenant_id, run.ticket_id),
        "ticket_id": run.ticket_id,
        "tenant_id": run.tenant_id,
        "description": kind.descriptions[int(run.ticket_id) % len(kind.descriptions)],
        "priority": TICKET_PRIORITY[run.celery_priority],
        "timestamp": run.created_at(now).isoformat().replace("+00:00", "Z"),
        "correlation_id": _uuid("correlation", run.tenant_id, run.ticket_id),
        "servicedesk_url": t.servicedesk_url,
        "servicedesk_api_key": f"{fleet.FAKE_KEY_MARKER}{key}",
        "enhancement_preferences": t.preferences,
        "tool_type": "servicedesk_plus",
        "trace_context": {"traceparent": f"00-{trace[:32]}-{trace[32:48]}-01"},
    }


def celery_message(payload: dict, priority: int) -> dict:
    """Celery's task protocol 2 in kombu's Redis envelope: body is base64 of
    [args, kwargs, embed], the task name and id travel in headers."""
    task_id = _uuid("task", payload["job_id"])
    body = [[payload], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": fleet.TASK_NAME,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [120, 100],
            "root_id": task_id,
            "parent_id": None,
            # Celery really does put repr(args) here: the decrypted key leaks into headers too.
            "argsrepr": repr((payload,)),
            "kwargsrepr": "{}",
            "origin": API_ORIGIN,
            "ignore_result": False,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": _uuid("reply", task_id),
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": fleet.CELERY_QUEUE},
            "priority": priority,
            "body_encoding": "base64",
            "delivery_tag": _uuid("tag", task_id),
        },
    }


def seed(client: redis.Redis, now: datetime, paused: bool = False) -> dict[str, int]:
    """Replace the queues' contents; return the depth of each list."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(*QUEUES, fleet.PAUSE_KEY)
    # LPUSH oldest first: workers BRPOP from the right, so the oldest job is next.
    for run in fleet.queued_runs():
        payload = job(run, now)
        if run.queue == fleet.ENHANCEMENT_QUEUE:
            pipe.lpush(run.queue, json.dumps(payload))
        else:
            pipe.lpush(run.queue, json.dumps(celery_message(payload, run.celery_priority)))
    if paused:
        pipe.set(fleet.PAUSE_KEY, "true", ex=PAUSE_TTL_SECONDS)
    pipe.execute()
    return {q: client.llen(q) for q in QUEUES}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--now", help="ISO timestamp, UTC if naive (default: now, to the minute)")
    parser.add_argument("--paused", action="store_true", help="also set system:pause_processing")
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url or REDIS_URL is required")
    client = redis.Redis.from_url(args.redis_url, socket_timeout=5)
    depths = seed(client, parse_now(args.now), paused=args.paused)
    print(
        "seeded "
        + " ".join(f"{q!r}={n}" for q, n in depths.items())
        + (" (paused)" if args.paused else "")
    )


if __name__ == "__main__":
    main()
