"""THE gateway to PostgreSQL. No other module opens a database connection.

- tenant_scope(tenant_id): a transaction as the reader role with the tenant set transaction-locally,
  so RLS shows that tenant's rows only and a pooled connection cannot carry the tenant onward.
- admin_scope(): a transaction as the cross-tenant admin role (explicit SELECT-only policies).
- write_scope(): the one read-write transaction, for the dashboard's own tables, on the primary
  (DASHBOARD_WRITE_URL / ADMIN_WRITE_URL) when the reads go to a read replica.
- job_lock(name): one run at a time of a scheduled job, across replicas and CronJob runs.

Every transaction sets its own statement timeout and read-only mode (role defaults can be changed
by a session), and refuses a role RLS does not apply to. Nothing outlives a transaction (no
session setting, no session lock, no server-side prepared statement), so a URL can point at
PgBouncer in transaction pooling mode (docs/deploy.md). A watchdog closes the socket of a
statement the server does not answer in time: a frozen server (SIGSTOP, a hung host) keeps the
TCP connection alive, so neither the server's timeout nor keepalives would ever end the wait.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import copy_context
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import psycopg
from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services import timing
from services.config import rules, settings
from services.errors import (
    Busy,
    DashboardError,
    InvalidInput,
    QueryTimeout,
    SourceUnavailable,
    UnsafeRole,
)

T = TypeVar("T")
# Tenant ids are opaque VARCHAR(100): slugs (msp-acme-corp) or UUID strings.
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

# The platform's tables (contract section 1): a role owning one of them bypasses RLS on it.
PLATFORM_TABLES = (
    "tenant_configs",
    "enhancement_history",
    "enhancement_feedback",
    "ticket_history",
    "system_inventory",
    "audit_log",
)

_ROLE_SQL = """
SELECT current_user AS role, r.rolsuper, r.rolbypassrls,
       (SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(:tables)
           AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owns
  FROM pg_roles r
 WHERE r.rolname = current_user
"""


@dataclass
class _Pool:
    engine: Engine
    variable: str
    role_problem: str | None = None  # set once the role was checked and found unsafe
    role_checked: bool = False
    # After the server failed to answer: fail at once until then, so a view with several
    # sections says so once instead of waiting again in each (monotonic clock).
    unreachable_until: float = 0.0
    unreachable_why: str = ""


_pools: dict[str, _Pool] = {}
_pools_lock = threading.Lock()


def validate_tenant_id(tenant_id: object) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id.strip()):
        raise InvalidInput("That is not a valid tenant id (letters, digits, . _ : -, up to 100).")
    return tenant_id.strip()


def _limits() -> dict[str, float]:
    config = rules("database")
    return {
        "reader_timeout_ms": float(config["reader_statement_timeout_ms"]),
        "admin_timeout_ms": float(config["admin_statement_timeout_ms"]),
        "check_after_s": float(config["check_alive_after_ms"]) / 1000,
        "probe_s": float(config["alive_probe_timeout_ms"]) / 1000,
        "connect_timeout_s": float(config["connect_timeout_s"]),
        "retry_after_s": float(config["retry_after_s"]),
        "pool_size": int(config["pool_size"]),
        "pool_wait_s": float(config["pool_wait_s"]),
    }


# PostgreSQL's SSLRequest: the postmaster itself answers it with one byte, S or N, before any
# backend exists, so an answer means the server is alive, however busy its backends are.
_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


def _alive(url: URL, seconds: float) -> bool:
    """Whether the server behind `url` answers at all within `seconds`."""
    socket_dir = url.query.get("host") if not url.host else None
    port = int(url.port or url.query.get("port") or 5432)
    try:
        if socket_dir:
            probe = socket.socket(socket.AF_UNIX)
            probe.settimeout(seconds)
            probe.connect(f"{socket_dir}/.s.PGSQL.{port}")
        else:
            probe = socket.create_connection((url.host, port), timeout=seconds)
        with probe:
            probe.sendall(_SSL_REQUEST)
            return probe.recv(1) in (b"S", b"N")
    except OSError:
        return False


class _Watchdog:
    """Watches the statement under way: still running after a few seconds, it asks whether the
    server is alive at all. A slow statement on a live server goes on (the server's own
    statement_timeout ends it); a server that does not answer gets the connection's socket shut
    down, psycopg raises at once, and the pool throws the connection away."""

    def __init__(self, dbapi_connection: Any, url: URL):
        self._fd = dbapi_connection.fileno()
        self._url = url
        self._timer: threading.Timer | None = None
        self.fired = False

    def arm(self) -> None:
        self.disarm()
        self.fired = False
        self._start()

    def _start(self) -> None:
        self._timer = threading.Timer(_limits()["check_after_s"], self._check)
        self._timer.daemon = True
        self._timer.start()

    def _check(self) -> None:
        if _alive(self._url, _limits()["probe_s"]):
            self._start()  # busy, not gone: look again later
        else:
            self._cut()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cut(self) -> None:
        self.fired = True
        try:
            with socket.socket(fileno=os.dup(self._fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing left to wake up


def _watch(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _attach(dbapi_connection: Any, record: Any) -> None:
        record.info["watchdog"] = _Watchdog(dbapi_connection, engine.url)

    def _dog(conn: Connection) -> _Watchdog | None:
        return None if conn.invalidated else conn.connection.info.get("watchdog")

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn: Connection, *_: Any) -> None:
        if dog := _dog(conn):
            dog.arm()

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn: Connection, *_: Any) -> None:
        if dog := _dog(conn):
            dog.disarm()

    # COMMIT and ROLLBACK wait for the server too; the pool's reset on return likewise.
    for name in ("commit", "rollback"):
        event.listen(engine, name, _arm)

    @event.listens_for(engine.pool, "reset")
    def _arm_reset(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
        if dog := record.info.get("watchdog"):
            dog.arm()

    @event.listens_for(engine.pool, "checkin")
    def _disarm_checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None and (dog := record.info.get("watchdog")):
            dog.disarm()


def _time_statements(engine: Engine) -> None:
    """Opt-in (DASHBOARD_TIMINGS): each statement's time counts into services.timing."""

    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn: Connection, *_: Any) -> None:
        conn.info["timing_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _finished(conn: Connection, *_: Any) -> None:
        if (started := conn.info.pop("timing_started", None)) is not None:
            timing.add("sql", time.perf_counter() - started)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:  # a statement that failed (timed out) counts too
        if context.connection is not None and not context.connection.invalidated:
            _finished(context.connection)


def _pool(url: str | None, variable: str) -> _Pool:
    if not url:
        raise SourceUnavailable("PostgreSQL", f"{variable} is not set")
    with _pools_lock:
        if url not in _pools:
            limits = _limits()
            engine = create_engine(
                url.replace("postgresql://", "postgresql+psycopg://", 1),
                # Opened as sessions overlap, then kept: closing the overflow after each use
                # (pool_size 2 + overflow) reconnected 39 times in a minute of 20 sessions,
                # and the closing and new backends overlapped past the 10-connection budget.
                pool_size=limits["pool_size"],
                max_overflow=0,
                # No pre-ping: it would run outside the watchdog. A connection that went stale
                # (the server restarted) fails its first statement, and the scope retries once.
                pool_pre_ping=False,
                pool_recycle=300,
                # Busy is not down: a frozen server's connections are cut by the watchdog
                # within check_after + probe, and a waiting session then fails at once.
                pool_timeout=limits["pool_wait_s"],
                connect_args={
                    "connect_timeout": max(1, int(limits["connect_timeout_s"])),
                    "application_name": "support-dashboard",
                    # A dead host or a cut network: the kernel gives up on the socket.
                    "keepalives": 1,
                    "keepalives_idle": 10,
                    "keepalives_interval": 2,
                    "keepalives_count": 2,
                    "tcp_user_timeout": int(limits["check_after_s"] * 1000),
                    # No server-side prepared statements: behind PgBouncer's transaction pooling
                    # (before 1.21) the next transaction may run on a server connection that
                    # lacks them, or holds another client's under the same name.
                    "prepare_threshold": None,
                },
            )
            _watch(engine)
            if timing.enabled():
                _time_statements(engine)
            _pools[url] = _Pool(engine, variable)
        return _pools[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests, and after the database restarts)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.engine.dispose()
        _pools.clear()


def _check_role(conn: Connection, pool: _Pool) -> None:
    """Refuse, once and for good, a role that RLS does not apply to."""
    if not pool.role_checked:
        row = conn.execute(text(_ROLE_SQL), {"tables": list(PLATFORM_TABLES)}).one()
        problems = [
            what
            for what, bad in (
                ("is a superuser", row.rolsuper),
                ("has BYPASSRLS", row.rolbypassrls),
                (f"owns platform tables ({row.owns})", row.owns),
            )
            if bad
        ]
        if problems:
            pool.role_problem = (
                f"{pool.variable} connects as `{row.role}`, which {' and '.join(problems)}: "
                "row-level security does not apply to it, so the dashboard shows no tenant data. "
                "Point it at the role schema/grants.sql creates."
            )
        pool.role_checked = True
    if pool.role_problem:
        raise UnsafeRole(pool.role_problem)


def check_roles() -> None:
    """Raise UnsafeRole when any configured role is one RLS does not apply to, so a page can
    refuse as a whole (fail closed) whichever role its own reads use. Each role is checked
    once per process; a database that cannot be reached is left to the views to report."""
    config = settings()
    urls: dict[str, str] = {}  # a write URL left unset is its read URL: named as that
    for url, variable in (
        (config.database_url, "DATABASE_URL"),
        (config.admin_database_url, "ADMIN_DATABASE_URL"),
        (config.dashboard_write_url, "DASHBOARD_WRITE_URL"),
        (config.admin_write_url, "ADMIN_WRITE_URL"),
    ):
        if url:
            urls.setdefault(url, variable)
    for url, variable in urls.items():
        pool = _pool(url, variable)
        if not pool.role_checked:
            try:
                with _transaction(pool):
                    pass
            except UnsafeRole:
                raise
            except (DashboardError, DBAPIError):
                continue  # unreachable or busy: each view says so itself
        if pool.role_problem:
            raise UnsafeRole(pool.role_problem)


_SETUP_SQL = (
    "SELECT set_config('statement_timeout', :timeout, true),"
    " set_config('transaction_read_only', :read_only, true)"
)
# is_local = true: the tenant dies with the transaction, never reaching the pool's next user.
_TENANT_SQL = ", set_config('app.current_tenant_id', :tenant, true)"


@contextmanager
def _transaction(
    pool: _Pool, tenant: str | None = None, read_only: bool = True, check_role: bool = True
) -> Iterator[Connection]:
    """One transaction with our own limits, and the tenant set when one is given."""
    limits = _limits()
    setup_sql = _SETUP_SQL + (_TENANT_SQL if tenant is not None else "")
    setup = {
        # The admin role's pools (ADMIN_DATABASE_URL, its write URL) run the fleet aggregates.
        "timeout": str(
            int(limits["admin_timeout_ms" if "ADMIN" in pool.variable else "reader_timeout_ms"])
        ),
        "read_only": "on" if read_only else "off",
        "tenant": tenant,
    }
    if time.monotonic() < pool.unreachable_until:
        raise SourceUnavailable("PostgreSQL", pool.unreachable_why)
    for attempt in (1, 2):
        conn, dog = None, None
        try:
            conn = pool.engine.connect()
            if time.monotonic() < pool.unreachable_until:  # it failed while this one waited
                raise SourceUnavailable("PostgreSQL", pool.unreachable_why)
            dog = conn.connection.info.get("watchdog")
            transaction = conn.begin()
            if not read_only:  # before any query: read-write cannot be set after a snapshot
                conn.execute(text("SET TRANSACTION READ WRITE"))
            conn.execute(text(setup_sql), setup)
        except DBAPIError as exc:
            if conn is not None:
                conn.close()
            # A standby refuses read-write mode ("during recovery").
            if not read_only and isinstance(exc.orig, psycopg.errors.FeatureNotSupported):
                raise SourceUnavailable(
                    "PostgreSQL",
                    f"{pool.variable} points at a read-only server (a standby): point"
                    " DASHBOARD_WRITE_URL and ADMIN_WRITE_URL at the primary",
                ) from exc
            fired = bool(dog and dog.fired)
            if attempt == 1 and exc.connection_invalidated and dog and not fired:
                continue  # a stale pooled connection (the server restarted): once more, fresh
            raise _failed(pool, exc, fired, connecting=conn is None) from exc
        except SourceUnavailable:
            if conn is not None:
                conn.close()
            raise
        except PoolTimeout as exc:
            raise Busy(
                f"The dashboard is busy: all {limits['pool_size']} of its connections to "
                f"PostgreSQL ({pool.variable}) stayed in use by other sessions for "
                f"{limits['pool_wait_s']:g} s. Try again in a moment; if this is common, the "
                "dashboard needs more replicas (docs/deploy.md)."
            ) from exc
        break
    try:
        with conn:
            if check_role:
                _check_role(conn, pool)
            yield conn
            transaction.commit()
    except DBAPIError as exc:
        error = _failed(pool, exc, bool(dog and dog.fired))
        if error is exc:
            raise
        raise error from exc


def _failed(
    pool: _Pool, exc: DBAPIError, watchdog_fired: bool, connecting: bool = False
) -> Exception:
    """The dashboard's error for a database error. A server that did not answer, or dropped
    the connection, is not asked again for a few seconds: the next sections of a view fail at
    once with the same message instead of each waiting for it."""
    if "statement timeout" in str(exc.orig):
        return QueryTimeout()
    if watchdog_fired:
        seconds = _limits()["check_after_s"] + _limits()["probe_s"]
        error = SourceUnavailable("PostgreSQL", f"the server did not answer within {seconds:g} s")
    elif isinstance(exc, OperationalError):
        error = SourceUnavailable("PostgreSQL", _first_line(exc.orig))
    else:
        return exc
    if watchdog_fired or connecting or exc.connection_invalidated:
        pool.unreachable_until = time.monotonic() + _limits()["retry_after_s"]
        pool.unreachable_why = error.detail
    return error


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "connection failed"


@contextmanager
def tenant_scope(tenant_id: str) -> Iterator[Connection]:
    """The reader role with app.current_tenant_id set for this transaction only."""
    tenant = validate_tenant_id(tenant_id)
    with _transaction(_pool(settings().database_url, "DATABASE_URL"), tenant=tenant) as conn:
        yield conn


@contextmanager
def admin_scope() -> Iterator[Connection]:
    """Cross-tenant reads. Callers are admin-only views; access is recorded by the view."""
    with _transaction(_pool(settings().admin_database_url, "ADMIN_DATABASE_URL")) as conn:
        yield conn


@contextmanager
def scope(tenant_id: str | None) -> Iterator[Connection]:
    """One tenant's scope, or the admin path across tenants for None (fleet views): the one
    switch between them, so a service reads a tenant and the fleet with the same SQL."""
    with tenant_scope(tenant_id) if tenant_id is not None else admin_scope() as conn:
        yield conn


@contextmanager
def write_scope(admin: bool = False) -> Iterator[Connection]:
    """Writes to the dashboard's own schema (the roles default to read-only transactions)."""
    config = settings()
    url, variable = (
        (config.admin_write_url, "ADMIN_WRITE_URL (or ADMIN_DATABASE_URL)")
        if admin
        else (config.dashboard_write_url, "DASHBOARD_WRITE_URL (or DATABASE_URL)")
    )
    with _transaction(_pool(url, variable), read_only=False) as conn:
        yield conn


@contextmanager
def job_lock(job: str) -> Iterator[bool]:
    """Held while a scheduled job runs: True when this run has it, False when another run (a
    second replica, an overlapping CronJob) does, and this one should skip. A transaction lock
    in a transaction of its own on the primary, kept open until the job is done in its own
    transactions: a session lock would not survive PgBouncer's transaction pooling, and this
    one is released however the run ends (the server ends the transaction when it dies)."""
    with write_scope(admin=True) as conn:
        # Idle while the job works: the roles' idle-in-transaction timeout must not end it.
        yield conn.execute(
            text(
                "SELECT pg_try_advisory_xact_lock(hashtext(:job)),"
                " set_config('idle_in_transaction_session_timeout', '0', true)"
            ),
            {"job": job},
        ).scalar()


@contextmanager
def in_background(function: Callable[..., T], *args: Any) -> Iterator[Future[T]]:
    """`function(*args)` on a thread of its own while the block runs: a query on a second
    connection alongside this one's. The script run's timing (services.timing) counts it.
    Never wait for its result while holding a connection of the same pool: once every pooled
    connection is held by a session waiting for its second, none comes free, and all of them
    fail as busy pool_wait_s later (10 concurrent sessions did, with 5 connections)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        yield thread.submit(copy_context().run, function, *args)


def read_frame(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    result = conn.execute(text(sql), dict(params or {}))
    # plain tuples: pandas builds a frame from them about 5x faster than from Row objects
    return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))


@contextmanager
def self_test_scope(tenant_id: str | None = None) -> Iterator[Connection]:
    """The reader role, with the tenant set only when given, and without the refusal of an
    unsafe role: only the RLS self-test uses this, to measure what such a role would see."""
    pool = _pool(settings().database_url, "DATABASE_URL")
    tenant = validate_tenant_id(tenant_id) if tenant_id is not None else None
    with _transaction(pool, tenant=tenant, check_role=False) as conn:
        yield conn
