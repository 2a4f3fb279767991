"""The data-access record: who looked at which tenant's data, when, why, and what came back.

record() is called by every view that reads tenant data. Admins list, filter and export the
record; records older than the retention period (90 days) are purged from cron:

    python -m services.access_log purge --older-than-days 90

The record is append-only (schema/migrations/004): the roles write it only through
dashboard.record_access(), which re-checks every field, and delete only through
dashboard.purge_access_log(), which keeps at least 90 days. The purge runs as the admin role
(ADMIN_DATABASE_URL), the only role allowed to call it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.config import rules
from services.db import TENANT_ID_PATTERN, admin_scope, job_lock, read_frame, write_scope
from services.errors import DashboardError, InvalidInput, RecordRefused
from services.timerange import TimeRange

CROSS_TENANT = "*"
COLUMNS = (
    "accessed_at",
    "actor",
    "actor_role",
    "tenant_id",
    "purpose",
    "query_kind",
    "query_params",
    "row_count",
    "sensitive_revealed",
)
PURGE_BATCH = 5000  # rows per DELETE: short transactions, well inside the admin statement timeout
# The procedures' compliance policy; dashboard.purge_access_log() enforces it too.
MIN_RETENTION_DAYS = 90
PURPOSE_MAX = 500
# Kinds for attempts that were refused: recorded too, so probing shows up in the record.
EXPLAIN_REFUSED = "explain_refused"
ACCESS_REFUSED = "access_refused"
# The same rules as dashboard.record_access(), checked here first for a clearer message.
SERVICE_ACTORS = ("cron",)
ACTOR_ROLES = ("admin", "support", "client", "service")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_QUERY_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
# C0 and C1 control characters (NUL included): whitespace ones become a space, the rest go.
_CONTROL_SPACE = re.compile(r"[\t\n\r\v\f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Access:
    actor: str
    actor_role: str
    tenant_id: str
    purpose: str
    query_kind: str
    query_params: dict[str, Any] = field(default_factory=dict)
    row_count: int | None = None
    sensitive_revealed: bool = False


def clean_text(value: str) -> str:
    """value without control characters (NUL included), as typed otherwise."""
    return _CONTROL.sub("", _CONTROL_SPACE.sub(" ", value))


def clean_purpose(purpose: str) -> str:
    """The purpose as typed, without control characters and capped at PURPOSE_MAX characters."""
    cleaned = clean_text(purpose).strip()
    if not cleaned:
        raise RecordRefused("no purpose of access was given")
    return cleaned if len(cleaned) <= PURPOSE_MAX else cleaned[: PURPOSE_MAX - 1] + "…"


def _clean_params(value: Any) -> Any:
    # jsonb refuses \u0000, and control characters have no business in a record.
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_params(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_params(v) for v in value]
    return value


def _checked(access: Access) -> dict[str, Any]:
    actor = access.actor.strip()
    if len(actor) > 254 or not (_EMAIL.fullmatch(actor) or actor in SERVICE_ACTORS):
        raise RecordRefused("the signed-in user has no plausible email address")
    if access.actor_role not in ACTOR_ROLES:
        raise RecordRefused(f"unknown role {access.actor_role[:20]!r}")
    if access.tenant_id != CROSS_TENANT and not TENANT_ID_PATTERN.fullmatch(access.tenant_id):
        raise RecordRefused("invalid tenant id")
    if not _QUERY_KIND.fullmatch(access.query_kind):
        raise RecordRefused("invalid query kind")
    return {
        "actor": actor,
        "role": access.actor_role,
        "tenant": access.tenant_id,
        "purpose": clean_purpose(access.purpose),
        "kind": access.query_kind,
        "params": json.dumps(_clean_params(access.query_params), default=str),
        "rows": access.row_count,
        "sensitive": access.sensitive_revealed,
    }


def record(access: Access) -> None:
    """Append one record. Raises RecordRefused, SourceUnavailable or QueryTimeout when it cannot
    (the caller then shows no data)."""
    values = _checked(access)
    try:
        with write_scope(admin=access.tenant_id == CROSS_TENANT) as conn:
            conn.execute(
                text(
                    "SELECT dashboard.record_access(:actor, :role, :tenant, :purpose, :kind,"
                    " CAST(:params AS jsonb), :rows, :sensitive)"
                ),
                values,
            )
    except DBAPIError as exc:  # the function's own checks, or its grants missing
        raise RecordRefused(_reason(exc)) from exc


def _reason(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    message = getattr(diag, "message_primary", None) or str(exc.orig).strip().splitlines()[0]
    return f"PostgreSQL: {message}"


@dataclass(frozen=True)
class Filters:
    period: TimeRange
    tenant_id: str | None = None  # exact; CROSS_TENANT for admin reads
    actor: str = ""  # substring, case-insensitive
    query_kind: str | None = None
    sensitive_only: bool = False
    text: str = ""  # substring of the purpose or the parameters


def _like(value: str) -> str | None:
    value = value.strip()
    if len(value) > 200:
        raise InvalidInput("Filter text is limited to 200 characters.")
    if not value:
        return None
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_LIST_SQL = """
SELECT accessed_at, actor, actor_role, tenant_id, purpose, query_kind,
       query_params::text AS query_params, row_count, sensitive_revealed
  FROM dashboard.data_access_log
 WHERE accessed_at >= :since AND accessed_at < :until
   AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
   AND (CAST(:actor AS text) IS NULL OR actor ILIKE :actor ESCAPE '\\')
   AND (CAST(:kind AS text) IS NULL OR query_kind = :kind)
   AND (NOT :sensitive_only OR sensitive_revealed)
   AND (CAST(:text AS text) IS NULL OR purpose ILIKE :text ESCAPE '\\'
        OR query_params::text ILIKE :text ESCAPE '\\')
 ORDER BY accessed_at DESC, id DESC
 LIMIT :limit
