"""The data-access record: who looked at which tenant's data, when, why, and what came back.

record() is called by every view that reads tenant data. Admins list, filter and export the
record; records older than the retention period (90 days) are purged from cron:

    python -m services.access_log purge --older-than-days 90

The purge runs as the admin role (ADMIN_DATABASE_URL), the only role allowed to DELETE.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import text

from services.config import rules
from services.db import admin_scope, job_lock, read_frame, write_scope
from services.errors import DashboardError, InvalidInput

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


def record(access: Access) -> None:
    with write_scope(admin=access.tenant_id == CROSS_TENANT) as conn:
        conn.execute(
            text(
                "INSERT INTO dashboard.data_access_log (actor, actor_role, tenant_id, purpose,"
                " query_kind, query_params, row_count, sensitive_revealed)"
                " VALUES (:actor, :role, :tenant, :purpose, :kind, CAST(:params AS jsonb),"
                " :rows, :sensitive)"
            ),
            {
                "actor": access.actor,
                "role": access.actor_role,
                "tenant": access.tenant_id,
                "purpose": access.purpose,
                "kind": access.query_kind,
                "params": json.dumps(access.query_params, default=str),
                "rows": access.row_count,
                "sensitive": access.sensitive_revealed,
            },
        )


@dataclass(frozen=True)
class Filters:
    since: datetime
    until: datetime
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
    if filters.until <= filters.since:
        raise InvalidInput("The end of the period must be after its start.")
    params = {
        "since": filters.since,
        "until": filters.until,
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
    """Delete records older than the given number of days; returns how many were deleted."""
    if older_than_days < 1:
        raise InvalidInput("Keep at least one day of access records.")
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    deleted = 0
    while True:
        with write_scope(admin=True) as conn:
            batch = conn.execute(
                text(
                    "DELETE FROM dashboard.data_access_log WHERE id IN ("
                    " SELECT id FROM dashboard.data_access_log WHERE accessed_at < :cutoff"
                    " ORDER BY id LIMIT :batch)"
                ),
                {"cutoff": cutoff, "batch": PURGE_BATCH},
            ).rowcount
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
