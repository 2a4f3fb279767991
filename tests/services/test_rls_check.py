"""The RLS self-test passes on a correct database and fails loudly on broken ones."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
import streamlit as st

from demo import dbsetup
from services import db, rls_check
from tests.conftest import ROOT, PlatformDb, app_test, screenshot, start_app, stop_process, visit
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


def drop_tenant_policies(platform: PlatformDb, table: str) -> None:
    with platform.superuser() as conn:
        names = conn.execute(
            "SELECT policyname FROM pg_policies WHERE tablename = %s AND policyname <> %s",
            (table, rls_check.ADMIN_POLICY),
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP POLICY "{name}" ON {table}')


def test_dropped_policy_fails(checked_db):
    drop_tenant_policies(checked_db, "enhancement_feedback")
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


def test_a_dashboard_role_owning_a_table_fails(checked_db, capsys):
    # The table lives in this test's own database only: the role itself is not altered.
    with checked_db.superuser() as conn:
        conn.execute("CREATE TABLE public.rls_owned_probe (x int)")
        conn.execute("ALTER TABLE public.rls_owned_probe OWNER TO dashboard_reader")
    checks = rls_check.run_checks()
    assert [(c.name, c.detail) for c in checks if not c.passed] == [
        ("role dashboard_reader: not superuser, not BYPASSRLS, owns nothing", "owns 1 relation")
    ]
    # The CLI's report (main() is what `python -m services.rls_check` runs).
    assert rls_check.main(lambda: checks) == 1
    out = capsys.readouterr().out
    assert "FAIL  role dashboard_reader: not superuser, not BYPASSRLS, owns nothing" in out
    assert "fix: Connect as the roles `schema/grants.sql` creates" in out
    assert "`REASSIGN OWNED BY` it to the platform's owner" in out
    assert "1 check(s) FAILED" in out and "IMMEDIATE ESCALATION" in out


def test_unreachable_database_exits_2(checked_db):
    done = run_cli(checked_db, "postgresql://dashboard_reader:x@127.0.0.1:1/x")
    assert done.returncode == 2
    assert "could not run" in done.stdout


ESCALATION_CHECKS = [
    "role dashboard_reader: cannot create temporary objects",
    "role dashboard_admin: cannot create temporary objects",
    "SECURITY DEFINER functions the dashboard can call pin search_path",
]


@pytest.fixture
def unhardened_db(make_platform_db) -> PlatformDb:
    platform = make_platform_db("unhardened", harden=False)
    plant_two_tenants(platform)
    platform.use()
    return platform


def test_the_platform_as_shipped_fails_until_the_hardening_is_applied(unhardened_db):
    platform = unhardened_db
    assert failed(rls_check.run_checks()) == ESCALATION_CHECKS
    done = run_cli(platform)
    assert done.returncode == 1
    assert "FAIL  SECURITY DEFINER functions" in done.stdout
    assert "set_tenant_context(character varying)" in done.stdout
    assert "fix: Run `schema/hardening.sql`" in done.stdout
    assert "IMMEDIATE ESCALATION" in done.stdout
    dbsetup.apply_hardening(platform.name)
    assert failed(rls_check.run_checks()) == []
    assert run_cli(platform).returncode == 0


def test_every_group_is_reported(checked_db):
    checks = rls_check.run_checks()
    assert [g for g in rls_check.GROUPS if any(c.group == g for c in checks)] == list(
        rls_check.GROUPS
    )
    assert all(c.fix for c in checks if c.group != rls_check.ROLES or "FORCE" not in c.name)
    forced = next(c for c in checks if c.name.startswith("FORCE"))
    assert forced.passed and "forced on enhancement_feedback" in forced.detail


def test_temp_granted_to_a_dashboard_role_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute(f'GRANT TEMPORARY ON DATABASE "{checked_db.name}" TO dashboard_reader')
    assert failed(rls_check.run_checks()) == ESCALATION_CHECKS[:1]


def test_a_readable_encrypted_column_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute(
            "GRANT SELECT (servicedesk_api_key_encrypted) ON tenant_configs TO dashboard_reader"
        )
    checks = {c.name: c for c in rls_check.run_checks()}
    found = checks["reader role cannot read any *_encrypted column"]
    assert not found.passed
    assert found.detail == "tenant_configs.servicedesk_api_key_encrypted"
    assert checks["admin role cannot read any *_encrypted column"].passed


def test_create_on_a_schema_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute("GRANT CREATE ON SCHEMA dashboard TO dashboard_admin")
    assert failed(rls_check.run_checks()) == [
        "role dashboard_admin: cannot create objects in any schema"
    ]


def test_an_unpinned_definer_function_anywhere_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute(
            "CREATE FUNCTION public.rls_probe() RETURNS int LANGUAGE sql SECURITY DEFINER"
            " SET search_path = public AS 'SELECT 1'"
        )
    check = next(c for c in rls_check.run_checks() if c.name == ESCALATION_CHECKS[2])
    assert not check.passed and "rls_probe()" in check.detail


def test_membership_of_a_superuser_role_fails(checked_db):
    role = f"rls_super_{uuid.uuid4().hex[:8]}"
    with checked_db.superuser() as conn:
        conn.execute(f"CREATE ROLE {role} SUPERUSER NOLOGIN")
        conn.execute(f"GRANT {role} TO dashboard_admin")
    try:
        check = next(
            c for c in rls_check.run_checks() if c.name.startswith("role dashboard_admin: not")
        )
        assert not check.passed and f"superuser via {role}" in check.detail
    finally:
        with checked_db.superuser() as conn:
            conn.execute(f"DROP ROLE {role}")


def test_both_policy_styles_on_one_table_with_the_contract_names(checked_db):
    drop_tenant_policies(checked_db, "tenant_configs")
    with checked_db.superuser() as conn:
        conn.execute(
            "CREATE POLICY tenant_config_isolation_policy ON tenant_configs"
            " USING (tenant_id = current_setting('app.current_tenant_id')::varchar)"
        )
        conn.execute(
            "CREATE POLICY tenant_configs_tenant_isolation_policy ON tenant_configs"
            " USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''))"
        )
    checks = rls_check.run_checks()
    assert failed(checks) == []
    table = next(c for c in checks if c.name.startswith("tenant_configs:"))
    assert "2 tenant policies" in table.detail and "(as the contract lists)" in table.detail


def test_a_policy_that_widens_the_reader_fails(checked_db):
    with checked_db.superuser() as conn:
        conn.execute("CREATE POLICY everything ON ticket_history FOR SELECT USING (true)")
    names = failed(rls_check.run_checks())
    assert "ticket_history: RLS enabled with a tenant policy" in names


@pytest.mark.parametrize(
    ("proconfig", "pinned"),
    [
        (None, False),
        (["work_mem=64MB"], False),
        (["search_path=public"], False),  # pg_temp not named: searched first
        (["search_path="], False),
        (["search_path=pg_temp, public"], False),
        (["search_path=public, pg_temp"], True),
        (['search_path="$user", public, "pg_temp"'], True),
        (["work_mem=1MB", "search_path=dashboard,pg_temp"], True),
    ],
)
@pytest.mark.unit
def test_search_path_pinned(proconfig, pinned):
    assert rls_check.search_path_pinned(proconfig) is pinned


def test_the_page_groups_the_checks_and_says_how_to_fix_each_failure(unhardened_db):
    st.cache_data.clear()
    at = app_test().run().switch_page("views/rls_check.py").run()
    assert not at.exception
    assert "3 of 19 checks FAILED" in at.error[0].value
    assert [h.value for h in at.subheader] == [
        f"{'❌' if g == rls_check.ESCALATION_HAZARDS else '✅'} {g}" for g in rls_check.GROUPS
    ]
    fixes = [e.value for e in at.error[1:]]
    assert len(fixes) == 3 and all("hardening.sql" in f for f in fixes)
    assert fixes[2].startswith(  # the name is data: shown literally, escaped
        "**SECURITY DEFINER functions the dashboard can call pin search\\_path**"
    )
    dbsetup.apply_hardening(unhardened_db.name)
    next(b for b in at.button if b.label == "Run again").click().run()
    assert not at.error and "All 19 checks passed" in at.success[0].value


@pytest.mark.browser
def test_the_failing_page_in_the_browser(browser, unhardened_db):
    app = start_app(
        {"DATABASE_URL": unhardened_db.reader_url, "ADMIN_DATABASE_URL": unhardened_db.admin_url}
    )
    page = browser.new_page(viewport={"width": 1500, "height": 2300})
    try:
        visit(page, app, "rls_check")
        screenshot(page, "rls_self_test_unhardened")
        body = page.inner_text("body")
        assert "3 of 19 checks FAILED" in body and "Privilege escalation" in body
        assert body.count("Run schema/hardening.sql") == 3
    finally:
        page.close()
        stop_process(app.process)
