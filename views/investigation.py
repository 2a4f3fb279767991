"""Ticket investigation: one ticket, every hop, with the data-access record.

Deep link: ?tenant=<id>&ticket=<id>. Nothing is read before the engineer names the support case
(the purpose); sensitive content stays hidden until they confirm client consent for that case.
"""

import hashlib
from urllib.parse import urlencode

import streamlit as st

from services.formatting import timestamp
from services.investigation import lookup, narrative
from services.investigation.model import Investigation, case_reference, validate_ticket_id
from ui import reads
from ui.common import ViewContext, guard, md, own_filter, record_view
from ui.investigation import VERDICT_BADGE, show_commands, show_feedback, show_tiles, show_timeline
from ui.style import use_style

ctx: ViewContext = st.session_state["view_context"]

CALLOUT = {
    "completed": st.success,
    "failed": st.error,
    "stuck": st.error,
    "pending": st.info,
    "queued": st.warning,
    "not_found": st.warning,
}


def case_key(prefix: str, *parts: str) -> str:
    """A widget key per case, so consent and the summary never carry over to another case."""
    return prefix + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def adopt_purpose() -> None:
    # Runs before the next script run, so the sidebar's "Purpose of access" shows it too.
    st.session_state["purpose"] = st.session_state["case_input"]


def purpose_gate() -> None:
    with st.container(border=True):
        st.markdown("#### :material/assignment: Which support case is this for?")
        st.markdown(
            "The Data Access Procedures require a documented purpose before looking at a "
            "client's data. Name the support case (for example **SUP-567**); it is recorded "
            "with every lookup and used in the investigation summary."
        )
        st.text_input(
            "Support case and purpose",
            key="case_input",
            on_change=adopt_purpose,
            placeholder="SUP-567 · ticket 12345 never got its enhancement",
        )
        if ctx.purpose != "routine monitoring":
            st.warning(
                "The current purpose names no support case such as SUP-567.",
                icon=":material/warning:",
            )


def show_summary(inv: Investigation, case: str, trace_url: str | None) -> None:
    st.subheader("Investigation summary")
    key = case_key("summary-", inv.tenant_id, inv.ticket_id, case)

    def fill() -> None:
        st.session_state[key] = narrative.summary(inv, ctx.user.name, case, trace_url, ctx.now)

    if key not in st.session_state:
        fill()
    st.text_area(
        "The procedures' template, filled in from the findings: edit before sharing",
        key=key,
        height=520,
    )
    buttons = st.container(horizontal=True)
    buttons.download_button(
        "Download as Markdown",
        data=f"```\n{st.session_state[key]}```\n",
        file_name=f"investigation-{inv.tenant_id}-{inv.ticket_id}.md",
        mime="text/markdown",
        icon=":material/download:",
        on_click="ignore",
    )
    buttons.button("Reset to the findings", on_click=fill, icon=":material/restart_alt:")


def show_investigation(tenant_id: str, ticket_id: str, case: str) -> None:
    use_style("investigation")
    # Consent is read before the lookup (the sensitive columns are only selected with it) and
    # its checkbox is drawn after, only when there is something sensitive to reveal.
    consent_key = case_key("consent-", tenant_id, ticket_id, case)
    reveal = bool(st.session_state.get(consent_key, False))
    inv = lookup.lookup(tenant_id, ticket_id, reveal=reveal)
    record_view(
        ctx,
        "ticket_lookup",
        tenant_id,
        {"ticket_id": inv.ticket_id},
        row_count=inv.row_count,
        sensitive=reveal,
    )
    window = narrative.trace_window(inv.runs, inv.read_at)
    trace_url = narrative.jaeger_link(tenant_id, inv.ticket_id, *window)
    verdict = inv.verdict
    cause, next_step = narrative.root_cause(inv)

    st.markdown(f"### Ticket `{inv.ticket_id}` &nbsp; {VERDICT_BADGE[verdict]}")
    st.caption(
        f"{md(inv.tenant_name or tenant_id)} · `{tenant_id}` · case {md(case)} · "
        f"read {timestamp(inv.read_at)}"
    )
    if inv.found:
        show_tiles(inv)
    callout = (
        st.error if inv.queue_stuck else st.warning if inv.quality_concern else CALLOUT[verdict]
    )
    callout(f"**{cause}**\n\n**Next step:** {next_step}")
    if any(r.has_output for r in inv.runs) or inv.feedback:
        st.checkbox(
            f"The client consented to showing sensitive content for **{md(case)}** "
            "(enhancement text, feedback comments, technician e-mails)",
            key=consent_key,
        )
    if inv.queue_error:
        st.warning(f"Queue not checked: {inv.queue_error}", icon=":material/warning:")
    if inv.found:
        show_timeline(inv, trace_url)
        show_feedback(inv)
    else:
        st.info(
            f"Ticket `{inv.ticket_id}` has no enhancement run and no queued job for this "
            "tenant. A ticket of another tenant is never shown here.",
            icon=":material/search_off:",
        )
    show_commands(inv, expanded=not inv.found)
    st.caption("Link to this lookup (paste it into the support case):")
    base = str(st.context.url or "").split("?")[0]
    st.code(f"{base}?{urlencode({'tenant': tenant_id, 'ticket': inv.ticket_id})}", language=None)
    show_summary(inv, case, trace_url)


