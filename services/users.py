"""Who may use the dashboard, and the record of their sign-ins.

People sign in at the identity provider (OIDC, st.login); the dashboard never sees a password.
A role (and a client's tenant) comes from an ID-token claim (dashboard.toml [auth]) or from this
users file, which maps an email to a role for providers where no claim can be added:

    python -m services.users add jane@msp.example --role support
    python -m services.users add client@acme.example --role client --tenant msp-acme-corp
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from services.db import write_scope

ROLES = ("admin", "support", "client")
DEFAULT_FILE = Path(".streamlit/users.toml")
# A plain address: one @, a dotted domain, no spaces or quotes (what the providers issue).
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
OUTCOMES = ("signed_in", "no_access", "signed_out", "expired")


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    role: str
    tenant_id: str | None


def users_file() -> Path:
    return Path(os.environ.get("DASHBOARD_USERS_FILE", DEFAULT_FILE))


def grant(role: object, tenant: object) -> tuple[str, str | None] | None:
    """(role, tenant) when they grant something; None for an unknown role or a client with no
    tenant: a malformed entry or claim grants nothing."""
    if role not in ROLES or (role == "client" and not (isinstance(tenant, str) and tenant)):
        return None
    return str(role), str(tenant) if role == "client" else None


def load(path: Path | None = None) -> dict[str, Account]:
    path = path or users_file()
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        raw = tomllib.load(handle).get("users", {})
    accounts = {}
    for email, entry in raw.items():
        if granted := grant(entry.get("role"), entry.get("tenant")):
            accounts[email.lower()] = Account(email.lower(), entry.get("name", email), *granted)
    return accounts


def add(
    path: Path,
    email: str,
    role: str,
    name: str | None = None,
    tenant: str | None = None,
    known_tenants: Collection[str] | None = None,
) -> None:
    """Add or replace one user in the file. known_tenants: refuse a client tenant not in it."""
    email = email.strip().lower()
    if not EMAIL_PATTERN.fullmatch(email):
        raise ValueError(f"{email!r} is not an email address")
    if grant(role, tenant) is None or (tenant and role != "client"):
        raise ValueError("role must be admin, support or client; client users need --tenant")
    if tenant and known_tenants is not None and tenant not in known_tenants:
        raise ValueError(f"no tenant {tenant!r} is known")
    lines = path.read_text().splitlines() if path.exists() else []
    header = f"[users.{json.dumps(email)}]"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, "", *block]).strip() + "\n")
    path.chmod(0o600)


def record_sign_in(
    email: str, outcome: str, role: str | None, session_ref: str, client_address: str | None
) -> None:
    """Append one sign-in event (append-only, like the data access log)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown sign-in outcome {outcome!r}")
    with write_scope() as conn:
        conn.execute(
            text(
                "INSERT INTO dashboard.sign_ins (email, outcome, role, session_ref, client_address)"
                " VALUES (:email, :outcome, :role, :ref, :address)"
            ),
            {
                "email": email,
                "outcome": outcome,
                "role": role,
                "ref": session_ref,
                "address": client_address,
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Map dashboard users to roles.")
    sub = parser.add_subparsers(dest="command", required=True)
    adding = sub.add_parser("add")
    adding.add_argument("email")
    adding.add_argument("--role", choices=ROLES, required=True)
    adding.add_argument("--tenant")
    adding.add_argument("--name")
    args = parser.parse_args()
    known = None
    if args.tenant:
        from services.tenants import list_tenants  # the platform directory (DATABASE_URL)

        try:
            known = {t.tenant_id for t in list_tenants()}
        except Exception as exc:  # noqa: BLE001 - say why, never a traceback
            sys.exit(f"cannot check tenant {args.tenant!r}: the tenant list is unreadable ({exc})")
    try:
        add(users_file(), args.email, args.role, args.name, args.tenant, known)
    except ValueError as exc:
        sys.exit(str(exc))
    print(f"{args.email}: {args.role} saved in {users_file()}")


if __name__ == "__main__":
    main()
