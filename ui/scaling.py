"""The Queues page's scaling section: its inputs, the proposal and the cost calculator, drawn from
a services.scaling.ScalingPlan (views/queues.py reads the inputs first, then plans and draws)."""

import streamlit as st

from services import capacity, costs, formatting, scaling
from services.config import rules
from ui import figures
from ui.common import lazy_expander, own_filter

CAP = rules("capacity")


def read_targets() -> scaling.Targets:
    cols = st.columns(3)
    wait_min = cols[0].number_input(
        "Start within (minutes)",
        min_value=0.5,
        max_value=120.0,
        value=float(CAP["wait_target_minutes"]),
        step=0.5,
    )
    share_pct = cols[1].number_input(
        "Share of jobs (%)",
        min_value=50.0,
        max_value=99.9,
        value=CAP["wait_share"] * 100,
        step=0.5,
    )
    extra = cols[2].number_input(
        "What if: new client (tickets per day)", min_value=0, max_value=100_000, value=0, step=50
    )
    return scaling.Targets(wait_min, share_pct, extra)


def read_prices(current_workers: float) -> tuple[costs.Prices, float]:
    defaults = costs.Prices.defaults()
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
    workers = cols[2].number_input(
        "Current average workers",
        min_value=0.0,
        step=0.5,
        value=current_workers,
        help="Default: the average of 'workers available' over the history range above; "
        "without that history, the workers running now; else 1.",
    )
    return costs.Prices(worker_hour, per_run, defaults.hours_per_month), workers


def draw_proposal(result: scaling.ScalingPlan) -> None:
    proposal, service, targets, win = result.proposal, result.service, result.targets, result.window
    tiles = st.columns(4)
    tiles[0].metric(
        "Busiest hour",
        proposal.peak_label.split("-")[0],
        border=True,
        help=f"{proposal.peak_label} {CAP['timezone']}: the weekday-hour with the most jobs "
        f"on average over the {win.days:.0f} days measured (from {win.since:%Y-%m-%d %H:%M}).",
    )
    tiles[1].metric("Jobs in that hour", f"{proposal.peak_per_hour:.0f}", border=True)
    tiles[2].metric(
        "Worker time per job",
        f"{service.mean_s:.0f} s",
        border=True,
        help=f"Mean of {service.runs:,} finished runs; p95 {formatting.duration(service.p95_s)}.",
    )
    summary = result.summary
    if summary is None:
        tiles[3].metric("Workers needed", f"> {CAP['max_workers']}", border=True)
        st.error(f"Even {CAP['max_workers']} workers cannot reach the target at this load.")
    else:
        tiles[3].metric(
            "Proposed HPA min / max",
            f"{proposal.workers_min} / {proposal.workers_peak}",
            border=True,
            help=f"Now: {result.now_text}.",
        )
        st.markdown(summary)
    st.dataframe(
        result.worker_rows(),
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
            "quantile_wait_s": f"{targets.share_pct:g}% start within",
            "share_within": st.column_config.NumberColumn(
                f"Started within {targets.wait_minutes:g} min", format="percent"
            ),
            "meets_target": st.column_config.CheckboxColumn("Meets target"),
            "note": st.column_config.TextColumn("Setting", width="medium"),
        },
    )
    left, right = st.columns(2)
    choices = result.arrival_choices()
    picked = own_filter(
        left.selectbox, "Arrivals of", list(choices), format_func=choices.get, key="arrivals"
    )
    arrivals = result.arrivals(picked)
    title = f"Jobs per hour: {choices[picked]}"
    figures.show(figures.arrival_heatmap(arrivals, capacity.WEEKDAYS, title), left)
    histogram = service.histogram, service.mean_s, capacity.HISTOGRAM_WIDTH_S
    figures.show(figures.service_time_histogram(*histogram), right)
    lazy_expander(
        "Each tenant's arrivals",
        "tenant_arrivals_open",
        lambda: st.dataframe(
            result.tenant_peaks(),
            hide_index=True,
            width="stretch",
            column_config={
                "tenant_id": "Tenant id",
                "name": "Tenant",
                "per_day": st.column_config.NumberColumn("Jobs per day", format="%.0f"),
                "peak": "Its busiest hour",
                "peak_per_hour": st.column_config.NumberColumn("Jobs in it", format="%.1f"),
            },
        ),
    )
    with st.expander("Assumptions of the model", icon=":material/info:"):
        st.markdown(result.assumptions())


def draw_costs(result: scaling.ScalingPlan) -> None:
    money = st.column_config.NumberColumn(format="dollar")
    st.dataframe(
        costs.comparison(result.current, result.proposed),
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
    st.markdown(
        "**Each tenant's share of the proposed monthly cost** (worker bill split by the "
        "worker-seconds its jobs take, plus its own LLM cost)"
    )
    st.dataframe(
        result.shares,
        hide_index=True,
        width="stretch",
        column_order=["name", "tenant_id", *result.shares.columns[2:]],
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
    st.download_button(
        "Download the proposal for client approval",
        result.text,
        file_name=result.file_name,
        mime="text/plain",
        icon=":material/download:",
    )
    lazy_expander(
        "Preview the proposal text",
        "proposal_text_open",
        lambda: st.code(result.text, language=None),
    )
    if not result.client_line:
        st.caption(
            "Pick a tenant in the sidebar to add that client's own share to the text; "
            "no other client's figures are ever included."
        )