def open_selected() -> None:
    rows = st.session_state["search_results"].selection.rows
    if rows:
        st.session_state["ticket"] = st.session_state["search_tickets"][rows[0]]
        st.session_state["search_open"] = False


def show_search(tenant_id: str) -> None:
    search = st.expander(
        "Find a recent ticket of this tenant",
        icon=":material/search:",
        expanded=not st.session_state.get("ticket"),
        key="search_open",
        on_change="rerun",
    )
    with search:
        if not search.open:  # closed: no query, and no access to record
            return
        left, right = st.columns([2, 3])
        statuses = left.pills(
            "Status",
            ["failed", "stuck", "pending", "completed"],
            selection_mode="multi",
            key="search_status",
            default=["failed"],
        )
        error_text = right.text_input(
            "Error text contains", key="search_error", placeholder="e.g. 401, timeout, rate limit"
        )
        st.caption(
            f"Attempts started in the {ctx.range.label} (change it in the sidebar), newest "
            "first; a retry is an attempt of its own. Select a row to open the ticket."
        )
        with guard("the ticket search"):
            found = reads.search_runs(tenant_id, ctx.range, tuple(statuses), error_text)
            params = {
                "status": sorted(statuses),
                "range": ctx.range_key,
                "error_text": error_text.strip(),
            }
            record_view(ctx, "ticket_search", tenant_id, params, row_count=len(found))
            if found.empty:
                st.info("No attempts match.")
                return
            st.session_state["search_tickets"] = found["ticket_id"].tolist()
            st.dataframe(
                {
                    "Ticket": found["ticket_id"],
                    "Status": found["status"].where(~found["stuck"], "stuck"),
                    "Attempt started": found["created_at"],
                    "Processing": found["processing_time_ms"] / 1000,
                    "Cause": found["cause"],
                    "Error": found["error"],
                },
                hide_index=True,
                width="stretch",
                key="search_results",
                on_select=open_selected,
                selection_mode="single-row",
                column_config={
                    "Attempt started": st.column_config.DatetimeColumn(
                        format="YYYY-MM-DD HH:mm:ss"
                    ),
                    "Processing": st.column_config.NumberColumn(format="%.1f s"),
                    "Error": st.column_config.TextColumn(width="large"),
                },
            )


st.title("Ticket investigation")
st.caption(
    "One ticket, every hop: webhook → queue → worker → context → trace → feedback, as in "
    "the procedures' Ticket Investigation Workflow."
)
top_left, top_right = st.columns([2, 3], vertical_alignment="bottom")
raw_ticket = own_filter(
    top_left.text_input,
    "ServiceDesk Plus ticket id",
    key="ticket",
    type="search",
    placeholder="e.g. 12345",
)
case_ref = case_reference(ctx.purpose)
if case_ref:
    top_right.markdown(
        f":material/assignment: Case **{md(case_ref)}** · purpose "
        f"“{md(ctx.purpose[:120])}” is recorded with every lookup"
    )

if not ctx.tenant_id:
    st.info("Choose the client's tenant in the sidebar first.", icon=":material/domain:")
elif not case_ref:
    purpose_gate()
else:
    show_search(ctx.tenant_id)
    if raw_ticket and raw_ticket.strip():
        with guard("the investigation"):
            ticket = validate_ticket_id(raw_ticket)
            show_investigation(ctx.tenant_id, ticket, case_ref)
    elif raw_ticket:
        st.warning("Enter a ticket id, for example 12345.", icon=":material/warning:")
