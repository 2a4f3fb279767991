"""Database health, read-only: slow statements (pg_stat_statements, with stored snapshots so two
moments can be compared), connections (pg_stat_activity) and tables/indexes (pg_stat_user_*).

Everything runs as the admin role in a READ ONLY transaction with a short statement timeout.
The role is NOINHERIT, so the statistics reads assume pg_monitor for their transaction only
(SET LOCAL ROLE). The only writes are the snapshot tables in schema `dashboard`. No platform
statement is ever run: EXPLAIN (never ANALYZE) plans a pasted SELECT without executing it.
pg_stat_statements counts for the whole cluster; every read keeps the current database only.

Cron, e.g. every 15 minutes:  cd /app && python -m services.dbhealth snapshot
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Visitor
from sqlalchemy import Connection, text
from sqlalchemy.exc import ProgrammingError

from services.config import rules
from services.db import admin_scope, job_lock, read_frame, write_scope
from services.errors import DashboardError, InvalidInput, QueryTimeout, SourceUnavailable

# pg_stat_statements keys its counters by database oid.
_DBID = "(SELECT oid FROM pg_database WHERE datname = current_database())"
SORTS = {"total": "Total time", "mean": "Mean time", "calls": "Calls", "rows": "Rows"}
# One snapshot at a time, whoever takes it (a page load, a replica, a CronJob run).
SNAPSHOT_LOCK = "dashboard.query_snapshots"


def _limits(conn: Connection, timeout_ms: int | None = None, read_only: bool = True) -> None:
    ms = timeout_ms or rules("db_health")["statement_timeout_ms"]
    conn.execute(
        text(
            "SELECT set_config('statement_timeout', :ms, true),"
            " set_config('transaction_read_only', :ro, true)"
        ),
        {"ms": str(int(ms)), "ro": "on" if read_only else "off"},
    )


@contextmanager
def _read() -> Iterator[Connection]:
    """The admin role, read-only, with the health statement timeout (the dashboard's tables)."""
    with admin_scope() as conn:
        _limits(conn)
        yield conn


@contextmanager
def _monitor(conn: Connection) -> Iterator[Connection]:
    """Assume pg_monitor inside this transaction: every user's statistics and query texts."""
    try:
        conn.execute(text("SET LOCAL ROLE pg_monitor"))
    except ProgrammingError as exc:  # the DBA has not run schema/grants.sql's GRANT pg_monitor
        raise SourceUnavailable(
            "PostgreSQL statistics", "the dashboard_admin role is not a member of pg_monitor"
        ) from exc
    yield conn
    conn.execute(text("SET LOCAL ROLE NONE"))


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
    """Inside _monitor: shared_preload_libraries needs pg_read_all_settings."""
    row = conn.execute(text(_STATUS_SQL)).one()
    return ExtensionStatus(preloaded=row.preloaded, installed=row.installed)


def extension_status() -> ExtensionStatus:
    with _read() as conn, _monitor(conn):
        return _status(conn)


# --- snapshots -----------------------------------------------------------------------------------

_LIVE_STATS_SQL = f"""
SELECT s.queryid, sum(s.calls) AS calls, sum(s.total_exec_time) AS total_exec_ms,
       max(s.max_exec_time) AS max_exec_ms, sum(s.rows) AS rows,
       sum(s.shared_blks_hit) AS shared_blks_hit, sum(s.shared_blks_read) AS shared_blks_read,
       string_agg(DISTINCT coalesce(r.rolname, s.userid::text), ', ') AS roles
  FROM pg_stat_statements(false) s
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.dbid = {_DBID} AND s.toplevel AND s.queryid IS NOT NULL
 GROUP BY s.queryid
"""
_LIVE_TEXTS_SQL = f"""
SELECT DISTINCT ON (queryid) queryid, query
  FROM pg_stat_statements
 WHERE dbid = {_DBID} AND toplevel AND queryid = ANY(CAST(:ids AS bigint[]))
"""


# A password literal in a statement text (CREATE/ALTER ROLE/USER ... PASSWORD '...', in any of
# PostgreSQL's quoting forms, cut short or not) and a password=... in a connection string.
_PASSWORD_LITERAL = re.compile(
    r"(\bpassword\s+)(?:[eE]'(?:[^'\\]|\\.|'')*(?:'|$)|'(?:[^']|'')*(?:'|$)|(\$\w*\$)(?:.*?\2|.*$))",
    re.IGNORECASE | re.DOTALL,
)
_PASSWORD_SETTING = re.compile(r"(\bpassword\s*=\s*)[^\s']+", re.IGNORECASE)
REDACTED = "<redacted>"


def redact_secrets(query: str) -> str:
    """The statement text with every password literal replaced by '<redacted>'."""
    query = _PASSWORD_LITERAL.sub(rf"\1'{REDACTED}'", query)
    return _PASSWORD_SETTING.sub(rf"\1{REDACTED}", query)


def _insert_snapshot(conn: Connection, source: str) -> int:
    """Copy this database's top-level counters into a new snapshot (in the caller's transaction)."""
    known = set(
        conn.execute(
            text(f"SELECT queryid FROM dashboard.query_texts WHERE dbid = {_DBID}")
        ).scalars()
    )
    with _monitor(conn):
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
            f" VALUES ({_DBID}, :reset, :source) RETURNING id"
        ),
        {"reset": reset, "source": source},
    ).scalar_one()
    if texts:
        conn.execute(
            text(
                "INSERT INTO dashboard.query_texts (dbid, queryid, query)"
                f" VALUES ({_DBID}, :queryid, :query) ON CONFLICT DO NOTHING"
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
        _limits(conn, read_only=False)
        return _insert_snapshot(conn, source)


def snapshot_if_stale(max_age_minutes: float, source: str = "page") -> int | None:
    """Take a snapshot when the newest one is older than max_age_minutes; None if not needed."""
    with write_scope(admin=True) as conn:
        _limits(conn, read_only=False)
        # One page load at a time: another one waiting here would only take a duplicate.
        locked = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:job))"), {"job": SNAPSHOT_LOCK}
        ).scalar_one()
        if not locked:
            return None
        stale = conn.execute(
            text(
                "SELECT coalesce(max(taken_at) < now() - make_interval(secs => :age_s), true)"
                f" FROM dashboard.query_snapshots WHERE dbid = {_DBID}"
            ),
            {"age_s": max_age_minutes * 60},
        ).scalar_one()
        return _insert_snapshot(conn, source) if stale else None


