"""Queues and scaling: the live queue, its history, the worker proposal and what it costs."""

import math

import pandas as pd
import streamlit as st

from services import capacity, charts, costs, kube, metrics, queues
from services.config import rules
from services.errors import DashboardError
from ui.common import ViewContext, cached, guard, record_view, tenants

ctx: ViewContext = st.session_state["view_context"]
queue_rules, cap_rules = rules("queue"), rules("capacity")
CONCURRENCY = int(rules("platform")["worker_concurrency"])
NO_TOOLBAR = {"displayModeBar": False}
BOXES = {"ok": st.success, "info": st.info, "warning": st.warning, "critical": st.error}
ICONS = {
    "ok": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "critical": ":material/error:",
}

queue_history = cached(ttl=60)(metrics.history)
prometheus_now = cached(ttl=60)(metrics.current)
arrival_profile = cached(ttl=600)(capacity.arrival_profile)
service_times = cached(ttl=600)(capacity.service_times)
simulated_share = cached(ttl=600)(capacity.simulated_share_within)
measured_window = cached(ttl=600)(capacity.measured_window)
names = {t.tenant_id: t.name for t in tenants()}


def fmt_age(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def fmt_count(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f}"


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
            fmt_age(oldest),
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
                ].assign(oldest_s=table["oldest_s"].map(fmt_age)),
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
        with st.expander("Check it yourself (redis-cli)", icon=":material/terminal:"):
            st.code(queues.cli_commands(), language="bash")


