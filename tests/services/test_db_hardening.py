"""The DBA steps (grants.sql, migrations, hardening.sql) close the platform's set_tenant_context()
escalation for both dashboard roles, leave them unable to create anything, and keep their
passwords out of every table of ours. On an unhardened database the same attack works, which
proves the attack is real."""

from __future__ import annotations

import contextlib
import os
import subprocess

import psycopg
import pytest

from demo import dbsetup
from services.dbhealth import session, statements
from tests.conftest import PlatformDb
from tests.planting import add_tenant

ROLES = {
    "dashboard_reader": "STACK_READER_PASSWORD",
    "dashboard_admin": "STACK_ADMIN_PASSWORD",
}
VICTIM = "msp-victim"


def connect_as(platform: PlatformDb, role: str) -> psycopg.Connection:
    password = os.environ[ROLES[role]]
    return psycopg.connect(
        f"postgresql://{role}:{password}@127.0.0.1:{os.environ['PGPORT']}/{platform.name}",
        autocommit=True,
    )


def escalate(conn: psycopg.Connection) -> str | None:
    """Shadow tenant_configs with a temp view whose function runs inside set_tenant_context()
    (SECURITY DEFINER, owned by the superuser) and smuggles out what only a superuser can read."""
    conn.execute("SET default_transaction_read_only = off")  # a default, not a limit
    conn.execute(
        "CREATE FUNCTION pg_temp.steal() RETURNS varchar LANGUAGE plpgsql AS $$ BEGIN"
        " PERFORM set_config('stolen.authid', (SELECT string_agg(rolname || ':' ||"
        "  coalesce(rolpassword, ''), ',') FROM pg_authid WHERE rolname LIKE 'dashboard%'), false);"
        " PERFORM set_config('stolen.key', (SELECT servicedesk_api_key_encrypted"
        "  FROM public.tenant_configs WHERE tenant_id = 'msp-victim'), false);"
        " RETURN 'x'; END $$"
    )
    conn.execute("CREATE TEMP VIEW tenant_configs AS SELECT pg_temp.steal() AS tenant_id")
    # "Invalid tenant_id" may be raised, after the view (and its function) ran.
    with contextlib.suppress(psycopg.errors.RaiseException):
        conn.execute("SELECT set_tenant_context('x')")
    return conn.execute(
        "SELECT current_setting('stolen.authid', true) || ' '"
        " || current_setting('stolen.key', true)"
    ).fetchone()[0]


@pytest.fixture(scope="module")
def unhardened(make_platform_db) -> PlatformDb:
    platform = make_platform_db("unhardened", harden=False)
    with platform.superuser() as conn:
        add_tenant(conn, VICTIM)
    return platform


@pytest.fixture(scope="module")
def hardened(make_platform_db) -> PlatformDb:
    platform = make_platform_db("hardened")
    with platform.superuser() as conn:
        add_tenant(conn, VICTIM)
    return platform


@pytest.mark.parametrize("role", list(ROLES))
def test_the_escalation_works_on_the_platform_as_shipped(unhardened, role):
    with connect_as(unhardened, role) as conn:
        stolen = escalate(conn)
    assert "dashboard_reader:SCRAM-SHA-256$" in stolen
    assert f"gAAAAA-secret-key-of-{VICTIM}" in stolen


@pytest.mark.parametrize("role", list(ROLES))
def test_the_escalation_fails_after_the_dba_steps(hardened, role):
    with (
        connect_as(hardened, role) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="temporary"),
    ):
        escalate(conn)


def test_a_pinned_search_path_alone_stops_it(hardened):
    """Defence in depth: even a role that was given TEMP back cannot shadow the table."""
    with hardened.superuser() as conn:
        conn.execute(f'GRANT TEMPORARY ON DATABASE "{hardened.name}" TO dashboard_reader')
    try:
        with connect_as(hardened, "dashboard_reader") as conn:
            stolen = escalate(conn)
        assert stolen is None or "SCRAM" not in stolen and "gAAAAA" not in stolen
    finally:
        with hardened.superuser() as conn:
            conn.execute(f'REVOKE TEMPORARY ON DATABASE "{hardened.name}" FROM dashboard_reader')


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE public.mine (id int)",
        "CREATE TABLE dashboard.mine (id int)",
        "CREATE FUNCTION public.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA mine",
        "CREATE TEMP TABLE mine (id int)",
    ],
)
def test_the_roles_cannot_create_anything(hardened, role, statement):
    with connect_as(hardened, role) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_platform_roles_keep_temp(hardened):
    with hardened.superuser() as conn:
        granted = conn.execute(
            "SELECT r, has_database_privilege(r, current_database(), 'TEMPORARY')"
            " FROM unnest(ARRAY['app_user', 'admin', 'dashboard_reader', 'public']) r"
        ).fetchall()
    assert granted == [
        ("app_user", True),
        ("admin", True),
        ("dashboard_reader", False),
        ("public", False),
    ]