def prune_snapshots(keep_days: float) -> int:
    """Delete snapshots older than keep_days (and texts no snapshot refers to any more)."""
    with write_scope(admin=True) as conn:
        _limits(conn, read_only=False)
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
    with _read() as conn:
        return read_frame(
            conn,
            f"""
            SELECT id, taken_at, source, stats_reset
              FROM dashboard.query_snapshots
             WHERE dbid = {_DBID}
               AND (taken_at >= :since
                    OR id = (SELECT id FROM dashboard.query_snapshots
                              WHERE dbid = {_DBID} AND taken_at < :since
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
    with _read() as conn:
        top = read_frame(conn, _TOP_SQL, params)
    # Texts stored before redaction existed (migration 005 cleans them too).
    top["query"] = top["query"].map(redact_secrets)
    return top


def statement_history(queryid: int, since: datetime, until: datetime) -> pd.DataFrame:
    """One statement between consecutive snapshots: calls, total and mean time per interval."""
    with _read() as conn:
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
                 WHERE s.dbid = {_DBID} AND s.taken_at <= :until
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


# --- EXPLAIN -------------------------------------------------------------------------------------

MAX_EXPLAIN_CHARS = 20000
_WRITES = {
    ast.InsertStmt: "INSERT",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.MergeStmt: "MERGE",
}


class _Refusals(Visitor):
    """What, anywhere in a parsed SELECT, makes it more than a plain read."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()
        self.placeholders = False

    def visit(self, ancestors: object, node: ast.Node) -> None:
        if type(node) in _WRITES:  # a data-modifying WITH
            self.found.add(_WRITES[type(node)])
        elif isinstance(node, ast.SelectStmt):
            if node.intoClause:
                self.found.add("INTO")
            if node.lockingClause:
                self.found.add("FOR UPDATE/SHARE")
        elif isinstance(node, ast.ParamRef):
            self.placeholders = True


def check_explainable(statement: str) -> str:
    """The statement if PostgreSQL's own parser (pglast) reads it as exactly one plain SELECT
    (or VALUES, or a set operation of them) with concrete values: no INTO, no FOR UPDATE/SHARE,
    no data-modifying WITH. InvalidInput otherwise. Functions it calls are not judged: EXPLAIN
    does not run the statement, and the read-only transaction and timeout stay the guarantee."""
    sql = statement.strip()
    if not sql:
        raise InvalidInput("Paste a SELECT statement to explain.")
    if len(sql) > MAX_EXPLAIN_CHARS:
        raise InvalidInput(f"That statement is longer than {MAX_EXPLAIN_CHARS:,} characters.")
    try:
        parsed = parse_sql(sql)
    except ParseError as exc:
        raise InvalidInput(f"That is not valid SQL: {exc.args[0]}.") from exc
    if not parsed:  # only comments
        raise InvalidInput("Paste a SELECT statement to explain.")
    if len(parsed) != 1:
        raise InvalidInput("Only one statement can be explained: remove everything after ';'.")
    if not isinstance(parsed[0].stmt, ast.SelectStmt):
        raise InvalidInput(
            "Only a SELECT statement can be explained. Paste the statement alone: EXPLAIN is"
            " added for you, and EXPLAIN ANALYZE (which runs the statement) is never used."
        )
    refusals = _Refusals()
    refusals(parsed[0])
    if refusals.found:
        raise InvalidInput(
            "Only a plain SELECT can be explained; this one contains"
            f" {', '.join(sorted(refusals.found))}."
        )
    if refusals.placeholders:
        raise InvalidInput(
            "Replace the placeholders ($1, $2, …) with concrete values: pg_stat_statements shows"
            " statements with their values taken out, and a plan depends on them."
        )
    # Exactly the statement that was checked (locations count UTF-8 bytes): no trailing ';'.
    raw = sql.encode()
    start, length = parsed[0].stmt_location, parsed[0].stmt_len
    return raw[start : start + length if length else len(raw)].decode()


def explain(statement: str, timeout_ms: int | None = None) -> str:
    """The planner's plan for one SELECT: EXPLAIN without ANALYZE, so nothing is executed, in a
    READ ONLY transaction with a short timeout, as the admin role (its grants and RLS apply)."""
    sql = check_explainable(statement)
    with admin_scope() as conn:
        _limits(conn, timeout_ms or rules("db_health")["explain_timeout_ms"])
        # The server must read string literals as the checker did (E'' and '' alike).
        conn.execute(text("SELECT set_config('standard_conforming_strings', 'on', true)"))
        cursor = conn.connection.driver_connection.cursor()
        try:
            # The extended protocol (binary results) holds exactly one command: the server
            # refuses a second one. Unnamed, so nothing is left on a pooled server connection.
            cursor.execute(f"EXPLAIN {sql}".encode(), binary=True)
            return "\n".join(row[0] for row in cursor.fetchall())
        except psycopg.errors.QueryCanceled as exc:
            raise QueryTimeout() from exc
        except psycopg.Error as exc:
            reason = exc.diag.message_primary or str(exc).splitlines()[0]
            raise InvalidInput(f"PostgreSQL could not plan that statement: {reason}") from exc


# --- connections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connections:
    max_connections: int
    reserved: int  # superuser_reserved_connections: not usable by the platform
    by_source: pd.DataFrame  # database, user, application, active, idle, ..., platform

    def count(self, column: str, platform_only: bool = False) -> int:
        frame = self.by_source[self.by_source["platform"]] if platform_only else self.by_source
        return int(frame[column].sum())


_BY_SOURCE_SQL = """
SELECT datname AS database, usename AS "user",
       coalesce(nullif(application_name, ''), '(not set)') AS application,
       count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
       count(*) FILTER (WHERE state IS NULL OR (state NOT IN ('active', 'idle')
                          AND state NOT LIKE 'idle in transaction%')) AS other,
       count(*) AS total,
       usename = ANY(CAST(:platform_users AS text[])) AS platform
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY 1, 2, 3
 ORDER BY total DESC, 1, 2, 3
"""


def connections(platform_users: Sequence[str]) -> Connections:
    """Client connections of the whole server (max_connections is per server) by source."""
    with _read() as conn, _monitor(conn):
        limits = conn.execute(
            text(
                "SELECT current_setting('max_connections')::int AS max_connections,"
                " current_setting('superuser_reserved_connections')::int AS reserved"
            )
        ).one()
        frame = read_frame(conn, _BY_SOURCE_SQL, {"platform_users": list(platform_users)})
    return Connections(limits.max_connections, limits.reserved, frame)


@dataclass(frozen=True)
class Usage:
    label: str
    used: int
    limit: int
    warn_share: float
    advice: str

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    @property
    def warn(self) -> bool:
        return self.share >= self.warn_share


def connection_usage(
    conns: Connections, pool_size_per_pod: int, pods: int, warn_share: float
) -> list[Usage]:
    """The three shares the procedures' "connection pool exhaustion" is about."""
    capacity = pool_size_per_pod * pods
    return [
        Usage(
            "Server connections in use",
            conns.count("total"),
            conns.max_connections,
            warn_share,
            "Near max_connections new connections are refused: find the idle"
            " and idle-in-transaction sources below before raising max_connections.",
        ),
        Usage(
            "Platform pools in use",
            conns.count("total", platform_only=True),
            capacity,
            warn_share,
            f"The platform's pools ({pool_size_per_pod} per pod × {pods} pods)"
            " are nearly exhausted: look for long-running queries and transactions, then"
            " consider a bigger pool (procedures: Database Performance Tuning, option 2).",
        ),
        Usage(
            "Pool capacity vs max_connections",
            capacity,
            conns.max_connections,
            warn_share,
            "Full pools alone would take this share of max_connections: raise"
            " max_connections or lower the pool size before adding pods.",
        ),
    ]


@dataclass(frozen=True)
class Replication:
    standby: bool  # the server the dashboard reads from is a hot standby
    streams: pd.DataFrame  # standby, state, lag_seconds, behind_bytes; empty: no replication


# On a standby: its own replay lag (0 once everything received is replayed: the timestamp of the
# last replayed transaction alone would grow while the primary is idle).
_STANDBY_SQL = """
SELECT 'this server' AS standby, coalesce((SELECT status FROM pg_stat_wal_receiver),
                                          'not streaming') AS state,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag_seconds,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS behind_bytes
"""
_PRIMARY_SQL = """
SELECT coalesce(nullif(application_name, ''), host(client_addr), '(unnamed)') AS standby, state,
       CASE WHEN replay_lsn = pg_current_wal_lsn() THEN 0
            ELSE extract(epoch FROM replay_lag) END AS lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS behind_bytes
  FROM pg_stat_replication
 ORDER BY 1
"""


def replication() -> Replication:
    """Replication seen from the server the dashboard reads: a standby's own lag, or the
    primary's standbys (pg_stat_replication)."""
    with _read() as conn, _monitor(conn):
        standby = conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
        return Replication(standby, read_frame(conn, _STANDBY_SQL if standby else _PRIMARY_SQL))


def long_running(min_seconds: float) -> pd.DataFrame:
    """Queries running, and transactions open, for longer than min_seconds (whole server)."""
    with _read() as conn, _monitor(conn):
        frame = read_frame(
            conn,
            """
            SELECT pid, datname AS database, usename AS "user",
                   coalesce(nullif(application_name, ''), '(not set)') AS application, state,
                   CASE WHEN state = 'active'
                        THEN extract(epoch FROM now() - query_start) END AS query_seconds,
                   extract(epoch FROM now() - xact_start) AS transaction_seconds,
                   concat_ws(': ', wait_event_type, wait_event) AS waiting_on,
                   left(query, 500) AS query
              FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
               AND ((state = 'active'
                     AND query_start < now() - make_interval(secs => :min_s))
                    OR xact_start < now() - make_interval(secs => :min_s))
             ORDER BY coalesce(xact_start, query_start)
            """,
            {"min_s": min_seconds},
        )
    frame["query"] = frame["query"].map(redact_secrets, na_action="ignore")
    return frame


# --- tables and indexes --------------------------------------------------------------------------


def tables(dead_ratio_warning: float, dead_rows_min: int) -> pd.DataFrame:
    """Every user table of this database: sizes, scans, dead tuples and (auto)vacuum times."""
    with _read() as conn, _monitor(conn):
        return read_frame(
            conn,
            """
            SELECT schemaname AS schema, relname AS "table",
                   pg_total_relation_size(relid) AS total_bytes,
                   pg_table_size(relid) AS table_bytes,
                   pg_indexes_size(relid) AS index_bytes,
                   n_live_tup AS live_rows, n_dead_tup AS dead_rows,
                   n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) AS dead_ratio,
                   n_dead_tup >= :dead_min
                       AND n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) >= :ratio
                       AS needs_vacuum,
                   seq_scan, idx_scan, last_vacuum, last_autovacuum,
                   greatest(last_vacuum, last_autovacuum) AS last_any_vacuum,
                   greatest(last_analyze, last_autoanalyze) AS last_any_analyze
              FROM pg_stat_user_tables
             ORDER BY total_bytes DESC, schema, "table"
            """,
            {"ratio": dead_ratio_warning, "dead_min": dead_rows_min},
        )


def index_candidates(min_rows: int, seq_share_flag: float) -> pd.DataFrame:
    """Large tables read mostly by sequential scans: where an index may be missing."""
    with _read() as conn, _monitor(conn):
        return read_frame(
            conn,
            """
            SELECT schemaname AS schema, relname AS "table", n_live_tup AS live_rows,
                   seq_scan, coalesce(idx_scan, 0) AS idx_scan,
                   seq_scan::float8 / nullif(seq_scan + coalesce(idx_scan, 0), 0) AS seq_share,
                   seq_tup_read, seq_tup_read / nullif(seq_scan, 0) AS rows_per_seq_scan,
                   pg_table_size(relid) AS table_bytes
              FROM pg_stat_user_tables
             WHERE n_live_tup >= :min_rows AND seq_scan > 0
               AND seq_scan::float8 / (seq_scan + coalesce(idx_scan, 0)) > :flag
             ORDER BY seq_tup_read DESC
            """,
            {"min_rows": min_rows, "flag": seq_share_flag},
        )


def indexes() -> pd.DataFrame:
    """Every index of this database with its size and scans. `unused`: never scanned since the
    statistics were reset and not needed for a constraint (primary key, unique, exclusion)."""
    with _read() as conn, _monitor(conn):
        return read_frame(
            conn,
            """
            SELECT s.schemaname AS schema, s.relname AS "table", s.indexrelname AS index,
                   pg_relation_size(s.indexrelid) AS index_bytes, s.idx_scan,
                   i.indisunique AS is_unique,
                   s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                        WHERE c.conindid = s.indexrelid) AS unused,
                   pg_get_indexdef(s.indexrelid) AS definition,
                   (SELECT stats_reset FROM pg_stat_database
                     WHERE datname = current_database()) AS counted_since
              FROM pg_stat_user_indexes s
              JOIN pg_index i ON i.indexrelid = s.indexrelid
             ORDER BY index_bytes DESC, schema, "table", index
            """,
        )


def duplicate_indexes() -> pd.DataFrame:
    """B-tree indexes whose columns are the leading columns of another index on the same table
    (same operator classes, no expressions or predicates): the other index serves their
    queries. A unique index is never reported (it enforces something)."""
    with _read() as conn, _monitor(conn):
        return read_frame(
            conn,
            """
            SELECT n.nspname AS schema, t.relname AS "table", ia.relname AS index,
                   pg_relation_size(a.indexrelid) AS index_bytes,
                   string_agg(ib.relname, ', ' ORDER BY ib.relname) AS covered_by,
                   pg_get_indexdef(a.indexrelid) AS definition
              FROM pg_index a
              JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
              JOIN pg_class ia ON ia.oid = a.indexrelid
              JOIN pg_class ib ON ib.oid = b.indexrelid
              JOIN pg_class t ON t.oid = a.indrelid
              JOIN pg_namespace n ON n.oid = t.relnamespace
              JOIN pg_am am ON am.oid = ia.relam
             WHERE am.amname = 'btree' AND ib.relam = ia.relam
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%'
               AND NOT a.indisunique
               AND a.indexprs IS NULL AND b.indexprs IS NULL
               AND a.indpred IS NULL AND b.indpred IS NULL
               AND (b.indkey::text = a.indkey::text OR b.indkey::text LIKE a.indkey::text || ' %')
               AND (b.indclass::text = a.indclass::text
                    OR b.indclass::text LIKE a.indclass::text || ' %')
               -- two identical non-unique indexes: report one of them, not both
               AND NOT (b.indkey::text = a.indkey::text AND NOT b.indisunique
                        AND a.indexrelid < b.indexrelid)
             GROUP BY n.nspname, t.relname, ia.relname, a.indexrelid
             ORDER BY index_bytes DESC, schema, "table", index
            """,
        )


# --- the cron command ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.dbhealth", description="Database health snapshots (for cron)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "snapshot",
        help="store a pg_stat_statements snapshot and delete those older than"
        " [db_health] snapshot_keep_days",
    )
    parser.parse_args(argv)
    try:
        with job_lock(SNAPSHOT_LOCK) as ours:
            if not ours:
                print("snapshot skipped: another run is taking one")
                return 0
            snapshot_id = take_snapshot("cron")
            deleted = prune_snapshots(rules("db_health")["snapshot_keep_days"])
    except DashboardError as exc:
        print(f"snapshot not taken: {exc}", file=sys.stderr)
        return 1
    print(f"snapshot {snapshot_id} taken; {deleted} old snapshot(s) deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
