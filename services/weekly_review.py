"""The Monday weekly metrics review: each tenant and the fleet against their targets.

A week is an ISO week, Monday 00:00 to the next Monday 00:00 UTC. For the week and the one
before it, one pass over the runs (GROUPING SETS) gives per tenant, for the fleet and per day:
tickets, attempts, success rate and p95 processing time (health.LATENCY_S); a second, small
query the feedback. Throughput is tickets per day: the distinct tickets with at least one
attempt (a worker started on them) in the week, count(DISTINCT (tenant_id, ticket_id)), so a
retry or a re-run of the same ticket does not count again. It is not the webhooks the API
received (enhancement_requests_total in Prometheus): a ticket whose job never reached a worker
has no row here. Pure functions then judge each criterion PASS / MARGINAL / FAIL, compute the
week-over-week change and the escalation level by the review's rules (contract section 6;
thresholds in dashboard.toml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from services import health, rollups, stats, themes
from services.config import rules
from services.db import in_background, read_frame, scope
from services.errors import InvalidInput
from services.timerange import TimeRange

PASS, MARGINAL, FAIL, NO_DATA = "PASS", "MARGINAL", "FAIL", "NO DATA"
CRITICAL, HIGH, MEDIUM, NONE = "critical", "high", "medium", "none"
LEVEL_ORDER = {NONE: 0, MEDIUM: 1, HIGH: 2, CRITICAL: 3}
HIGHER, LOWER, RANGE = "higher", "lower", "range"

_WEEK_LABEL = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True)
class Week:
    monday: date

    @classmethod
    def parse(cls, label: str) -> Week:
        """'2025-W45' (ISO year and week)."""
        match = _WEEK_LABEL.fullmatch(str(label).strip())
        if not match:
            raise InvalidInput("A week looks like 2025-W45 (ISO year, W, week number).")
        try:
            return cls(date.fromisocalendar(int(match[1]), int(match[2]), 1))
        except ValueError as exc:
            raise InvalidInput(f"{label.strip()} is not a week of that year.") from exc

    @classmethod
    def of(cls, moment: datetime) -> Week:
        day = moment.astimezone(UTC).date()
        return cls(day - timedelta(days=day.weekday()))

    @property
    def label(self) -> str:
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.monday.year, self.monday.month, self.monday.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 UTC (exclusive)."""
        return self.start + timedelta(days=7)

    def range(self, now: datetime) -> TimeRange:
        """The week as read at `now`: up to its end, or to now while it is in progress."""
        return TimeRange(self.start, min(self.end, now), f"week {self.label}")

    @property
    def previous(self) -> Week:
        return Week(self.monday - timedelta(days=7))

    @property
    def span(self) -> str:
        sunday = self.monday + timedelta(days=6)
        return f"Mon {self.monday:%d %b} – Sun {sunday:%d %b %Y} (UTC)"


def recent_weeks(now: datetime, count: int | None = None) -> list[Week]:
    """The current week (in progress) first, then the weeks before it."""
    count = count or rules("weekly_review")["weeks_offered"]
    current = Week.of(now)
    return [Week(current.monday - timedelta(days=7 * i)) for i in range(count)]


@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    better: str  # HIGHER, LOWER or RANGE
    low: float | None  # PASS needs value >= low (HIGHER, RANGE)
    high: float | None  # PASS needs value <= high (LOWER, RANGE)
    min_sample: int  # judged from this many attempts / ratings / votes up

    def display(self, value: float | None) -> float | None:
        """The value in the unit people read (success rate in %)."""
        if value is None:
            return None
        return value * 100 if self.key == "success_rate" else value

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "–"
        if self.key == "satisfaction":
            return f"{value:.2f} / 5"
        if self.key == "success_rate":
            return f"{value:.1%}"
        if self.key == "positive_pct":
            return f"{value:.1f}%"
        if self.key == "p95_s":
            return f"{value:.0f} s"
        return f"{value:.1f} tickets / day"

    @property
    def sample_unit(self) -> str:
        """What the sample counts: tickets for throughput, attempts / ratings / votes else."""
        key = _HEALTH_KEYS.get(self.key)
        return health.RATIOS[key][2] if key else "tickets"

    @property
    def target_text(self) -> str:
        if self.better == RANGE:
            return f"{self.low:g}–{self.high:g} tickets / day"
        if self.better == LOWER:
            return f"≤ {self.fmt(self.high)}"
        return f"≥ {self.fmt(self.low)}"


