"""Ticket investigation: one ticket, every hop, with the data-access record.

Deep link: ?tenant=<id>&ticket=<id>. Nothing is read before the engineer names the support case
(the purpose); sensitive content stays hidden until they confirm client consent for that case.
"""

import hashlib
import html
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import streamlit as st

from services import investigation as inv_service
from services.config import rules
from services.investigation import Investigation, Run, duration, when
from ui.common import ViewContext, cached, guard, md, record_view

ctx: ViewContext = st.session_state["view_context"]
search_runs = cached(ttl=30)(inv_service.search_runs)

VERDICT_BADGE = {
    "completed": ":green-badge[:material/check_circle: Enhancement delivered]",
    "failed": ":red-badge[:material/error: Failed]",
    "stuck": ":red-badge[:material/hourglass_disabled: Stuck]",
    "pending": ":blue-badge[:material/autorenew: Processing]",
    "queued": ":orange-badge[:material/schedule: Waiting in queue]",
    "not_found": ":gray-badge[:material/search_off: Not found]",
}
STATUS_BADGE = {
    "completed": ":green-badge[completed]",
    "failed": ":red-badge[failed]",
    "pending": ":blue-badge[pending]",
    "stuck": ":red-badge[stuck]",
}
CALLOUT = {
    "completed": st.success,
    "failed": st.error,
    "stuck": st.error,
    "pending": st.info,
    "queued": st.warning,
    "not_found": st.warning,
}


def ago(seconds: float | None) -> str:
    return f"{duration(seconds)} ago" if seconds is not None else ""


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


TIMELINE_CSS = """<style>
.inv-tl { margin: 0.2rem 0 0.4rem 0; }
.inv-step { display: grid; grid-template-columns: 9rem 1.6rem 1fr; min-height: 2.1rem; }
.inv-time { color: #6b7385; font-size: 0.85rem; padding-top: 0.12rem;
            font-variant-numeric: tabular-nums; white-space: nowrap; }
.inv-rail { position: relative; }
.inv-rail::before { content: ""; position: absolute; left: 50%; top: 0; bottom: 0; width: 2px;
                    background: #dde2ea; transform: translateX(-50%); }
.inv-step:first-child .inv-rail::before { top: 0.55rem; }
.inv-step:last-child .inv-rail::before { bottom: calc(100% - 0.55rem); }
.inv-dot { position: relative; width: 0.8rem; height: 0.8rem; border-radius: 50%;
           margin: 0.3rem auto 0; box-shadow: 0 0 0 3px #fff; }
.inv-ok .inv-dot { background: #2e8b57; } .inv-bad .inv-dot { background: #c8382d; }
.inv-wait .inv-dot { background: #e08a00; } .inv-info .inv-dot { background: #1f5fbf; }
.inv-muted .inv-dot { background: #9aa5b8; }
.inv-body { padding: 0 0 0.55rem 0.3rem; line-height: 1.45; }
.inv-title { font-weight: 600; } .inv-bad .inv-title { color: #b0302a; }
.inv-detail { color: #3b4557; } .inv-detail code { font-size: 0.85em; }
.inv-note { color: #b06a00; font-size: 0.9rem; }
[class*="st-key-summary-"] textarea { font-family: ui-monospace, Menlo, Consolas, monospace;
                                       font-size: 0.85rem; line-height: 1.45; }
</style>"""
OK, BAD, WAIT, INFO, MUTED = "ok", "bad", "wait", "info", "muted"


def esc(value: object) -> str:
    return html.escape(str(value))


def timeline(steps: list[tuple[str, str, str, str]]) -> None:
    """A vertical timeline: (time, tone, title, detail HTML with escaped values) per step."""
    rows = "".join(
        f'<div class="inv-step inv-{tone}"><div class="inv-time">{esc(time)}</div>'
        f'<div class="inv-rail"><div class="inv-dot"></div></div>'
        f'<div class="inv-body"><span class="inv-title">{esc(title)}</span> &nbsp;'
        f'<span class="inv-detail">{detail}</span></div></div>'
        for time, tone, title, detail in steps
    )
    st.html(f'<div class="inv-tl">{rows}</div>')


