"""The procedures' troubleshooting cheatsheet, filled in with one tenant's values."""

from __future__ import annotations

from dataclasses import dataclass

from services import kube
from services.config import rules


@dataclass(frozen=True)
class Playbook:
    scenario: str
    severity: str  # the procedures' P0-P3
    diagnosis: str
    fix: str
    escalate: str


def for_rule(rule: str, tenant_id: str, top_failure_step: str | None = None) -> Playbook | None:
    """The cheatsheet line for a failing health rule, or None for rules that have none."""
    cluster = kube.names()
    api_logs = f'{cluster.logs(cluster.api, "1h")} | grep "tenant_id: {tenant_id}"'
    worker_logs = f'{cluster.logs(cluster.worker, "1h")} | grep "{tenant_id}"'
    if rule in ("stalled", "no_traffic", "webhooks_silent", "queued_unattempted"):
        return Playbook(
            "Enhancements stopped for one tenant",
            "P1",
            f"Are webhooks arriving and being accepted? `{api_logs}` (look for 401: signature "
            "validation failures, refused before anything is counted); are workers taking "
            f"this tenant's jobs? `{worker_logs}`.",
            "Verify the webhook secret and the ServiceDesk Plus webhook URL with the client, then "
            f"`{cluster.restart(cluster.api)}`.",
            "If the webhook configuration is correct, escalate to Engineering (P1: respond "
            "within 30 min).",
        )
    if rule == "webhooks_rejected":
        return Playbook(
            "Webhooks rejected by the API",
            "P1",
            f"The API could not queue jobs (HTTP 503): `{api_logs}` and Redis health "
            "(connections, memory, `redis-cli ping`).",
            "Fix Redis, then ask the client to re-send the affected tickets' webhooks (nothing "
            "was queued for them).",
            "If Redis is healthy and rejections continue, escalate to Engineering.",
        )
    if rule == "success_rate":
        return Playbook(
            "Enhancements failing for one tenant",
            "P2",
            f"Failures by cause below; worker logs: `{worker_logs}`.",
            top_failure_step or "Follow the next step of the most frequent failure cause.",
            "All of the tenant's tickets failing is P1 (30 min); intermittent failures are P2 "
            "(2 h): escalate to Engineering if the cause is not on the client's side.",
        )
    if rule in ("latency", "stuck", "queue_stuck"):
        from services.queues import cli_commands  # here: queues imports playbooks

        depth = cli_commands(f"redis-cli -h {cluster.redis_host}").splitlines()[0]
        return Playbook(
            "Slow enhancements for one tenant",
            "P2",
            f"Check the queue depth (`{depth}` and its priority lists, or the Queues view) and "
            f"the worker logs: `{worker_logs}`.",
            f"Scale workers (`{cluster.scale_workers(10)}`) and check ServiceDesk Plus API "
            "latency in the traces.",
            "If it persists, escalate to Engineering for dedicated resources.",
        )
    if rule in ("rating", "positive"):
        return Playbook(
            "Low enhancement quality for one tenant",
            "P3",
            "Read the tenant's feedback (Feedback view): which kinds of tickets are rated low?",
            "Review with the client and gather 5-10 example tickets with their ratings.",
            "Escalate to Engineering for prompt tuning or extra context sources (P3: 24 h).",
        )
    if rule == "history":
        h = rules("health")
        return Playbook(
            "Insufficient ticket history for context",
            "P3",
            f"Count resolved tickets in ticket_history (need {h['ticket_history_min']}+, healthy "
            f"{h['ticket_history_healthy']}+ over {h['ticket_history_span_days']}+ days).",
            "Ask the client for a bulk import of resolved tickets; explain the learning curve.",
            "Escalate to Engineering if the import fails.",
        )
    return None


@dataclass(frozen=True)
class Scenario:
    name: str
    state: str  # "firing", "clear" or "manual" (not observable from the dashboard's data)
    detail: str
    playbook: Playbook | None


# Cheatsheet scenario -> the health rules that detect it.
_SCENARIO_RULES = {
    "Enhancements stopped for one tenant": ("stalled", "no_traffic"),
    "Slow enhancements for one tenant": ("latency", "stuck", "queue_stuck"),
    "Enhancements failing for one tenant": ("success_rate",),
    "Low enhancement quality for one tenant": ("rating", "positive"),
}


def cheatsheet(tenant_id: str, failing: dict[str, str], config_updated: str) -> list[Scenario]:
    """Every cheatsheet scenario for this tenant. `failing` maps failing rule -> its reason."""
    cluster = kube.names()
    scenarios = []
    for name, rule_keys in _SCENARIO_RULES.items():
        hits = [failing[k] for k in rule_keys if k in failing]
        scenarios.append(
            Scenario(
                name,
                "firing" if hits else "clear",
                "; ".join(hits) or "no matching rule fails",
                for_rule(rule_keys[0], tenant_id),
            )
        )
    scenarios.append(
        Scenario(
            "Tenant cannot access feedback API",
            "manual",
            "Not visible in the platform's data: test the tenant's token with "
            '`curl -H "Authorization: Bearer <token>" /api/v1/feedback`; escalate if it is an '
            "authentication issue.",
            None,
        )
    )
    scenarios.append(
        Scenario(
            "Tenant-specific configuration not applied",
            "manual",
            f"Configuration last changed {config_updated}; workers load it at start: restart "
            f"them (`{cluster.restart(cluster.worker)}`) and "
            "escalate if the change does not persist.",
            None,
        )
    )
    return scenarios
