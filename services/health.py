"""Tenant health: metrics aggregated in SQL, judged by pure rules from dashboard.toml.

The same SQL serves the fleet (admin scope: every tenant) and one tenant (tenant scope: RLS
narrows it to that tenant), so the two views can never compute a metric differently.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from services import access_log, formatting, rollups, stats
from services.config import rules
from services.db import in_background, read_frame, scope, tenant_scope
from services.errors import DashboardError
from services.failures import MODES_BY_KEY, sql_case
from services.metrics import WebhookTraffic, webhook_traffic
from services.queues import QueueSnapshot
from services.queues import snapshot as queue_snapshot
from services.rates import success_rates
from services.timerange import TimeRange

HEALTHY, DEGRADED, CRITICAL, INACTIVE = "healthy", "degraded", "critical", "inactive"
# A reason of severity NOT_JUDGED is a note (a ratio on too small a sample): it never sets the
# status.
NOT_JUDGED = "not judged"
SEVERITY_ORDER = {HEALTHY: 0, INACTIVE: 0, NOT_JUDGED: 0, DEGRADED: 1, CRITICAL: 2}
EXIT_CODES = {HEALTHY: 0, INACTIVE: 0, DEGRADED: 1, CRITICAL: 2}

# Processing time of one attempt: created_at is when a worker started it (the worker inserts
# the row then), so queue wait is not in it (shared: the weekly review uses it too).
LATENCY_S = rollups.LATENCY_S

# Every tenant-scoped read also names its tenant; the fleet read (admin scope) passes NULL.
_TENANT = "(CAST(:tenant AS varchar) IS NULL OR tenant_id = :tenant)"

_HOUR_COLUMNS = (
    "tenant_id, attempts, completed, failed, pending, last_attempt, failures_by_cause, latencies"
)
# The window's runs come from services.rollups (window_ctes: rolled hours plus the raw rest);
# every figure is the raw computation's, the percentiles and distinct tickets included.
_METRICS_SQL = f"""
WITH {rollups.window_ctes(_HOUR_COLUMNS)}, runs AS (
    -- one row per attempt: a retried ticket has several
    SELECT tenant_id, sum(attempts) AS attempts, sum(completed) AS completed,
           sum(failed) AS failed, sum(pending) AS pending, max(last_attempt) AS last_attempt
      FROM hours GROUP BY tenant_id
), stuck AS (
    -- pending rows are few: read through (status, created_at) at the moment asked
    SELECT tenant_id, count(*) AS stuck FROM enhancement_history
     WHERE status = 'pending' AND created_at >= :since AND created_at < :until
       AND created_at < :now - make_interval(secs => :stuck_s) AND {_TENANT}
     GROUP BY tenant_id
), latencies AS (
    -- both percentiles from one sort of the window's processing times
    SELECT tenant_id, percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY latency_s) AS p,
           -- the same sort at the grid's fractions: the p95's interval (services.stats)
           percentile_cont({stats.QUANTILE_GRID_SQL}) WITHIN GROUP (ORDER BY latency_s)
               AS p95_grid
      FROM hours, unnest(latencies) AS latency_s
     GROUP BY tenant_id
), failure_modes AS (
    SELECT tenant_id, json_object_agg(mode, n) AS failures_by_cause
      FROM (SELECT tenant_id, key AS mode, sum(CAST(value AS bigint)) AS n
              FROM hours, jsonb_each_text(failures_by_cause)
             WHERE failed > 0
             GROUP BY 1, 2) per_mode
     GROUP BY tenant_id
), feedback AS (
    SELECT tenant_id,
           avg(rating_value) FILTER (WHERE feedback_type = 'rating') AS avg_rating,
           count(rating_value) FILTER (WHERE feedback_type = 'rating') AS ratings,
           count(*) FILTER (WHERE feedback_type = 'thumbs_up') AS thumbs_up,
           count(*) FILTER (WHERE feedback_type = 'thumbs_down') AS thumbs_down,
           count(*) AS feedback_total
      FROM enhancement_feedback
     WHERE created_at >= :since AND created_at < :until AND {_TENANT}
     GROUP BY tenant_id
), history AS (
    SELECT tenant_id, count(*) AS history_tickets,
           extract(epoch FROM max(resolved_date) - min(resolved_date)) / 86400 AS history_span_days
      FROM ticket_history
     WHERE {_TENANT}
     GROUP BY tenant_id
)
SELECT c.tenant_id, c.name, c.is_active, CAST(:now AS timestamptz) AS as_of,
       coalesce(r.attempts, 0) AS attempts, coalesce(r.completed, 0) AS completed,
       coalesce(r.failed, 0) AS failed, coalesce(r.pending, 0) AS pending,
       coalesce(s.stuck, 0) AS stuck, lat.p[1] AS p50_s, lat.p[2] AS p95_s, lat.p95_grid,
       waiting.since_last_completed,
       r.last_attempt, newest.started AS newest_attempt,
       last_done.completed_at AS last_completed,
       fm.failures_by_cause,
       fb.avg_rating, coalesce(fb.ratings, 0) AS ratings, coalesce(fb.thumbs_up, 0) AS thumbs_up,
       coalesce(fb.thumbs_down, 0) AS thumbs_down, coalesce(fb.feedback_total, 0) AS feedback_total,
       coalesce(h.history_tickets, 0) AS history_tickets, h.history_span_days
  FROM tenant_configs c
  LEFT JOIN runs r USING (tenant_id)
  LEFT JOIN stuck s USING (tenant_id)
  LEFT JOIN latencies lat USING (tenant_id)
  LEFT JOIN failure_modes fm USING (tenant_id)
  LEFT JOIN feedback fb USING (tenant_id)
  LEFT JOIN history h USING (tenant_id)
  LEFT JOIN LATERAL (
      -- newest completed run, found through (tenant_id, status, created_at DESC)
      SELECT e.created_at, e.completed_at FROM enhancement_history e
       WHERE e.tenant_id = c.tenant_id AND e.status = 'completed'
       ORDER BY e.created_at DESC LIMIT 1) last_done ON true
  LEFT JOIN LATERAL (
      -- when a worker last started an attempt for this tenant, whatever the time range
      -- (newest row per status through (tenant_id, status, created_at DESC))
      SELECT max(created_at) AS started FROM (
          (SELECT created_at FROM enhancement_history e
            WHERE e.tenant_id = c.tenant_id AND e.status = 'pending' AND e.created_at < :until
            ORDER BY e.created_at DESC LIMIT 1)
          UNION ALL
          (SELECT created_at FROM enhancement_history e
            WHERE e.tenant_id = c.tenant_id AND e.status = 'failed' AND e.created_at < :until
            ORDER BY e.created_at DESC LIMIT 1)
          UNION ALL
          (SELECT created_at FROM enhancement_history e
            WHERE e.tenant_id = c.tenant_id AND e.status = 'completed' AND e.created_at < :until
            ORDER BY e.created_at DESC LIMIT 1)) per_status) newest ON true
  LEFT JOIN LATERAL (
      -- attempts since the newest completed one that should have finished by now (older than
      -- the worker time limit) but did not: many of them means enhancements stopped
      SELECT count(*) AS since_last_completed FROM enhancement_history e
       WHERE e.tenant_id = c.tenant_id AND e.status IN ('pending', 'failed')
         AND e.created_at > coalesce(last_done.created_at, '-infinity')
         AND e.created_at >= :since
         AND e.created_at < :now - make_interval(secs => :stuck_s)) waiting ON true
 WHERE (CAST(:tenant AS varchar) IS NULL OR c.tenant_id = :tenant)
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

    @property
    def failing(self) -> tuple[Reason, ...]:
        """The reasons that set the status (not the notes on too small a sample)."""
        return tuple(r for r in self.reasons if r.severity in (DEGRADED, CRITICAL))


