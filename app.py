"""Entrypoint: page config, identity, the shared sidebar, and navigation. Nothing else."""

import streamlit as st

from ui.common import sidebar
from ui.identity import current_user

st.set_page_config(page_title="AI Agents · Support", page_icon=":material/support_agent:",
                   layout="wide")

user = current_user()

# One line per view. Admin-only views are not even registered for other roles.
views = {
    "Monitor": [
        st.Page("pages/tenant_health.py", title="Tenant health", icon=":material/monitor_heart:",
                default=True),
    ],
}
if user.is_admin:
    views["Admin"] = []
navigation = st.navigation({section: pages for section, pages in views.items() if pages})

st.session_state["view_context"] = sidebar()
navigation.run()
