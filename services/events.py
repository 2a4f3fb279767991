"""Events drawn on the time charts (Grafana calls them annotations): what happened at a moment.

- tenant events (tenant scope, fit for a client screen): its onboarding (tenant_configs.created_at)
  and its configuration changes (tenant_configs.updated_at);
- platform operations (admin scope only: audit_log has no tenant and the reader role has no grant):
  pause, resume, clear queue, config sync. Its "user" column is never selected;
- incidents the dashboard itself detects in a trend: buckets whose success rate is judged below
  the critical line (the same Wilson rule as the health verdicts).

Every frame has EVENT_COLUMNS: at, kind, label (short, drawn on the chart), detail (hover text).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from services import stats
from services.config import rules
from services.db import admin_scope, read_frame, tenant_scope
from services.timerange import TimeRange

EVENT_COLUMNS = ["at", "kind", "label", "detail"]

_TENANT_SQL = """
SELECT created_at AS at, 'onboarded' AS kind FROM tenant_configs
 WHERE tenant_id = :tenant AND created_at >= :since AND created_at < :until
UNION ALL
SELECT updated_at, 'config_changed' FROM tenant_configs
 WHERE tenant_id = :tenant AND updated_at >= :since AND updated_at < :until
   AND updated_at > created_at
 ORDER BY 1
"""

_FLEET_SQL = """
SELECT created_at AS at, 'onboarded' AS kind, tenant_id, name FROM tenant_configs
 WHERE created_at >= :since AND created_at < :until
UNION ALL
SELECT updated_at, 'config_changed', tenant_id, name FROM tenant_configs
 WHERE updated_at >= :since AND updated_at < :until AND updated_at > created_at
 ORDER BY 1
"""

# Never the "user" column: operators' names are not shown with events.
_AUDIT_SQL = """
SELECT "timestamp" AS at, operation, status, details FROM audit_log
 WHERE "timestamp" >= :since AND "timestamp" < :until
   AND operation IN ('pause_processing', 'resume_processing', 'clear_queue',
                     'sync_tenant_configs')
 ORDER BY 1
"""

OPERATIONS = {
    "pause_processing": "Processing paused",
    "resume_processing": "Processing resumed",
    "clear_queue": "Queue cleared",
    "sync_tenant_configs": "Tenant configurations synced",
}
# Details keys worth a hover (numbers and the stated reason; never free-form payloads).
_DETAIL_KEYS = ("reason", "queue", "queue_depth", "paused_seconds", "tenants_synced", "error")


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame.sort_values("at", kind="stable").reset_index(drop=True)


def tenant_events(tenant_id: str, period: TimeRange) -> pd.DataFrame:
    """A tenant's own events, read in its scope: safe for its client screen."""
    with tenant_scope(tenant_id) as conn:
        found = read_frame(conn, _TENANT_SQL, {"tenant": tenant_id, **period.params})
    words = {"onboarded": "Service started", "config_changed": "Configuration changed"}
    return _frame(
        [
            {
                "at": r["at"],
                "kind": r["kind"],
                "label": words[r["kind"]],
                "detail": words[r["kind"]],
            }
            for r in found.to_dict("records")
        ]
    )


def fleet_tenant_events(period: TimeRange) -> pd.DataFrame:
    """Every tenant's onboarding and configuration changes (admin scope), named."""
    with admin_scope() as conn:
        found = read_frame(conn, _FLEET_SQL, period.params)
    words = {"onboarded": "onboarded", "config_changed": "configuration changed"}
    return _frame(
        [
            {
                "at": r["at"],
                "kind": r["kind"],
                "label": f"{r['name']} {words[r['kind']]}",
                "detail": f"{r['name']} ({r['tenant_id']}) {words[r['kind']]}",
            }
            for r in found.to_dict("records")
        ]
    )


def what_changed(frame: pd.DataFrame) -> list[str]:
    """The events as short lines for the weekly review's "what changed this week"."""
    return [f"{r.at:%a %d %b %H:%M} UTC: {r.detail}" for r in frame.itertuples()]


def _details(details: Any) -> str:
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return ""
    if not isinstance(details, dict):
        return ""
    parts = [f"{k.replace('_', ' ')}: {details[k]}" for k in _DETAIL_KEYS if k in details]
    return "; ".join(str(p)[:120] for p in parts)


def platform_events(period: TimeRange) -> pd.DataFrame:
    """Platform operations from audit_log (admin scope): for support engineers only."""
    with admin_scope() as conn:
        found = read_frame(conn, _AUDIT_SQL, period.params)
    rows = []
    for r in found.to_dict("records"):
        label = OPERATIONS[r["operation"]]
        outcome = "" if r["status"] == "success" else f" ({r['status']})"
        extra = _details(r["details"])
        rows.append(
            {
                "at": r["at"],
                "kind": r["operation"],
                "label": label + outcome,
                "detail": f"{label}{outcome}" + (f": {extra}" if extra else ""),
            }
        )
    return _frame(rows)


def incidents(trend: pd.DataFrame) -> pd.DataFrame:
    """Buckets of a trend (health.tenant_trend) whose success rate is judged below the critical
    line, merged into episodes: start of each episode, with its worst bucket in the hover."""
    h = rules("health")
    rows: list[dict[str, Any]] = []
    previous_bad = False
    for r in trend.to_dict("records"):
        e = stats.proportion(
            int(r["completed"]), int(r["completed"] + r["failed"]), h["min_runs_success_rate"]
        )
        bad = e.below(h["success_rate_critical"])
        if bad and not previous_bad:
            rows.append(
                {
                    "at": r["bucket"],
                    "kind": "incident",
                    "label": "Incident: low success rate",
                    "detail": f"Success rate {e.value:.0%} ({int(r['failed'])} of {e.n} "
                    f"attempts failed), below {h['success_rate_critical']:.0%}",
                }
            )
        previous_bad = bad
    return _frame(rows)


def combined(*frames: pd.DataFrame) -> pd.DataFrame:
    present = [f for f in frames if not f.empty]
    return _frame([]) if not present else _frame(pd.concat(present).to_dict("records"))


def for_tenant(
    tenant_id: str,
    period: TimeRange,
    trend: pd.DataFrame | None = None,
    with_platform: bool = False,
) -> pd.DataFrame:
    """The events of one tenant's charts: its own, the incidents found in its trend, and (for
    admins only, never a client screen) the platform operations."""
    frames = [tenant_events(tenant_id, period)]
    if trend is not None:
        frames.append(incidents(trend))
    if with_platform:
        frames.append(platform_events(period))
    return combined(*frames)
