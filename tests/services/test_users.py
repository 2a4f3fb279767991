"""The users file maps emails to roles (no passwords: people sign in at the identity provider),
and its command refuses what would grant something wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services import users
from tests.conftest import ROOT
from tests.planting import add_tenant


@pytest.fixture
def users_path(tmp_path):
    path = tmp_path / "users.toml"
    users.add(path, "Admin@Example.com", "admin", name='Ann "the admin"')
    users.add(path, "client@acme.example", "client", tenant="msp-acme-corp")
    return path


@pytest.mark.unit
def test_roles_are_mapped_by_lowercase_email(users_path):
    accounts = users.load(users_path)
    assert accounts["admin@example.com"] == users.Account(
        "admin@example.com", 'Ann "the admin"', "admin", None
    )
    assert accounts["client@acme.example"].tenant_id == "msp-acme-corp"
    assert oct(users_path.stat().st_mode & 0o777) == "0o600"
    assert "password" not in users_path.read_text()


@pytest.mark.unit
def test_re_adding_replaces_the_user(users_path):
    users.add(users_path, "admin@example.com", "support")
    assert users.load(users_path)["admin@example.com"].role == "support"
    assert users_path.read_text().count('[users."admin@example.com"]') == 1


@pytest.mark.unit
def test_malformed_entries_grant_nothing(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text(
        '[users."root@x.example"]\nrole = "superuser"\n'
        '[users."client@x.example"]\nrole = "client"\n'  # no tenant
        '[users."sso@x.example"]\nrole = "admin"\n'
    )
    assert set(users.load(path)) == {"sso@x.example"}
    assert users.grant("client", "") is None and users.grant("root", None) is None
    assert users.grant("support", "msp-acme-corp") == ("support", None)


@pytest.mark.parametrize(
    ("email", "role", "tenant", "known", "message"),
    [
        ("not-an-email", "admin", None, None, "not an email address"),
        ("a@b", "admin", None, None, "not an email address"),
        ("a b@x.example", "admin", None, None, "not an email address"),
        ("c@x.example", "client", None, None, "client users need --tenant"),
        ("c@x.example", "support", "msp-acme-corp", None, "client users need --tenant"),
        ("c@x.example", "client", "msp-nope", {"msp-acme-corp"}, "no tenant 'msp-nope'"),
    ],
)
@pytest.mark.unit
def test_add_refuses_what_would_grant_something_wrong(
    tmp_path, email, role, tenant, known, message
):
    path = tmp_path / "users.toml"
    with pytest.raises(ValueError, match=message):
        users.add(path, email, role, tenant=tenant, known_tenants=known)
    assert not path.exists()


def run_cli(path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "services.users", "add", *args],
        cwd=ROOT,
        env={"DASHBOARD_USERS_FILE": str(path), "PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_command_line_adds_a_user_and_refuses_bad_ones(tmp_path, use_db, tenant_id):
    path = tmp_path / "users.toml"
    done = run_cli(path, "jane@msp.example", "--role", "support")
    assert done.returncode == 0, done.stderr
    assert users.load(path)["jane@msp.example"].role == "support"

    refused = run_cli(path, "jane", "--role", "support")
    assert refused.returncode == 1 and "not an email address" in refused.stderr
    assert "Traceback" not in refused.stderr

    # A client tenant is checked against the platform's tenant directory.
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id)
    env = {"DATABASE_URL": use_db.reader_url, "ADMIN_DATABASE_URL": use_db.admin_url}
    ok = run_cli(path, "c@acme.example", "--role", "client", "--tenant", tenant_id, env=env)
    assert ok.returncode == 0, ok.stderr
    unknown = run_cli(path, "d@acme.example", "--role", "client", "--tenant", "msp-nope", env=env)
    assert unknown.returncode == 1 and "no tenant 'msp-nope'" in unknown.stderr
    assert set(users.load(path)) == {"jane@msp.example", "c@acme.example"}