def criteria(tenants_in_fleet: int | None = None) -> tuple[Criterion, ...]:
    """The review's criteria. For the fleet, the per-tenant throughput range is multiplied by
    the number of tenants reviewed (their targets add up). Minimum samples are health's."""
    h, w = rules("health"), rules("weekly_review")
    scale = tenants_in_fleet or 1
    return (
        Criterion(
            "satisfaction", "Satisfaction", HIGHER, h["rating_target"], None, h["min_ratings"]
        ),
        Criterion(
            "success_rate",
            "Success rate",
            HIGHER,
            h["success_rate_target"],
            None,
            h["min_runs_success_rate"],
        ),
        Criterion(
            "p95_s", "p95 processing time", LOWER, None, h["p95_target_s"], h["min_runs_p95"]
        ),
        Criterion(
            "throughput",
            "Throughput",
            RANGE,
            w["throughput_min_per_day"] * scale,
            w["throughput_max_per_day"] * scale,
            0,
        ),
        Criterion(
            "positive_pct",
            "Positive feedback",
            HIGHER,
            h["positive_target_pct"],
            None,
            h["min_votes"],
        ),
    )


def judge(criterion: Criterion, e: stats.Estimate) -> str:
    """PASS at or better than the target; MARGINAL within marginal_band of it (on the wrong
    side); FAIL beyond; NO DATA without a value or with too small a sample. With an interval
    the end nearest the target is judged: a week fails only when the interval says so."""
    if not e.judged:
        return NO_DATA
    value = e.value
    if criterion.better == HIGHER and e.high is not None:
        value = e.high
    elif criterion.better == LOWER and e.low is not None:
        value = e.low
    band = rules("weekly_review")["marginal_band"]
    low_ok = criterion.low is None or value >= criterion.low
    high_ok = criterion.high is None or value <= criterion.high
    if low_ok and high_ok:
        return PASS
    # Rounded so that a bound times (1 - marginal_band) is exact at its edge (0.9025 for
    # success_rate_target and marginal_band as shipped, not 0.90249999...).
    near_low = criterion.low is None or value >= round(criterion.low * (1 - band), 9)
    near_high = criterion.high is None or value <= round(criterion.high * (1 + band), 9)
    return MARGINAL if near_low and near_high else FAIL


NOT_COMPARABLE = "not enough data to compare"


@dataclass(frozen=True)
class Change:
    relative: float | None  # (this week - last week) / last week; None when not comparable
    arrow: str  # ↑ ↓ → ("" when not comparable)
    declined: bool  # worse by more than decline_escalation, and by more than the noise
    note: str = ""  # NOT_COMPARABLE, or "within noise" for a large change the data cannot back

    @property
    def text(self) -> str:
        if self.note == NOT_COMPARABLE:
            return NOT_COMPARABLE
        if not self.arrow:
            return "–"
        if self.relative is None:
            return f"{self.arrow} new"
        return f"{self.arrow} {self.relative:+.1%}" + (f" ({self.note})" if self.note else "")


def week_over_week(
    criterion: Criterion, current: float | None, previous: float | None, beyond_noise: bool = True
) -> Change:
    """Relative change; a decline is a drop for every criterion except p95 processing time (a
    rise). It escalates only when `beyond_noise` (the two weeks' intervals say the change is
    real)."""
    if current is None or previous is None:
        return Change(None, "", False)
    if previous == 0:
        return Change(0.0, "→", False) if current == 0 else Change(None, "↑", False)
    relative = round((current - previous) / abs(previous), 9)
    w = rules("weekly_review")
    arrow = "→" if abs(relative) < w["unchanged_below"] else ("↑" if relative > 0 else "↓")
    worse_by = relative if criterion.better == LOWER else -relative
    large = worse_by > w["decline_escalation"]
    return Change(
        relative, arrow, large and beyond_noise, "" if beyond_noise or not large else "within noise"
    )


