"""Entrypoint: page config, sign-in gate, screenshare routing, shared sidebar, navigation."""

import streamlit as st

from ui.common import context, sidebar, tenants
from ui.identity import CLIENT, current_user

st.set_page_config(
    page_title="AI Agents · Support", page_icon=":material/support_agent:", layout="wide"
)

user = current_user()
if user is None:  # signed out: the sign-in page is the only page that exists
    st.navigation([st.Page("pages/sign_in.py", title="Sign in")], position="hidden").run()
    st.stop()

# Screenshare: a client user always; anyone else with ?view=client. One tenant, no sidebar,
# no navigation, so nothing of another tenant is even sent to the browser.
if user.role == CLIENT or st.query_params.get("view") == "client":
    wanted = user.tenant_id if user.role == CLIENT else st.query_params.get("tenant")
    if user.role != CLIENT and wanted not in {t.tenant_id for t in tenants()}:
        st.error("Pick a tenant before presenting: ?view=client&tenant=<tenant id>.")
        st.stop()
    st.session_state["screenshare_tenant"] = wanted
    st.session_state["view_context"] = context(user, wanted)
    st.navigation(
        [st.Page("pages/client_view.py", title="Service health")], position="hidden"
    ).run()
    st.stop()

# One line per view. Admin-only views are not even registered for other roles.
views = {
    "Monitor": [
        st.Page(
            "pages/tenant_health.py",
            title="Tenant health",
            icon=":material/monitor_heart:",
            default=True,
        ),
        st.Page("pages/tenant_profile.py", title="Tenant profile", icon=":material/badge:"),
        st.Page("pages/investigation.py", title="Investigation", icon=":material/troubleshoot:"),
        st.Page("pages/feedback.py", title="Feedback", icon=":material/thumbs_up_down:"),
        st.Page("pages/weekly_review.py", title="Weekly review", icon=":material/event_note:"),
    ],
}
if user.is_admin:
    views["Admin"] = [
        st.Page("pages/rls_check.py", title="RLS self-test", icon=":material/verified_user:"),
        st.Page("pages/access_log.py", title="Data access log", icon=":material/policy:"),
        st.Page("pages/queues.py", title="Queues and scaling", icon=":material/stacks:"),
        st.Page("pages/slow_queries.py", title="Database health", icon=":material/database:"),
    ]
navigation = st.navigation({section: pages for section, pages in views.items() if pages})

st.session_state["view_context"] = sidebar()
navigation.run()
