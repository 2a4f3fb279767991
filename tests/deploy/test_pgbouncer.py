"""The gateway behind a real PgBouncer in transaction pooling mode: tenants interleaved on two
server connections never see each other's rows, and nothing a transaction sets (the tenant, the
statement timeout, read-write mode) reaches the next client of the same server connection."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from services.db import admin_scope, dispose_engines, tenant_scope, write_scope
from services.dbhealth import explain
from tests.pgbouncer import PgBouncer
from tests.planting import add_run, add_tenant

TENANTS = [f"pgb-tenant-{n}" for n in range(4)]

# Starts infrastructure of its own (make test-infra, run by CI after make test).
pytestmark = pytest.mark.infra


def passwords() -> dict[str, str]:
    """The stack's role passwords, read when a test runs (collecting needs no stack)."""
    return {
        "dashboard_reader": os.environ["STACK_READER_PASSWORD"],
        "dashboard_admin": os.environ["STACK_ADMIN_PASSWORD"],
    }


@pytest.fixture(scope="module")
def pooled(make_platform_db) -> Iterator[tuple]:
    platform = make_platform_db("pgbouncer")
    now = datetime.now(UTC)
    with platform.superuser() as conn:
        for n, tenant in enumerate(TENANTS):
            add_tenant(conn, tenant)
            for i in range(n + 1):  # tenant n has n + 1 runs: a leak changes the count
                add_run(conn, tenant, f"T-{i}", "completed", now - timedelta(minutes=i), 2.0)
    bouncer = PgBouncer.start(
        int(os.environ["PGPORT"]),
        passwords(),
        {
            "platform": f"dbname={platform.name}",
            # One server connection: two clients always share it.
            "single": f"dbname={platform.name} pool_size=1",
        },
    )
    saved = {key: os.environ.get(key) for key in ("DATABASE_URL", "ADMIN_DATABASE_URL")}
    os.environ["DATABASE_URL"] = bouncer.url(
        "dashboard_reader", passwords()["dashboard_reader"], "platform"
    )
    os.environ["ADMIN_DATABASE_URL"] = bouncer.url(
        "dashboard_admin", passwords()["dashboard_admin"], "platform"
    )
    dispose_engines()
    yield platform, bouncer
    dispose_engines()
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value
    bouncer.stop()


_LEFT_OVER_SQL = (
    "SELECT current_setting('app.current_tenant_id', true) AS tenant,"
    " current_setting('statement_timeout') AS timeout,"
    " current_setting('transaction_read_only') AS read_only"
)


def role_defaults(platform) -> tuple:
    """What a fresh transaction of the reader role sees, straight on the server."""
    with psycopg.connect(platform.reader_url) as conn:
        row = conn.execute(_LEFT_OVER_SQL).fetchone()
    return (row[0] or None, row[1], row[2])


def test_tenants_interleaved_on_two_server_connections_stay_apart(pooled):
    platform, bouncer = pooled
    defaults = role_defaults(platform)
    errors: list[str] = []
    counts = {tenant: n + 1 for n, tenant in enumerate(TENANTS)}

    def tenant_reads(tenant: str) -> None:
        for _ in range(40):
            with tenant_scope(tenant) as conn:
                # No tenant predicate here on purpose: RLS alone must keep the others out.
                seen = dict(
                    conn.execute(
                        text("SELECT tenant_id, count(*) FROM enhancement_history GROUP BY 1")
                    ).all()
                )
                setting = conn.execute(
                    text("SELECT current_setting('app.current_tenant_id')")
                ).scalar()
            if seen != {tenant: counts[tenant]} or setting != tenant:
                errors.append(f"{tenant} saw {seen} with the tenant set to {setting!r}")

    def writes() -> None:  # read-write transactions between the reads
        for _ in range(20):
            with write_scope() as conn:
                conn.execute(text("SELECT 1"))

    def bare_transactions() -> None:
        # A client without the gateway on the same server connections: whatever a previous
        # transaction set must be gone (autocommit: one transaction per statement).
        with psycopg.connect(
            bouncer.url("dashboard_reader", passwords()["dashboard_reader"], "platform"),
            autocommit=True,
            prepare_threshold=None,
        ) as conn:
            for _ in range(60):
                row = conn.execute(_LEFT_OVER_SQL).fetchone()
                left = (row[0] or None, row[1], row[2])
                try:
                    rows = conn.execute("SELECT count(*) FROM enhancement_history").fetchone()[0]
                except psycopg.errors.UndefinedObject:
                    # The policy reads the setting: a server connection that never had it
                    # refuses (fails closed); one that had it in a past transaction has ''.
                    rows = 0
                if left != defaults or rows != 0:
                    errors.append(f"a bare transaction found {left} and {rows} rows")

    def recorded(target, *args) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except Exception as exc:  # noqa: BLE001 - the test reports every thread's failure
                errors.append(f"{target.__name__}{args}: {exc!r}")

        return threading.Thread(target=run)

    threads = [recorded(tenant_reads, t) for t in TENANTS]
    threads += [recorded(writes), recorded(bare_transactions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:5]
    assert defaults == (None, "5s", "on")  # the role's own, not the gateway's 3 s / read-write
    with platform.superuser() as conn:
        servers = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND usename = 'dashboard_reader'"
        ).fetchone()[0]
    assert 1 <= servers <= 2  # default_pool_size: six clients took turns on two connections


def test_prepared_statements_would_break_and_the_gateway_prepares_none(pooled):
    platform, bouncer = pooled
    single = bouncer.url("dashboard_reader", passwords()["dashboard_reader"], "single")
    # psycopg's default: a statement run 5 times is prepared on the server connection. Two
    # clients on one server connection then prepare the same name (PgBouncer 1.18 does not
    # track prepared statements; 1.21+ can, with max_prepared_statements).
    first, second = (psycopg.connect(single, autocommit=True) for _ in range(2))
    with first, second, pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        for _ in range(8):
            for conn in (first, second):
                conn.execute("SELECT %s::int", (1,))
    # The gateway runs the same statement far past the threshold, on the shared connections.
    for _ in range(3):
        for tenant in TENANTS:
            for _ in range(3):
                with tenant_scope(tenant) as conn:
                    conn.execute(
                        text("SELECT count(*) FROM enhancement_history WHERE tenant_id = :t"),
                        {"t": tenant},
                    ).scalar()
    # EXPLAIN, which needs the one-command protocol, leaves nothing behind either.
    for _ in range(3):
        assert "Seq Scan" in explain.explain("SELECT * FROM dashboard.query_snapshots")
    with admin_scope() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
