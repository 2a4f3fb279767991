"""Tenant health: the fleet at a glance, and one tenant's trends, failures and playbooks."""

import streamlit as st

from services import formatting, health, playbooks, queues, rates
from services.config import rules
from ui import figures, reads
from ui.common import STATUS_BADGE, STATUS_ICON, ViewContext, guard, md, record_view

ctx: ViewContext = st.session_state["view_context"]
health_rules = rules("health")


def queue_snapshot() -> queues.QueueSnapshot | None:
    with guard("the live queue"):
        return queues.snapshot()
    return None


def traffic_note(traffic: health.Traffic) -> None:
    if traffic.unavailable:
        st.caption(
            f":material/info: The webhook rules (silent, rejected, queued but not "
            f"attempted) were not judged: {traffic.unavailable}."
        )


def select_tenant_from_table() -> None:
    selection = st.session_state["fleet_table"].selection.rows
    if selection:
        st.session_state["tenant"] = st.session_state["fleet_rows"][selection[0]]


def show_fleet() -> None:
    st.title("Tenant health")
    st.caption(f"Every tenant over the {ctx.range.label}. Select a row for its detail.")
    frame = reads.health_metrics(None, ctx.range)
    snapshot = queue_snapshot()
    traffic = reads.traffic(None, ctx.now)
    table = health.fleet_table(frame, snapshot, traffic, ctx.now)
    record_view(ctx, "fleet_health", "*", {"range": ctx.range_key}, row_count=len(table))

    counts = table["Status"].value_counts()
    table["Status"] = [f"{STATUS_ICON[status]} {status}" for status in table["Status"]]
    completed, failed = frame["completed"].sum(), frame["failed"].sum()
    tiles = st.columns(5)
    tiles[0].metric("Critical", int(counts.get("critical", 0)), border=True)
    tiles[1].metric("Degraded", int(counts.get("degraded", 0)), border=True)
    tiles[2].metric("Healthy", int(counts.get("healthy", 0)), border=True)
    tiles[3].metric(
        "Fleet success rate",
        formatting.percent(rates.share(completed, completed + failed)),
        border=True,
        help="By attempt: completed / (completed + failed) attempts; a retried ticket counts "
        "each attempt.",
    )
    tiles[4].metric("Queued now", snapshot.total if snapshot else "–", border=True)

    if table.empty:
        st.info("No tenants are configured in this platform database yet.")
        return
    traffic_note(traffic)
    st.session_state["fleet_rows"] = table["Tenant id"].tolist()
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="fleet_table",
        on_select=select_tenant_from_table,
        selection_mode="single-row",
        column_config={
            "Why": st.column_config.TextColumn(width="large"),
            "Success (tickets)": st.column_config.ProgressColumn(
                format="percent",
                min_value=0,
                max_value=1,
                help="Tickets that got an enhancement (any attempt completed) of the tickets "
                "that ended",
            ),
            "Success (attempts)": st.column_config.ProgressColumn(
                format="percent",
                min_value=0,
                max_value=1,
                help="completed / (completed + failed) attempts",
            ),
            "Attempts": st.column_config.NumberColumn(
                help="Rows: one per worker attempt, retries included"
            ),
            "Tickets": st.column_config.NumberColumn(help="count(DISTINCT ticket_id)"),
            "Success: interval, n": st.column_config.TextColumn(
                help="95% Wilson interval and the attempts it rests on"
            ),
            "p95: interval, n": st.column_config.TextColumn(
                help="95% interval from the order statistics and the completed attempts"
            ),
            "Failures by cause": st.column_config.TextColumn(width="medium"),
        },
    )
    show_rules()


def show_rules() -> None:
    with st.expander("How status is decided"):
        st.markdown(health.how_status_is_decided())


