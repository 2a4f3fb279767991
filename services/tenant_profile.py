"""One tenant's configuration as stored, checked against its allowed ranges, and the procedures'
post-onboarding checklist verified from data. Secrets are only ever "set" or "missing"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.config import rules
from services.db import read_frame, tenant_scope

# The platform's known enhancement preferences: (default, allowed range or type).
PREFERENCES: dict[str, tuple[Any, tuple[int, int] | type]] = {
    "max_enhancement_length": (500, (100, 2000)),
    "include_monitoring": (True, bool),
    "kb_timeout_seconds": (10, (1, 60)),
}


@dataclass(frozen=True)
class Item:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Profile:
    config: dict[str, Any]  # no secret columns: the role cannot read them
    secrets: dict[str, bool]  # secret name -> set?
    preferences: list[Item]
    checklist: list[Item]


_CONFIG_SQL = """
SELECT tenant_id, name, servicedesk_url, enhancement_preferences, rate_limits, is_active,
       tool_type, jira_url, jira_project_key, created_at, updated_at
  FROM tenant_configs
 WHERE tenant_id = :tenant
"""

# Rows are written when a worker starts an attempt: tickets are the distinct ticket ids.
_ACTIVITY_SQL = """
SELECT (SELECT count(DISTINCT ticket_id) FROM enhancement_history
         WHERE tenant_id = :tenant AND created_at >= :week_ago) AS tickets_7d,
       -- completed_at >= created_at, so no attempt created after the first-created completed
       -- one's completion can have completed first: a few index entries instead of the
       -- tenant's whole history (OFFSET 0 keeps the planner off a scan of completed_at)
       (SELECT min(completed_at)
          FROM (SELECT completed_at FROM enhancement_history
                 WHERE tenant_id = :tenant AND status = 'completed'
                   AND created_at <= (SELECT completed_at FROM enhancement_history
                                       WHERE tenant_id = :tenant AND status = 'completed'
                                       ORDER BY created_at LIMIT 1)
                OFFSET 0) earliest) AS first_completed,
       (SELECT count(*) FROM ticket_history WHERE tenant_id = :tenant) AS history_tickets,
       (SELECT extract(epoch FROM max(resolved_date) - min(resolved_date)) / 86400
          FROM ticket_history WHERE tenant_id = :tenant) AS history_span_days,
       (SELECT count(*) FROM system_inventory WHERE tenant_id = :tenant) AS inventory_rows,
       (SELECT count(*) FROM enhancement_feedback
         WHERE tenant_id = :tenant AND created_at >= :month_ago) AS feedback_30d
"""


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def check_preferences(preferences: dict[str, Any]) -> list[Item]:
    """Each known preference: its value (or default) against its allowed range. Pure."""
    items = []
    for key, (default, allowed) in PREFERENCES.items():
        value = preferences.get(key, default)
        source = "set" if key in preferences else "default"
        if allowed is bool:
            ok = isinstance(value, bool)
            expected = "true or false"
        else:
            low, high = allowed  # type: ignore[misc]
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
            expected = f"{low}-{high}"
        items.append(Item(key, ok, f"{value!r} ({source}; allowed {expected})"))
    for key in sorted(set(preferences) - set(PREFERENCES)):
        items.append(Item(key, False, f"{preferences[key]!r}: not a setting the platform knows"))
    return items


def load(tenant_id: str, now: datetime) -> Profile | None:
    with tenant_scope(tenant_id) as conn:
        config = read_frame(conn, _CONFIG_SQL, {"tenant": tenant_id})
        if config.empty:
            return None
        secrets = read_frame(
            conn,
            "SELECT * FROM dashboard.secret_presence() WHERE tenant_id = :tenant",
            {"tenant": tenant_id},
        )
        activity = read_frame(
            conn,
            _ACTIVITY_SQL,
            {
                "tenant": tenant_id,
                "week_ago": now - timedelta(days=7),
                "month_ago": now - timedelta(days=30),
            },
        )
    row = config.iloc[0].to_dict()
    row["enhancement_preferences"] = _json(row["enhancement_preferences"])
    row["rate_limits"] = _json(row["rate_limits"])
    secret_row = secrets.iloc[0].to_dict() if not secrets.empty else {}
    secret_flags = {
        "ServiceDesk Plus API key": bool(secret_row.get("servicedesk_api_key_set")),
        "Webhook signing secret": bool(secret_row.get("webhook_signing_secret_set")),
        "Jira API token": bool(secret_row.get("jira_api_token_set")),
    }
    return Profile(
        row,
        secret_flags,
        check_preferences(row["enhancement_preferences"]),
        checklist(row, secret_flags, activity.iloc[0].to_dict()),
    )


def checklist(
    config: dict[str, Any], secrets: dict[str, bool], activity: dict[str, Any]
) -> list[Item]:
    """The procedures' post-onboarding checklist, each item verified from data. Pure."""
    health = rules("health")
    history, span = int(activity["history_tickets"]), activity["history_span_days"] or 0.0
    enough = history >= health["ticket_history_min"] and span >= health["ticket_history_span_days"]
    first = activity["first_completed"]
    return [
        Item(
            "Tenant configured and active",
            bool(config["is_active"]),
            "active" if config["is_active"] else "deactivated (is_active = false)",
        ),
        Item(
            "Credentials stored",
            secrets["ServiceDesk Plus API key"] and secrets["Webhook signing secret"],
            ", ".join(
                f"{k}: {'set' if v else 'missing'}"
                for k, v in secrets.items()
                if k != "Jira API token"
            ),
        ),
        Item(
            "Tickets arriving",
            activity["tickets_7d"] > 0,
            f"{activity['tickets_7d']} tickets picked up by a worker in the last 7 days",
        ),
        Item(
            "A first enhancement completed",
            first is not None,
            f"first completed {first:%Y-%m-%d %H:%M} UTC" if first is not None else "none yet",
        ),
        Item(
            "Enough ticket history for context",
            enough,
            f"{history} resolved tickets over {span:.0f} days (need "
            f"{health['ticket_history_min']}+ over {health['ticket_history_span_days']}+ days; "
            f"healthy {health['ticket_history_healthy']}+)",
        ),
        Item(
            "System inventory present",
            activity["inventory_rows"] > 0,
            f"{activity['inventory_rows']} IP addresses for cross-reference",
        ),
        Item(
            "Feedback flowing",
            activity["feedback_30d"] > 0,
            f"{activity['feedback_30d']} feedback entries in the last 30 days",
        ),
    ]