# The ratios judged on a minimum sample: key -> (label, [health] key of the minimum, unit of n).
RATIOS = {
    "success_rate": ("Success rate", "min_runs_success_rate", "finished attempts"),
    "p95_s": ("p95 processing time", "min_runs_p95", "completed attempts"),
    "rating": ("Average rating", "min_ratings", "ratings"),
    "positive": ("Positive feedback", "min_votes", "votes"),
}


def ratios(r: dict[str, Any]) -> dict[str, stats.Estimate]:
    """The judged ratios of one tenant (or one week) from its counts: the only place a success
    rate, positive share or rating is turned into a verdict-ready value (health and the weekly
    review both read them here)."""
    h = rules("health")
    finished = int(r["completed"] + r["failed"])
    votes = int(r["thumbs_up"] + r["thumbs_down"])
    rating = r.get("avg_rating")
    return {
        "success_rate": stats.proportion(int(r["completed"]), finished, h["min_runs_success_rate"]),
        "p95_s": stats.quantile(
            None if r.get("p95_s") is None or pd.isna(r["p95_s"]) else float(r["p95_s"]),
            _grid(r.get("p95_grid")),
            int(r["completed"]),
            h["min_runs_p95"],
        ),
        "rating": stats.mean_rating(
            None if rating is None or pd.isna(rating) else float(rating),
            int(r.get("ratings", 0)),
            h["min_ratings"],
        ),
        "positive": stats.proportion(int(r["thumbs_up"]), votes, h["min_votes"]),
    }


