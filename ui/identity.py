"""Who is using the dashboard. Every page asks current_user(): the one place identity comes from.

- With an identity provider in .streamlit/secrets.toml ([auth]), st.login (OIDC) signs users in
  and the users file maps their email to a role.
- Otherwise the users file holds bcrypt hashes for local sign-in (small teams, the demo).
Signed out, current_user() is None and the app shows nothing but the sign-in page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

import streamlit as st

from services import users

ADMIN, SUPPORT, CLIENT = "admin", "support", "client"
SESSION_KEY = "signed_in_user"


@dataclass(frozen=True)
class User:
    email: str
    name: str
    role: str
    tenant_id: str | None = None  # client users: the one tenant they may see

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - a malformed secrets file means no identity provider
        return False


def _from_account(account: users.Account) -> User:
    return User(account.email, account.name, account.role, account.tenant_id)


def current_user() -> User | None:
    if oidc_configured():
        if not st.user.get("is_logged_in", False):
            return None
        account = users.load().get(str(st.user.get("email", "")).lower())
        return _from_account(account) if account else None
    return st.session_state.get(SESSION_KEY)


def sign_in_locally(email: str, password: str) -> User | None:
    account = users.verify(email, password)
    if account is None:
        return None
    user = _from_account(account)
    st.session_state[SESSION_KEY] = user
    return user


def sign_out() -> None:
    st.session_state.clear()
    if oidc_configured():
        st.logout()


def requested_page_path() -> str:
    """The page part of the URL the visitor opened ("investigation"), or "sign_in" for the
    root or anything that is not a plain page name."""
    path = urlparse(st.context.url or "").path.strip("/").rsplit("/", 1)[-1]
    return path if re.fullmatch(r"[a-z_]{1,40}", path) else "sign_in"
