"""The pages a visitor without access sees: sign-in, and no access (signed in, no role).

A link opened signed out (a deep link from a ticket) is kept in a short-lived cookie while the
visitor signs in at the provider, whose callback always returns to the app's root; the root then
sends them on to that link (follow_requested_link)."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlparse

import streamlit as st

from ui.common import md
from ui.identity import (
    oidc_configured,
    requested_page_path,
    session_state,
    sign_out,
    signed_in_email,
)

NEXT_COOKIE = "dashboard_next"
NEXT_COOKIE_MAX_AGE_S = 900


def _script(code: str) -> None:
    st.html(f"<script>{code}</script>", unsafe_allow_javascript=True)


def _js(value: str) -> str:
    """A JavaScript string literal, safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c")


def _centered():
    return st.columns([1, 1.2, 1])[1]


def sign_in_page() -> None:
    with _centered():
        st.title("AI Agents · Support")
        st.caption("Support dashboard for the ticket-enhancement platform. Sign in to continue.")
        if not oidc_configured():
            st.error(
                "No identity provider is set up: add an [auth] section to "
                ".streamlit/secrets.toml (see README, Signing in).",
                icon=":material/error:",
            )
            return
        if session_state() == "expired":
            st.info("Your session has expired. Sign in again to continue.", icon=":material/timer:")
        if st.button("Sign in with your company account", type="primary", width="stretch"):
            st.login()
    # Where the visitor wanted to go, for after the provider's callback (same site only).
    _script(
        f"document.cookie = {_js(NEXT_COOKIE)} + '=' + encodeURIComponent("
        "location.pathname + location.search) + "
        f"'; path=/; max-age={NEXT_COOKIE_MAX_AGE_S}; samesite=lax';"
    )


def no_access_page() -> None:
    with _centered():
        st.title("No access")
        st.error(
            f"You are signed in as **{md(signed_in_email())}**, but this account has no role "
            "in the support dashboard.",
            icon=":material/block:",
        )
        st.markdown(
            "Ask a dashboard admin to give you a role (`python -m services.users add EMAIL "
            "--role support`), or your identity team to set the role claim of your account."
        )
        if st.button("Sign out", icon=":material/logout:"):
            sign_out()


def _same_site_path(target: str) -> bool:
    parsed = urlparse(target)
    return (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not parsed.scheme
        and not parsed.netloc
    )


def follow_requested_link() -> None:
    """Right after sign-in (the app's root, no query): go on to the link opened signed out."""
    raw = st.context.cookies.get(NEXT_COOKIE)
    if not isinstance(raw, str):
        return
    target = unquote(raw)  # the page wrote it with encodeURIComponent
    at_root = not st.query_params and requested_page_path() == "sign_in"
    go = at_root and _same_site_path(target) and target.rstrip("/") != ""
    forget = f"document.cookie = {_js(NEXT_COOKIE)} + '=; path=/; max-age=0';"
    _script(forget + (f" location.replace({_js(target)});" if go else ""))