def _grid(value: Any) -> list[float] | None:
    """The processing times at stats.QUANTILE_GRID's fractions, as SQL returned them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return [float(v) for v in value]


def fmt_value(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key in ("success_rate", "positive"):
        return f"{value:.1%}" if key == "success_rate" else f"{value:.0%}"
    if key == "rating":
        return f"{value:.2f} / 5"
    return f"{value:.0f} s"


def describe(key: str, e: stats.Estimate) -> str:
    """A ratio as shown everywhere: value, 95% interval and n, e.g. "96.0% (93.1-97.7%, n = 150)";
    "too few to judge (n = 4)" under the minimum sample."""
    unit = RATIOS[key][2]
    if e.value is None:
        return f"– (n = 0 {unit})"
    if not e.judged:
        return f"{fmt_value(key, e.value)}, too few to judge (n = {e.n} {unit}, needs {e.min_n})"
    if e.low is None:
        return f"{fmt_value(key, e.value)} (n = {e.n} {unit})"
    bounds = f"{fmt_value(key, e.low)}–{fmt_value(key, e.high)}"
    return f"{fmt_value(key, e.value)} (95% interval {bounds}, n = {e.n} {unit})"


def sample_caption(key: str, e: stats.Estimate) -> str:
    """The n under a ratio's tile, e.g. "n = 412 finished attempts" (", too few to judge")."""
    unit = RATIOS[key][2]
    short = "" if e.judged or e.value is None else f": too few to judge (needs {e.min_n})"
    return f"n = {e.n:,} {unit}{short}"


