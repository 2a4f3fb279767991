"""Queues and scaling: the live queue, its history, the worker proposal and what it costs."""

import streamlit as st

from services import costs, events, formatting, metrics, queues, scaling
from services.config import rules
from services.errors import DashboardError
from services.timerange import TimeRange
from ui import figures, reads
from ui import scaling as scaling_ui
from ui.common import ViewContext, guard, lazy_expander, own_filter, record_view, tenants

ctx: ViewContext = st.session_state["view_context"]
queue_rules, cap_rules = rules("queue"), rules("capacity")
BOXES = {"ok": st.success, "info": st.info, "warning": st.warning, "critical": st.error}
ICONS = {
    "ok": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "critical": ":material/error:",
}

names = {t.tenant_id: t.name for t in tenants()}


@st.fragment(run_every="15s")
def live_queue() -> None:
    with guard("the live queue"):
        snap = queues.snapshot()
        verdict = queues.assess(snap)
        shares = queues.tenant_shares(snap)
        record_view(ctx, "queue_live", "*", {}, row_count=len(shares))
        oldest = snap.oldest_age_seconds(queue=queues.API_QUEUE)
        tiles = st.columns(4)
        tiles[0].metric(
            "Jobs in celery",
            snap.celery_depth,
            border=True,
            help="LLEN over `celery` and its priority lists (the broker's database): "
            + ", ".join(
                f"{k}: {v}" for k, v in snap.depth.items() if k.startswith(queues.CELERY_QUEUE)
            ),
        )
        tiles[1].metric(
            "Jobs in enhancement:queue",
            snap.depth[queues.API_QUEUE],
            border=True,
            help="The list the API pushes every job to (the platform's own database).",
        )
        tiles[2].metric(
            "Oldest in enhancement:queue",
            formatting.duration(oldest),
            border=True,
            help="Since the job's created_at (when the API queued it), not the ticket's "
            "creation time. Celery messages carry no enqueue time: see their positions.",
        )
        tiles[3].metric("Processing", "Paused" if snap.paused else "Running", border=True)
        BOXES[verdict.severity](
            f"**{verdict.band.label}**: {snap.celery_depth} jobs in celery.\n\n"
            + "\n".join(f"- {line}" for line in verdict.advice),
            icon=ICONS[verdict.severity],
        )
        if not shares.empty:
            table = shares.assign(tenant=shares["tenant_id"].map(names).fillna(shares["tenant_id"]))
            st.dataframe(
                table[
                    [
                        "tenant",
                        "tenant_id",
                        queues.CELERY_QUEUE,
                        queues.API_QUEUE,
                        "share",
                        "celery_next",
                        "oldest_s",
                    ]
                ].assign(oldest_s=table["oldest_s"].map(formatting.duration)),
                hide_index=True,
                width="stretch",
                column_config={
                    "tenant": "Tenant",
                    "tenant_id": "Tenant id",
                    "share": st.column_config.ProgressColumn(
                        "Share of queued jobs", format="percent", min_value=0, max_value=1
                    ),
                    "celery_next": st.column_config.NumberColumn(
                        "Next in celery", format="%d", help="Its first job's place (1 = next)."
                    ),
                    "oldest_s": "Oldest in enhancement:queue",
                },
            )
        st.caption(
            f"Read {snap.read_at:%H:%M:%S} UTC; refreshes every 15 s. The band is judged "
            "on `celery`, the queue the workers take jobs from. A Celery message carries no "
            "enqueue time, so Celery jobs are judged by that band and shown by their place in "
            f"the queue; the stuck rule (> {queue_rules['oldest_job_stuck_minutes']} min) "
            "applies to enhancement:queue, whose jobs record when they were queued. Only job "
            "id, ticket, tenant, priority and queue time (agent runs: the agent id) are read "
            "from each job."
        )
        lazy_expander(
            "Check it yourself (redis-cli)",
            "redis_cli_open",
            lambda: st.code(queues.cli_commands(), language="bash"),
            icon=":material/terminal:",
        )


