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

# The contract's policy names (section 2): two styles coexist, and a table may have both.
CONTRACT_POLICIES = {
    "tenant_configs": ("tenant_config_isolation_policy", "tenant_configs_tenant_isolation_policy"),
    "enhancement_history": (
        "tenant_isolation_policy",
        "enhancement_history_tenant_isolation_policy",
    ),
    "enhancement_feedback": ("tenant_isolation_policy_enhancement_feedback",),
    "ticket_history": ("ticket_history_tenant_isolation_policy",),
    "system_inventory": ("system_inventory_tenant_isolation_policy",),
}
TENANT_TABLES = tuple(CONTRACT_POLICIES)
# Every table holding tenant rows that the isolation checks read: the platform's, and the
# dashboard's own rollups (services/rollups.py), which carry ticket ids per tenant too.
SCOPED_TABLES = (*TENANT_TABLES, "dashboard.run_hours")
ADMIN_POLICY = "dashboard_admin_read"  # schema/grants.sql: SELECT-only, for the admin role

ESCALATION = (
    "1. IMMEDIATE ESCALATION to Engineering + Security (P0: data leak).",
    "2. Isolate the affected tenant (disable its API access if necessary).",
    "3. Collect audit logs for forensic analysis; do not share any screen until this passes.",
)

# Groups, in the order they are shown.
POLICIES = "Row-level security on the tenant tables"
ROLES = "The dashboard's database roles"
ESCALATION_HAZARDS = "Privilege escalation"
SECRETS = "Secrets"
ISOLATION = "Tenant isolation"
GROUPS = (POLICIES, ROLES, ESCALATION_HAZARDS, SECRETS, ISOLATION)

ISOLATION_FIX = "Find the failing table or role check above and fix it first; then escalate."
HARDENING = "Run `schema/hardening.sql` (README: Connecting to a production platform database)."


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    group: str = ISOLATION
    fix: str = ""  # what a DBA or engineer does when it fails


def _scalar(conn: Connection, sql: str, **params: object) -> object:
    return conn.execute(text(sql), params).scalar_one()


def _is_tenant_policy(qual: str | None) -> bool:
    return bool(qual) and "tenant_id" in qual and "app.current_tenant_id" in qual


def _table_checks(conn: Connection, reader: str) -> list[Check]:
    checks = []
    for table, expected in CONTRACT_POLICIES.items():
        rls_on, forced = conn.execute(
            text(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
                " WHERE oid = to_regclass(:t)"
            ),
            {"t": f"public.{table}"},
        ).one()
        policies = conn.execute(
            text(
                "SELECT policyname, permissive, roles::text[] AS roles, qual FROM pg_policies"
                " WHERE schemaname = 'public' AND tablename = :t ORDER BY policyname"
            ),
            {"t": table},
        ).all()
        tenant = [p.policyname for p in policies if _is_tenant_policy(p.qual)]
        # A permissive policy is OR-ed with the tenant policy: one that applies to the reader and
        # is not a tenant policy would widen what every tenant scope sees.
        widening = [
            p.policyname
            for p in policies
            if p.permissive == "PERMISSIVE"
            and not _is_tenant_policy(p.qual)
            and {"public", reader} & set(p.roles)
        ]
        names = {p.policyname for p in policies} - {ADMIN_POLICY}
        missing = [n for n in expected if n not in names]
        extra = sorted(names - set(expected))
        contract = (
            "as the contract lists"
            if not missing and not extra
            else "differs from the contract:"
            + (f" missing {', '.join(missing)}" if missing else "")
            + (f"; not in it: {', '.join(extra)}" if extra else "")
        )
        detail = (
            f"row security {'on' if rls_on else 'OFF'} ({'forced' if forced else 'not forced'}),"
            f" {len(tenant)} tenant policies: {', '.join(tenant) or 'none'} ({contract})"
        )
        if widening:
            detail += f"; WIDENING for {reader}: {', '.join(widening)}"
        checks.append(
            Check(
                f"{table}: RLS enabled with a tenant policy",
                bool(rls_on) and bool(tenant) and not widening,
                detail,
                POLICIES,
                f"Restore the platform's policies on `{table}` (`ENABLE ROW LEVEL SECURITY`,"
                " `tenant_id = current_setting('app.current_tenant_id')`) and drop any policy"
                " that is not scoped to the tenant.",
            )
        )
    return checks