def ratio_reasons(found: dict[str, stats.Estimate]) -> list[Reason]:
    """The ratio rules: each fails only when its interval is past the threshold, and says
    "too few to judge" (a note, not a verdict) on a sample under its minimum."""
    h = rules("health")
    reasons = []
    for key, e in found.items():
        if e.value is not None and not e.judged:
            reasons.append(Reason(key, NOT_JUDGED, f"{RATIOS[key][0]}: {describe(key, e)}"))
    rate = found["success_rate"]
    for limit, severity, what in (
        (h["success_rate_critical"], CRITICAL, f"{h['success_rate_critical']:.0%}"),
        (h["success_rate_target"], DEGRADED, f"the {h['success_rate_target']:.0%} target"),
    ):
        if rate.below(limit):
            reasons.append(
                Reason(
                    "success_rate",
                    severity,
                    f"Success rate {describe('success_rate', rate)} is below {what}",
                )
            )
            break
    p95 = found["p95_s"]
    if p95.above(h["p95_critical_s"]):
        text = f"exceeds the {h['p95_critical_s']} s SLA"
        reasons.append(
            Reason("latency", CRITICAL, f"p95 processing time {describe('p95_s', p95)} {text}")
        )
    elif p95.above(h["p95_target_s"]):
        text = f"is above the {h['p95_target_s']} s target"
        reasons.append(
            Reason("latency", DEGRADED, f"p95 processing time {describe('p95_s', p95)} {text}")
        )
    if found["rating"].below(h["rating_red_flag"]):
        reasons.append(
            Reason(
                "rating",
                DEGRADED,
                f"Average rating {describe('rating', found['rating'])} is a red flag "
                f"(< {h['rating_red_flag']})",
            )
        )
    if found["positive"].below(h["positive_warning_pct"] / 100):
        reasons.append(
            Reason(
                "positive",
                DEGRADED,
                f"Positive feedback {describe('positive', found['positive'])} is below "
                f"{h['positive_warning_pct']:.0f}%",
            )
        )
    return reasons


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    frame = success_rates(frame)
    frame["failures_by_cause"] = frame["failures_by_cause"].map(_as_dict)
    for column in ("p50_s", "p95_s", "avg_rating", "history_span_days"):
        frame[column] = frame[column].astype(float)
    return frame


def _as_dict(value: Any) -> dict[str, int]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


# A ticket is enhanced when any attempt completed; it ended failed when none completed and none
# is still pending (Celery gave up, or nobody re-queued it). The hours count their solo tickets
# (services.rollups); the linked ones, a few, are told apart by id: one hashed pass, COLLATE "C"
# comparing ids by bytes (equality is the same, strcoll is slower). A query of its own, run
# alongside the metrics.
_TICKET_COLUMNS = (
    "tenant_id, solo_tickets, solo_enhanced, solo_failed, linked_tickets, linked_enhanced,"
    " linked_open"
)
_TICKETS_SQL = f"""
WITH {rollups.window_ctes(_TICKET_COLUMNS)}
SELECT tenant_id, sum(tickets) AS tickets, sum(enhanced) AS tickets_enhanced,
       sum(failed) AS tickets_failed
  FROM (SELECT tenant_id, solo_tickets AS tickets, solo_enhanced AS enhanced,
               solo_failed AS failed
          FROM hours
         UNION ALL
        SELECT tenant_id, 1, CAST(bool_or(enhanced) AS int),
               CAST(NOT bool_or(enhanced OR open) AS int)
          FROM hours, unnest(linked_tickets, linked_enhanced, linked_open)
                      AS u(ticket_id, enhanced, open)
         GROUP BY tenant_id, ticket_id COLLATE "C") per_ticket
 GROUP BY tenant_id
"""
TICKET_COLUMNS = ["tickets", "tickets_enhanced", "tickets_failed"]


def metrics(tenant_id: str | None, period: TimeRange) -> pd.DataFrame:
    """One row per tenant as of the end of the period: one tenant's, read inside its RLS scope
    (empty if it does not exist), or (None) every tenant's through the admin path."""
    params = {
        "tenant": tenant_id,
        **period.params,
        "now": period.until,
        "stuck_s": rules("health")["stuck_pending_seconds"],
    }
    with scope(tenant_id) as conn:
        window = {**params, **rollups.window_params(conn, period.since, period.until, tenant_id)}
    # The tickets on a second connection (a snapshot a moment apart: same figures for closed
    # hours; the open one may differ by the attempts started in between).
    with in_background(_ticket_outcomes, tenant_id, window) as tickets:
        frame = _window_metrics(tenant_id, window)
    return _finish(_with_tickets(frame, tickets.result()))


def _window_metrics(tenant_id: str | None, params: dict[str, Any]) -> pd.DataFrame:
    with scope(tenant_id) as conn:
        return read_frame(conn, _METRICS_SQL, params)


