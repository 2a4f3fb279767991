"""What every database-health topic shares: the admin session it reads in, and what it does to
the texts it returns (password literals redacted) and shows (durations).

Everything runs as the admin role in a READ ONLY transaction with a short statement timeout.
The role is NOINHERIT, so the statistics reads assume pg_monitor for their transaction only
(SET LOCAL ROLE). pg_stat_statements counts for the whole cluster; every read keeps the current
database only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import ProgrammingError

from services.config import rules
from services.db import admin_scope
from services.errors import SourceUnavailable

# pg_stat_statements keys its counters by database oid.
DBID = "(SELECT oid FROM pg_database WHERE datname = current_database())"


def limits(conn: Connection, timeout_ms: int | None = None, read_only: bool = True) -> None:
    ms = timeout_ms or rules("db_health")["statement_timeout_ms"]
    conn.execute(
        text(
            "SELECT set_config('statement_timeout', :ms, true),"
            " set_config('transaction_read_only', :ro, true)"
        ),
        {"ms": str(int(ms)), "ro": "on" if read_only else "off"},
    )


@contextmanager
def read() -> Iterator[Connection]:
    """The admin role, read-only, with the health statement timeout (the dashboard's tables)."""
    with admin_scope() as conn:
        limits(conn)
        yield conn


@contextmanager
def monitor(conn: Connection) -> Iterator[Connection]:
    """Assume pg_monitor inside this transaction: every user's statistics and query texts."""
    try:
        conn.execute(text("SET LOCAL ROLE pg_monitor"))
    except ProgrammingError as exc:  # the DBA has not run schema/grants.sql's GRANT pg_monitor
        raise SourceUnavailable(
            "PostgreSQL statistics", "the dashboard_admin role is not a member of pg_monitor"
        ) from exc
    yield conn
    conn.execute(text("SET LOCAL ROLE NONE"))


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