def show_tenant(tenant_id: str) -> None:
    frame = reads.health_metrics(tenant_id, ctx.range)
    if frame.empty:
        st.warning(f"No tenant `{tenant_id}` is configured.")
        return
    row = frame.iloc[0].to_dict()
    snapshot = queue_snapshot()
    traffic = reads.traffic(tenant_id, ctx.now)
    verdict = health.verdict(row, snapshot, traffic)
    record_view(ctx, "tenant_health", tenant_id, {"range": ctx.range_key}, row_count=1)

    st.title(md(row["name"]))
    st.markdown(f"{STATUS_BADGE[verdict.status]} &nbsp; `{tenant_id}` · {ctx.range.label}")
    tiles = st.columns(4)
    rate, found = row["success_rate"], health.ratios(row)
    by_ticket = row["ticket_success_rate"]
    tiles[0].metric(
        "Tickets",
        f"{row['tickets']:,}",
        border=True,
        help=f"{row['attempts']:,} attempts ({row['completed']:,} completed, "
        f"{row['failed']:,} failed, {row['pending']:,} pending): one row per worker attempt, "
        "Celery retries included",
    )
    tiles[1].metric(
        "Success rate (tickets)",
        formatting.percent(by_ticket),
        border=True,
        help=f"{row['tickets_enhanced']:,} tickets enhanced (any attempt completed), "
        f"{row['tickets_failed']:,} ended without one",
    )
    tiles[1].caption(f"n = {row['tickets_enhanced'] + row['tickets_failed']:,} finished tickets")
    tiles[2].metric(
        "Success rate (attempts)",
        formatting.percent(rate),
        border=True,
        help="completed / (completed + failed) attempts: "
        + health.describe("success_rate", found["success_rate"]),
    )
    tiles[2].caption(health.sample_caption("success_rate", found["success_rate"]))
    tiles[3].metric(
        "p50 · p95 processing time",
        f"{formatting.duration(row['p50_s'])} · {formatting.duration(row['p95_s'])}",
        border=True,
        help="completed_at - created_at of completed attempts: a worker's time, from its start "
        "(the webhook's arrival is not stored). p95: " + health.describe("p95_s", found["p95_s"]),
    )
    tiles[3].caption(health.sample_caption("p95_s", found["p95_s"]))
    tiles = st.columns(4)
    for tile, key, label in (
        (tiles[0], "rating", "Avg rating"),
        (tiles[1], "positive", "Positive feedback"),
    ):
        e = found[key]
        tile.metric(
            label,
            health.fmt_value(key, e.value),
            border=True,
            help=health.describe(key, e),
        )
        tile.caption(health.sample_caption(key, e))
    tiles[2].metric(
        "Last enhancement", formatting.since(row["last_completed"], ctx.now), border=True
    )
    tiles[3].metric(
        "Queued now", snapshot.tenant_counts().get(tenant_id, 0) if snapshot else "–", border=True
    )

    failures = reads.health_failures(tenant_id, ctx.range)
    notes = [r.text for r in verdict.reasons if r.severity == health.NOT_JUDGED]
    if verdict.failing:
        st.subheader("What needs attention")
        top_step = failures["next_step"].iloc[0] if not failures.empty else None
        for reason in verdict.failing:
            book = playbooks.for_rule(reason.rule, tenant_id, top_step)
            icon = "🔴" if reason.severity == health.CRITICAL else "🟠"
            with st.expander(f"{icon} {reason.text}", expanded=reason.severity == health.CRITICAL):
                if book:
                    st.markdown(
                        f"**{book.scenario}** ({book.severity})\n\n"
                        f"- **Quick diagnosis:** {book.diagnosis}\n"
                        f"- **Quick fix:** {book.fix}\n"
                        f"- **Escalate:** {book.escalate}"
                    )
    elif verdict.status == health.HEALTHY:
        st.success("All health rules pass for this tenant.", icon=":material/check_circle:")
    if notes:
        st.caption("Not judged: " + "; ".join(md(n) for n in notes))
    traffic_note(traffic)

    trend = reads.health_trend(tenant_id, ctx.range)
    marks = reads.chart_events(tenant_id, ctx.range, trend, ctx.user.is_admin)
    figures.show_health_pair(trend, health_rules, marks)
    show_rules()
    st.subheader("Failures by cause")
    if failures.empty:
        st.info("No failed attempts in this range.")
    else:
        # the attempts as bars in their own column: the table is the chart (one element less
        # for the browser to draw on every visit)
        bar = st.column_config.ProgressColumn(
            "failed attempts", format="%d", min_value=0, max_value=int(failures["attempts"].max())
        )
        st.dataframe(
            failures[["cause", "attempts", "last_seen", "typical_error", "next_step"]],
            hide_index=True,
            width="stretch",
            column_config={"attempts": bar},
        )


with guard("tenant health"):
    if ctx.tenant_id:
        show_tenant(ctx.tenant_id)
    elif ctx.user.is_admin:
        show_fleet()
    else:  # support engineers look at one tenant at a time; the fleet is an admin view
        st.title("Tenant health")
        st.info("Pick a tenant in the sidebar to see its health.", icon=":material/arrow_back:")
