"""The gateway's isolation guarantees, against the real database and the real roles."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from services import db, health, weekly_review
from services.errors import Busy, InvalidInput, QueryTimeout, SourceUnavailable
from services.timerange import TimeRange
from tests.conftest import use_config, use_pool
from tests.planting import add_feedback, add_runs, add_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def two_tenants(use_db, tenant_id):
    other = f"{tenant_id}-other"
    with use_db.superuser() as conn:
        for tenant, runs in ((tenant_id, 3), (other, 5)):
            add_tenant(conn, tenant)
            add_runs(conn, tenant, runs, "completed", NOW)
            add_feedback(conn, tenant, "1", "thumbs_up", NOW)
    return tenant_id, other


def count(conn, table: str) -> int:
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_tenant_scope_sees_only_its_own_rows(two_tenants):
    mine, other = two_tenants
    with db.tenant_scope(mine) as conn:
        assert count(conn, "enhancement_history") == 3
        assert count(conn, "enhancement_feedback") == 1
        ids = conn.execute(text("SELECT DISTINCT tenant_id FROM enhancement_history")).scalars()
        assert set(ids) == {mine}
        # Asking for the other tenant explicitly still returns nothing.
        assert (
            conn.execute(
                text("SELECT count(*) FROM enhancement_history WHERE tenant_id = :t"), {"t": other}
            ).scalar_one()
            == 0
        )
    with db.tenant_scope(other) as conn:
        assert count(conn, "enhancement_history") == 5


def test_tenant_setting_dies_with_the_transaction(two_tenants):
    mine, _ = two_tenants
    with db.tenant_scope(mine):
        pass
    # The same pool hands out the same connection: the tenant must be gone from it.
    engine = db._pool(os.environ["DATABASE_URL"], "DATABASE_URL").engine
    with engine.connect() as conn:
        setting = conn.execute(
            text("SELECT current_setting('app.current_tenant_id', true)")
        ).scalar_one()
        assert setting in (None, "")
        assert count(conn, "enhancement_feedback") == 0


def test_no_tenant_set_sees_nothing(two_tenants, platform_db):
    # Newer policy style: no rows. Older style (alone or OR-ed with a newer one): an error.
    # Either is fine; another tenant's rows never are.
    for table in ("enhancement_feedback", "enhancement_history", "ticket_history"):
        with psycopg.connect(platform_db.reader_url) as reader:
            try:
                visible = reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except psycopg.errors.UndefinedObject:
                visible = 0
        assert visible == 0, table


def test_admin_scope_sees_every_tenant(two_tenants):
    mine, other = two_tenants
    with db.admin_scope() as conn:
        ids = set(
            conn.execute(text("SELECT DISTINCT tenant_id FROM enhancement_history")).scalars()
        )
    assert {mine, other} <= ids


@pytest.mark.parametrize(
    "column",
    [
        "servicedesk_api_key_encrypted",
        "webhook_signing_secret_encrypted",
        "jira_api_token_encrypted",
    ],
)
def test_no_dashboard_role_can_read_encrypted_columns(two_tenants, column):
    mine, _ = two_tenants
    for scope in (lambda: db.tenant_scope(mine), db.admin_scope):
        with pytest.raises(ProgrammingError, match="permission denied"), scope() as conn:
            conn.execute(text(f"SELECT {column} FROM tenant_configs"))
    with pytest.raises(ProgrammingError, match="permission denied"), db.admin_scope() as conn:
        conn.execute(text("SELECT * FROM tenant_configs"))


def test_dashboard_roles_are_plain_readers(use_db):
    with use_db.superuser() as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname IN ('dashboard_reader', 'dashboard_admin')"
        ).fetchall()
        owned = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tableowner IN"
            " ('dashboard_reader', 'dashboard_admin')"
        ).fetchone()[0]
    assert len(roles) == 2
    assert all(not any(flags) for _name, *flags in roles)
    assert owned == 0


def test_reader_cannot_write_platform_tables(two_tenants):
    mine, _ = two_tenants
    with pytest.raises(Exception, match="read-only|permission denied"), db.tenant_scope(mine) as c:
        c.execute(text("DELETE FROM enhancement_history"))
    with pytest.raises(ProgrammingError, match="permission denied"), db.write_scope() as conn:
        conn.execute(text("DELETE FROM enhancement_history"))


@pytest.mark.parametrize(
    "bad", ["", "   ", "x' OR '1'='1", "a" * 101, "tenant;drop", "tenänt", None, 42]
)
@pytest.mark.unit
def test_invalid_tenant_ids_are_refused_before_any_query(bad):
    with pytest.raises(InvalidInput), db.tenant_scope(bad):
        pass


@pytest.mark.unit
def test_uuid_tenant_ids_are_accepted():
    assert db.validate_tenant_id(" 0b6f6c2e-3f1a-4c7e-9d2b-7a1e5c3d9f00 ") == (
        "0b6f6c2e-3f1a-4c7e-9d2b-7a1e5c3d9f00"
    )


def test_unreachable_database_is_a_plain_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://dashboard_reader:x@127.0.0.1:1/none")
    with (
        pytest.raises(SourceUnavailable, match="PostgreSQL is not available"),
        db.tenant_scope("msp-acme-corp"),
    ):
        pass
    monkeypatch.delenv("ADMIN_DATABASE_URL")
    with pytest.raises(SourceUnavailable, match="ADMIN_DATABASE_URL is not set"), db.admin_scope():
        pass


def test_slow_query_becomes_a_timeout(two_tenants):
    mine, _ = two_tenants
    with pytest.raises(QueryTimeout), db.tenant_scope(mine) as conn:
        conn.execute(text("SET LOCAL statement_timeout = 50"))
        conn.execute(text("SELECT pg_sleep(1)"))


def test_a_slow_statement_on_a_live_server_is_left_to_finish(two_tenants):
    # Past check_alive_after_ms the watchdog asks the server whether it is alive; it is, so the
    # statement goes on (only the server's statement_timeout ends a slow one).
    mine, _ = two_tenants
    with db.tenant_scope(mine) as conn:
        assert conn.execute(text("SELECT 1 FROM pg_sleep(3.2)")).scalar_one() == 1


@pytest.fixture
def loose_reader(use_db):
    """The reader's defaults in this database opened wide (no timeout, read-write), as a DBA
    or a session could leave them; restored after. IN DATABASE: no other database sees it."""
    alter = f'ALTER ROLE dashboard_reader IN DATABASE "{use_db.name}"'
    with use_db.superuser() as conn:
        conn.execute(f"{alter} SET statement_timeout = 0")
        conn.execute(f"{alter} SET default_transaction_read_only = off")
    db.dispose_engines()  # new connections take the new defaults
    yield use_db
    with use_db.superuser() as conn:
        conn.execute(f"{alter} RESET ALL")
    db.dispose_engines()


RECORD = (
    "SELECT dashboard.record_access('eng@test.example', 'support', :tenant, 'SUP-1 drill',"
    " 'tenant_health', '{}'::jsonb, 0, false)"
)


def test_the_gateway_sets_its_limits_per_transaction_whatever_the_role_defaults(
    two_tenants, loose_reader, tmp_path, monkeypatch
):
    mine, _ = two_tenants
    use_config(
        tmp_path,
        monkeypatch,
        "reader_statement_timeout_ms = 5000",
        "reader_statement_timeout_ms = 300",
    )
    engine = db._pool(loose_reader.reader_url, "DATABASE_URL").engine

    def bare() -> tuple:
        """A transaction on the pooled connection without the gateway: the role's defaults."""
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT pg_backend_pid(), current_setting('statement_timeout'),"
                    " current_setting('transaction_read_only')"
                )
            ).one()

    pid, *defaults = bare()
    assert defaults == ["0", "off"]  # nothing but the gateway limits these transactions
    started = time.monotonic()
    with pytest.raises(QueryTimeout), db.tenant_scope(mine) as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid  # the same one
        conn.execute(text("SELECT pg_sleep(3)"))
    assert time.monotonic() - started < 2  # cut off at the configured 0.3 s
    with (
        pytest.raises(DBAPIError, match="read-only transaction"),
        db.tenant_scope(mine) as conn,
    ):
        conn.execute(text(RECORD), {"tenant": mine})  # a write the reader may do, read-write
    with db.write_scope() as conn:  # ...as here, on the same connection
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid
        conn.execute(text(RECORD), {"tenant": mine})
    with db.tenant_scope(mine) as conn:  # read-write did not carry over to the next read
        assert conn.execute(text("SHOW transaction_read_only")).scalar() == "on"
    # Nothing of the gateway's outlives its transactions: the connection is as it was.
    assert bare() == (pid, *defaults)


