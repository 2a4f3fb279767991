"""Hourly rollups of the runs (dashboard.run_hours), so that a window costs its hours, not the
platform's table (which has no index on created_at alone: a 30-day fleet window read all of
its 8 GB at 10M runs).

One row per tenant and closed UTC hour: the additive counts, plus what keeps the non-additive
figures exact: the completed attempts' processing times (percentile_cont over them is the
raw percentile, to the last digit), the hour's tickets, and the finished attempts' worker time
(processing_time_ms: its sum and its values, which the capacity measurement of Queues and
scaling reads).

Tickets: a ticket whose attempts all lie in one hour is "solo" there, and counted (with its
outcome) rather than listed, since it is one distinct ticket in any set of hours holding that
hour and in no other. Only "linked" tickets (an attempt in another hour: a retry across the
hour's end, a re-run days later) are listed with their outcome flags, to be told apart by id.
That was 0.6% of a 30-day window's tickets at 10M runs. A ticket stays solo only until it gets
an attempt in another hour: the refresh rolls again any rolled hour whose solo ticket has an
attempt in an hour it rolls, and a window reads raw any rolled hour whose solo ticket has an
attempt in the window's raw rows (window_params).

A window is read as the rollup's hours it covers plus the platform's rows of the rest, found
through its (status, created_at) index: the partial first hour, the open hour (and any hour not
rolled yet), and the stale hours. A run is inserted pending when a worker starts it and updated
once when it finishes (contract section 2), so a rolled hour goes stale exactly when its rolled
pending count differs from the pending rows it has now, or when a ticket solo in it got another
attempt since; such an hour is read raw until the next refresh rolls it again. Figures are
therefore the raw computation's at any moment.

The cron command: `python -m services.rollups refresh [--days N]` (every few minutes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from services.db import job_lock, write_scope
from services.errors import DashboardError
from services.failures import sql_case

# Processing time of one attempt (health.LATENCY_S, which explains it).
LATENCY_S = "extract(epoch FROM completed_at - created_at)"
STATE = "run_hours"
LOCK = "dashboard.run_hours refresh"
HOUR = timedelta(hours=1)
# A run's row is committed moments after its created_at: an hour is rolled once it has been
# closed this long, so no insert of it can still be in flight.
SETTLE = timedelta(minutes=10)
BACKFILL_DAYS = 35  # the longest window the views offer (30 d) and the weekly review's two weeks
REFRESH_TIMEOUT_MS = 600_000  # the backfill reads the whole table once

_TENANT = "(CAST(:tenant AS varchar) IS NULL OR tenant_id = :tenant)"
COLUMNS = (
    "tenant_id, hour, attempts, completed, failed, pending, last_attempt, failures_by_cause,"
    " latencies, solo_tickets, solo_enhanced, solo_failed, linked_tickets, linked_enhanced,"
    " linked_open, busy_ms, processing_ms"
)


def _hour_rollup(source: str) -> str:
    """CTEs `e` (the attempts `source`'s FROM and WHERE select), `per_ticket` and `raw_hours`
    (their rows of dashboard.run_hours): the one definition the refresh stores and the views
    read raw."""
    return f"""
e AS MATERIALIZED (
    SELECT tenant_id, ticket_id, status, created_at,
           date_trunc('hour', created_at, 'UTC') AS hour,
           CAST({LATENCY_S} AS double precision) AS latency_s, processing_time_ms AS ms,
           CASE WHEN status = 'failed' THEN {sql_case()} END AS mode
      {source}
), per_ticket AS MATERIALIZED (
    -- materialised: a plan that scans it again must not probe the table again
    SELECT tenant_id, hour, ticket_id, bool_or(status = 'completed') AS enhanced,
           bool_or(status = 'pending') AS open,
           -- an attempt in another hour, found through (tenant_id, ticket_id)
           EXISTS (SELECT 1 FROM enhancement_history o
                    WHERE o.tenant_id = e.tenant_id AND o.ticket_id = e.ticket_id
                      AND (o.created_at < e.hour OR o.created_at >= e.hour + interval '1 hour'))
               AS linked
      FROM e GROUP BY tenant_id, hour, ticket_id
), raw_hours AS (
    SELECT h.tenant_id, h.hour, h.attempts, h.completed, h.failed, h.pending, h.last_attempt,
           coalesce(m.failures_by_cause, '{{}}') AS failures_by_cause, h.latencies,
           t.solo_tickets, t.solo_enhanced, t.solo_failed, t.linked_tickets, t.linked_enhanced,
           t.linked_open, h.busy_ms, h.processing_ms
      FROM (SELECT tenant_id, hour, count(*) AS attempts,
                   count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'pending') AS pending,
                   max(created_at) AS last_attempt,
                   coalesce(array_agg(latency_s) FILTER (WHERE status = 'completed'), '{{}}')
                       AS latencies,
                   coalesce(sum(ms) FILTER (WHERE status <> 'pending'), 0) AS busy_ms,
                   coalesce(array_agg(ms ORDER BY ms)
                                FILTER (WHERE status <> 'pending' AND ms IS NOT NULL), '{{}}')
                       AS processing_ms
              FROM e GROUP BY tenant_id, hour) h
      JOIN (SELECT tenant_id, hour,  -- counts as the table's integers, so that sums are bigint
                   CAST(count(*) FILTER (WHERE NOT linked) AS int) AS solo_tickets,
                   CAST(count(*) FILTER (WHERE NOT linked AND enhanced) AS int) AS solo_enhanced,
                   CAST(count(*) FILTER (WHERE NOT (linked OR enhanced OR open)) AS int)
                       AS solo_failed,
                   coalesce(array_agg(ticket_id ORDER BY ticket_id) FILTER (WHERE linked), '{{}}')
                       AS linked_tickets,
                   coalesce(array_agg(enhanced ORDER BY ticket_id) FILTER (WHERE linked), '{{}}')
                       AS linked_enhanced,
                   coalesce(array_agg(open ORDER BY ticket_id) FILTER (WHERE linked), '{{}}')
                       AS linked_open
              FROM per_ticket
             GROUP BY tenant_id, hour) t USING (tenant_id, hour)
      LEFT JOIN (SELECT tenant_id, hour, jsonb_object_agg(mode, n) AS failures_by_cause
                   FROM (SELECT tenant_id, hour, mode, count(*) AS n FROM e
                          WHERE status = 'failed' GROUP BY tenant_id, hour, mode) per_mode
                  GROUP BY tenant_id, hour) m USING (tenant_id, hour)
)"""


# The platform's rows in the window's raw ranges: one index range scan of (status, created_at)
# per range (status holds only these three values, contract section 2).
_RAW_SOURCE = f"""
      FROM unnest(CAST(:raw_from AS timestamptz[]), CAST(:raw_until AS timestamptz[])) AS w(a, b)
     CROSS JOIN LATERAL (
           SELECT * FROM enhancement_history
            WHERE status = ANY('{{pending,completed,failed}}')
              AND created_at >= w.a AND created_at < w.b AND {_TENANT}
           OFFSET 0) runs"""


def window_ctes(columns: str) -> str:
    """CTEs ending in `hours`: one row per tenant and hour of the window with attempts, the
    rollup's where it is current, the raw computation's elsewhere; only `columns` (of COLUMNS),
    since a query reading `hours` twice materialises it, and unused arrays (the tickets, the
    processing times) would be copied along. Parameters: window_params."""
    return f"""{_hour_rollup(_RAW_SOURCE)}, hours AS (
    SELECT {columns} FROM dashboard.run_hours
     WHERE hour >= :covered_from AND hour < :covered_until
       AND hour <> ALL(CAST(:stale AS timestamptz[])) AND {_TENANT}
    UNION ALL
    SELECT {columns} FROM raw_hours
)"""


_STATE_SQL = "SELECT rolled_from, rolled_until FROM dashboard.rollup_state WHERE name = :name"

# Rolled hours whose pending count is not the platform's now (a run finished since): read raw.
_STALE_SQL = f"""
SELECT DISTINCT hour FROM (
    SELECT tenant_id, hour, pending FROM dashboard.run_hours
     WHERE pending > 0 AND hour >= :covered_from AND hour < :covered_until AND {_TENANT}) r
  FULL JOIN (
    SELECT tenant_id, date_trunc('hour', created_at, 'UTC') AS hour, count(*) AS pending
      FROM enhancement_history
     WHERE status = 'pending' AND created_at >= :covered_from AND created_at < :covered_until
       AND {_TENANT}
     GROUP BY 1, 2) p USING (tenant_id, hour)
 WHERE coalesce(r.pending, 0) <> coalesce(p.pending, 0)
 ORDER BY hour
