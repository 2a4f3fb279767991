"""Connections on the private stack: counts by source and state match connections this test
opens, and what runs (or holds a transaction open) for long is listed. Unit tests: the shares of
pool exhaustion and what the page says about them and about replication."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import pandas as pd
import psycopg
import pytest

from services.dbhealth import connections
from tests.dbhealth_workload import stat, wait_for

# --- on the stack --------------------------------------------------------------------------------


@pytest.fixture
def platform_role(hdb) -> Iterator[tuple[str, str]]:
    """A login role standing in for the platform's database user (roles are per server)."""
    role, password = f"dbh_platform_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with hdb.superuser() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    yield role, password
    with hdb.superuser() as conn:
        conn.execute(f"DROP ROLE {role}")


def test_connections_are_counted_by_source(hdb, platform_role):
    role, password = platform_role
    app = f"dbh-test-{uuid.uuid4().hex[:6]}"

    def connect() -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=os.environ["PGPORT"],
            dbname=hdb.name,
            user=role,
            password=password,
            application_name=app,
        )

    opened = [connect() for _ in range(4)]
    sleeper = threading.Thread(target=lambda: opened[0].execute("SELECT pg_sleep(4)"))
    try:
        opened[1].execute("SELECT 1")  # not committed: idle in transaction
        for conn in opened[2:]:
            conn.autocommit = True
            conn.execute("SELECT 1")  # idle
        sleeper.start()
        wait_for(
            lambda: stat(
                hdb,
                "SELECT count(*) FROM pg_stat_activity"
                f" WHERE application_name = '{app}' AND state = 'active'",
            )
        )
        time.sleep(1.2)
        conns = connections.connections((role,))
        ours = conns.by_source[conns.by_source["application"] == app]
        assert len(ours) == 1
        row = ours.iloc[0]
        assert (row["database"], row["user"], bool(row["platform"])) == (hdb.name, role, True)
        assert (row["active"], row["idle"], row["idle_in_transaction"], row["total"]) == (
            1,
            2,
            1,
            4,
        )
        assert conns.count("total", platform_only=True) == 4
        assert conns.max_connections == int(stat(hdb, "SHOW max_connections"))

        server, pools, capacity = connections.connection_usage(conns, 1, 4, 0.9)
        assert (pools.used, pools.limit, pools.share, pools.warn) == (4, 4, 1.0, True)
        assert (server.used, server.limit) == (conns.count("total"), conns.max_connections)
        assert (capacity.used, capacity.limit) == (4, conns.max_connections)
        roomy = connections.connection_usage(conns, 1, 10, 0.9)[1]
        assert (roomy.used, roomy.share, roomy.warn) == (4, 0.4, False)

        slow = connections.long_running(1.0)
        mine = slow[slow["application"] == app]
        assert sorted(mine["state"]) == ["active", "idle in transaction"]
        active = mine[mine["state"] == "active"].iloc[0]
        assert active["query_seconds"] >= 1.0 and "pg_sleep" in active["query"]
    finally:
        if sleeper.ident:  # started
            sleeper.join()
        for conn in opened:
            conn.close()


# --- what the page shows (no stack) --------------------------------------------------------------


def planted_connections(max_connections: int = 100) -> connections.Connections:
    by_source = pd.DataFrame(
        {
            "database": ["aiagents", "aiagents", "dashboard"],
            "user": ["aiagents", "aiagents", "dashboard_admin"],
            "application": ["api", "worker", "(not set)"],
            "active": [3, 1, 1],
            "idle": [10, 4, 2],
            "idle_in_transaction": [2, 0, 0],
            "other": [0, 0, 1],
            "total": [15, 5, 4],
            "platform": [True, True, False],
        }
    )
    return connections.Connections(max_connections, 3, by_source)


@pytest.mark.unit
def test_the_three_shares_of_pool_exhaustion():
    conns = planted_connections()
    assert conns.states() == [("Active", 5), ("Idle", 16), ("Idle in transaction", 2)]
    server, pools, capacity = connections.connection_usage(conns, 4, 5, 0.8)
    assert (server.used, server.limit, server.warn) == (24, 100, False)
    assert (pools.used, pools.limit, pools.share, pools.warn) == (20, 20, 1.0, True)
    assert (capacity.used, capacity.limit, capacity.percent) == (20, 100, "20%")
    assert [u.title for u in (server, pools, capacity)] == [
        "Server connections",
        "Platform pools",
        "Pool capacity",
    ]
    assert pools.detail == "20 of 20 pool slots" and server.detail == "24 of 100 max_connections"
    assert pools.warning.startswith(
        "**Platform pools in use: 100%** (20 of 20; the warning starts at 80%). The platform's"
        " pools (4 per pod × 5 pods) are nearly exhausted"
    )
    assert connections.Usage("x", 3, 0, 0.5, "", "x", "slots").share == 0.0  # no pods


@pytest.mark.unit
def test_the_settings_note_says_where_the_limits_come_from():
    conns = planted_connections()
    note = connections.settings_note(conns, ("aiagents",), 20, 2, 3)
    assert note.startswith("max_connections is 100 for the whole server (3 reserved")
    assert "user(s) aiagents; its pools hold up to 20 per pod × 5 pods (2 API + 3 worker)" in note
    assert "(none configured)" in connections.settings_note(conns, (), 20, 2, 3)


def streams(lag: float | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "standby": ["this server"],
            "state": ["streaming"],
            "lag_seconds": [lag],
            "behind_bytes": [0],
        }
    )


@pytest.mark.unit
def test_what_the_page_says_about_replication():
    standby = connections.Replication(True, streams(95.0))
    assert standby.note.startswith("The dashboard reads from a hot standby, 2 min behind")
    assert standby.shows_streams
    unknown = connections.Replication(True, streams(None))
    assert "how far behind is unknown the primary" in unknown.note
    alone = connections.Replication(False, streams(None).iloc[0:0])
    assert alone.note == "The dashboard reads from a primary that no standby streams from."
    assert not alone.shows_streams
    primary = connections.Replication(False, streams(0.0))
    assert primary.note == "" and primary.shows_streams
