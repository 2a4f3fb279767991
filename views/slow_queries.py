"""Database health (admins only): slow statements, connections, tables and indexes. Read-only.
One tab per topic; each is drawn by its module in views/dbhealth/."""

import streamlit as st

from services.config import rules
from ui.common import ViewContext, guard, own_filter
from views.dbhealth.connections import show_connections
from views.dbhealth.relations import show_tables_and_indexes
from views.dbhealth.statements import show_slow_queries

ctx: ViewContext = st.session_state["view_context"]
cfg = rules("db_health")

st.title("Database health")
st.caption(
    "The platform database, read-only, through the dashboard's admin role; every view"
    " is recorded in the data access log."
)
sections = {
    "Slow queries": show_slow_queries,
    "Connections": show_connections,
    "Tables and indexes": show_tables_and_indexes,
}
# Bound to ?section=...: only the open tab runs its queries, and a tab can be linked to.
for tab, (name, show) in zip(
    own_filter(st.tabs, list(sections), key="section"), sections.items(), strict=True
):
    if tab.open:
        with tab, guard(name.lower()):
            show(ctx, cfg)