def _force_check(conn: Connection) -> Check:
    """Informational: the platform never FORCEs RLS, so an owner sees every row."""
    forced = conn.execute(
        text(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relname = ANY(:t) AND relforcerowsecurity ORDER BY 1"
        ),
        {"t": list(TENANT_TABLES)},
    ).scalars()
    forced = list(forced)
    return Check(
        "FORCE ROW LEVEL SECURITY (informational)",
        True,
        f"forced on {', '.join(forced)}"
        if forced
        else "not forced on any tenant table, as the platform ships: a table owner bypasses"
        " RLS, so the dashboard's roles must own nothing",
        ROLES,
    )


_MEMBER_OF = "SELECT oid FROM pg_roles WHERE pg_has_role(:r, oid, 'MEMBER')"


def _role_checks(conn: Connection, role: str) -> list[Check]:
    # Membership counts even for a NOINHERIT role: it can SET ROLE to any role it is a member of.
    privileged = conn.execute(
        text(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles"
            f" WHERE oid IN ({_MEMBER_OF}) AND (rolsuper OR rolbypassrls) ORDER BY 1"
        ),
        {"r": role},
    ).all()
    owned = _scalar(
        conn,
        f"SELECT count(*) FROM pg_class WHERE relowner IN ({_MEMBER_OF})"
        " AND relnamespace NOT IN ('pg_catalog'::regnamespace,"
        " 'information_schema'::regnamespace, 'pg_toast'::regnamespace)",
        r=role,
    )
    problems = [
        ("superuser" if p.rolsuper else "BYPASSRLS")
        + ("" if p.rolname == role else f" via {p.rolname}")
        for p in privileged
    ]
    if owned:
        problems.append(f"owns {owned} relation{'' if owned == 1 else 's'}")
    return [
        Check(
            f"role {role}: not superuser, not BYPASSRLS, owns nothing",
            not problems,
            ", ".join(problems) or "ok",
            ROLES,
            f"Connect as the roles `schema/grants.sql` creates: `ALTER ROLE {role} NOSUPERUSER"
            " NOBYPASSRLS`, and `REASSIGN OWNED BY` it to the platform's owner.",
        )
    ]


def _create_checks(conn: Connection, role: str) -> list[Check]:
    temp = conn.execute(
        text(
            f"SELECT rolname FROM pg_roles WHERE oid IN ({_MEMBER_OF})"
            " AND has_database_privilege(oid, current_database(), 'TEMPORARY') ORDER BY 1"
        ),
        {"r": role},
    ).scalars()
    temp = list(temp)
    create = conn.execute(
        text(
            f"SELECT m.rolname || ' in ' || n.nspname FROM pg_roles m, pg_namespace n"
            f" WHERE m.oid IN ({_MEMBER_OF}) AND has_schema_privilege(m.oid, n.oid, 'CREATE')"
            " UNION ALL"
            f" SELECT m.rolname || ' in database ' || current_database() FROM pg_roles m"
            f" WHERE m.oid IN ({_MEMBER_OF})"
            " AND has_database_privilege(m.oid, current_database(), 'CREATE')"
            " ORDER BY 1"
        ),
        {"r": role},
    ).scalars()
    create = list(create)
    return [
        Check(
            f"role {role}: cannot create temporary objects",
            not temp,
            f"TEMPORARY on this database for {', '.join(temp)} (PUBLIC has it by default):"
            " a temp view can shadow a table inside a SECURITY DEFINER function"
            if temp
            else "no TEMPORARY privilege",
            ESCALATION_HAZARDS,
            HARDENING + " It revokes TEMPORARY from PUBLIC and grants it back to the"
            " platform's own roles.",
        ),
        Check(
            f"role {role}: cannot create objects in any schema",
            not create,
            f"CREATE for {', '.join(create)}" if create else "no CREATE on any schema or database",
            ESCALATION_HAZARDS,
            f"`REVOKE CREATE ON SCHEMA ... FROM PUBLIC, {role}` (and `ON DATABASE`).",
        ),
    ]