def test_a_misspelt_platform_role_stops_the_hardening(hardened):
    with pytest.raises(RuntimeError, match='role "no_such_role" does not exist'):
        dbsetup.apply_hardening(hardened.name, "app_user, no_such_role")


# --- no password in our tables -------------------------------------------------------------------


def run_grants_as_a_dba(platform: PlatformDb) -> None:
    """schema/grants.sql exactly as the README says, with the plain passwords."""
    subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            platform.name,
            "-v",
            f"reader_password={os.environ['STACK_READER_PASSWORD']}",
            "-v",
            f"admin_password={os.environ['STACK_ADMIN_PASSWORD']}",
            "-f",
            str(dbsetup.SCHEMA_DIR / "grants.sql"),
        ],
        check=True,
        capture_output=True,
    )


def occurrences(platform: PlatformDb, secrets: list[str]) -> list[str]:
    """Every text-ish column of every dashboard.* table that holds one of the secrets."""
    found = []
    with platform.superuser() as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'dashboard' AND data_type IN"
            " ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')"
        ).fetchall()
        assert ("query_texts", "query") in columns
        for table, column in columns:
            for secret in secrets:
                hits = conn.execute(
                    f'SELECT count(*) FROM dashboard."{table}" WHERE "{column}"::text LIKE %s',
                    (f"%{secret}%",),
                ).fetchone()[0]
                if hits:
                    found.append(f"{table}.{column}")
    return found


def test_role_passwords_never_reach_our_tables(hardened):
    passwords = [os.environ[v] for v in ROLES.values()]
    run_grants_as_a_dba(hardened)
    with hardened.superuser() as conn:
        tracked = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE ANY(%s)",
            ([f"%{p}%" for p in passwords],),
        ).fetchone()[0]
        # A statement the DBA ran before this fix, still in pg_stat_statements.
        conn.execute("CREATE ROLE hardening_probe NOLOGIN")
        conn.execute("ALTER ROLE hardening_probe PASSWORD 'probe-Secret-123'")
        conn.execute("DROP ROLE hardening_probe")
    assert tracked == 0
    hardened.use()
    statements.take_snapshot()
    assert occurrences(hardened, [*passwords, "probe-Secret-123"]) == []
    with hardened.superuser() as conn:
        texts = conn.execute(
            "SELECT query FROM dashboard.query_texts WHERE query LIKE '%hardening_probe PASSWORD%'"
        ).fetchall()
    assert texts == [("ALTER ROLE hardening_probe PASSWORD '<redacted>'",)]


@pytest.mark.parametrize(
    ("query", "redacted"),
    [
        ("ALTER ROLE r PASSWORD 'a''b'", "ALTER ROLE r PASSWORD '<redacted>'"),
        (
            "CREATE USER r WITH ENCRYPTED PASSWORD E'a\\'b' VALID UNTIL 'infinity'",
            "CREATE USER r WITH ENCRYPTED PASSWORD '<redacted>' VALID UNTIL 'infinity'",
        ),
        ("alter user r password $x$s'$x$ login", "alter user r password '<redacted>' login"),
        ("ALTER ROLE r PASSWORD 'cut off by left(query, 500", "ALTER ROLE r PASSWORD '<redacted>'"),
        ("SELECT dblink('password=s3cr3t host=h')", "SELECT dblink('password=<redacted> host=h')"),
        (
            "SELECT password FROM t WHERE password = 'x'",
            "SELECT password FROM t WHERE password = 'x'",
        ),
        ("ALTER ROLE r PASSWORD NULL", None),
    ],
)
@pytest.mark.unit
def test_redact_secrets(query, redacted):
    assert session.redact_secrets(query) == (redacted or query)