@dataclass(frozen=True)
class MetricResult:
    criterion: Criterion
    value: float | None
    previous: float | None
    sample: int | None  # attempts / tickets / ratings / votes behind the value this week
    verdict: str
    change: Change
    estimate: stats.Estimate | None = None  # this week's value with its interval and n

    @property
    def sample_text(self) -> str:
        """The value with its interval and n as health shows them, e.g. '96.0% (95% interval
        93.1%–97.7%, n = 150 finished attempts)'; throughput with its count of tickets."""
        key = _HEALTH_KEYS.get(self.criterion.key)
        if key is None or self.estimate is None:
            unit = self.criterion.sample_unit
            return f"{self.criterion.fmt(self.value)} ({self.sample or 0} {unit})"
        # the review keeps positive feedback in percent; health describes it as a share
        unit = 0.01 if self.criterion.key == "positive_pct" else 1
        return health.describe(key, self.estimate.scaled(unit))

    @property
    def cell(self) -> str:
        """One table cell: verdict mark, value with its n, change."""
        value = f"{self.criterion.fmt(self.value)} (n = {self.sample or 0})"
        return f"{VERDICT_MARK[self.verdict]} {value}  {self.change.text}"


# The review's criteria that are health's ratios (same values, intervals and minimum samples).
_HEALTH_KEYS = {
    "satisfaction": "rating",
    "success_rate": "success_rate",
    "p95_s": "p95_s",
    "positive_pct": "positive",
}

VERDICT_MARK = {PASS: "✅", MARGINAL: "⚠️", FAIL: "❌", NO_DATA: "▫️"}


@dataclass(frozen=True)
class Reason:
    level: str
    text: str


@dataclass(frozen=True)
class Escalation:
    level: str
    reasons: tuple[Reason, ...]


def _misses(c: Criterion, value: float) -> str:
    if c.better == RANGE:  # over the range is a capacity concern, under it too little traffic
        side = "above the planned" if value > c.high else "below the expected"
        return f"is {side} {c.target_text}"
    return f"fails its target ({c.target_text})"


def escalate(metrics: tuple[MetricResult, ...]) -> Escalation:
    """critical: success rate below success_rate_critical or p95 above p95_critical_s;
    high: any criterion failing or declining by more than decline_escalation week over week;
    medium: a marginal criterion. (Major client escalations and security incidents are not in
    the data: the review adds them by hand.)"""
    h = rules("health")
    decline = rules("weekly_review")["decline_escalation"]
    reasons: list[Reason] = []
    for m in metrics:
        c, e = m.criterion, m.estimate
        # the same interval rules as health's verdicts
        if e is not None and c.key == "success_rate" and e.below(h["success_rate_critical"]):
            reasons.append(
                Reason(
                    CRITICAL,
                    f"Success rate {m.sample_text} is below {h['success_rate_critical']:.0%}",
                )
            )
        if e is not None and c.key == "p95_s" and e.above(h["p95_critical_s"]):
            reasons.append(
                Reason(
                    CRITICAL,
                    f"p95 processing time {m.sample_text} exceeds the {h['p95_critical_s']} s SLA",
                )
            )
        if m.verdict == FAIL:
            reasons.append(Reason(HIGH, f"{c.label} {m.sample_text} {_misses(c, m.value)}"))
        if m.change.declined:
            moved = "rose" if c.better == LOWER else "fell"
            reasons.append(
                Reason(
                    HIGH,
                    f"{c.label} {moved} {abs(m.change.relative):.1%} week over week (a decline "
                    f"of more than {decline:.0%}, beyond the noise): {c.fmt(m.previous)} → "
                    f"{c.fmt(m.value)} (n = {m.sample} this week)",
                )
            )
        if m.verdict == MARGINAL:
            reasons.append(
                Reason(MEDIUM, f"{c.label} {m.sample_text} is marginal (target {c.target_text})")
            )
    level = max((r.level for r in reasons), key=LEVEL_ORDER.__getitem__, default=NONE)
    ordered = sorted(reasons, key=lambda r: -LEVEL_ORDER[r.level])
    return Escalation(level, tuple(ordered))


