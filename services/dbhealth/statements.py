"""Slow statements: pg_stat_statements, with stored snapshots so two moments can be compared
(deltas between snapshots, or the totals since the last reset), and one statement's trend.

The only writes of the database-health pages are these snapshot tables in schema `dashboard`.
They are taken by cron (`python -m services.dbhealth snapshot`, see __main__.py) and by the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Connection, text

from services.db import read_frame, write_scope
from services.dbhealth.session import DBID, limits, monitor, read, redact_secrets
from services.errors import InvalidInput, SourceUnavailable
from services.formatting import duration

SORTS = {"total": "Total time", "mean": "Mean time", "calls": "Calls", "rows": "Rows"}
# One snapshot at a time, whoever takes it (a page load, a replica, a CronJob run).
SNAPSHOT_LOCK = "dashboard.query_snapshots"


# --- pg_stat_statements: is it there? ------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionStatus:
    preloaded: bool  # in shared_preload_libraries (needs a restart to change)
    installed: bool  # CREATE EXTENSION done in this database

    @property
    def ready(self) -> bool:
        return self.preloaded and self.installed

    def instructions(self) -> str:
        """Markdown: what a DBA does to enable it."""
        steps = []
        if not self.preloaded:
            steps += [
                "Add it to `shared_preload_libraries` in `postgresql.conf` (on a managed database:"
                " the instance's parameter group): `shared_preload_libraries = "
                "'pg_stat_statements'`",
                "Restart PostgreSQL (a reload is not enough).",
            ]
        if not self.installed:
            steps.append(
                "In the platform database, as its owner or a superuser: "
                "`CREATE EXTENSION IF NOT EXISTS pg_stat_statements;`"
            )
        numbered = "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))
        if self.preloaded:
            numbered += "\n\nIt is already in `shared_preload_libraries`: no restart is needed."
        return (
            "**pg_stat_statements is not enabled in this database**, so slow statements cannot"
            f" be listed. To enable it:\n\n{numbered}\n\nThe dashboard's admin role already"
            " reads it through `pg_monitor` (`schema/grants.sql`). The *Connections* and"
            " *Tables and indexes* tabs work without it."
        )


_STATUS_SQL = """
SELECT 'pg_stat_statements' = ANY(string_to_array(
           replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed
"""


def _status(conn: Connection) -> ExtensionStatus:
    """Inside monitor(): shared_preload_libraries needs pg_read_all_settings."""
    row = conn.execute(text(_STATUS_SQL)).one()
    return ExtensionStatus(preloaded=row.preloaded, installed=row.installed)


def extension_status() -> ExtensionStatus:
    with read() as conn, monitor(conn):
        return _status(conn)


# --- snapshots -----------------------------------------------------------------------------------

_LIVE_STATS_SQL = f"""
SELECT s.queryid, sum(s.calls) AS calls, sum(s.total_exec_time) AS total_exec_ms,
       max(s.max_exec_time) AS max_exec_ms, sum(s.rows) AS rows,
       sum(s.shared_blks_hit) AS shared_blks_hit, sum(s.shared_blks_read) AS shared_blks_read,
       string_agg(DISTINCT coalesce(r.rolname, s.userid::text), ', ') AS roles
  FROM pg_stat_statements(false) s
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.dbid = {DBID} AND s.toplevel AND s.queryid IS NOT NULL
 GROUP BY s.queryid
"""
_LIVE_TEXTS_SQL = f"""
SELECT DISTINCT ON (queryid) queryid, query
  FROM pg_stat_statements
 WHERE dbid = {DBID} AND toplevel AND queryid = ANY(CAST(:ids AS bigint[]))
"""


def _insert_snapshot(conn: Connection, source: str) -> int:
    """Copy this database's top-level counters into a new snapshot (in the caller's transaction)."""
    known = set(
        conn.execute(
            text(f"SELECT queryid FROM dashboard.query_texts WHERE dbid = {DBID}")
        ).scalars()
    )
    with monitor(conn):
        status = _status(conn)
        if not status.ready:
            raise SourceUnavailable("pg_stat_statements", "it is not enabled in this database")
        stats = [dict(row._mapping) for row in conn.execute(text(_LIVE_STATS_SQL))]
        missing = [row["queryid"] for row in stats if row["queryid"] not in known]
        texts = (
            [
                {"queryid": r.queryid, "query": redact_secrets(r.query)}
                for r in conn.execute(text(_LIVE_TEXTS_SQL), {"ids": missing})
            ]
            if missing
            else []
        )
        reset = conn.execute(text("SELECT stats_reset FROM pg_stat_statements_info")).scalar()
    snapshot_id = conn.execute(
        text(
            "INSERT INTO dashboard.query_snapshots (dbid, stats_reset, source)"
            f" VALUES ({DBID}, :reset, :source) RETURNING id"
        ),
        {"reset": reset, "source": source},
    ).scalar_one()
    if texts:
        conn.execute(
            text(
                "INSERT INTO dashboard.query_texts (dbid, queryid, query)"
                f" VALUES ({DBID}, :queryid, :query) ON CONFLICT DO NOTHING"
            ),
            texts,
        )
    if stats:
        conn.execute(
            text(
                "INSERT INTO dashboard.query_snapshot_stats (snapshot_id, queryid, calls,"
                " total_exec_ms, max_exec_ms, rows, shared_blks_hit, shared_blks_read, roles)"
                " VALUES (:snapshot_id, :queryid, :calls, :total_exec_ms, :max_exec_ms, :rows,"
                " :shared_blks_hit, :shared_blks_read, :roles)"
            ),
            [{**row, "snapshot_id": snapshot_id} for row in stats],
        )
    return snapshot_id


def take_snapshot(source: str = "cron") -> int:
    with write_scope(admin=True) as conn:
        limits(conn, read_only=False)
        return _insert_snapshot(conn, source)


def snapshot_if_stale(max_age_minutes: float, source: str = "page") -> int | None:
    """Take a snapshot when the newest one is older than max_age_minutes; None if not needed."""
    with write_scope(admin=True) as conn:
        limits(conn, read_only=False)
        # One page load at a time: another one waiting here would only take a duplicate.
        locked = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:job))"), {"job": SNAPSHOT_LOCK}
        ).scalar_one()
        if not locked:
            return None
        stale = conn.execute(
            text(
                "SELECT coalesce(max(taken_at) < now() - make_interval(secs => :age_s), true)"
                f" FROM dashboard.query_snapshots WHERE dbid = {DBID}"
            ),
            {"age_s": max_age_minutes * 60},
        ).scalar_one()
        return _insert_snapshot(conn, source) if stale else None


def prune_snapshots(keep_days: float) -> int:
    """Delete snapshots older than keep_days (and texts no snapshot refers to any more)."""
    with write_scope(admin=True) as conn:
        limits(conn, read_only=False)
        deleted = conn.execute(
            text(
                "DELETE FROM dashboard.query_snapshots"
                " WHERE taken_at < now() - make_interval(secs => :keep_s)"
            ),
            {"keep_s": keep_days * 86400},
        ).rowcount
        conn.execute(
            text(
                "DELETE FROM dashboard.query_texts t WHERE NOT EXISTS ("
                " SELECT 1 FROM dashboard.query_snapshot_stats st"
                " JOIN dashboard.query_snapshots s ON s.id = st.snapshot_id"
                " WHERE st.queryid = t.queryid AND s.dbid = t.dbid)"
            )
        )
    return deleted


def snapshots(since: datetime) -> pd.DataFrame:
    """Snapshots of this database from `since` on, plus the last one before (the baseline)."""
    with read() as conn:
        return read_frame(
            conn,
            f"""
            SELECT id, taken_at, source, stats_reset
              FROM dashboard.query_snapshots
             WHERE dbid = {DBID}
               AND (taken_at >= :since
                    OR id = (SELECT id FROM dashboard.query_snapshots
                              WHERE dbid = {DBID} AND taken_at < :since
                              ORDER BY taken_at DESC LIMIT 1))
             ORDER BY taken_at
            """,
            {"since": since},
        )


# Counters that went down between two snapshots were reset (or the statement was evicted and
# came back): then the later value is all that happened since, so it is the delta.
_TOP_SQL = """
WITH d AS (
    SELECT b.queryid, b.roles, b.max_exec_ms,
           coalesce(a.calls > b.calls, false) AS reset_between,
           b.calls - CASE WHEN k.continued THEN a.calls ELSE 0 END AS calls,
           b.total_exec_ms - CASE WHEN k.continued THEN a.total_exec_ms ELSE 0 END AS total_ms,
           b.rows - CASE WHEN k.continued THEN a.rows ELSE 0 END AS rows,
           b.shared_blks_hit - CASE WHEN k.continued THEN a.shared_blks_hit ELSE 0 END AS hit,
           b.shared_blks_read - CASE WHEN k.continued THEN a.shared_blks_read ELSE 0 END AS read
      FROM dashboard.query_snapshot_stats b
      LEFT JOIN dashboard.query_snapshot_stats a
             ON a.snapshot_id = :from_id AND a.queryid = b.queryid
     CROSS JOIN LATERAL (SELECT coalesce(a.calls <= b.calls, false) AS continued) k
     WHERE b.snapshot_id = :to_id
       AND NOT string_to_array(b.roles, ', ') <@ CAST(:exclude_roles AS text[])
), ranked AS (
    SELECT d.*,
           d.total_ms / nullif(d.calls, 0) AS mean_ms,
           d.total_ms / nullif(sum(d.total_ms) OVER (), 0) AS share,
           d.hit::float8 / nullif(d.hit + d.read, 0) AS cache_hit_ratio,
           sum(d.total_ms) OVER () AS all_total_ms,
           sum(d.calls) OVER () AS all_calls,
           count(*) OVER () AS all_statements
      FROM d
     WHERE d.calls > 0
)
SELECT r.queryid, coalesce(t.query, '(text not captured)') AS query, r.calls, r.total_ms,
       r.mean_ms, r.rows, r.rows::float8 / r.calls AS rows_per_call, r.share,
       r.cache_hit_ratio, r.max_exec_ms, r.reset_between, r.roles,
       r.all_total_ms, r.all_calls, r.all_statements
  FROM ranked r
  LEFT JOIN dashboard.query_texts t
         ON t.queryid = r.queryid
        AND t.dbid = (SELECT dbid FROM dashboard.query_snapshots WHERE id = :to_id)
 ORDER BY CASE :sort WHEN 'total' THEN r.total_ms
                     WHEN 'mean' THEN r.mean_ms
                     WHEN 'calls' THEN r.calls::float8
                     WHEN 'rows' THEN r.rows::float8 END DESC NULLS LAST,
          r.total_ms DESC
 LIMIT :limit
"""


def top_statements(
    to_id: int,
    from_id: int | None,
    sort: str = "total",
    limit: int = 25,
    exclude_roles: Sequence[str] = (),
) -> pd.DataFrame:
    """Statements ranked by `sort`, as deltas between two snapshots (from_id None: the totals
    since the last reset, as of to_id), leaving out statements run only by exclude_roles.
    `share` is of all the time counted in that window; the all_* columns carry its totals."""
    if sort not in SORTS:
        raise InvalidInput(f"Sort by one of: {', '.join(SORTS.values())}.")
    params = {
        "to_id": to_id,
        "from_id": from_id,
        "sort": sort,
        "limit": limit,
        "exclude_roles": list(exclude_roles),
    }
    with read() as conn:
        top = read_frame(conn, _TOP_SQL, params)
    # Texts stored before redaction existed (migration 005 cleans them too).
    top["query"] = top["query"].map(redact_secrets)
    return top


def statement_history(queryid: int, since: datetime, until: datetime) -> pd.DataFrame:
    """One statement between consecutive snapshots: calls, total and mean time per interval."""
    with read() as conn:
        return read_frame(
            conn,
            f"""
            WITH series AS (
                SELECT s.taken_at,
                       coalesce(st.calls, 0) AS calls,
                       coalesce(st.total_exec_ms, 0) AS total_ms,
                       coalesce(st.rows, 0) AS rows,
                       lag(coalesce(st.calls, 0)) OVER w AS prev_calls,
                       lag(coalesce(st.total_exec_ms, 0)) OVER w AS prev_total_ms,
                       lag(coalesce(st.rows, 0)) OVER w AS prev_rows
                  FROM dashboard.query_snapshots s
                  LEFT JOIN dashboard.query_snapshot_stats st
                         ON st.snapshot_id = s.id AND st.queryid = :queryid
                 WHERE s.dbid = {DBID} AND s.taken_at <= :until
                WINDOW w AS (ORDER BY s.taken_at)
            ), intervals AS (
                SELECT taken_at,
                       calls - CASE WHEN prev_calls <= calls THEN prev_calls ELSE 0 END AS calls,
                       total_ms - CASE WHEN prev_calls <= calls THEN prev_total_ms ELSE 0 END
                           AS total_ms,
                       rows - CASE WHEN prev_calls <= calls THEN prev_rows ELSE 0 END AS rows
                  FROM series
                 WHERE prev_calls IS NOT NULL AND taken_at > :since
            )
            SELECT taken_at, calls, total_ms, total_ms / nullif(calls, 0) AS mean_ms, rows
              FROM intervals ORDER BY taken_at
            """,
            {"queryid": queryid, "since": since, "until": until},
        )


# --- what the page shows -------------------------------------------------------------------------


def one_line(queries: pd.Series, width: int = 160) -> pd.Series:
    """Each statement on one line, cut to `width` characters."""
    flat = queries.str.replace(r"\s+", " ", regex=True).str.strip()
    return flat.where(flat.str.len() <= width, flat.str.slice(0, width - 1) + "…")


def snapshot_labels(shots: pd.DataFrame) -> dict[int, str]:
    """Snapshot id -> label. The id keeps labels unique: Streamlit identifies a selectbox choice
    by its label, so two snapshots taken in the same second would collapse into one."""
    return {
        row["id"]: f"#{row['id']} · {row['taken_at']:%b %d %H:%M:%S} UTC ({row['source']})"
        for _, row in shots.iterrows()
    }


def snapshots_note(
    shots: pd.DataFrame, range_label: str, max_age_minutes: float, now: datetime | None = None
) -> str:
    """How many snapshots the range holds, how old the newest is and who takes them."""
    age_s = ((now or datetime.now(UTC)) - shots.iloc[-1]["taken_at"]).total_seconds()
    return (
        f"{len(shots)} snapshots in the {range_label} (sidebar); the newest is"
        f" {duration(age_s)} old. They are taken by cron (`python -m services.dbhealth"
        f" snapshot`) and by this page when the newest is older than"
        f" {max_age_minutes} min. Only this database's top-level statements count."
    )


def window_problem(shots: pd.DataFrame, from_id: int | None, to_id: int) -> str | None:
    """Why the picked snapshots make no window; None when they do (from_id None: since reset)."""
    taken = shots.set_index("id")["taken_at"]
    if from_id is not None and taken[from_id] >= taken[to_id]:
        return "Pick a *From* snapshot that is older than *To*."
    return None


@dataclass(frozen=True)
class WindowSummary:
    time: str  # in all statements of the window
    calls: str
    statements: str
    length: str  # of the window, or "since reset"
    reset: bool  # pg_stat_statements was reset in the window
    until: datetime  # when the To snapshot was taken

    def tiles(self) -> list[tuple[str, str]]:
        """(label, value) of the page's tiles."""
        return [
            ("Time in statements", self.time),
            ("Calls", self.calls),
            ("Statements", self.statements),
            ("Window", self.length),
        ]


def window_summary(
    top: pd.DataFrame, shots: pd.DataFrame, to_id: int, from_id: int | None
) -> WindowSummary:
    """The window's totals, from top_statements()'s all_* columns (top is not empty)."""
    taken = shots.set_index("id")
    first = top.iloc[0]
    until = taken.loc[to_id, "taken_at"]
    resets = taken.loc[[to_id] if from_id is None else [from_id, to_id], "stats_reset"]
    return WindowSummary(
        time=duration(first["all_total_ms"] / 1000),
        calls=f"{int(first['all_calls']):,}",
        statements=f"{int(first['all_statements']):,}",
        length="since reset"
        if from_id is None
        else duration((until - taken.loc[from_id, "taken_at"]).total_seconds()),
        reset=bool(top["reset_between"].any() or resets.nunique() > 1),
        until=until,
    )


def statements_table(top: pd.DataFrame, window: bool) -> pd.DataFrame:
    """top_statements() as the page shows it; window: between two snapshots, not since reset."""
    table = pd.DataFrame(
        {
            "Statement": one_line(top["query"]),
            "Share of time": top["share"],
            "Total (s)": top["total_ms"] / 1000,
            "Mean (ms)": top["mean_ms"],
            "Calls": top["calls"],
            "Rows": top["rows"],
            "Rows / call": top["rows_per_call"],
            "Cache hit": top["cache_hit_ratio"],
            "Max (ms)": top["max_exec_ms"],
            "Run by": top["roles"],
        }
    )
    # A maximum since the reset says nothing about a window.
    return table.drop(columns="Max (ms)") if window else table


def statement_heading(row: pd.Series) -> str:
    """Markdown over one statement of top_statements(): who runs it, how long it takes."""
    return f"**Selected statement** · run by {row['roles']} · {row['mean_ms']:,.1f} ms on average"
