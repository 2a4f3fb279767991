"""Entrypoint: page config, sign-in gate, screenshare routing, shared sidebar, navigation."""

import streamlit as st

from ui.common import context, presentable, session_replaced, sidebar
from ui.identity import CLIENT, current_user, requested_page_path
from ui.sign_in import sign_in_page

st.set_page_config(
    page_title="AI Agents · Support", page_icon=":material/support_agent:", layout="wide"
)

user = current_user()
if session_replaced(signed_in=user is not None):
    st.warning(
        "Your previous session ended: the dashboard server that held it stopped or restarted,"
        " and this is a new session on another one. Sign in again; the page's filters start"
        " afresh.",
        icon=":material/sync_problem:",
    )
if user is None:  # signed out: the sign-in page is the only page that exists
    # It also answers at the requested page's path, so a deep link survives sign-in (same
    # path, same query) instead of ending on "page not found".
    pages = [st.Page(sign_in_page, title="Sign in", url_path="sign_in", default=True)]
    if (requested := requested_page_path()) != "sign_in":
        pages.append(st.Page(sign_in_page, title="Sign in", url_path=requested))
    st.navigation(pages, position="hidden").run()
    st.stop()

# Screenshare: a client user always; anyone else with ?view=client. One tenant, no sidebar,
# no navigation, so nothing of another tenant is even sent to the browser.
if user.role == CLIENT or st.query_params.get("view") == "client":
    wanted = user.tenant_id if user.role == CLIENT else st.query_params.get("tenant")
    if user.role != CLIENT and not presentable(wanted):
        st.stop()
    st.session_state["screenshare_tenant"] = wanted
    st.session_state["view_context"] = context(user, wanted)
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

st.session_state["view_context"] = sidebar()
navigation.run()