"""


# A rolled hour (in [covered_from, covered_until), not stale) that lists none of its tickets
# with an attempt among `attempts` (the CTE before it) as linked: each of those tickets was
# solo there when rolled and has an attempt elsewhere since, so that hour's counts would count
# it twice. Found through (tenant_id, ticket_id); the attempts are few (raw rows, new hours).
_SOLO_NO_MORE = """
SELECT DISTINCT r.hour
  FROM attempts n
  JOIN enhancement_history o ON o.tenant_id = n.tenant_id AND o.ticket_id = n.ticket_id
  JOIN dashboard.run_hours r ON r.tenant_id = o.tenant_id
   AND r.hour = date_trunc('hour', o.created_at, 'UTC')
 WHERE o.created_at >= :covered_from AND o.created_at < :covered_until
   AND r.hour <> date_trunc('hour', n.created_at, 'UTC')
   AND r.hour <> ALL(CAST(:stale AS timestamptz[])) AND NOT n.ticket_id = ANY(r.linked_tickets)
   AND (CAST(:tenant AS varchar) IS NULL OR r.tenant_id = :tenant)
 ORDER BY r.hour
"""
# ... for the raw rows of a window (window_params) and for the hours a refresh just rolled.
_SOLO_NO_MORE_RAW_SQL = f"""
WITH attempts AS (SELECT runs.tenant_id, runs.ticket_id, runs.created_at {_RAW_SOURCE})
{_SOLO_NO_MORE}"""


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


@dataclass(frozen=True)
class Coverage:
    rolled_from: datetime
    rolled_until: datetime


def coverage(conn: Connection) -> Coverage | None:
    row = conn.execute(text(_STATE_SQL), {"name": STATE}).first()
    return Coverage(row.rolled_from, row.rolled_until) if row else None


def _ranges(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Non-empty spans, sorted, adjacent ones merged."""
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(s for s in spans if s[0] < s[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def window_params(
    conn: Connection, since: datetime, until: datetime, tenant_id: str | None
) -> dict[str, Any]:
    """The parameters of window_ctes() for [since, until): the rolled hours it covers, the stale
    ones among them, and the raw ranges (everything else)."""
    found = coverage(conn)
    first, last = ceil_hour(since), floor_hour(until)
    if found is None or max(first, found.rolled_from) >= min(last, found.rolled_until):
        covered_from = covered_until = first  # nothing covered: all raw
    else:
        covered_from, covered_until = max(first, found.rolled_from), min(last, found.rolled_until)
    bounds = {"covered_from": covered_from, "covered_until": covered_until, "tenant": tenant_id}
    stale = (
        [r.hour for r in conn.execute(text(_STALE_SQL), bounds)]
        if covered_from < covered_until
        else []
    )
    raw = _raw_ranges(since, until, covered_from, covered_until, stale)
    if covered_from < covered_until:
        # the raw rows' tickets that were solo in a rolled hour: that hour is read raw too
        found = {**bounds, "stale": stale, **raw}
        no_more = conn.execute(text(_SOLO_NO_MORE_RAW_SQL), found)
        stale = sorted({*stale, *(r.hour for r in no_more)})
        raw = _raw_ranges(since, until, covered_from, covered_until, stale)
    return {**bounds, "stale": stale, **raw}


def _raw_ranges(
    since: datetime,
    until: datetime,
    covered_from: datetime,
    covered_until: datetime,
    stale: list[datetime],
) -> dict[str, list[datetime]]:
    """Everything of [since, until) that is not a current rolled hour, as window_ctes' raw_from
    and raw_until."""
    raw = _ranges(
        [(since, covered_from), (covered_until, until)]
        + [(max(h, since), min(h + HOUR, until)) for h in stale]
        if covered_from < covered_until
        else [(since, until)]
    )
    return {"raw_from": [a for a, _ in raw], "raw_until": [b for _, b in raw]}


_ROLLED_SOURCE = (
    "FROM enhancement_history WHERE status = ANY('{pending,completed,failed}')"
    " AND created_at >= :a AND created_at < :b"
)
_SOLO_NO_MORE_ROLLED_SQL = f"""
WITH attempts AS (SELECT tenant_id, ticket_id, created_at {_ROLLED_SOURCE})
{_SOLO_NO_MORE}"""
_ROLL_SQL = f"""
WITH {_hour_rollup(_ROLLED_SOURCE)}
INSERT INTO dashboard.run_hours ({COLUMNS}) SELECT {COLUMNS} FROM raw_hours
"""

_UPSERT_STATE_SQL = """
INSERT INTO dashboard.rollup_state (name, rolled_from, rolled_until, refreshed_at)
VALUES (:name, :rolled_from, :rolled_until, now())
ON CONFLICT (name) DO UPDATE SET rolled_from = excluded.rolled_from,
       rolled_until = excluded.rolled_until, refreshed_at = excluded.refreshed_at
"""


@dataclass(frozen=True)
class Refreshed:
    rolled_from: datetime
    rolled_until: datetime
    hours_rolled: int  # hours (re)computed this run, stale ones included


def refresh(now: datetime, days: int = BACKFILL_DAYS, reroll_hours: int = 2) -> Refreshed:
    """Roll the closed hours not rolled yet (back to `days` before now on the first run, or
    further back when asked), the last `reroll_hours` rolled ones again, and the stale ones.
    Each hour is replaced whole (delete, insert) in one transaction: running it again changes
    nothing, and readers see the old hours or the new ones, never a mix."""
    target_until = floor_hour(now - SETTLE)
    with write_scope(admin=True) as conn:
        conn.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(REFRESH_TIMEOUT_MS)},
        )
        found = coverage(conn)
        wanted_from = floor_hour(now - timedelta(days=days))
        if found is None:
            spans = [(wanted_from, target_until)]
            rolled_from = wanted_from
        else:
            rolled_from = min(wanted_from, found.rolled_from)
            resume = min(found.rolled_until - reroll_hours * HOUR, target_until)
            spans = [(rolled_from, found.rolled_from), (max(resume, rolled_from), target_until)]
            params = {
                "covered_from": found.rolled_from,
                "covered_until": found.rolled_until,
                "tenant": None,
            }
            spans += [
                (h, h + HOUR) for h in (r.hour for r in conn.execute(text(_STALE_SQL), params))
            ]
        rolled_until = max(target_until, found.rolled_until if found else target_until)
        spans = _ranges(spans)
        hours = _roll(conn, spans)
        # Rolled hours whose solo tickets have an attempt in the hours just rolled (a retry, a
        # re-run): rolled again, now listing them as linked.
        others = {"covered_from": rolled_from, "covered_until": rolled_until, "tenant": None}
        no_more = {
            r.hour
            for a, b in spans
            for r in conn.execute(
                text(_SOLO_NO_MORE_ROLLED_SQL), {**others, "a": a, "b": b, "stale": []}
            )
        }
        hours += _roll(conn, _ranges([(h, h + HOUR) for h in no_more]))
        conn.execute(
            text(_UPSERT_STATE_SQL),
            {"name": STATE, "rolled_from": rolled_from, "rolled_until": rolled_until},
        )
    return Refreshed(rolled_from, rolled_until, hours)