def clock(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%b %d, %H:%M:%S") if value else ""


def show_queue_card(inv: Investigation) -> None:
    for q in inv.queued:
        with st.container(border=True):
            st.markdown(f"**Waiting in `{q.queue}`** &nbsp; {VERDICT_BADGE['queued']}")
            queued_at = inv.read_at - timedelta(seconds=q.age_s) if q.age_s is not None else None
            job = f" · job <code>{esc(q.job_id)}</code>" if q.job_id else ""
            timeline(
                [
                    (
                        clock(queued_at),
                        OK,
                        "Webhook received, job queued"
                        + (" (its created_at)" if q.age_s is not None else ""),
                        f"{esc(ago(q.age_s) or 'when: not recorded in a Celery message')}{job}",
                    ),
                    (
                        clock(inv.read_at),
                        WAIT,
                        "Waiting for a worker",
                        f"position <b>{q.position}</b> of {q.depth} in <code>{esc(q.queue)}</code> "
                        "(1 = taken next)",
                    ),
                ]
            )
            if inv.queue_paused:
                st.warning(
                    "Processing is paused (`system:pause_processing` is set): the queue "
                    "will not drain until it is resumed.",
                    icon=":material/pause_circle:",
                )


def run_steps(run: Run, inv: Investigation) -> list[tuple[str, str, str, str]]:
    # created_at is when a worker started this attempt (the worker inserts the row then).
    if run.attempt == 1:
        started = (
            "Attempt 1 started by a worker",
            f"{esc(ago(run.age_s))} · the webhook's arrival time is not stored",
        )
    else:
        started = (
            f"Attempt {run.attempt} started: a retry of the same ticket",
            f"{esc(ago(run.age_s))} · Celery retries a failed attempt (up to 3 times)",
        )
    steps = [(clock(run.created_at), OK, *started)]
    if run.status == "pending":
        if inv.queued:
            steps.append(("", WAIT, "A job of this ticket is queued", "no worker has taken it yet"))
            return steps
        if run.stuck:
            steps.append(
                (
                    clock(inv.read_at),
                    BAD,
                    "Stuck",
                    f"pending for <b>{esc(duration(run.age_s))}</b>, longer than the "
                    f"{rules_stuck()} s worker time limit: the worker most likely died",
                )
            )
        else:
            steps.append(
                (clock(inv.read_at), INFO, "Processing", f"running for {esc(duration(run.age_s))}")
            )
        return steps
    c = run.context
    if c is None:
        steps.append(("", MUTED, "Context gathered", "not recorded (the attempt stopped before)"))
    else:
        elapsed = f" · {esc(duration(c.execution_ms / 1000))}" if c.execution_ms is not None else ""
        notes = "".join(
            f'<br><span class="inv-note">⚠ node <code>{esc(node)}</code>: {esc(message)}</span>'
            for node, message in c.node_errors
        )
        tone = BAD if c.timed_out else WAIT if c.node_errors or not c.readable else OK
        steps.append(("", tone, "Context gathered", esc(c.summary) + elapsed + notes))
    took = f"processing time {esc(duration(run.processing_s))}"
    if run.processing_time_ms is not None:
        took += f" · processing_time_ms {run.processing_time_ms:,}"
    if run.completed_with_errors:
        steps.append(
            (clock(run.completed_at), WAIT, "Enhancement posted, completed with errors", took)
        )
    elif run.status == "completed":
        steps.append((clock(run.completed_at), OK, "Enhancement posted to the ticket", took))
    else:
        label = run.failure.label if run.failure else "Failed"
        steps.append((clock(run.completed_at), BAD, f"Failed: {label}", took))
    return steps


def show_run(run: Run, inv: Investigation, trace_url: str | None) -> None:
    status = "stuck" if run.stuck else run.status
    with st.container(border=True):
        retry = " · retry of the same ticket" if run.attempt > 1 else ""
        st.markdown(
            f"**Attempt {run.attempt} of {inv.total_runs}**{retry} &nbsp; {STATUS_BADGE[status]}"
        )
        timeline(run_steps(run, inv))
        failure = run.failure
        if failure:
            st.error(
                f"**{failure.label}.** Next step: {failure.next_step}", icon=":material/error:"
            )
            if run.error_message:
                st.code(run.error_message[:2000], language=None, wrap_lines=True)
        links = []
        if trace_url:
            links.append(f":material/timeline: [Search Jaeger for this run]({trace_url})")
        if run.status == "completed" and run.llm_output is None and run.has_output:
            links.append(
                f":gray[:material/lock: Enhancement text hidden ({run.output_chars:,} "
                "characters): confirm client consent above to read it]"
            )
        if links:
            st.markdown(" &emsp; ".join(links))
        if run.llm_output is not None:
            with st.expander(
                f"Enhancement text posted to the ticket ({run.output_chars:,} characters)",
                icon=":material/description:",
            ):
                st.code(run.llm_output, language="markdown", wrap_lines=True)


def feedback_tile(inv: Investigation) -> str:
    """Short enough for a metric tile: ratings, then thumbs."""
    if not inv.feedback:
        return "none"
    ratings = [f"{f.rating_value}/5" for f in inv.feedback if f.rating_value is not None]
    thumbs = [
        "👍" if f.feedback_type == "thumbs_up" else "👎"
        for f in inv.feedback
        if f.feedback_type in ("thumbs_up", "thumbs_down")
    ]
    return " ".join(ratings + thumbs)


def rules_stuck() -> int:
    return rules("health")["stuck_pending_seconds"]


def show_feedback(inv: Investigation) -> None:
    st.subheader("Quality: feedback on this ticket")
    if not inv.feedback:
        st.caption("No technician feedback for this ticket.")
        return
    hidden = "🔒 hidden until consent"
    st.dataframe(
        [
            {
                "When": when(f.created_at),
                "Type": f.feedback_type.replace("_", " "),
                "Rating": f"{f.rating_value} / 5" if f.rating_value is not None else "",
                "Comment": (f.comment or "") if inv.revealed else (hidden if f.has_comment else ""),
                "Technician": (f.technician_email or "") if inv.revealed else hidden,
            }
            for f in inv.feedback
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "When": st.column_config.TextColumn(width="medium"),
            "Type": st.column_config.TextColumn(width="small"),
            "Rating": st.column_config.TextColumn(width="small"),
            "Comment": st.column_config.TextColumn(width="large"),
            "Technician": st.column_config.TextColumn(width="medium"),
        },
    )


def show_commands(inv: Investigation, expanded: bool) -> None:
    with st.expander(
        "Copy-ready commands from the procedures", icon=":material/terminal:", expanded=expanded
    ):
        for command in inv_service.commands(inv):
            st.caption(f"**{command.step}** · {command.purpose}")
            st.code(command.body, language=command.language, wrap_lines=True)


def show_summary(inv: Investigation, case: str, trace_url: str | None) -> None:
    st.subheader("Investigation summary")
    key = case_key("summary-", inv.tenant_id, inv.ticket_id, case)

    def fill() -> None:
        st.session_state[key] = inv_service.summary(inv, ctx.user.name, case, trace_url, ctx.now)

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
    st.html(TIMELINE_CSS)
    # Consent is read before the lookup (the sensitive columns are only selected with it) and
    # its checkbox is drawn after, only when there is something sensitive to reveal.
    consent_key = case_key("consent-", tenant_id, ticket_id, case)
    reveal = bool(st.session_state.get(consent_key, False))
    inv = inv_service.lookup(tenant_id, ticket_id, reveal=reveal)
    record_view(
        ctx,
        "ticket_lookup",
        tenant_id,
        {"ticket_id": inv.ticket_id},
        row_count=inv.row_count,
        sensitive=reveal,
    )
    window = inv_service.trace_window(inv.runs, inv.read_at)
    trace_url = inv_service.jaeger_link(tenant_id, inv.ticket_id, *window)
    verdict = inv.verdict
    cause, next_step = inv_service.root_cause(inv)

    st.markdown(f"### Ticket `{inv.ticket_id}` &nbsp; {VERDICT_BADGE[verdict]}")
    st.caption(
        f"{md(inv.tenant_name or tenant_id)} · `{tenant_id}` · case {md(case)} · "
        f"read {when(inv.read_at)}"
    )
    if inv.found:
        latest = inv.latest
        tiles = st.columns(4)
        tiles[0].metric(
            "Attempts",
            inv.total_runs,
            border=True,
            help="One row per worker attempt: Celery retries a failed attempt up to 3 times.",
        )
        first = min(inv.runs, key=lambda r: r.attempt) if inv.runs else None
        tiles[1].metric(
            "First attempt started",
            ago(first.age_s) if first else "queued",
            border=True,
            help=f"Webhook: {inv.webhook_note}.",
        )
        failed = latest is not None and latest.status == "failed"
        tiles[2].metric(
            "Failed after" if failed else "Processing time",
            duration(latest.processing_s) if latest and latest.completed_at else "not finished",
            border=True,
            help="completed_at - created_at of the newest attempt (a worker's time, queue wait "
            "not included).",
        )
        tiles[3].metric("Feedback", feedback_tile(inv), border=True)
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


def show_timeline(inv: Investigation, trace_url: str | None) -> None:
    st.subheader("Timeline")
    show_queue_card(inv)
    st.caption(f"Webhook: {inv.webhook_note}.")
    for run in inv.runs:
        window = inv_service.trace_window([run], inv.read_at)
        show_run(
            run,
            inv,
            trace_url and inv_service.jaeger_link(inv.tenant_id, inv.ticket_id, *window),
        )
    if inv.total_runs > len(inv.runs):
        st.caption(f"Showing the newest {len(inv.runs)} of {inv.total_runs} attempts.")
    if trace_url:
        st.link_button("Open all runs in Jaeger", trace_url, icon=":material/timeline:")
    else:
        st.caption(
            "Set JAEGER_URL to link traces; search Jaeger for tags "
            f"`ticket.id={inv.ticket_id}` `tenant.id={inv.tenant_id}`."
        )


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
            f"Runs received in the {ctx.range_label} (change it in the sidebar), newest "
            "first. Select a row to open the ticket."
        )
        with guard("the ticket search"):
            found = search_runs(tenant_id, ctx.since, ctx.now, tuple(statuses), error_text)
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
raw_ticket = top_left.text_input(
    "ServiceDesk Plus ticket id",
    key="ticket",
    bind="query-params",
    type="search",
    placeholder="e.g. 12345",
)
case_ref = inv_service.case_reference(ctx.purpose)
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
            ticket = inv_service.validate_ticket_id(raw_ticket)
            show_investigation(ctx.tenant_id, ticket, case_ref)
    elif raw_ticket:
        st.warning("Enter a ticket id, for example 12345.", icon=":material/warning:")
