"""A database-health workload to find (tests/services/dbhealth, tests/views/test_slow_queries.py,
tests/browser/test_dbhealth.py): a known slow statement, a sequential-scan-heavy table with an
unused and a duplicate index, a table with half of its rows dead; and a database without
pg_stat_statements."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import streamlit as st

from tests.conftest import PlatformDb

SLOW_SLEEP_S = 1.0  # well above any set-up statement of the database, even on a loaded machine
SLOW_RUNS = 2
SEQ_SCANS = 15
BIG_ROWS = 20000


def plant_workload(db: PlatformDb) -> None:
    """A slow statement, a large table read only by sequential scans (with an unused and a
    duplicate index), and a table with half of its rows dead and autovacuum off."""
    with db.superuser() as conn:
        conn.execute("CREATE TABLE dbh_slow (id int)")
        conn.execute("INSERT INTO dbh_slow VALUES (1)")
        conn.execute("CREATE TABLE dbh_big (id int, k int, pad text)")
        conn.execute(
            "INSERT INTO dbh_big SELECT i, i %% 100, md5(i::text) FROM generate_series(1, %s) i",
            (BIG_ROWS,),
        )
        conn.execute("CREATE INDEX dbh_big_id ON dbh_big (id)")
        conn.execute("CREATE INDEX dbh_big_id_pad ON dbh_big (id, pad)")
        conn.execute(
            "CREATE TABLE dbh_dead (id int) WITH (autovacuum_enabled = false,"
            " toast.autovacuum_enabled = false)"
        )
        conn.execute("INSERT INTO dbh_dead SELECT generate_series(1, 2000)")
        conn.execute("DELETE FROM dbh_dead WHERE id > 1000")
        conn.execute("VACUUM dbh_slow")
        # Like the platform's tables (schema/grants.sql): the admin role may read them.
        conn.execute("GRANT SELECT ON dbh_slow, dbh_big, dbh_dead TO dashboard_admin")
        for _ in range(SLOW_RUNS):
            conn.execute("SELECT pg_sleep(%s) FROM dbh_slow", (SLOW_SLEEP_S,))
        for i in range(SEQ_SCANS):
            conn.execute("SELECT count(*) FROM dbh_big WHERE k = %s", (i,))
    # The connection is closed: its table statistics are flushed. Wait until they are visible.
    wait_for(
        lambda: (
            stat(db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'dbh_dead'")
            == 1000
        )
    )
    wait_for(
        lambda: (
            (stat(db, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'dbh_big'") or 0)
            >= SEQ_SCANS
        )
    )


def stat(db: PlatformDb, sql: str):
    """The first column of the first row of `sql`, run as the superuser (None: no row)."""
    with db.superuser() as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def planted_db(make_platform_db: Callable[[str], PlatformDb], label: str) -> PlatformDb:
    db = make_platform_db(label)
    plant_workload(db)
    return db


def db_without_extension(make_platform_db: Callable[[str], PlatformDb], label: str) -> PlatformDb:
    db = make_platform_db(label)
    with db.superuser() as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
    return db


@contextmanager
def in_use(db: PlatformDb) -> Iterator[PlatformDb]:
    """The app's gateway reads `db`, with Streamlit's caches empty before and after."""
    db.use()
    st.cache_data.clear()
    yield db
    st.cache_data.clear()


# Fixtures (registered for every test module by tests/conftest.py's pytest_plugins): one
# planted database per test module, and one without pg_stat_statements.
@pytest.fixture(scope="module")
def health_db(make_platform_db: Callable[[str], PlatformDb]) -> PlatformDb:
    return planted_db(make_platform_db, "dbhealth")


@pytest.fixture
def hdb(health_db: PlatformDb) -> Iterator[PlatformDb]:
    with in_use(health_db) as db:
        yield db


@pytest.fixture(scope="module")
def bare_db(make_platform_db: Callable[[str], PlatformDb]) -> PlatformDb:
    return db_without_extension(make_platform_db, "dbh_noext")
