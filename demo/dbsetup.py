"""Create a platform-shaped database with the dashboard's roles and migrations.

Runs the SQL files in schema/ through psql as the private stack's superuser, exactly as a DBA
would run them against a production platform database: grants.sql, the migrations and the
opt-in hardening.sql (so the demo is not open to the platform's set_tenant_context() hazard).
Used by `make demo` and by the tests (which create their own databases, so they never touch
the demo one; some build an unhardened one on purpose).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import subprocess
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
MIGRATIONS_DIR = SCHEMA_DIR / "migrations"


def _psql(database: str, *args: str, stdin: str | None = None) -> str:
    """Run psql as the stack superuser (PGHOST/PGPORT/PGUSER from .stack/env)."""
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed ({' '.join(args)}): {done.stderr.strip()}")
    return done.stdout


def database_exists(name: str) -> bool:
    out = _psql("postgres", "-tA", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    return out.strip() == "1"


def create_database(name: str) -> None:
    if not database_exists(name):
        _psql("postgres", "-c", f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    _psql("postgres", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def apply_platform_schema(database: str, force_rls: bool = True) -> None:
    _psql(database, "-f", str(SCHEMA_DIR / "platform.sql"))
    _psql(database, "-c", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    if force_rls:
        _psql(database, "-f", str(SCHEMA_DIR / "demo_force_rls.sql"))


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677), computed
    here so the password itself is never sent to the server (nor lands in its statistics)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def apply_grants(database: str, reader_password: str, admin_password: str) -> None:
    _psql(
        database,
        "-v",
        f"reader_password={scram_verifier(reader_password)}",
        "-v",
        f"admin_password={scram_verifier(admin_password)}",
        "-f",
        str(SCHEMA_DIR / "grants.sql"),
    )


def apply_hardening(database: str, platform_roles: str = "") -> None:
    """schema/hardening.sql: the platform-side fix a DBA opts into."""
    _psql(
        database, "-v", f"platform_roles={platform_roles}", "-f", str(SCHEMA_DIR / "hardening.sql")
    )


def apply_migrations(database: str) -> list[str]:
    """Apply schema/migrations/NNN_*.sql not applied yet, each in one transaction."""
    _psql(
        database,
        "-c",
        "CREATE SCHEMA IF NOT EXISTS dashboard; "
        "CREATE TABLE IF NOT EXISTS dashboard.schema_migrations ("
        "version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    done = set(
        _psql(database, "-tA", "-c", "SELECT version FROM dashboard.schema_migrations").split()
    )
    applied = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.stem in done:
            continue
        sql = path.read_text() + (
            f"\nINSERT INTO dashboard.schema_migrations (version) VALUES ('{path.stem}');\n"
        )
        _psql(database, "-1", stdin=sql)
        applied.append(path.stem)
    return applied


def prepare(database: str, force_rls: bool = True, harden: bool = True) -> None:
    """Everything a fresh platform-shaped database needs for the dashboard (harden=False: the
    platform as shipped, open to the set_tenant_context() escalation)."""
    create_database(database)
    apply_platform_schema(database, force_rls=force_rls)
    apply_grants(database, os.environ["STACK_READER_PASSWORD"], os.environ["STACK_ADMIN_PASSWORD"])
    apply_migrations(database)
    if harden:
        apply_hardening(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="only apply the dashboard's migrations it lacks (a database loaded by an older "
        "checkout), keeping its data",
    )
    args = parser.parse_args()
    if args.migrate:
        applied = apply_migrations(args.database)
        print(f"database {args.database}: {', '.join(applied) or 'no migration'} applied")
        return
    # The demo database is rebuilt from scratch, so it always has the current platform schema
    # (CREATE TABLE IF NOT EXISTS would keep an older reproduction's columns and policies).
    drop_database(args.database)
    prepare(args.database)
    print(f"database {args.database} ready")


if __name__ == "__main__":
    main()
