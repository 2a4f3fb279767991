"""The RLS self-test passes on a correct database and fails loudly on broken ones."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from services import db, rls_check
from tests.conftest import ROOT, PlatformDb
from tests.planting import add_feedback, add_runs, add_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def plant_two_tenants(platform: PlatformDb) -> None:
    with platform.superuser() as conn:
        for tenant, runs in (("msp-first", 5), ("msp-second", 3)):
            add_tenant(conn, tenant)
            add_runs(conn, tenant, runs, "completed", NOW)
            add_feedback(conn, tenant, "1", "thumbs_up", NOW)


@pytest.fixture
def checked_db(make_platform_db) -> PlatformDb:
    platform = make_platform_db("rls")
    plant_two_tenants(platform)
    platform.use()
    return platform


def failed(checks: list[rls_check.Check]) -> list[str]:
    return [c.name for c in checks if not c.passed]


def run_cli(platform: PlatformDb, reader_url: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": reader_url or platform.reader_url,
        "ADMIN_DATABASE_URL": platform.admin_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.rls_check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_correct_database_passes_every_check(checked_db):
    checks = rls_check.run_checks()
    assert failed(checks) == []
    assert len(checks) >= 12
    done = run_cli(checked_db)
    assert done.returncode == 0, done.stdout
    assert "All" in done.stdout and "FAIL" not in done.stdout


def test_dropped_policy_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute(
            "DROP POLICY tenant_isolation_policy_enhancement_feedback ON enhancement_feedback"
        )
    names = failed(rls_check.run_checks())
    assert "enhancement_feedback: RLS enabled with a tenant policy" in names
    done = run_cli(checked_db)
    assert done.returncode == 1
    assert "IMMEDIATE ESCALATION" in done.stdout


def test_disabled_rls_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute("ALTER TABLE enhancement_history DISABLE ROW LEVEL SECURITY")
    names = failed(rls_check.run_checks())
    assert "enhancement_history: RLS enabled with a tenant policy" in names
    assert any("are invisible" in n for n in names)


def test_bypassrls_reader_fails(checked_db):
    # A role of this test only: roles are cluster-wide, so the real reader is never altered.
    role = f"rls_bypass_{uuid.uuid4().hex[:8]}"
    with checked_db.superuser() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN BYPASSRLS PASSWORD 'pw'")
        conn.execute(f"GRANT dashboard_reader TO {role}")
    url = checked_db.reader_url.replace(
        f"dashboard_reader:{os.environ['STACK_READER_PASSWORD']}", f"{role}:pw"
    )
    try:
        os.environ["DATABASE_URL"] = url
        db.dispose_engines()
        names = failed(rls_check.run_checks())
        assert f"role {role}: not superuser, not BYPASSRLS, owns nothing" in names
        assert run_cli(checked_db, url).returncode == 1
    finally:
        checked_db.use()
        with checked_db.superuser() as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_unreachable_database_exits_2(checked_db):
    done = run_cli(checked_db, "postgresql://dashboard_reader:x@127.0.0.1:1/x")
    assert done.returncode == 2
    assert "could not run" in done.stdout
