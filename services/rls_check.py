"""The procedures' RLS verification, automated. Also a command for monitoring:

python -m services.rls_check        # exit 0 when every check passes, 1 otherwise
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from services.db import admin_scope, self_test_scope
from services.errors import DashboardError

TENANT_TABLES = (
    "tenant_configs",
    "enhancement_history",
    "enhancement_feedback",
    "ticket_history",
    "system_inventory",
)

ESCALATION = (
    "1. IMMEDIATE ESCALATION to Engineering + Security (P0: data leak).",
    "2. Isolate the affected tenant (disable its API access if necessary).",
    "3. Collect audit logs for forensic analysis; do not share any screen until this passes.",
)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _scalar(conn: Connection, sql: str, **params: object) -> object:
    return conn.execute(text(sql), params).scalar_one()


def _table_checks(conn: Connection) -> list[Check]:
    checks = []
    for table in TENANT_TABLES:
        rls_on = _scalar(
            conn,
            "SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:t)",
            t=f"public.{table}",
        )
        policies = _scalar(
            conn,
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"
            " AND tablename = :t AND qual LIKE '%app.current_tenant_id%'",
            t=table,
        )
        checks.append(
            Check(
                f"{table}: RLS enabled with a tenant policy",
                bool(rls_on) and policies > 0,
                f"row security {'on' if rls_on else 'OFF'}, {policies} tenant policies",
            )
        )
    return checks


def _role_checks(conn: Connection, role: str) -> list[Check]:
    row = conn.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).one()
    owned = _scalar(
        conn,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = :r",
        r=role,
    )
    problems = [
        name
        for name, bad in (
            ("superuser", row.rolsuper),
            ("BYPASSRLS", row.rolbypassrls),
            (f"owns {owned} tables", owned),
        )
        if bad
    ]
    return [
        Check(
            f"role {role}: not superuser, not BYPASSRLS, owns nothing",
            not problems,
            ", ".join(problems) or "ok",
        )
    ]


def _isolation_checks(tenant: str, other: str, own_rows: int) -> list[Check]:
    with self_test_scope(tenant) as conn:
        role = str(_scalar(conn, "SELECT current_user"))
        seen = int(_scalar(conn, "SELECT count(*) FROM enhancement_history"))
        foreign = sum(
            int(_scalar(conn, f"SELECT count(*) FROM {t} WHERE tenant_id <> :t", t=tenant))
            for t in TENANT_TABLES
        )
        other_rows = int(
            _scalar(conn, "SELECT count(*) FROM enhancement_history WHERE tenant_id = :o", o=other)
        )
    return [
        *_role_checks_for(role),
        Check(
            f"tenant scope {tenant} sees exactly its own rows",
            seen == own_rows,
            f"{seen} rows visible, {own_rows} exist",
        ),
        Check(
            f"tenant scope {tenant} sees no other tenant's rows",
            foreign == 0,
            f"{foreign} foreign rows visible across {len(TENANT_TABLES)} tables",
        ),
        Check(
            f"another tenant's rows ({other}) are invisible",
            other_rows == 0,
            f"{other_rows} rows of {other} visible",
        ),
    ]


def _role_checks_for(role: str) -> list[Check]:
    with admin_scope() as conn:
        return _role_checks(conn, role)


def _no_scope_check() -> Check:
    visible = 0
    refused = []
    for table in TENANT_TABLES:
        try:
            with self_test_scope() as conn:
                visible += int(_scalar(conn, f"SELECT count(*) FROM {table}"))
        except DBAPIError:
            refused.append(table)  # older policy style raises when the setting is missing
    return Check(
        "no tenant set: nothing visible",
        visible == 0,
        f"{visible} rows visible" + (f"; refused on {', '.join(refused)}" if refused else ""),
    )


def _encrypted_checks(conn: Connection, tenant: str) -> list[Check]:
    # pg_attribute, not information_schema: the latter hides columns we may not read.
    columns = conn.execute(
        text(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0"
            " AND NOT a.attisdropped AND a.attname LIKE '%\\_encrypted'"
        )
    ).all()
    checks = []
    for scope_name, scope in (("reader", lambda: self_test_scope(tenant)), ("admin", admin_scope)):
        readable = []
        for table, column in columns:
            try:
                with scope() as probe:
                    probe.execute(text(f'SELECT "{column}" FROM "{table}" LIMIT 1'))
                readable.append(f"{table}.{column}")
            except DBAPIError as exc:
                if "permission denied" not in str(exc.orig):
                    raise
        checks.append(
            Check(
                f"{scope_name} role cannot read any *_encrypted column",
                not readable and bool(columns),
                ", ".join(readable) or f"{len(columns)} columns refused",
            )
        )
    return checks


def run_checks() -> list[Check]:
    """Every check, in order. Needs at least two tenants with enhancement history."""
    with admin_scope() as conn:
        checks = _table_checks(conn)
        admin_role = str(_scalar(conn, "SELECT current_user"))
        checks += _role_checks(conn, admin_role)
        tenants = conn.execute(
            text(
                "SELECT tenant_id, count(*) AS n FROM enhancement_history GROUP BY tenant_id"
                " ORDER BY n DESC LIMIT 2"
            )
        ).all()
        if len(tenants) < 2:
            return [
                *checks,
                Check("two tenants with data to compare", False, f"found {len(tenants)}"),
            ]
        (tenant, own_rows), (other, _) = tenants
        checks += _encrypted_checks(conn, tenant)
    checks += _isolation_checks(tenant, other, int(own_rows))
    checks.append(_no_scope_check())
    return checks


def main(run: Callable[[], list[Check]] = run_checks) -> int:
    try:
        checks = run()
    except DashboardError as exc:
        print(f"RLS self-test could not run: {exc}")
        return 2
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}  ({check.detail})")
    failed = [c for c in checks if not c.passed]
    if failed:
        print(f"\n{len(failed)} check(s) FAILED. Procedure:\n" + "\n".join(ESCALATION))
        return 1
    print(f"\nAll {len(checks)} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