def search_path_pinned(proconfig: list[str] | None) -> bool:
    """A search_path that does not name pg_temp searches it FIRST: pinned means set, with
    pg_temp explicitly last."""
    for setting in proconfig or ():
        name, _, value = setting.partition("=")
        if name == "search_path":
            schemas = [s.strip().strip('"') for s in value.split(",")]
            return schemas[-1] == "pg_temp"
    return False


def _definer_check(conn: Connection, roles: tuple[str, ...]) -> Check:
    rows = conn.execute(
        text(
            "SELECT p.oid::regprocedure::text AS function, p.proconfig FROM pg_proc p"
            " WHERE p.prosecdef AND EXISTS (SELECT 1 FROM pg_roles m"
            "  WHERE EXISTS (SELECT 1 FROM unnest(CAST(:roles AS text[])) r"
            "               WHERE pg_has_role(r, m.oid, 'MEMBER'))"
            "  AND has_function_privilege(m.oid, p.oid, 'EXECUTE'))"
            " ORDER BY 1"
        ),
        {"roles": list(roles)},
    ).all()
    unsafe = [r.function for r in rows if not search_path_pinned(r.proconfig)]
    return Check(
        "SECURITY DEFINER functions the dashboard can call pin search_path",
        not unsafe,
        f"search_path not pinned (pg_temp last) on: {', '.join(unsafe)}: a temp object can"
        " shadow what they read and run as their owner"
        if unsafe
        else f"{len(rows)} callable, all with search_path pinned and pg_temp last",
        ESCALATION_HAZARDS,
        HARDENING + " For another function: `ALTER FUNCTION ... SET search_path = its_schema,"
        " pg_temp`.",
    )


def _isolation_checks(tenant: str, other: str, own_rows: int) -> list[Check]:
    with self_test_scope(tenant) as conn:
        seen = int(_scalar(conn, "SELECT count(*) FROM enhancement_history"))
        foreign = sum(
            int(_scalar(conn, f"SELECT count(*) FROM {t} WHERE tenant_id <> :t", t=tenant))
            for t in SCOPED_TABLES
        )
        other_rows = int(
            _scalar(conn, "SELECT count(*) FROM enhancement_history WHERE tenant_id = :o", o=other)
        )
    return [
        Check(
            f"tenant scope {tenant} sees exactly its own rows",
            seen == own_rows,
            f"{seen} rows visible, {own_rows} exist",
            ISOLATION,
            ISOLATION_FIX,
        ),
        Check(
            f"tenant scope {tenant} sees no other tenant's rows",
            foreign == 0,
            f"{foreign} foreign rows visible across {len(SCOPED_TABLES)} tables",
            ISOLATION,
            ISOLATION_FIX,
        ),
        Check(
            f"another tenant's rows ({other}) are invisible",
            other_rows == 0,
            f"{other_rows} rows of {other} visible",
            ISOLATION,
            ISOLATION_FIX,
        ),
    ]


def _no_scope_check() -> Check:
    visible = 0
    refused = []
    for table in SCOPED_TABLES:
        try:
            with self_test_scope() as conn:
                visible += int(_scalar(conn, f"SELECT count(*) FROM {table}"))
        except DBAPIError:
            refused.append(table)  # older policy style raises when the setting is missing
    return Check(
        "no tenant set: nothing visible",
        visible == 0,
        f"{visible} rows visible" + (f"; refused on {', '.join(refused)}" if refused else ""),
        ISOLATION,
        ISOLATION_FIX,
    )


def _encrypted_columns(conn: Connection) -> list[tuple[str, str]]:
    """(table, column) of every *_encrypted column of the platform's tables."""
    # pg_attribute, not information_schema: the latter hides columns we may not read.
    rows = conn.execute(
        text(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0"
            " AND NOT a.attisdropped AND a.attname LIKE '%\\_encrypted'"
        )
    ).all()
    return [(str(table), str(column)) for table, column in rows]


