"""Fill the demo Redis with the platform's queues: Celery messages and raw enhancement jobs.

    python -m demo.seed_redis [--redis-url URL] [--broker-url URL] [--now ISO] [--paused]

Two databases, as the platform deploys them: `enhancement:queue` and the pause flag on
REDIS_URL, Celery's lists (`celery`, `celery\\x06\\x163` etc.) on CELERY_BROKER_URL (default:
REDIS_URL). Clears and refills them with the jobs of demo.fleet's planted pending runs, so every
queued ticket has its pending enhancement_history row (use the same --now as demo.generate),
plus the planted agent runs. Celery messages are sent by the real `celery` library, as the
platform's `enhance_ticket.delay(job_data)` does; enhancement:queue holds the API's
EnhancementJob JSON, LPUSHed. The oldest enhancement:queue job was queued 47 minutes ago:
the "stuck queue" rule fires. The pause flag is cleared unless --paused.
Each job holds a fake ServiceDesk Plus key marked "sdp-FAKE-KEY-DO-NOT-SHOW-".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Celery

from demo import fleet
from demo.generate import parse_now

QUEUES = (fleet.CELERY_QUEUE, *fleet.CELERY_PRIORITY_QUEUES, fleet.ENHANCEMENT_QUEUE)
TICKET_PRIORITY = {0: "high", 3: "medium", 6: "low", 9: "low"}  # by Celery priority
PAUSE_TTL_SECONDS = 86400  # the platform sets the flag with a 24 h safety TTL


def _uuid(*parts: str) -> str:
    """A stable UUID4-shaped id, so re-seeding gives the same jobs."""
    return str(uuid.UUID(bytes=hashlib.md5(":".join(parts).encode()).digest(), version=4))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def job_data(run: fleet.PlantedRun, now: datetime) -> dict[str, Any]:
    """The job dict the API builds from the webhook and the tenant's config (src/api/webhooks.py):
    `timestamp` is when the ticket was created in ServiceDesk Plus, up to a few days earlier."""
    t = fleet.tenant(run.tenant_id)
    kind = fleet.KINDS[fleet.KIND_NAMES.index(run.kind)]
    trace = hashlib.sha256(f"trace:{run.tenant_id}:{run.ticket_id}".encode()).hexdigest()
    key = hashlib.sha256(f"key:{run.tenant_id}".encode()).hexdigest()[:24]
    ticket_created = run.created_at(now) - timedelta(minutes=int(run.ticket_id) % 4500)
    return {
        "job_id": _uuid("job", run.tenant_id, run.ticket_id),
        "ticket_id": run.ticket_id,
        "tenant_id": run.tenant_id,
        "description": kind.descriptions[int(run.ticket_id) % len(kind.descriptions)],
        "priority": TICKET_PRIORITY[run.celery_priority],
        "timestamp": _iso(ticket_created),
        "correlation_id": _uuid("correlation", run.tenant_id, run.ticket_id),
        "servicedesk_url": t.servicedesk_url,
        "servicedesk_api_key": f"{fleet.FAKE_KEY_MARKER}{key}",
        "enhancement_preferences": t.preferences,
        "tool_type": "servicedesk_plus",
        "trace_context": f"00-{trace[:32]}-{trace[32:48]}-01",
    }


def enhancement_job(data: dict[str, Any], queued_at: datetime) -> str:
    """The API's EnhancementJob as QueueService.push_job LPUSHes it: created_at is the queue
    time, written by pydantic from a naive datetime.utcnow() (no zone)."""
    naive = queued_at.astimezone(UTC).replace(tzinfo=None)
    return json.dumps({**data, "created_at": naive.isoformat(timespec="microseconds")})


def celery_app(broker_url: str) -> Celery:
    """A producer configured like the platform's (src/workers/celery_app.py): JSON, no
    broker_transport_options, so kombu's default priority steps 0/3/6/9 apply."""
    app = Celery("ai_agents", broker=broker_url)
    # Celery prefers a CELERY_BROKER_URL in the environment over broker=; the write URL is
    # ours to set, so the messages land on the database asked for.
    app.conf.update(
        broker_write_url=broker_url,
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
    )
    return app


def send_enhancement(
    app: Celery, data: dict[str, Any], priority: int | None = None, keyword: bool = False
) -> None:
    """tasks.enhance_ticket(job_data): positionally, as `.delay(job_data)` sends it, or by
    keyword; priority None is what `.delay` sends (it lands in `celery`)."""
    options = {"kwargs": {"job_data": data}} if keyword else {"args": [data]}
    app.send_task(fleet.TASK_NAME, priority=priority, **options)


def send_agent_run(app: Celery, agent_id: str, payload: dict[str, Any]) -> None:
    """tasks.execute_agent(args=[agent_id, payload]), as the agent webhook enqueues it."""
    app.send_task(fleet.AGENT_TASK_NAME, args=[agent_id, payload])


def seed(
    client: redis.Redis, broker_url: str, now: datetime, paused: bool = False
) -> dict[str, int]:
    """Replace the queues' contents; return the depth of each list."""
    broker = redis.Redis.from_url(broker_url, socket_timeout=5)
    broker.delete(*QUEUES[:-1])
    client.delete(fleet.ENHANCEMENT_QUEUE, fleet.PAUSE_KEY)
    app = celery_app(broker_url)
    try:
        # Oldest first: workers BRPOP from the right, so the oldest job is next.
        for run in fleet.queued_runs():
            data = job_data(run, now)
            if run.queue == fleet.ENHANCEMENT_QUEUE:
                client.lpush(run.queue, enhancement_job(data, run.created_at(now)))
            else:
                priority = run.celery_priority or None
                send_enhancement(app, data, priority, keyword=run.job_data_keyword)
        for agent_id in fleet.PLANTED_AGENT_RUNS:
            payload = {"ticket_id": "AG-1", "api_token": f"{fleet.FAKE_KEY_MARKER}agent"}
            send_agent_run(app, agent_id, payload)
    finally:
        app.close()
    if paused:
        client.set(fleet.PAUSE_KEY, "true", ex=PAUSE_TTL_SECONDS)
    depths = {q: broker.llen(q) for q in QUEUES[:-1]}
    depths[fleet.ENHANCEMENT_QUEUE] = client.llen(fleet.ENHANCEMENT_QUEUE)
    return depths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--broker-url", default=os.environ.get("CELERY_BROKER_URL"))
    parser.add_argument("--now", help="ISO timestamp, UTC if naive (default: now, to the minute)")
    parser.add_argument("--paused", action="store_true", help="also set system:pause_processing")
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url or REDIS_URL is required")
    client = redis.Redis.from_url(args.redis_url, socket_timeout=5)
    depths = seed(client, args.broker_url or args.redis_url, parse_now(args.now), args.paused)
    print(
        "seeded "
        + " ".join(f"{q!r}={n}" for q, n in depths.items())
        + (" (paused)" if args.paused else "")
    )


if __name__ == "__main__":
    main()