def _roll(conn: Connection, spans: list[tuple[datetime, datetime]]) -> int:
    """Replace the rollup's hours of `spans` (whole hours) with the platform's rows; returns
    how many hours that was."""
    hours = 0
    for a, b in spans:
        bounds = {"a": a, "b": b}
        conn.execute(text("DELETE FROM dashboard.run_hours WHERE hour >= :a AND hour < :b"), bounds)
        conn.execute(text(_ROLL_SQL), bounds)
        hours += int((b - a) / HOUR)
    return hours


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.rollups", description="Hourly run rollups (for cron)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "refresh",
        help="roll the closed hours not rolled yet, the last two again and those a finished run"
        " made stale (safe to run twice at once: the second skips)",
    )
    run.add_argument(
        "--days",
        type=int,
        default=BACKFILL_DAYS,
        help=f"keep hours back to this many days before now (default {BACKFILL_DAYS})",
    )
    args = parser.parse_args(argv)
    try:
        with job_lock(LOCK) as ours:
            if not ours:
                print("refresh skipped: another run is rolling up")
                return 0
            done = refresh(datetime.now(UTC), args.days)
    except DashboardError as exc:
        print(f"rollups not refreshed: {exc}", file=sys.stderr)
        return 1
    print(
        f"rolled {done.hours_rolled} hour(s); rollups cover {done.rolled_from:%Y-%m-%d %H:%M}"
        f" to {done.rolled_until:%Y-%m-%d %H:%M} UTC"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