"""


def list_records(filters: Filters, limit: int) -> pd.DataFrame:
    """Matching records, newest first (admin role: the reader role can only insert)."""
    if filters.period.until <= filters.period.since:
        raise InvalidInput("The end of the period must be after its start.")
    params = {
        **filters.period.params,
        "tenant": filters.tenant_id or None,
        "actor": _like(filters.actor),
        "kind": filters.query_kind or None,
        "sensitive_only": filters.sensitive_only,
        "text": _like(filters.text),
        "limit": limit,
    }
    with admin_scope() as conn:
        return read_frame(conn, _LIST_SQL, params)


def query_kinds() -> list[str]:
    with admin_scope() as conn:
        frame = read_frame(
            conn, "SELECT DISTINCT query_kind FROM dashboard.data_access_log ORDER BY 1"
        )
    return frame["query_kind"].tolist()


def _defuse(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame) -> bytes:
    """The records as CSV (UTF-8, ISO timestamps), safe to open in a spreadsheet."""
    out = frame.loc[:, list(COLUMNS)].copy()
    out["accessed_at"] = pd.to_datetime(out["accessed_at"], utc=True).map(
        lambda t: t.isoformat(timespec="seconds")
    )
    out["row_count"] = out["row_count"].astype("Int64")
    out = out.astype(object).map(_defuse)
    return out.to_csv(index=False).encode("utf-8")


def purge(older_than_days: int) -> int:
    """Delete records older than the given number of days (at least MIN_RETENTION_DAYS) through
    dashboard.purge_access_log(); returns how many were deleted."""
    if older_than_days < MIN_RETENTION_DAYS:
        raise InvalidInput(
            f"Access records are kept at least {MIN_RETENTION_DAYS} days (the compliance policy)."
        )
    deleted = 0
    while True:
        with write_scope(admin=True) as conn:
            batch = conn.execute(
                text("SELECT dashboard.purge_access_log(:days, :batch)"),
                {"days": older_than_days, "batch": PURGE_BATCH},
            ).scalar_one()
        deleted += batch
        if batch < PURGE_BATCH:
            return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.access_log", description="Maintain the data-access record."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    purge_cmd = commands.add_parser("purge", help="delete records past the retention period")
    purge_cmd.add_argument(
        "--older-than-days",
        type=int,
        default=rules("access_log")["retention_days"],
        help="delete records older than this many days (default: dashboard.toml, 90)",
    )
    args = parser.parse_args(argv)
    try:
        # One purge at a time across replicas and CronJob runs.
        with job_lock("dashboard.data_access_log purge") as ours:
            if not ours:
                print("access log purge skipped: another run is purging")
                return 0
            deleted = purge(args.older_than_days)
    except DashboardError as exc:
        print(f"access log purge failed: {exc}", file=sys.stderr)
        return 1
    print(f"purged {deleted} access records older than {args.older_than_days} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
