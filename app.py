"""Entrypoint: page config, sign-in gate, screenshare routing, shared sidebar, navigation."""

from collections.abc import Callable

import streamlit as st

from services import timing
from services.config import rules
from ui.common import (
    context,
    presentable,
    record_refusal,
    refuse_unsafe_roles,
    session_replaced,
    sidebar,
)
from ui.identity import CLIENT, current_user, requested_page_path, session_ended, signed_in_email
from ui.sign_in import follow_requested_link, no_access_page, sign_in_page

st.set_page_config(
    page_title="AI Agents · Support", page_icon=":material/support_agent:", layout="wide"
)


def only_page(page: Callable[[], None], title: str) -> None:
    """A page that is the only one existing. It also answers at the requested page's path, so
    a deep link survives (same path, same query) instead of ending on "page not found"."""
    pages = [st.Page(page, title=title, url_path="sign_in", default=True)]
    if (requested := requested_page_path()) != "sign_in":
        pages.append(st.Page(page, title=title, url_path=requested))
    st.navigation(pages, position="hidden").run()
    st.stop()


@st.fragment(run_every=rules("auth")["session_check_s"])
def watch_session() -> None:
    """An open tab leaves the app as soon as its sign-in ends (signed out in another tab,
    expired), not only at its next click."""
    if session_ended():
        st.rerun(scope="app")


user = current_user()
if session_replaced():
    st.warning(
        "Your previous session ended: the dashboard server that held it stopped or restarted,"
        " and this is a new session on another one. The page's filters start afresh.",
        icon=":material/sync_problem:",
    )
if user is None:
    if signed_in_email():  # signed in at the provider, but no role here
        only_page(no_access_page, "No access")
    only_page(sign_in_page, "Sign in")
follow_requested_link()
watch_session()
screenshare = user.role == CLIENT or st.query_params.get("view") == "client"
refuse_unsafe_roles(public=screenshare)

# Screenshare: a client user always; anyone else with ?view=client. One tenant, no sidebar,
# no navigation, so nothing of another tenant is even sent to the browser.
if screenshare:
    wanted = user.tenant_id if user.role == CLIENT else st.query_params.get("tenant")
    asked = st.query_params.get("tenant")
    if user.role == CLIENT and asked and asked != wanted:  # a client never leaves its tenant
        record_refusal(context(user, wanted), {"asked_tenant": asked[:100]})
    if user.role != CLIENT and not presentable(wanted):
        st.stop()
    st.session_state["view_context"] = context(user, wanted)
    with timing.script_run("Service health"):  # opt-in: DASHBOARD_TIMINGS
        st.navigation(
            [st.Page("views/client_view.py", title="Service health")], position="hidden"
        ).run()
    st.stop()

# One line per view. Admin-only views are not even registered for other roles.
views = {
    "Monitor": [
        st.Page(
            "views/tenant_health.py",
            title="Tenant health",
            icon=":material/monitor_heart:",
            default=True,
        ),
        st.Page("views/tenant_profile.py", title="Tenant profile", icon=":material/badge:"),
        st.Page("views/investigation.py", title="Investigation", icon=":material/troubleshoot:"),
        st.Page("views/feedback.py", title="Feedback", icon=":material/thumbs_up_down:"),
        st.Page("views/weekly_review.py", title="Weekly review", icon=":material/event_note:"),
    ],
}
if user.is_admin:
    views["Admin"] = [
        st.Page("views/rls_check.py", title="RLS self-test", icon=":material/verified_user:"),
        st.Page("views/access_log.py", title="Data access log", icon=":material/policy:"),
        st.Page("views/queues.py", title="Queues and scaling", icon=":material/stacks:"),
        st.Page("views/slow_queries.py", title="Database health", icon=":material/database:"),
    ]
navigation = st.navigation({section: pages for section, pages in views.items() if pages})

with timing.script_run(navigation.title):  # opt-in: DASHBOARD_TIMINGS
    st.session_state["view_context"] = sidebar()
    navigation.run()