@dataclass(frozen=True)
class ScopeReview:
    tenant_id: str | None  # None: the fleet
    name: str
    metrics: tuple[MetricResult, ...]
    escalation: Escalation
    tickets: int  # tickets with an attempt this week (count(DISTINCT ticket_id), not rows)
    feedback: int  # feedback entries this week


@dataclass(frozen=True)
class WeeklyReview:
    week: Week
    as_of: datetime  # the data's cut-off: now, or the end of a past week
    days: float  # days of the week elapsed (7 for a past week)
    tenant_id: str | None  # the tenant reviewed, None for the fleet review
    fleet: ScopeReview | None
    tenants: tuple[ScopeReview, ...]
    themes: themes.Themes
    daily: pd.DataFrame  # per day: tickets, attempts, completed, failed, success_rate, p95_s

    @property
    def scopes(self) -> tuple[ScopeReview, ...]:
        return ((self.fleet,) if self.fleet else ()) + self.tenants

    @property
    def in_progress(self) -> bool:
        return self.days < 7


# One pass over the two weeks' hours (services.rollups: rolled hours plus the raw rest): per
# tenant and week, the fleet per week, and the fleet (or, in a tenant scope, the tenant) per
# day for the chart. Counts add up over hours, the solo tickets too (each lies in one hour);
# the linked tickets are counted distinct and the p95 is taken over the hours' processing times,
# so they are the raw computation's.
_HOUR_COLUMNS = (
    "tenant_id, hour, attempts, completed, failed, solo_tickets, linked_tickets, latencies"
)
_RUNS_SQL = f"""
WITH {rollups.window_ctes(_HOUR_COLUMNS)}, per_hour AS (
    SELECT tenant_id, hour >= :start AS this_week, date_trunc('day', hour, 'UTC') AS day,
           attempts, completed, failed, solo_tickets, linked_tickets, latencies
      FROM hours
), rows AS (
    -- the hour's counts on its first row (its only one when both arrays are empty); unnest
    -- pads the shorter array with NULLs
    SELECT tenant_id, this_week, day,
           CASE WHEN coalesce(n, 1) = 1 THEN attempts ELSE 0 END AS attempts,
           CASE WHEN coalesce(n, 1) = 1 THEN completed ELSE 0 END AS completed,
           CASE WHEN coalesce(n, 1) = 1 THEN failed ELSE 0 END AS failed,
           CASE WHEN coalesce(n, 1) = 1 THEN solo_tickets ELSE 0 END AS solo_tickets,
           ticket_id, latency_s
      FROM per_hour
      LEFT JOIN LATERAL unnest(linked_tickets, latencies) WITH ORDINALITY
           AS u(ticket_id, latency_s, n) ON true
)
SELECT tenant_id, this_week, day,
       GROUPING(tenant_id) = 1 AND GROUPING(day) = 1 AS is_fleet, GROUPING(day) = 0 AS is_day,
       -- distinct (tenant, ticket) as one byte-compared string (length-prefixed, so no two
       -- pairs give the same one): comparing records under the database's collation took 3x
       sum(solo_tickets) + count(DISTINCT (length(tenant_id) || ':' || tenant_id || ticket_id)
                                 COLLATE "C") FILTER (WHERE ticket_id IS NOT NULL) AS tickets,
       sum(attempts) AS attempts, sum(completed) AS completed, sum(failed) AS failed,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_s) AS p95_s,
       -- the same sort at the grid's fractions: the p95's interval (services.stats)
       percentile_cont({stats.QUANTILE_GRID_SQL}) WITHIN GROUP (ORDER BY latency_s) AS p95_grid
  FROM rows
 GROUP BY GROUPING SETS ((tenant_id, this_week), (this_week), (day))
"""

_FEEDBACK_SQL = """
SELECT tenant_id, this_week, GROUPING(tenant_id) = 1 AS is_fleet,
       avg(rating_value) FILTER (WHERE feedback_type = 'rating') AS satisfaction,
       count(rating_value) FILTER (WHERE feedback_type = 'rating') AS ratings,
       count(*) FILTER (WHERE feedback_type = 'thumbs_up') AS thumbs_up,
       count(*) FILTER (WHERE feedback_type = 'thumbs_down') AS thumbs_down,
       count(*) AS feedback
  FROM (SELECT tenant_id, feedback_type, rating_value, created_at >= :start AS this_week
          FROM enhancement_feedback
         WHERE created_at >= :previous_start AND created_at < :end
           AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)) f
 GROUP BY GROUPING SETS ((tenant_id, this_week), (this_week))
"""

