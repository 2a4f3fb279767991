"""The Explain form under Slow queries: one pasted SELECT, planned, every attempt recorded."""

from typing import Any

import streamlit as st

from services import access_log
from services.dbhealth import explain
from services.errors import DashboardError, InvalidInput
from ui.common import ViewContext, guard, md, record_view


def show_explain(ctx: ViewContext, cfg: dict[str, Any]) -> None:
    st.subheader("Explain a statement")
    st.caption(explain.guidance(cfg["explain_timeout_ms"]))
    with st.form("explain"):
        statement = st.text_area(
            "SELECT statement",
            height=110,
            key="dbh_explain",
            placeholder="SELECT * FROM enhancement_history WHERE ticket_id = 'REQ-1042'",
        )
        submitted = st.form_submit_button("Explain", icon=":material/account_tree:")
    if submitted:
        with guard("the plan"):
            params = explain.record_params(statement)
            try:
                plan = explain.explain(statement)
            except DashboardError as exc:
                # Refused or failed attempts are recorded too: probing shows in the record.
                record_view(ctx, access_log.EXPLAIN_REFUSED, "*", {**params, "reason": str(exc)})
                if not isinstance(exc, InvalidInput):
                    raise
                # The reason may quote the statement (a relation name): text, never markup.
                st.error(md(exc), icon=":material/error:")
            else:
                record_view(ctx, "db_explain", "*", params)
                # Kept for the session, so the plan stays on screen through later reruns.
                st.session_state["dbh_plan"] = plan
    if "dbh_plan" in st.session_state:
        st.code(st.session_state["dbh_plan"], language="text")
