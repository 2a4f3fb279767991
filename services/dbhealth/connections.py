"""Connections, seen the way connection-pool exhaustion is: client connections by source
against max_connections and the platform's pools, replication, and what runs (or holds a
transaction open) for long (pg_stat_activity, whole server)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import text

from services.db import read_frame
from services.dbhealth.session import monitor, read, redact_secrets
from services.formatting import duration


@dataclass(frozen=True)
class Connections:
    max_connections: int
    reserved: int  # superuser_reserved_connections: not usable by the platform
    by_source: pd.DataFrame  # database, user, application, active, idle, ..., platform

    def count(self, column: str, platform_only: bool = False) -> int:
        frame = self.by_source[self.by_source["platform"]] if platform_only else self.by_source
        return int(frame[column].sum())

    def states(self) -> list[tuple[str, int]]:
        """(label, count) of the connections by state."""
        return [
            ("Active", self.count("active")),
            ("Idle", self.count("idle")),
            ("Idle in transaction", self.count("idle_in_transaction")),
        ]


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
    with read() as conn, monitor(conn):
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
    title: str  # the tile's
    unit: str  # what `limit` counts

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    @property
    def warn(self) -> bool:
        return self.share >= self.warn_share

    @property
    def percent(self) -> str:
        return f"{self.share:.0%}"

    @property
    def detail(self) -> str:
        return f"{self.used} of {self.limit} {self.unit}"

    @property
    def warning(self) -> str:
        """Markdown: the share, its threshold and what to do."""
        return (
            f"**{self.label}: {self.percent}** ({self.used} of {self.limit};"
            f" the warning starts at {self.warn_share:.0%}). {self.advice}"
        )


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
            "Server connections",
            "max_connections",
        ),
        Usage(
            "Platform pools in use",
            conns.count("total", platform_only=True),
            capacity,
            warn_share,
            f"The platform's pools ({pool_size_per_pod} per pod × {pods} pods)"
            " are nearly exhausted: look for long-running queries and transactions, then"
            " consider a bigger pool (procedures: Database Performance Tuning, option 2).",
            "Platform pools",
            "pool slots",
        ),
        Usage(
            "Pool capacity vs max_connections",
            capacity,
            conns.max_connections,
            warn_share,
            "Full pools alone would take this share of max_connections: raise"
            " max_connections or lower the pool size before adding pods.",
            "Pool capacity",
            "max_connections",
        ),
    ]


@dataclass(frozen=True)
class Replication:
    standby: bool  # the server the dashboard reads from is a hot standby
    streams: pd.DataFrame  # standby, state, lag_seconds, behind_bytes; empty: no replication

    @property
    def note(self) -> str:
        """Which server the dashboard reads from and, on a standby, how far behind it is."""
        if self.standby:
            lag = self.streams["lag_seconds"].iloc[0]
            behind = "how far behind is unknown" if pd.isna(lag) else f"{duration(lag)} behind"
            return (
                f"The dashboard reads from a hot standby, {behind} the primary; its own writes"
                " (access records, snapshots) go to the primary."
            )
        if self.streams.empty:
            return "The dashboard reads from a primary that no standby streams from."
        return ""

    @property
    def shows_streams(self) -> bool:
        return self.standby or not self.streams.empty


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
    with read() as conn, monitor(conn):
        standby = conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
        return Replication(standby, read_frame(conn, _STANDBY_SQL if standby else _PRIMARY_SQL))


def long_running(min_seconds: float) -> pd.DataFrame:
    """Queries running, and transactions open, for longer than min_seconds (whole server)."""
    with read() as conn, monitor(conn):
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


IDLE_IN_TRANSACTION_ADVICE = (
    "A session idle in a transaction holds its locks and holds back vacuum: ask its"
    " owner to finish it before anyone ends it with pg_cancel_backend."
)


def settings_note(
    conns: Connections,
    platform_users: Sequence[str],
    pool_size_per_pod: int,
    api_pods: int,
    worker_pods: int,
) -> str:
    """Where the limits come from and which settings in dashboard.toml [db_health] make them."""
    return (
        f"max_connections is {conns.max_connections} for the whole server ({conns.reserved}"
        f" reserved for superusers). The platform's connections are those of the database"
        f" user(s) {', '.join(platform_users) or '(none configured)'}; its pools hold up to"
        f" {pool_size_per_pod} per pod × {api_pods + worker_pods} pods ({api_pods} API +"
        f" {worker_pods} worker). Set these in `dashboard.toml` [db_health]."
    )
