"""The local users file: bcrypt hashes, roles, and entries that must grant nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services import users
from tests.conftest import ROOT


@pytest.fixture
def users_path(tmp_path):
    path = tmp_path / "users.toml"
    users.add(path, "Admin@Example.com", "admin", "admin-pass", name='Ann "the admin"')
    users.add(path, "client@acme.example", "client", "client-pass", tenant="msp-acme-corp")
    return path


def test_right_password_signs_in_with_role(users_path):
    account = users.verify(" ADMIN@example.com ", "admin-pass", users_path)
    assert account is not None
    assert (account.email, account.role, account.name) == (
        "admin@example.com",
        "admin",
        'Ann "the admin"',
    )
    client = users.verify("client@acme.example", "client-pass", users_path)
    assert client.role == "client" and client.tenant_id == "msp-acme-corp"


def test_wrong_password_or_unknown_user_is_refused(users_path):
    assert users.verify("admin@example.com", "nope", users_path) is None
    assert users.verify("nobody@example.com", "admin-pass", users_path) is None
    assert users.verify("admin@example.com", "", users_path) is None


def test_file_holds_hashes_never_passwords(users_path):
    text = users_path.read_text()
    assert "admin-pass" not in text and "$2b$" in text
    assert oct(users_path.stat().st_mode & 0o777) == "0o600"


def test_re_adding_replaces_the_user(users_path):
    users.add(users_path, "admin@example.com", "support", "new-pass")
    assert users.verify("admin@example.com", "admin-pass", users_path) is None
    assert users.verify("admin@example.com", "new-pass", users_path).role == "support"
    assert users_path.read_text().count('[users."admin@example.com"]') == 1


def test_malformed_entries_grant_nothing(tmp_path):
    path = tmp_path / "users.toml"
    good_hash = users.hash_password("pw")
    path.write_text(
        f'[users."root@x"]\nrole = "superuser"\npassword_hash = "{good_hash}"\n'
        f'[users."client@x"]\nrole = "client"\npassword_hash = "{good_hash}"\n'  # no tenant
        f'[users."sso@x"]\nrole = "admin"\n'  # OIDC mapping only: no local password
    )
    assert users.verify("root@x", "pw", path) is None
    assert users.verify("client@x", "pw", path) is None
    assert users.verify("sso@x", "pw", path) is None
    assert set(users.load(path)) == {"sso@x"}


def test_client_users_need_a_tenant(tmp_path):
    with pytest.raises(ValueError):
        users.add(tmp_path / "u.toml", "c@x", "client", "pw")


def test_command_line_adds_a_user(tmp_path):
    path = tmp_path / "users.toml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.users",
            "add",
            "jane@msp.example",
            "--role",
            "support",
            "--password-env",
            "NEW_PASSWORD",
        ],
        cwd=ROOT,
        env={"DASHBOARD_USERS_FILE": str(path), "NEW_PASSWORD": "s3cret", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert users.verify("jane@msp.example", "s3cret", path).role == "support"
