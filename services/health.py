"""Tenant health: metrics aggregated in SQL, judged by pure rules from dashboard.toml.

The same SQL serves the fleet (admin scope: every tenant) and one tenant (tenant scope: RLS
narrows it to that tenant), so the two views can never compute a metric differently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from services.config import rules
from services.db import admin_scope, read_frame, tenant_scope
from services.failures import MODES_BY_KEY, sql_case

HEALTHY, DEGRADED, CRITICAL, INACTIVE = "healthy", "degraded", "critical", "inactive"
SEVERITY_ORDER = {HEALTHY: 0, INACTIVE: 0, DEGRADED: 1, CRITICAL: 2}

# Latency = webhook received -> enhancement completed (shared: the weekly review uses it too).
LATENCY_S = "extract(epoch FROM completed_at - created_at)"

_METRICS_SQL = f"""
WITH runs AS (
    SELECT tenant_id,
           count(*) AS received,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'pending'
                              AND created_at < :now - make_interval(secs => :stuck_s)) AS stuck,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY {LATENCY_S})
               FILTER (WHERE status = 'completed') AS p50_s,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY {LATENCY_S})
               FILTER (WHERE status = 'completed') AS p95_s,
           max(created_at) AS last_received
      FROM enhancement_history
     WHERE created_at >= :since AND created_at <= :now
     GROUP BY tenant_id
), failure_modes AS (
    SELECT tenant_id, json_object_agg(mode, n) AS failures_by_cause
      FROM (SELECT tenant_id, {sql_case()} AS mode, count(*) AS n
              FROM enhancement_history
             WHERE status = 'failed' AND created_at >= :since AND created_at <= :now
             GROUP BY 1, 2) per_mode
     GROUP BY tenant_id
), feedback AS (
    SELECT tenant_id,
           avg(rating_value) FILTER (WHERE feedback_type = 'rating') AS avg_rating,
           count(*) FILTER (WHERE feedback_type = 'thumbs_up') AS thumbs_up,
           count(*) FILTER (WHERE feedback_type = 'thumbs_down') AS thumbs_down,
           count(*) AS feedback_total
      FROM enhancement_feedback
     WHERE created_at >= :since AND created_at <= :now
     GROUP BY tenant_id
), history AS (
    SELECT tenant_id, count(*) AS history_tickets,
           extract(epoch FROM max(resolved_date) - min(resolved_date)) / 86400 AS history_span_days
      FROM ticket_history
     GROUP BY tenant_id
)
SELECT c.tenant_id, c.name, c.is_active, CAST(:now AS timestamptz) AS as_of,
       coalesce(r.received, 0) AS received, coalesce(r.completed, 0) AS completed,
       coalesce(r.failed, 0) AS failed, coalesce(r.pending, 0) AS pending,
       coalesce(r.stuck, 0) AS stuck, r.p50_s, r.p95_s,
       waiting.since_last_completed,
       r.last_received, last_done.completed_at AS last_completed,
       fm.failures_by_cause,
       fb.avg_rating, coalesce(fb.thumbs_up, 0) AS thumbs_up,
       coalesce(fb.thumbs_down, 0) AS thumbs_down, coalesce(fb.feedback_total, 0) AS feedback_total,
       coalesce(h.history_tickets, 0) AS history_tickets, h.history_span_days
  FROM tenant_configs c
  LEFT JOIN runs r USING (tenant_id)
  LEFT JOIN failure_modes fm USING (tenant_id)
  LEFT JOIN feedback fb USING (tenant_id)
  LEFT JOIN history h USING (tenant_id)
  LEFT JOIN LATERAL (
      -- newest completed run, found through (tenant_id, status, created_at DESC)
      SELECT e.created_at, e.completed_at FROM enhancement_history e
       WHERE e.tenant_id = c.tenant_id AND e.status = 'completed'
       ORDER BY e.created_at DESC LIMIT 1) last_done ON true
  LEFT JOIN LATERAL (
      -- webhooks since the newest completed run that should have finished by now (older than
      -- the worker time limit) but did not: many of them means enhancements stopped
      SELECT count(*) AS since_last_completed FROM enhancement_history e
       WHERE e.tenant_id = c.tenant_id AND e.status IN ('pending', 'failed')
         AND e.created_at > coalesce(last_done.created_at, '-infinity')
         AND e.created_at >= :since
         AND e.created_at < :now - make_interval(secs => :stuck_s)) waiting ON true
 ORDER BY c.is_active DESC, lower(c.name)