def _encrypted_checks(columns: list[tuple[str, str]], tenant: str) -> list[Check]:
    """Each role tries each column, in a scope of its own (no other connection held meanwhile:
    db.in_background says why)."""
    checks = []
    for scope_name, scope in (("reader", lambda: self_test_scope(tenant)), ("admin", admin_scope)):
        readable = []
        for table, column in columns:
            try:
                with scope() as probe:
                    # the column's SELECT privilege is checked, yet no row is read or sent:
                    # a ciphertext never leaves the database, even for a role that may read it
                    probe.execute(
                        text(f'SELECT 1 FROM "{table}" WHERE "{column}" IS NULL AND false')
                    )
                readable.append(f"{table}.{column}")
            except DBAPIError as exc:
                if "permission denied" not in str(exc.orig):
                    raise
        checks.append(
            Check(
                f"{scope_name} role cannot read any *_encrypted column",
                not readable and bool(columns),
                ", ".join(readable) or f"{len(columns)} columns refused",
                SECRETS,
                "Run `schema/grants.sql` again: it grants SELECT on the other columns only.",
            )
        )
    return checks


# The two tenants the isolation checks compare: the two with the fewest runs among the first
# CANDIDATE_TENANTS tenant ids (a skip scan of the tenant_id index, then an index-only count of
# each), so that the probes under their scope walk a small tenant's rows, not the fleet's
# largest or the whole table.
CANDIDATE_TENANTS = 8
_TWO_TENANTS_SQL = """
WITH RECURSIVE ids AS (
    (SELECT tenant_id FROM enhancement_history ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT h.tenant_id FROM enhancement_history h
             WHERE h.tenant_id > ids.tenant_id ORDER BY h.tenant_id LIMIT 1)
      FROM ids
     WHERE ids.tenant_id IS NOT NULL
), candidates AS (
    SELECT tenant_id FROM ids WHERE tenant_id IS NOT NULL LIMIT :candidates
)
SELECT c.tenant_id,
       (SELECT count(*) FROM enhancement_history h WHERE h.tenant_id = c.tenant_id) AS n
  FROM candidates c
 ORDER BY n, c.tenant_id
 LIMIT 2
"""


def run_checks() -> list[Check]:
    """Every check, in group order. Needs at least two tenants with enhancement history."""
    with self_test_scope() as conn:
        reader = str(_scalar(conn, "SELECT current_user"))
    with admin_scope() as conn:
        admin = str(_scalar(conn, "SELECT current_user"))
        checks = _table_checks(conn, reader)
        checks.append(_force_check(conn))
        for role in (reader, admin):
            checks += _role_checks(conn, role)
        for role in (reader, admin):
            checks += _create_checks(conn, role)
        checks.append(_definer_check(conn, (reader, admin)))
        tenants = conn.execute(text(_TWO_TENANTS_SQL), {"candidates": CANDIDATE_TENANTS}).all()
        if len(tenants) < 2:
            return [
                *checks,
                Check(
                    "two tenants with data to compare",
                    False,
                    f"found {len(tenants)}",
                    fix="Run the self-test on a database with at least two tenants' runs.",
                ),
            ]
        (tenant, own_rows), (other, _) = tenants
        columns = _encrypted_columns(conn)
    checks += _encrypted_checks(columns, tenant)
    checks += _isolation_checks(tenant, other, int(own_rows))
    checks.append(_no_scope_check())
    return checks


def main(run: Callable[[], list[Check]] = run_checks) -> int:
    try:
        checks = run()
    except DashboardError as exc:
        print(f"RLS self-test could not run: {exc}")
        return 2
    for group in GROUPS:
        members = [c for c in checks if c.group == group]
        if members:
            print(f"\n{group}")
        for check in members:
            print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}  ({check.detail})")
            if not check.passed and check.fix:
                print(f"        fix: {check.fix}")
    failed = [c for c in checks if not c.passed]
    if failed:
        print(f"\n{len(failed)} check(s) FAILED. Procedure:\n" + "\n".join(ESCALATION))
        return 1
    print(f"\nAll {len(checks)} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
