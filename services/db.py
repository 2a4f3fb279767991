"""THE gateway to PostgreSQL. No other module opens a database connection.

- tenant_scope(tenant_id): a transaction as the reader role with the tenant set transaction-locally,
  so RLS shows that tenant's rows only and a pooled connection cannot carry the tenant onward.
- admin_scope(): a transaction as the cross-tenant admin role (explicit SELECT-only policies).
- write_scope(): the one read-write transaction, for the dashboard's own tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from services.config import settings
from services.errors import InvalidInput, QueryTimeout, SourceUnavailable

# Tenant ids are opaque VARCHAR(100): slugs (msp-acme-corp) or UUID strings.
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

_engines: dict[str, Engine] = {}


def validate_tenant_id(tenant_id: object) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id.strip()):
        raise InvalidInput("That is not a valid tenant id (letters, digits, . _ : -, up to 100).")
    return tenant_id.strip()


def _engine(url: str | None, variable: str) -> Engine:
    if not url:
        raise SourceUnavailable("PostgreSQL", f"{variable} is not set")
    if url not in _engines:
        _engines[url] = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1),
            pool_size=2,
            max_overflow=3,
            pool_pre_ping=True,
            pool_recycle=300,
            pool_timeout=5,
            connect_args={"connect_timeout": 3, "application_name": "support-dashboard"},
        )
    return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests, and after the database restarts)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.begin() as conn:
            yield conn
    except DBAPIError as exc:
        if "statement timeout" in str(exc.orig):
            raise QueryTimeout() from exc
        if isinstance(exc, OperationalError):
            raise SourceUnavailable("PostgreSQL", _first_line(exc.orig)) from exc
        raise


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "connection failed"


@contextmanager
def tenant_scope(tenant_id: str) -> Iterator[Connection]:
    tenant = validate_tenant_id(tenant_id)
    with _transaction(_engine(settings().database_url, "DATABASE_URL")) as conn:
        # is_local = true: the setting dies with this transaction.
        conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": tenant})
        yield conn


@contextmanager
def admin_scope() -> Iterator[Connection]:
    """Cross-tenant reads. Callers are admin-only views; access is recorded by the view."""
    with _transaction(_engine(settings().admin_database_url, "ADMIN_DATABASE_URL")) as conn:
        yield conn


@contextmanager
def write_scope(admin: bool = False) -> Iterator[Connection]:
    """Writes to the dashboard's own schema (the roles default to read-only transactions)."""
    url, variable = (
        (settings().admin_database_url, "ADMIN_DATABASE_URL")
        if admin
        else (settings().database_url, "DATABASE_URL")
    )
    with _transaction(_engine(url, variable)) as conn:
        conn.execute(text("SET TRANSACTION READ WRITE"))
        yield conn


def read_frame(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    result = conn.execute(text(sql), dict(params or {}))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


@contextmanager
def reader_without_tenant() -> Iterator[Connection]:
    """The reader role with no tenant set. Only the RLS self-test uses this: it must prove that
    such a connection sees nothing."""
    with _transaction(_engine(settings().database_url, "DATABASE_URL")) as conn:
        yield conn