"""


@dataclass(frozen=True)
class Reason:
    rule: str
    severity: str
    text: str


@dataclass(frozen=True)
class Assessment:
    status: str
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        return "; ".join(r.text for r in self.reasons) or "All rules pass"


def _params(since: datetime, now: datetime) -> dict[str, Any]:
    health = rules("health")
    return {
        "since": since,
        "now": now,
        "stuck_s": health["stuck_pending_seconds"],
    }


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    finished = frame["completed"] + frame["failed"]
    frame["success_rate"] = (frame["completed"] / finished.where(finished > 0)).astype(float)
    votes = frame["thumbs_up"] + frame["thumbs_down"]
    frame["positive_pct"] = (100 * frame["thumbs_up"] / votes.where(votes > 0)).round(2)
    frame["failures_by_cause"] = frame["failures_by_cause"].map(_as_dict)
    for column in ("p50_s", "p95_s", "avg_rating", "history_span_days"):
        frame[column] = frame[column].astype(float)
    return frame


def _as_dict(value: Any) -> dict[str, int]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


def fleet_metrics(since: datetime, now: datetime) -> pd.DataFrame:
    """One row per tenant, every tenant (admin path)."""
    with admin_scope() as conn:
        return _finish(read_frame(conn, _METRICS_SQL, _params(since, now)))


def tenant_metrics(tenant_id: str, since: datetime, now: datetime) -> pd.DataFrame:
    """The same row for one tenant, read inside its RLS scope (empty if it does not exist)."""
    with tenant_scope(tenant_id) as conn:
        return _finish(read_frame(conn, _METRICS_SQL, _params(since, now)))


def assess(row: pd.Series | dict[str, Any], queue_oldest_s: float | None = None) -> Assessment:
    """Judge one tenant's metrics. Pure: the same row always gives the same verdict."""
    r = dict(row)
    h = rules("health")
    if not r["is_active"]:
        return Assessment(INACTIVE, (Reason("inactive", INACTIVE, "Tenant is deactivated"),))
    reasons: list[Reason] = []

    def add(rule: str, severity: str, text: str) -> None:
        reasons.append(Reason(rule, severity, text))

    silence_min = _minutes_since(r.get("last_completed"), r.get("as_of"))
    if r["since_last_completed"] >= h["stalled_min_webhooks"] and (
        silence_min is None or silence_min > h["stalled_after_minutes"]
    ):
        add(
            "stalled",
            CRITICAL,
            f"Enhancements stopped: {r['since_last_completed']} webhooks since the last "
            f"completed enhancement ({_ago(r.get('last_completed'), r.get('as_of'))}), "
            "none of them enhanced",
        )
    if r["received"] == 0:
        add("no_traffic", DEGRADED, "No webhooks received in this time range")
    finished = r["completed"] + r["failed"]
    rate = r.get("success_rate")
    if finished >= h["min_volume_for_ratios"] and rate is not None and not _nan(rate):
        if rate < h["success_rate_critical"]:
            add(
                "success_rate",
                CRITICAL,
                f"Success rate {rate:.1%} is below "
                f"{h['success_rate_critical']:.0%} ({r['failed']} of {finished} failed)",
            )
        elif rate < h["success_rate_target"]:
            add(
                "success_rate",
                DEGRADED,
                f"Success rate {rate:.1%} is below the "
                f"{h['success_rate_target']:.0%} target ({r['failed']} of {finished} failed)",
            )
    p95 = r.get("p95_s")
    if r["completed"] >= h["min_volume_for_ratios"] and p95 is not None and not _nan(p95):
        if p95 > h["p95_critical_s"]:
            add(
                "latency",
                CRITICAL,
                f"p95 latency {p95:.0f} s exceeds the {h['p95_critical_s']} s SLA",
            )
        elif p95 > h["p95_target_s"]:
            add(
                "latency",
                DEGRADED,
                f"p95 latency {p95:.0f} s is above the {h['p95_target_s']} s target",
            )
    if r["stuck"] > 0:
        add(
            "stuck",
            DEGRADED,
            f"{r['stuck']} {'run' if r['stuck'] == 1 else 'runs'} pending longer than "
            f"{h['stuck_pending_seconds']} s (the worker time limit)",
        )
    rating = r.get("avg_rating")
    if rating is not None and not _nan(rating) and rating < h["rating_red_flag"]:
        add(
            "rating",
            DEGRADED,
            f"Average rating {rating:.2f} / 5 is a red flag (< {h['rating_red_flag']})",
        )
    positive = r.get("positive_pct")
    if positive is not None and not _nan(positive) and positive < h["positive_warning_pct"]:
        add(
            "positive",
            DEGRADED,
            f"Only {positive:.0f}% positive feedback (< {h['positive_warning_pct']:.0f}%)",
        )
    if r["history_tickets"] < h["ticket_history_min"]:
        add(
            "history",
            DEGRADED,
            f"Only {r['history_tickets']} resolved tickets of history "
            f"(< {h['ticket_history_min']}): enhancements lack context",
        )
    stuck_queue_min = rules("queue")["oldest_job_stuck_minutes"]
    if queue_oldest_s is not None and queue_oldest_s > stuck_queue_min * 60:
        add(
            "queue_stuck",
            CRITICAL,
            f"Oldest queued job waiting {queue_oldest_s / 60:.0f} min (> {stuck_queue_min} min)",
        )
    status = max((r.severity for r in reasons), key=SEVERITY_ORDER.__getitem__, default=HEALTHY)
    return Assessment(status, tuple(reasons))


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _minutes_since(when: Any, now: Any) -> float | None:
    if when is None or pd.isna(when):
        return None
    reference = now if now is not None else pd.Timestamp.now(tz="UTC")
    return (pd.Timestamp(reference) - pd.Timestamp(when)).total_seconds() / 60