_TENANTS_SQL = """
SELECT tenant_id, name FROM tenant_configs
 WHERE is_active AND created_at < :end
   AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
 ORDER BY lower(name)
"""


_NO_ACTIVITY = {
    "tickets": 0,
    "completed": 0,
    "failed": 0,
    "p95_s": None,
    "p95_grid": None,
    "satisfaction": None,
    "ratings": 0,
    "thumbs_up": 0,
    "thumbs_down": 0,
    "feedback": 0,
}


def _values(row: dict[str, Any], days: float) -> dict[str, stats.Estimate]:
    """Each criterion's value with its sample (and interval), from one scope's week: the
    ratios come from health.ratios, the same code that judges the health pages."""
    found = health.ratios({**row, "avg_rating": row["satisfaction"]})
    return {
        "satisfaction": found["rating"],
        "success_rate": found["success_rate"],
        "p95_s": found["p95_s"],
        # Distinct tickets with an attempt per day (not attempts, not webhooks).
        "throughput": stats.without_interval(
            row["tickets"] / days if days > 0 else None, int(row["tickets"]), 0
        ),
        "positive_pct": found["positive"].scaled(100),  # in percent, as the review shows it
    }


def review_scope(
    tenant_id: str | None,
    name: str,
    current: dict[str, Any],
    previous: dict[str, Any],
    days: float,
    tenants_in_fleet: int | None = None,
) -> ScopeReview:
    """Judge one tenant (or the fleet) from the aggregates of its two weeks."""
    now_values, before = _values(current, days), _values(previous, 7.0)
    metrics = []
    for criterion in criteria(tenants_in_fleet):
        e, prev = now_values[criterion.key], before[criterion.key]
        verdict = judge(criterion, e)
        if e.value is None or prev.value is None:
            change = Change(None, "", False)
        elif verdict == NO_DATA or judge(criterion, prev) == NO_DATA:
            change = Change(None, "", False, NOT_COMPARABLE)
        else:
            if criterion.key == "throughput":
                real = stats.rate_differs(current["tickets"], days, previous["tickets"], 7.0)
            else:
                real = e.differs_from(prev)
            change = week_over_week(criterion, e.value, prev.value, real)
        metrics.append(MetricResult(criterion, e.value, prev.value, e.n, verdict, change, e))
    result = tuple(metrics)
    return ScopeReview(
        tenant_id,
        name,
        result,
        escalate(result),
        int(current["tickets"]),
        int(current["feedback"]),
    )


def _days_elapsed(week: Week, now: datetime) -> float:
    if now < week.start:
        raise InvalidInput(f"{week.label} has not started yet.")
    return min(7.0, (now - week.start).total_seconds() / 86400)


Key = tuple[str | None, bool]  # (tenant_id, or None for the fleet; this week?)


def _weeks(
    conn: Connection, week: Week, days: float, tenant_id: str | None
) -> tuple[dict[Key, dict], pd.DataFrame]:
    """Aggregates per scope and week, and the week's days."""
    # A week in progress is read up to now, as its throughput is per elapsed day.
    end = min(week.end, week.start + timedelta(days=days))
    params = {
        "start": week.start,
        "end": end,
        "previous_start": week.previous.start,
        "tenant": tenant_id,
    }
    window = rollups.window_params(conn, week.previous.start, end, tenant_id)
    runs = read_frame(conn, _RUNS_SQL, {**params, **window})
    feedback = read_frame(conn, _FEEDBACK_SQL, params)
    is_day = runs["is_day"].astype(bool)
    rows: dict[Key, dict] = {}
    for frame in (runs[~is_day], feedback):
        for r in frame.to_dict("records"):
            key = (None if r["is_fleet"] else r["tenant_id"], bool(r["this_week"]))
            rows.setdefault(key, dict(_NO_ACTIVITY)).update(r)
    days_frame = runs[is_day & (runs["day"] >= week.start)].sort_values("day")
    return rows, _daily(days_frame)