def show_history() -> metrics.History | None:
    st.subheader("History")
    left, right = st.columns([3, 2])
    with left:
        range_key = (
            own_filter(
                st.segmented_control,
                "Range",
                list(metrics.history_ranges()),
                default="24h",
                key="history",
                required=True,
            )
            or "24h"
        )
    with right.popover("Episode rules", icon=":material/tune:"):
        above = st.number_input("Above (jobs)", min_value=1, value=queue_rules["alert_above"])
        minutes = st.number_input(
            "For at least (minutes)", min_value=1, value=queue_rules["alert_minutes"]
        )
        st.caption(
            f"Also listed, as not draining: above {queue_rules['target_below']} for "
            f"{queue_rules['not_draining_minutes']} minutes and not come down more than "
            f"{queue_rules['not_draining_tolerance']:.0%} from its high in them."
        )
    with guard("the queue history"):
        history = reads.queue_history(range_key, ctx.now)
        # platform operations (pause, resume, clear queue, sync) for admins: audit_log
        marks = (
            reads.platform_events(
                TimeRange(ctx.now - metrics.history_ranges()[range_key], ctx.now, range_key)
            )
            if ctx.user.is_admin
            else events.combined()
        )
        # Like the live queue, a cross-tenant read on record before anything of it is drawn.
        record_view(ctx, "queue_history", "*", {"range": range_key}, row_count=len(history.frame))
        for key, why in history.missing.items():
            st.warning(
                f"{metrics.SERIES[key]}: {why} (query `{rules('promql')[key]}`).",
                icon=":material/query_stats:",
            )
        frame = history.frame
        found = queues.episodes(
            frame["queue_length"],
            above,
            minutes,
            queue_rules["target_below"],
            queue_rules["not_draining_minutes"],
            queue_rules["not_draining_tolerance"],
        )
        left, right = st.columns(2)
        figures.show(figures.queue_history(frame, queues.band_frame(), found, marks), left)
        figures.show(figures.workers_history(frame), right)
        if found.empty:
            st.caption(f"No episodes in this range (one point every {history.step_s} s).")
        else:
            st.dataframe(
                found.assign(
                    start=found["start"].dt.strftime("%Y-%m-%d %H:%M"),
                    end=found["end"].dt.strftime("%Y-%m-%d %H:%M").fillna("still going"),
                ),
                hide_index=True,
                width="stretch",
                column_config={
                    "kind": "Episode",
                    "start": "Start (UTC)",
                    "end": "End (UTC)",
                    "minutes": st.column_config.NumberColumn("Minutes", format="%.0f"),
                    "peak": st.column_config.NumberColumn("Peak (jobs)", format="%.0f"),
                },
            )
        return history
    return None


def current_cluster() -> costs.Cluster:
    """What runs now, from Prometheus; unknown when it is down (the history says so)."""
    try:
        return scaling.cluster(reads.prometheus_now())
    except DashboardError:
        return scaling.cluster(None)


def show_scaling(history: metrics.History | None) -> None:
    """The proposal and its cost: every input is read before plan(), each drawn in its place."""
    st.subheader("Scaling proposal")
    targets = scaling_ui.read_targets()
    # The window ends at the start of the hour: one measurement serves the whole hour.
    measured = reads.capacity_measure(ctx.now.replace(minute=0))
    days = cap_rules["history_days"]
    record_view(ctx, "capacity", "*", {"days": days}, row_count=len(measured.profile))
    if not measured.measurable:
        st.info(
            f"No finished runs in the last {days} days: nothing to measure the service time from."
        )
        return
    cluster = current_cluster()
    proposal_area = st.container()
    st.divider()
    st.subheader("Cost")
    measured_workers = history.mean("replicas_available") if history else None
    prices, workers = scaling_ui.read_prices(scaling.default_workers(measured_workers, cluster))
    result = scaling.plan(
        measured,
        targets,
        cluster,
        prices,
        workers,
        ctx.user.email,
        ctx.now,
        ctx.tenant_id,
        simulate=reads.simulated_share,
    )
    with proposal_area:
        scaling_ui.draw_proposal(result)
    scaling_ui.draw_costs(result)


st.title("Queues and scaling")
st.caption(
    "The live queue, its history from Prometheus, how many workers the peak hour needs, "
    "and what that costs."
)
live_queue()
queue_trend = show_history()
st.divider()
with guard("the scaling proposal"):
    show_scaling(queue_trend)