def _ticket_outcomes(tenant_id: str | None, params: dict[str, Any]) -> pd.DataFrame:
    with scope(tenant_id) as conn:
        return read_frame(conn, _TICKETS_SQL, params)


def _with_tickets(frame: pd.DataFrame, tickets: pd.DataFrame) -> pd.DataFrame:
    """The metrics with each tenant's ticket outcomes (0 without tickets)."""
    merged = frame.merge(tickets, on="tenant_id", how="left")
    merged[TICKET_COLUMNS] = merged[TICKET_COLUMNS].fillna(0).astype(int)
    return merged


@dataclass(frozen=True)
class Traffic:
    """Webhook counts from Prometheus per tenant, or why the webhook rules cannot be judged."""

    by_tenant: dict[str, WebhookTraffic]
    unavailable: str | None = None  # e.g. "Prometheus is not available: PROMETHEUS_URL is not set"

    def of(self, tenant_id: str) -> WebhookTraffic | None:
        return self.by_tenant.get(tenant_id)


def read_traffic(tenant_id: str | None, now: datetime) -> Traffic:
    """Webhook traffic for the stopped-tenant rules; Prometheus absent is a note, not an error."""
    try:
        found = webhook_traffic(now, tenant_id)
    except DashboardError as exc:
        return Traffic({}, f"webhook traffic could not be judged: {exc}")
    if not found:
        return Traffic({}, "Prometheus holds no webhook counts (enhancement_requests_total)")
    return Traffic(found)


