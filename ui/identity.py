"""Who is using the dashboard. Every page asks current_user(): the one place identity comes from.

Sign-in is OIDC only: st.login against the identity provider in .streamlit/secrets.toml ([auth]),
which keeps the sign-in in a signed cookie, so a reload, a new tab or a pasted link opens signed
in. On top of that cookie, this module ends a session after [auth] session_minutes (counted from
the ID token's iat) and when it was signed out in any tab: the sign-out is kept in this server
process, so a tab still open on it is signed out at its next run. The role comes from the users
file or an ID-token claim; a signed-in person with neither gets the no-access page.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlparse

import streamlit as st

from services import users
from services.config import rules

ADMIN, SUPPORT, CLIENT = "admin", "support", "client"
# Tests (AppTest) sign in by putting a User here; the app itself never writes it.
SESSION_KEY = "signed_in_user"
log = logging.getLogger("dashboard")


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


class _Sessions:
    """Sign-in sessions of this server process that have ended, and those already recorded."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ended: dict[str, float] = {}
        self.recorded: dict[str, float] = {}

    @staticmethod
    def _mark(marks: dict[str, float], ref: str) -> bool:
        """Mark ref (forgetting marks old enough that their sessions expired anyway); False
        when it already was marked."""
        horizon = time.time() - session_seconds() * 2
        for old in [r for r, t in marks.items() if t < horizon]:
            del marks[old]
        fresh = ref not in marks
        marks[ref] = marks.get(ref, time.time())
        return fresh

    def end(self, ref: str) -> bool:
        """Mark a session ended; False when it already was."""
        with self.lock:
            return self._mark(self.ended, ref)

    def is_ended(self, ref: str) -> bool:
        with self.lock:
            return ref in self.ended

    def first_time(self, ref: str) -> bool:
        """Whether this sign-in is seen for the first time (its tabs share it)."""
        with self.lock:
            return self._mark(self.recorded, ref)


_SESSIONS = _Sessions()


def session_seconds() -> float:
    return float(rules("auth")["session_minutes"]) * 60


def _claims() -> dict[str, Any]:
    """The signed-in person's ID-token claims ({} when signed out)."""
    if not oidc_configured() or not st.user.get("is_logged_in", False):
        return {}
    return st.user.to_dict()


def _session_ref(claims: dict[str, Any]) -> str:
    """Names one sign-in (every tab of it shares the cookie): the provider's session id when it
    gives one, else the moment and nonce of the ID token."""
    parts = [claims.get(k) for k in ("iss", "sub", "sid", "iat", "nonce")]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _record(claims: dict[str, Any], outcome: str, role: str | None) -> None:
    """Record a sign-in event; a record that cannot be written is logged, sign-in goes on (the
    views refuse tenant data on their own when the database cannot record their access)."""
    try:
        users.record_sign_in(
            str(claims.get("email", "")).lower() or "(no email)",
            outcome,
            role,
            _session_ref(claims),
            st.context.ip_address,
        )
    except Exception:  # noqa: BLE001 - see above
        log.warning("sign-in event %s could not be recorded", outcome, exc_info=True)


def session_state() -> str:
    """ "signed_out", "expired" or "live" (signed in, within session_minutes, not signed out)."""
    claims = _claims()
    if not claims:
        return "signed_out"
    ref = _session_ref(claims)
    if time.time() > float(claims.get("iat", 0)) + session_seconds():
        if _SESSIONS.end(ref):
            _record(claims, "expired", None)
        return "expired"
    return "signed_out" if _SESSIONS.is_ended(ref) else "live"


def _role_of(claims: dict[str, Any]) -> User | None:
    email = str(claims.get("email", "")).lower()
    if not email or claims.get("email_verified") is False:
        return None
    if account := users.load().get(email):
        return User(email, account.name, account.role, account.tenant_id)
    config = rules("auth")
    granted = users.grant(claims.get(config["role_claim"]), claims.get(config["tenant_claim"]))
    return User(email, str(claims.get("name") or email), *granted) if granted else None


def current_user() -> User | None:
    """The signed-in user with a role, or None (signed out, expired, or no role)."""
    if (user := st.session_state.get(SESSION_KEY)) is not None:
        return user
    if session_state() != "live":
        return None
    claims = _claims()
    user = _role_of(claims)
    if _SESSIONS.first_time(_session_ref(claims)):
        _record(claims, "signed_in" if user else "no_access", user.role if user else None)
    return user


def signed_in_email() -> str | None:
    """The email of a live sign-in (with or without a role)."""
    if session_state() != "live":
        return None
    return str(_claims().get("email", "")) or None


def session_ended() -> bool:
    """Whether this tab's sign-in has ended since the page was opened (signed out elsewhere,
    expired). Tests' AppTest users (SESSION_KEY) never end."""
    return SESSION_KEY not in st.session_state and session_state() != "live"


def sign_out() -> NoReturn:
    """Ends the sign-in in every tab: the cookie goes (st.logout), and open tabs of it find it
    ended at their next run. Ends this run: the page starts again signed out."""
    claims = _claims()
    if claims and _SESSIONS.end(_session_ref(claims)):
        _record(claims, "signed_out", None)
    st.session_state.clear()
    if oidc_configured():
        st.logout()
        # Not st.rerun(): a new run empties the queue of messages the browser has not been
        # sent yet, and with it the redirect that deletes the cookie (seen: a reload still
        # signed in). The browser follows the redirect and loads the app afresh.
        st.stop()
    st.rerun()


def requested_page_path() -> str:
    """The page part of the URL the visitor opened ("investigation"), or "sign_in" for the
    root or anything that is not a plain page name."""
    path = urlparse(st.context.url or "").path.strip("/").rsplit("/", 1)[-1]
    return path if re.fullmatch(r"[a-z_]{1,40}", path) else "sign_in"