def _ago(when: Any, now: Any) -> str:
    minutes = _minutes_since(when, now)
    if minutes is None:
        return "never"
    return f"{minutes / 60:.1f} h ago" if minutes >= 90 else f"{minutes:.0f} min ago"


def failure_label(key: str) -> str:
    return MODES_BY_KEY.get(key, MODES_BY_KEY["unknown"]).label


def bucket_for(since: datetime, now: datetime) -> str:
    return "hour" if now - since <= timedelta(days=2) else "day"


_TREND_SQL = f"""
SELECT date_trunc(:bucket, created_at, 'UTC') AS bucket,
       count(*) AS received,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY {LATENCY_S})
           FILTER (WHERE status = 'completed') AS p95_s
  FROM enhancement_history
 WHERE created_at >= :since AND created_at <= :now
 GROUP BY 1 ORDER BY 1
"""


def tenant_trend(tenant_id: str, since: datetime, now: datetime) -> pd.DataFrame:
    """Volume, success rate and p95 per hour (ranges up to 2 days) or per day."""
    with tenant_scope(tenant_id) as conn:
        frame = read_frame(
            conn, _TREND_SQL, {"bucket": bucket_for(since, now), "since": since, "now": now}
        )
    finished = frame["completed"] + frame["failed"]
    frame["success_rate"] = (frame["completed"] / finished.where(finished > 0)).astype(float)
    frame["p95_s"] = frame["p95_s"].astype(float)
    return frame


_FAILURES_SQL = f"""
SELECT {sql_case()} AS mode, count(*) AS runs,
       mode() WITHIN GROUP (ORDER BY left(error_message, 200)) AS typical_error,
       max(created_at) AS last_seen
  FROM enhancement_history
 WHERE status = 'failed' AND created_at >= :since AND created_at <= :now
 GROUP BY 1 ORDER BY runs DESC
"""


def tenant_failures(tenant_id: str, since: datetime, now: datetime) -> pd.DataFrame:
    """Failed runs by failure mode, with the most common error text and when it last happened."""
    with tenant_scope(tenant_id) as conn:
        frame = read_frame(conn, _FAILURES_SQL, {"since": since, "now": now})
    frame["cause"] = frame["mode"].map(failure_label)
    frame["next_step"] = frame["mode"].map(lambda k: MODES_BY_KEY[k].next_step)
    return frame