def webhook_reasons(
    r: dict[str, Any], traffic: WebhookTraffic, queued_now: int | None
) -> list[Reason]:
    """The "enhancements stopped" rules read from webhooks (contract section 4): with rows
    written only when a worker starts, a stopped tenant often has no rows at all."""
    h = rules("health")
    reasons = []
    if traffic.weeks >= h["silence_min_weeks"]:
        # The most telling window: no webhook counted in the last k hours, however unlikely.
        chances = [
            (math.exp(-sum(traffic.usual[:k])), k, sum(traffic.usual[:k]))
            for k in h["silence_windows_hours"]
            if sum(traffic.received[:k]) == 0
        ]
        if chances:
            p, k, usual = min(chances)
            if p < h["silence_max_p"]:
                reasons.append(
                    Reason(
                        "webhooks_silent",
                        CRITICAL,
                        f"No webhooks in the last {k} h, against about {usual:.0f} usually at "
                        f"this weekday and hour (past {traffic.weeks} weeks; chance of none "
                        f"{p:.0e}): likely the webhook configuration or its signing secret "
                        "(a webhook failing its signature check is refused before it is counted)",
                    )
                )
    window = h["rejected_window_hours"]
    rejected, received = sum(traffic.rejected[:window]), sum(traffic.received[:window])
    if rejected >= h["rejected_min"]:
        # critical while it is still going on: most of the recent hours' webhooks rejected
        recent = h["rejected_recent_hours"]
        now_received = sum(traffic.received[:recent])
        now_share = sum(traffic.rejected[:recent]) / now_received if now_received else 0.0
        reasons.append(
            Reason(
                "webhooks_rejected",
                CRITICAL if now_share >= h["rejected_critical_share"] else DEGRADED,
                f"{rejected:.0f} of {received:.0f} webhooks rejected by the API in the last "
                f"{window} h: it could not queue them (Redis error, HTTP 503), so those "
                "tickets were never enhanced",
            )
        )
    # Webhooks queued (Prometheus) in the whole hours since a worker last started an attempt
    # for this tenant (PostgreSQL).
    quiet_min = _minutes_since(r.get("newest_attempt"), r.get("as_of"))
    longest = len(traffic.queued)
    hours = longest if quiet_min is None else min(int(quiet_min // 60), longest)
    queued = sum(traffic.queued[:hours])
    if hours >= 1 and queued >= h["stalled_min_webhooks"]:
        waiting = f"; {queued_now} of its jobs are waiting in the queues" if queued_now else ""
        last = _ago(r.get("newest_attempt"), r.get("as_of"))
        since = "no attempt on record" if quiet_min is None else f"last attempt {last}"
        reasons.append(
            Reason(
                "queued_unattempted",
                CRITICAL,
                f"{queued:.0f} webhooks queued in the last {hours} h but no worker started an "
                f"attempt for this tenant ({since}){waiting}: workers down or processing stopped",
            )
        )
    return reasons


def assess(
    row: pd.Series | dict[str, Any],
    queue_oldest_s: float | None = None,
    traffic: WebhookTraffic | None = None,
    queued_now: int | None = None,
) -> Assessment:
    """Judge one tenant's metrics (and its webhook traffic, when Prometheus gave it). Pure: the
    same inputs always give the same verdict."""
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
            f"Enhancements stopped: {r['since_last_completed']} attempts since the last "
            f"completed enhancement ({_ago(r.get('last_completed'), r.get('as_of'))}), "
            "none of them completed",
        )
    if traffic is not None:
        reasons += webhook_reasons(r, traffic, queued_now)
    if r["attempts"] == 0 and not any(x.rule == "webhooks_silent" for x in reasons):
        add("no_traffic", DEGRADED, "No enhancement attempts in this time range")
    reasons += ratio_reasons(ratios(r))
    if r["stuck"] > 0:
        add(
            "stuck",
            DEGRADED,
            f"{r['stuck']} {'attempt' if r['stuck'] == 1 else 'attempts'} pending longer than "
            f"{h['stuck_pending_seconds']} s (the worker time limit)",
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
    judged = (r.severity for r in reasons if r.severity != NOT_JUDGED)
    status = max(judged, key=SEVERITY_ORDER.__getitem__, default=HEALTHY)
    return Assessment(status, tuple(reasons))


def _minutes_since(when: Any, now: Any) -> float | None:
    if when is None or pd.isna(when):
        return None
    reference = now if now is not None else pd.Timestamp.now(tz="UTC")
    return (pd.Timestamp(reference) - pd.Timestamp(when)).total_seconds() / 60


def _ago(when: Any, now: Any) -> str:
    minutes = _minutes_since(when, now)
    return formatting.ago(None if minutes is None else minutes * 60)


def failure_label(key: str) -> str:
    return MODES_BY_KEY.get(key, MODES_BY_KEY["unknown"]).label


_TREND_SQL = f"""
SELECT date_trunc(:bucket, created_at, 'UTC') AS bucket,
       count(*) AS attempts,
       count(DISTINCT ticket_id) AS tickets,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY {LATENCY_S})
           FILTER (WHERE status = 'completed') AS p95_s
  FROM enhancement_history
 WHERE tenant_id = :tenant AND created_at >= :since AND created_at < :until
 GROUP BY 1 ORDER BY 1
"""


def trend(tenant_id: str, period: TimeRange) -> pd.DataFrame:
    """Volume, success rate and p95 per hour (short ranges) or per day."""
    with tenant_scope(tenant_id) as conn:
        frame = read_frame(
            conn, _TREND_SQL, {"tenant": tenant_id, "bucket": period.bucket, **period.params}
        )
    frame = success_rates(frame)
    frame["p95_s"] = frame["p95_s"].astype(float)
    return frame


_FAILURES_SQL = f"""
SELECT {sql_case()} AS mode, count(*) AS attempts,
       mode() WITHIN GROUP (ORDER BY left(error_message, 200)) AS typical_error,
       max(created_at) AS last_seen
  FROM enhancement_history
 WHERE tenant_id = :tenant AND status = 'failed' AND created_at >= :since AND created_at < :until
 GROUP BY 1 ORDER BY attempts DESC
"""


def failures(tenant_id: str, period: TimeRange) -> pd.DataFrame:
    """Failed attempts by failure mode, the most common error text and when it last happened."""
    with tenant_scope(tenant_id) as conn:
        frame = read_frame(conn, _FAILURES_SQL, {"tenant": tenant_id, **period.params})
    frame["cause"] = frame["mode"].map(failure_label)
    frame["next_step"] = frame["mode"].map(lambda k: MODES_BY_KEY[k].next_step)
    return frame


def verdict(row: dict[str, Any], snapshot: QueueSnapshot | None, traffic: Traffic) -> Assessment:
    """One tenant's verdict from its metrics row, the live queue and its webhook traffic: the
    pages, the check command and the exporter all judge through here."""
    tenant_id = row["tenant_id"]
    return assess(
        row,
        queue_oldest_s=snapshot.oldest_age_seconds(tenant_id) if snapshot else None,
        traffic=traffic.of(tenant_id),
        queued_now=snapshot.tenant_counts().get(tenant_id, 0) if snapshot else None,
    )


def causes_text(failures: dict[str, int]) -> str:
    """Failures by cause, most frequent first: "SDP API error 4, Timeout 2"."""
    ranked = sorted(failures.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{failure_label(k)} {n}" for k, n in ranked) or formatting.MISSING


FLEET_COLUMNS = ["Status", "Tenant", "Tenant id", "Why"]


def fleet_table(
    frame: pd.DataFrame, snapshot: QueueSnapshot | None, traffic: Traffic, now: datetime
) -> pd.DataFrame:
    """The fleet table: one row per tenant (metrics), its status (a key of SEVERITY_ORDER or
    INACTIVE) and why, worst first; inactive tenants last."""
    shares = snapshot.tenant_counts() if snapshot else {}
    rows = []
    for row in frame.to_dict("records"):
        judged = verdict(row, snapshot, traffic)
        found = ratios(row)
        rows.append(
            {
                "Status": judged.status,
                "Tenant": row["name"],
                "Tenant id": row["tenant_id"],
                "Why": judged.summary,
                "Tickets": row["tickets"],
                "Attempts": row["attempts"],
                "Success (tickets)": row["ticket_success_rate"],
                "Success (attempts)": row["success_rate"],
                "Success: interval, n": describe("success_rate", found["success_rate"]),
                "p50": formatting.duration(row["p50_s"]),
                "p95": formatting.duration(row["p95_s"]),
                "p95: interval, n": describe("p95_s", found["p95_s"]),
                "Failures by cause": causes_text(row["failures_by_cause"]),
                "Rating": describe("rating", found["rating"]),
                "Positive": describe("positive", found["positive"]),
                "Last enhancement": formatting.since(row["last_completed"], now),
                "Queued": shares.get(row["tenant_id"], 0),
                "History tickets": row["history_tickets"],
                "_rank": SEVERITY_ORDER[judged.status] if row["is_active"] else -1,
            }
        )
    if not rows:
        return pd.DataFrame(columns=FLEET_COLUMNS)
    table = pd.DataFrame(rows)
    return table.sort_values("_rank", ascending=False, kind="stable").drop(columns="_rank")


def how_status_is_decided() -> str:
    """The status rules in words, with the thresholds of dashboard.toml [health] and [queue]."""
    h, queue = rules("health"), rules("queue")
    return (
        f"- **Critical**: success rate below {h['success_rate_critical']:.0%}, "
        f"p95 processing time over {h['p95_critical_s']} s, attempts but nothing "
        f"completed for {h['stalled_after_minutes']} min, no webhooks where the "
        "same weekday and hour of past weeks had many (webhook secret), webhooks queued but "
        "no attempt started, or the tenant's oldest queued job older than "
        f"{queue['oldest_job_stuck_minutes']} min.\n"
        f"- **Degraded**: success below {h['success_rate_target']:.0%}, p95 over "
        f"{h['p95_target_s']} s, runs pending past {h['stuck_pending_seconds']} s, rating below "
        f"{h['rating_red_flag']}, positive feedback below {h['positive_warning_pct']:.0f}%, "
        f"fewer than {h['ticket_history_min']} history tickets, webhooks rejected by the API, "
        "or no attempts at all.\n"
        f"- **Minimum samples** (`dashboard.toml` [health]): success rate from "
        f"{h['min_runs_success_rate']} finished attempts, p95 from {h['min_runs_p95']} "
        f"completed attempts, average rating from {h['min_ratings']} ratings, positive "
        f"feedback from {h['min_votes']} votes. Under them a ratio is shown with its n as "
        "'too few to judge' and neither passes nor fails. Above them a share, rating or "
        "p95 fails only when its whole 95% interval (Wilson score; for the 1-5 rating the "
        "rescaled mean; for p95 the order statistics around rank 0.95 n) is past the "
        "threshold, so a few votes or slow runs cannot turn a tenant red.\n"
        "- One ticket can have up to 4 attempts (Celery retries); processing time is "
        "completed_at - created_at of an attempt (created_at = a worker started it; queue "
        "wait is not stored). Thresholds live in `dashboard.toml`."
    )


@dataclass(frozen=True)
class Verdict:
    tenant_id: str
    name: str
    assessment: Assessment


def verdicts(
    now: datetime, window: timedelta = timedelta(hours=24), tenant_id: str | None = None
) -> tuple[list[Verdict], list[str]]:
    """Every tenant's verdict (or one tenant's, read in its scope) over the window before now,
    and notes on what could not be judged (queue or Prometheus unavailable)."""
    frame = metrics(tenant_id, TimeRange(now - window, now, "the check window"))
    notes = []
    try:
        snapshot: QueueSnapshot | None = queue_snapshot()
    except DashboardError as exc:
        snapshot = None
        notes.append(f"the live queue could not be read: {exc}")
    traffic = read_traffic(tenant_id, now)
    if traffic.unavailable:
        notes.append(traffic.unavailable)
    found = [
        Verdict(row["tenant_id"], row["name"], verdict(row, snapshot, traffic))
        for row in frame.to_dict("records")
    ]
    return found, notes


def _check(tenant_id: str | None, as_json: bool, hours: float) -> int:
    now = datetime.now(UTC)
    found, notes = verdicts(now, timedelta(hours=hours), tenant_id)
    if tenant_id and not found:
        print(f"No tenant {tenant_id}", file=sys.stderr)
        return 3
    # Like every view: recorded before anything of a tenant is printed (raises when it cannot).
    access_log.record(
        access_log.Access(
            actor="cron",
            actor_role="service",
            tenant_id=tenant_id or access_log.CROSS_TENANT,
            purpose="health check (python -m services.health check)",
            query_kind="health_check",
            query_params={"hours": hours},
            row_count=len(found),
        )
    )
    worst = max((v.assessment.status for v in found), key=EXIT_CODES.__getitem__, default=HEALTHY)
    if as_json:
        doc = {
            "as_of": now.isoformat(),
            "window_hours": hours,
            "status": worst,
            "notes": notes,
            "tenants": [
                {
                    "tenant_id": v.tenant_id,
                    "name": v.name,
                    "status": v.assessment.status,
                    "reasons": [asdict(r) for r in v.assessment.reasons],
                }
                for v in found
            ],
        }
        print(json.dumps(doc, indent=2))
    else:
        for v in found:
            print(f"{v.assessment.status:9} {v.tenant_id}: {v.assessment.summary}")
        for note in notes:
            print(f"note: {note}")
        print(f"overall: {worst}")
    return EXIT_CODES[worst]


def main(argv: list[str] | None = None) -> int:
    """`python -m services.health check [--tenant ID] [--json]`: exit 0 healthy, 1 degraded,
    2 critical (for cron or a monitoring probe); 3 when it could not judge at all."""
    parser = argparse.ArgumentParser(prog="python -m services.health")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="print the verdicts; exit 0/1/2")
    check.add_argument("--tenant", help="one tenant id (read in its own scope)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--hours", type=float, default=24.0, help="window (default 24 h)")
    args = parser.parse_args(argv)
    try:
        return _check(args.tenant, args.json, args.hours)
    except DashboardError as exc:
        print(f"Could not judge: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