def _daily(frame: pd.DataFrame) -> pd.DataFrame:
    """The shape of health.tenant_trend, so the same charts draw it."""
    daily = frame[["day", "tickets", "attempts", "completed", "failed", "p95_s"]].rename(
        columns={"day": "bucket"}
    )
    finished = daily["completed"] + daily["failed"]
    daily["success_rate"] = (daily["completed"] / finished.where(finished > 0)).astype(float)
    daily["p95_s"] = daily["p95_s"].astype(float)
    return daily.reset_index(drop=True)


def _review(
    week: Week,
    now: datetime,
    days: float,
    tenant_id: str | None,
    rows: dict[Key, dict],
    daily: pd.DataFrame,
    known: pd.DataFrame,
    found: themes.Themes,
) -> WeeklyReview:
    def reviewed_scope(key: str | None, name: str, fleet_size: int | None = None) -> ScopeReview:
        return review_scope(
            key,
            name,
            rows.get((key, True), _NO_ACTIVITY),
            rows.get((key, False), _NO_ACTIVITY),
            days,
            fleet_size,
        )

    reviewed = (reviewed_scope(t.tenant_id, t.name) for t in known.itertuples())  # by name
    # Worst first, as the review discusses them (the sort keeps names in order within a level).
    tenants = tuple(sorted(reviewed, key=lambda s: -LEVEL_ORDER[s.escalation.level]))
    fleet = None if tenant_id else reviewed_scope(None, "Fleet", max(len(tenants), 1))
    return WeeklyReview(week, now, days, tenant_id, fleet, tenants, found, daily)


def as_of(week_label: str, now: datetime) -> datetime:
    """The cut-off of a week's data: a past week's end (so its review can stay cached)."""
    return min(now, Week.parse(week_label).end)


def review(tenant_id: str | None, week_label: str, now: datetime) -> WeeklyReview:
    """One tenant's review, read inside its RLS scope (no tenants if it does not exist), or
    (None) every active tenant and the fleet through the admin path."""
    week = Week.parse(week_label)
    days = _days_elapsed(week, now)
    # The feedback themes are a query of their own (a third of the time at 10M runs): on a
    # second connection, while this one reads the weeks' runs.
    with in_background(themes.themes, tenant_id, week.range(now)) as found:
        with scope(tenant_id) as conn:
            rows, daily = _weeks(conn, week, days, tenant_id)
            known = read_frame(conn, _TENANTS_SQL, {"end": week.end, "tenant": tenant_id})
        # the connection is back in the pool before this waits for the themes (db.in_background)
        return _review(week, now, days, tenant_id, rows, daily, known, found.result())


ROW_COLUMNS = (
    "week",
    "scope",
    "tenant_id",
    "criterion",
    "value",
    "value_text",
    "previous_week",
    "change_pct",
    "trend",
    "target",
    "low",
    "high",
    "verdict",
    "sample",
    "sample_of",
    "escalation",
)


def review_rows(review: WeeklyReview) -> pd.DataFrame:
    """One row per scope and criterion (the CSV export and the charts); no rows, but the same
    columns, for a review without tenants (a week before the tenant existed)."""
    rows = []
    for reviewed in review.scopes:
        for m in reviewed.metrics:
            c = m.criterion
            rows.append(
                {
                    "week": review.week.label,
                    "scope": reviewed.name,
                    "tenant_id": reviewed.tenant_id or "",
                    "criterion": c.label,
                    "value": c.display(m.value),
                    "value_text": c.fmt(m.value),
                    "previous_week": c.display(m.previous),
                    "change_pct": None if m.change.relative is None else m.change.relative * 100,
                    "trend": m.change.arrow,
                    "target": c.target_text,
                    "low": c.display(c.low),
                    "high": c.display(c.high),
                    "verdict": m.verdict,
                    "sample": m.sample,
                    "sample_of": c.sample_unit,
                    "escalation": reviewed.escalation.level,
                }
            )
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))