def show_history() -> metrics.History | None:
    st.subheader("History")
    left, right = st.columns([3, 2])
    with left:
        range_key = (
            st.segmented_control(
                "Range",
                list(metrics.history_ranges()),
                default="24h",
                key="history",
                bind="query-params",
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
        history = queue_history(range_key, ctx.now)
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
        left.plotly_chart(
            charts.queue_history(frame, queues.band_frame(), found),
            width="stretch",
            config=NO_TOOLBAR,
        )
        right.plotly_chart(charts.workers_history(frame), width="stretch", config=NO_TOOLBAR)
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
        values = prometheus_now()
    except DashboardError:
        values = dict.fromkeys(metrics.HPA_KEYS)
    names = kube.names()
    return costs.Cluster(
        names.namespace,
        names.worker,
        names.hpa,
        values["hpa_min"],
        values["hpa_max"],
        values["replicas_available"],
    )


def worker_rows(proposal: capacity.Proposal, cluster: costs.Cluster) -> pd.DataFrame:
    shown = max(proposal.workers_peak or 0, int(cluster.hpa_max or 0), 4) + 2
    table = proposal.table[proposal.table["workers"] <= shown].copy()
    notes = {proposal.workers_min: "proposed min", proposal.workers_peak: "proposed max"}
    if proposal.workers_min == proposal.workers_peak:
        notes = {proposal.workers_peak: "proposed min and max"}
    if cluster.hpa_max is not None:
        notes.setdefault(int(cluster.hpa_max), "current max")
    table.insert(1, "note", table["workers"].map(notes).fillna(""))
    for column in ("mean_wait_s", "quantile_wait_s"):
        table[column] = [("never drains" if math.isinf(v) else fmt_age(v)) for v in table[column]]
    return table


def show_proposal(
    cluster: costs.Cluster,
) -> tuple[capacity.Proposal, capacity.Window, pd.DataFrame] | None:
    st.subheader("Scaling proposal")
    cols = st.columns(3)
    wait_min = cols[0].number_input(
        "Start within (minutes)",
        min_value=0.5,
        max_value=120.0,
        value=float(cap_rules["wait_target_minutes"]),
        step=0.5,
    )
    share_pct = cols[1].number_input(
        "Share of jobs (%)",
        min_value=50.0,
        max_value=99.9,
        value=cap_rules["wait_share"] * 100,
        step=0.5,
    )
    extra = cols[2].number_input(
        "What if: new client (tickets per day)", min_value=0, max_value=100_000, value=0, step=50
    )
    win = measured_window(ctx.now, cap_rules["history_days"])
    profile = arrival_profile(win, cap_rules["timezone"])
    service = service_times(win, rules("platform")["celery_time_limit_s"])
    record_view(ctx, "capacity", "*", {"days": cap_rules["history_days"]}, row_count=len(profile))
    if not service.runs or not service.mean_s:
        st.info(
            f"No finished runs in the last {cap_rules['history_days']} days: nothing to "
            "measure the service time from."
        )
        return None
    load = capacity.hourly_load(profile)
    proposal = capacity.propose(
        load,
        service.mean_s,
        CONCURRENCY,
        wait_min * 60,
        share_pct / 100,
        cap_rules["max_workers"],
        float(extra),
        floor=cap_rules["min_workers"],
    )

    tiles = st.columns(4)
    tiles[0].metric(
        "Busiest hour",
        proposal.peak_label.split("-")[0],
        border=True,
        help=f"{proposal.peak_label} {cap_rules['timezone']}: the weekday-hour with the most jobs "
        f"on average over the {win.days:.0f} days measured (from {win.since:%Y-%m-%d %H:%M}).",
    )
    tiles[1].metric("Jobs in that hour", f"{proposal.peak_per_hour:.0f}", border=True)
    tiles[2].metric(
        "Worker time per job",
        f"{service.mean_s:.0f} s",
        border=True,
        help=f"Mean of {service.runs:,} finished runs; p95 {fmt_age(service.p95_s)}.",
    )
    if proposal.workers_peak is None:
        tiles[3].metric("Workers needed", f"> {cap_rules['max_workers']}", border=True)
        st.error(f"Even {cap_rules['max_workers']} workers cannot reach the target at this load.")
    else:
        tiles[3].metric(
            "Proposed HPA min / max",
            f"{proposal.workers_min} / {proposal.workers_peak}",
            border=True,
            help=f"Now: min {fmt_count(cluster.hpa_min)}, max "
            f"{fmt_count(cluster.hpa_max)}, {fmt_count(cluster.replicas)} running.",
        )
        simulated = simulated_share(
            proposal.peak_per_hour,
            proposal.workers_peak * CONCURRENCY,
            service.histogram,
            wait_min * 60,
            cap_rules["simulation_jobs"],
        )
        at_peak = proposal.table.set_index("workers").loc[proposal.workers_peak]
        st.markdown(
            f"With **{proposal.workers_peak} worker{'s' * (proposal.workers_peak > 1)}** "
            f"({proposal.workers_peak * CONCURRENCY} "
            f"Celery slots) the model starts **{at_peak['share_within']:.1%}** of peak-hour jobs "
            f"within {wait_min:g} min at {at_peak['utilisation']:.0%} utilisation; a simulation "
            f"with the measured service times gives **{simulated:.1%}**. Current HPA: min "
            f"{fmt_count(cluster.hpa_min)}, max {fmt_count(cluster.hpa_max)}, "
            f"{fmt_count(cluster.replicas)} workers running."
        )
    st.dataframe(
        worker_rows(proposal, cluster),
        hide_index=True,
        width="stretch",
        column_config={
            "workers": "Workers",
            "slots": "Celery slots",
            "utilisation": st.column_config.ProgressColumn(
                "Utilisation", format="percent", min_value=0, max_value=1
            ),
            "p_wait": st.column_config.NumberColumn("P(wait at all)", format="percent"),
            "mean_wait_s": "Mean wait",
            "quantile_wait_s": f"{share_pct:g}% start within",
            "share_within": st.column_config.NumberColumn(
                f"Started within {wait_min:g} min", format="percent"
            ),
            "meets_target": st.column_config.CheckboxColumn("Meets target"),
            "note": st.column_config.TextColumn("Setting", width="medium"),
        },
    )
    left, right = st.columns(2)
    with left:
        choices = {
            "": "All tenants",
            **dict(zip(profile["tenant_id"], profile["name"], strict=True)),
        }
        picked = st.selectbox("Arrivals of", list(choices), format_func=choices.get)
        shown = (
            capacity.hourly_load(profile[profile["tenant_id"] == picked])
            if picked
            else capacity.with_new_client(load, float(extra))
        )
        st.plotly_chart(
            charts.arrival_heatmap(shown, capacity.WEEKDAYS, f"Jobs per hour: {choices[picked]}"),
            width="stretch",
            config=NO_TOOLBAR,
        )
    right.plotly_chart(
        charts.service_time_histogram(
            service.histogram, service.mean_s, capacity.HISTOGRAM_WIDTH_S
        ),
        width="stretch",
        config=NO_TOOLBAR,
    )
    with st.expander("Each tenant's arrivals"):
        st.dataframe(
            capacity.tenant_peaks(profile, win.days),
            hide_index=True,
            width="stretch",
            column_config={
                "tenant_id": "Tenant id",
                "name": "Tenant",
                "per_day": st.column_config.NumberColumn("Jobs per day", format="%.0f"),
                "peak": "Its busiest hour",
                "peak_per_hour": st.column_config.NumberColumn("Jobs in it", format="%.1f"),
            },
        )
    with st.expander("Assumptions of the model", icon=":material/info:"):
        st.markdown(
            f"- **Arrivals**: every enhancement_history row of the last "
            f"{cap_rules['history_days']} days is one job; within an hour they arrive at random "
            f"(Poisson) at that weekday-hour's average rate ({cap_rules['timezone']}). Bursts "
            "inside the hour are not modelled.\n"
            f"- **Service**: worker time per job = processing_time_ms of finished runs, "
            f"exponential with the measured mean (M/M/c, Erlang C). The measured spread is "
            f"smaller (coefficient of variation {service.cv or 0:.2f} vs 1), so the model errs "
            "on the safe side; the simulation above uses the measured distribution.\n"
            f"- **Servers**: each worker runs {CONCURRENCY} jobs at once (Celery concurrency); "
            "all tenants share one first-come-first-served queue (priorities ignored).\n"
            "- **HPA**: max = workers for the busiest hour; min = workers for a typical "
            f"(median) hour, never fewer than {cap_rules['min_workers']} (one worker restarting "
            "must not stop processing); in between the HPA is assumed to follow the load (the "
            "monthly cost uses that hour-by-hour average). It scales on CPU "
            "today, minutes behind a sudden peak: raise the min for business hours if the peak "
            "arrives all at once.\n"
            f"- **What if**: a new client of {extra} tickets per day is spread over the week "
            "like the current fleet."
        )
    return proposal, win, capacity.tenant_usage(profile)


def show_costs(
    proposal: capacity.Proposal,
    win: capacity.Window,
    usage: pd.DataFrame,
    cluster: costs.Cluster,
    history: metrics.History | None,
) -> None:
    st.subheader("Cost")
    defaults = costs.Prices.defaults()
    measured = history.mean("replicas_available") if history else None
    cols = st.columns(3)
    worker_hour = cols[0].number_input(
        "$ per worker-hour", min_value=0.0, step=0.01, value=defaults.worker_hour_usd, format="%.3f"
    )
    per_run = cols[1].number_input(
        "LLM $ per enhancement",
        min_value=0.0,
        step=0.01,
        value=defaults.llm_per_enhancement_usd,
        format="%.3f",
    )
    current_workers = cols[2].number_input(
        "Current average workers",
        min_value=0.0,
        step=0.5,
        value=float(round(measured or cluster.replicas or 1.0, 1)),
        help="Default: the average of 'workers available' over the history range above; "
        "without that history, the workers running now; else 1.",
    )
    prices = costs.Prices(worker_hour, per_run, defaults.hours_per_month)
    per_month = usage["runs"].sum() * prices.days_per_month / win.days
    current = costs.monthly("Current", current_workers, per_month, prices)
    proposed = costs.monthly(
        "Proposed",
        proposal.avg_workers,
        per_month + proposal.extra_per_day * prices.days_per_month,
        prices,
    )
    money = st.column_config.NumberColumn(format="dollar")
    st.dataframe(
        costs.comparison(current, proposed),
        hide_index=True,
        width="stretch",
        column_config={
            "Average workers": st.column_config.NumberColumn(format="%.1f"),
            "Enhancements / month": st.column_config.NumberColumn(format="%.0f"),
            "Workers $": money,
            "LLM $": money,
            "Total $": money,
        },
    )
    shares = costs.tenant_shares(usage, win.days, proposed.workers_usd, CONCURRENCY, prices)
    st.markdown(
        "**Each tenant's share of the proposed monthly cost** (worker bill split by the "
        "worker-seconds its jobs take, plus its own LLM cost)"
    )
    st.dataframe(
        shares,
        hide_index=True,
        width="stretch",
        column_order=["name", "tenant_id", *shares.columns[2:]],
        column_config={
            "tenant_id": "Tenant id",
            "name": "Tenant",
            "enhancements": st.column_config.NumberColumn("Enhancements / month", format="%.0f"),
            "worker_s": st.column_config.NumberColumn("Worker-seconds / month", format="%.0f"),
            "share": st.column_config.ProgressColumn(
                "Share of worker time", format="percent", min_value=0, max_value=1
            ),
            "workers_usd": st.column_config.NumberColumn("Workers", format="dollar"),
            "llm_usd": st.column_config.NumberColumn("LLM", format="dollar"),
            "total_usd": st.column_config.NumberColumn("Total", format="dollar"),
        },
    )
    client_line = costs.client_line(shares, ctx.tenant_id)
    text = costs.proposal_text(
        proposal, cluster, current, proposed, ctx.user.email, ctx.now, client_line
    )
    st.download_button(
        "Download the proposal for client approval",
        text,
        file_name=f"worker-scaling-proposal-{ctx.now:%Y-%m-%d}.txt",
        mime="text/plain",
        icon=":material/download:",
    )
    with st.expander("Preview the proposal text"):
        st.code(text, language=None)
    if not client_line:
        st.caption(
            "Pick a tenant in the sidebar to add that client's own share to the text; "
            "no other client's figures are ever included."
        )


st.title("Queues and scaling")
st.caption(
    "The live queue, its history from Prometheus, how many workers the peak hour needs, "
    "and what that costs."
)
live_queue()
queue_trend = show_history()
st.divider()
with guard("the scaling proposal"):
    cluster_now = current_cluster()
    planned = show_proposal(cluster_now)
    if planned:
        st.divider()
        show_costs(*planned, cluster_now, queue_trend)
