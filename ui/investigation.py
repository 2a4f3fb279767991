"""One ticket's findings drawn for the investigation page (views/investigation.py): its tiles,
the timeline of each queued job and attempt, its feedback and the procedures' commands.

Drawing only: the findings come from services.investigation, the steps from its timeline.py.
"""

import streamlit as st

from services.formatting import ago, duration, timestamp
from services.investigation import narrative
from services.investigation.model import Investigation, Run
from services.investigation.timeline import Step, esc, queue_steps, run_steps

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


def show_tiles(inv: Investigation) -> None:
    """Attempts, when the first started, how long the newest took, and the feedback."""
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
        ago(first.age_s, never="") if first else "queued",
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
    tiles[3].metric("Feedback", narrative.feedback_tile(inv.feedback), border=True)


def timeline(steps: list[Step]) -> None:
    """A vertical timeline (CSS in ui/style.py); a step's detail is HTML with escaped values."""
    rows = "".join(
        f'<div class="inv-step inv-{step.tone}"><div class="inv-time">{esc(step.time)}</div>'
        f'<div class="inv-rail"><div class="inv-dot"></div></div>'
        f'<div class="inv-body"><span class="inv-title">{esc(step.title)}</span> &nbsp;'
        f'<span class="inv-detail">{step.detail}</span></div></div>'
        for step in steps
    )
    st.html(f'<div class="inv-tl">{rows}</div>')


def show_queue_card(inv: Investigation) -> None:
    for q in inv.queued:
        with st.container(border=True):
            st.markdown(f"**Waiting in `{q.queue}`** &nbsp; {VERDICT_BADGE['queued']}")
            timeline(queue_steps(inv, q))
            if inv.queue_paused:
                st.warning(
                    "Processing is paused (`system:pause_processing` is set): the queue "
                    "will not drain until it is resumed.",
                    icon=":material/pause_circle:",
                )


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


def show_feedback(inv: Investigation) -> None:
    st.subheader("Quality: feedback on this ticket")
    if not inv.feedback:
        st.caption("No technician feedback for this ticket.")
        return
    hidden = "🔒 hidden until consent"
    st.dataframe(
        [
            {
                "When": timestamp(f.created_at),
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
        for command in narrative.commands(inv):
            st.caption(f"**{command.step}** · {command.purpose}")
            st.code(command.body, language=command.language, wrap_lines=True)


def show_timeline(inv: Investigation, trace_url: str | None) -> None:
    st.subheader("Timeline")
    show_queue_card(inv)
    st.caption(f"Webhook: {inv.webhook_note}.")
    for run in inv.runs:
        window = narrative.trace_window([run], inv.read_at)
        show_run(
            run,
            inv,
            trace_url and narrative.jaeger_link(inv.tenant_id, inv.ticket_id, *window),
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
