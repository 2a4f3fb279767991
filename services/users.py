"""Local users for small teams and the demo: a TOML file with bcrypt hashes and roles.

    python -m services.users add jane@msp.example --role support        # asks for a password
    python -m services.users add client@acme.example --role client --tenant msp-acme-corp

The same file maps OIDC users (no password_hash) to roles when an identity provider is set up.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt

ROLES = ("admin", "support", "client")
DEFAULT_FILE = Path(".streamlit/users.toml")


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    role: str
    tenant_id: str | None
    password_hash: str | None


def users_file() -> Path:
    return Path(os.environ.get("DASHBOARD_USERS_FILE", DEFAULT_FILE))


def load(path: Path | None = None) -> dict[str, Account]:
    path = path or users_file()
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        raw = tomllib.load(handle).get("users", {})
    accounts = {}
    for email, entry in raw.items():
        role = entry.get("role")
        tenant = entry.get("tenant")
        if role not in ROLES or (role == "client" and not tenant):
            continue  # a malformed entry grants nothing
        accounts[email.lower()] = Account(
            email.lower(),
            entry.get("name", email),
            role,
            tenant if role == "client" else None,
            entry.get("password_hash"),
        )
    return accounts


def verify(email: str, password: str, path: Path | None = None) -> Account | None:
    """The account when the password matches its hash; None otherwise (same cost either way)."""
    account = load(path).get(email.strip().lower())
    stored = account.password_hash if account and account.password_hash else None
    # Compare against a dummy hash for unknown users so timing does not reveal who exists.
    candidate = (stored or _DUMMY_HASH).encode()
    matches = bcrypt.checkpw(password.encode(), candidate)
    return account if stored and matches else None


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


_DUMMY_HASH = hash_password("not-a-real-password")


def add(
    path: Path,
    email: str,
    role: str,
    password: str | None,
    name: str | None = None,
    tenant: str | None = None,
) -> None:
    """Add or replace one user in the file."""
    if role not in ROLES or (role == "client") != bool(tenant):
        raise ValueError("role must be admin, support or client; client users need --tenant")
    lines = path.read_text().splitlines() if path.exists() else []
    header = f"[users.{json.dumps(email.lower())}]"
    if header in lines:  # drop the old block
        start = lines.index(header)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines)
        )
        del lines[start:end]
    # JSON string escaping is valid TOML basic-string escaping.
    block = [
        header,
        f"name = {json.dumps(name or email.split('@')[0])}",
        f"role = {json.dumps(role)}",
    ]
    if tenant:
        block.append(f"tenant = {json.dumps(tenant)}")
    if password:
        block.append(f"password_hash = {json.dumps(hash_password(password))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, "", *block]).strip() + "\n")
    path.chmod(0o600)


def main() -> None:
    parser = argparse.ArgumentParser(description="Manage the dashboard's local users file.")
    sub = parser.add_subparsers(dest="command", required=True)
    adding = sub.add_parser("add")
    adding.add_argument("email")
    adding.add_argument("--role", choices=ROLES, required=True)
    adding.add_argument("--tenant")
    adding.add_argument("--name")
    adding.add_argument("--password-env", help="read the password from this variable")
    adding.add_argument("--oidc", action="store_true", help="role mapping only, no password")
    args = parser.parse_args()
    password = None
    if not args.oidc:
        password = (
            os.environ[args.password_env]
            if args.password_env
            else getpass.getpass(f"Password for {args.email}: ")
        )
    add(users_file(), args.email, args.role, password, args.name, args.tenant)
    print(f"{args.email}: {args.role} saved in {users_file()}")


if __name__ == "__main__":
    main()