def test_busy_connections_are_waited_for_then_named_not_called_down(
    two_tenants, tmp_path, monkeypatch
):
    """More sessions at once than connections: a session waits for one (busy is not down),
    and after pool_wait_s says that they were all busy, not that PostgreSQL is unavailable."""
    mine, _ = two_tenants
    use_pool(tmp_path, monkeypatch, size=1, wait_s=0.5)
    with db.tenant_scope(mine):  # the only connection, held by another session
        started = time.monotonic()
        with (
            pytest.raises(Busy, match="all 1 of its connections .* for 0.5 s"),
            db.tenant_scope(mine),
        ):
            pass
        assert 0.4 < time.monotonic() - started < 3
    with db.tenant_scope(mine) as conn:  # released: the next session gets it at once
        assert conn.execute(text("SELECT 1")).scalar() == 1
    db.dispose_engines()


def test_a_view_never_waits_for_its_second_connection_while_holding_its_first(
    two_tenants, tmp_path, monkeypatch
):
    """The health metrics and the weekly review read on two connections at once. With as many
    sessions as pooled connections, a session holding one while it waits for a second would
    leave none for anyone (10 concurrent sessions, 5 connections: all said "busy" after 10 s).
    With a pool of one connection the two reads take turns, and both views still come back."""
    mine, _ = two_tenants
    use_pool(tmp_path, monkeypatch, size=1, wait_s=3)
    later = NOW + timedelta(hours=1)
    period = TimeRange(NOW - timedelta(days=1), later, "24h")
    for tenant in (mine, None):  # its scope, and the admin path
        started = time.monotonic()
        metrics = health.metrics(tenant, period)
        review = weekly_review.review(tenant, weekly_review.Week.of(NOW).label, later)
        assert time.monotonic() - started < 3  # no read waited out pool_wait_s
        assert metrics.loc[metrics["tenant_id"] == mine, "tickets"].item() == 3
        attempts = review.daily["attempts"].sum()
        assert attempts == 3 if tenant else attempts >= 8  # the fleet: other tests' tenants too
    db.dispose_engines()
