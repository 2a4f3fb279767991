"""Tenant health: the fleet at a glance, and one tenant's trends, failures and playbooks."""

import pandas as pd
import streamlit as st

from services import charts, health, playbooks, queues
from services.config import rules
from ui.common import STATUS_BADGE, STATUS_ICON, ViewContext, cached, guard, md, record_view

ctx: ViewContext = st.session_state["view_context"]
health_rules = rules("health")

fleet_metrics = cached(ttl=60)(health.fleet_metrics)
tenant_metrics = cached(ttl=60)(health.tenant_metrics)
tenant_trend = cached(ttl=60)(health.tenant_trend)
tenant_failures = cached(ttl=60)(health.tenant_failures)
read_traffic = cached(ttl=60)(health.read_traffic)


def queue_snapshot() -> queues.QueueSnapshot | None:
    with guard("the live queue"):
        return queues.snapshot()
    return None


def fmt_seconds(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.0f} s"


def fmt_when(value, now) -> str:
    if value is None or pd.isna(value):
        return "never"
    minutes = (pd.Timestamp(now) - pd.Timestamp(value)).total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min ago"
    return f"{minutes / 60:.1f} h ago" if minutes < 48 * 60 else f"{minutes / 1440:.0f} d ago"


def causes_text(failures: dict[str, int]) -> str:
    ranked = sorted(failures.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{health.failure_label(k)} {n}" for k, n in ranked) or "–"


def verdict_of(
    row: dict, snapshot: queues.QueueSnapshot | None, traffic: health.Traffic
) -> health.Assessment:
    tenant_id = row["tenant_id"]
    return health.assess(
        row,
        queue_oldest_s=snapshot.oldest_age_seconds(tenant_id) if snapshot else None,
        traffic=traffic.of(tenant_id),
        queued_now=snapshot.tenant_counts().get(tenant_id, 0) if snapshot else None,
    )


def traffic_note(traffic: health.Traffic) -> None:
    if traffic.unavailable:
        st.caption(
            f":material/info: The webhook rules (silent, rejected, queued but not "
            f"attempted) were not judged: {traffic.unavailable}."
        )


def fleet_table(
    frame: pd.DataFrame, snapshot: queues.QueueSnapshot | None, traffic: health.Traffic
) -> pd.DataFrame:
    shares = snapshot.tenant_counts() if snapshot else {}
    rows = []
    for row in frame.to_dict("records"):
        verdict = verdict_of(row, snapshot, traffic)
        rows.append(
            {
                "Status": f"{STATUS_ICON[verdict.status]} {verdict.status}",
                "Tenant": row["name"],
                "Tenant id": row["tenant_id"],
                "Why": verdict.summary,
                "Tickets": row["tickets"],
                "Attempts": row["attempts"],
                "Success (tickets)": row["ticket_success_rate"],
                "Success (attempts)": row["success_rate"],
                "p50": fmt_seconds(row["p50_s"]),
                "p95": fmt_seconds(row["p95_s"]),
                "Failures by cause": causes_text(row["failures_by_cause"]),
                "Rating": row["avg_rating"],
                "Positive %": row["positive_pct"],
                "Last enhancement": fmt_when(row["last_completed"], ctx.now),
                "Queued": shares.get(row["tenant_id"], 0),
                "History tickets": row["history_tickets"],
                "_rank": health.SEVERITY_ORDER[verdict.status] if row["is_active"] else -1,
            }
        )
    if not rows:
        return pd.DataFrame(columns=["Status", "Tenant", "Tenant id", "Why"])
    table = pd.DataFrame(rows)
    return table.sort_values("_rank", ascending=False, kind="stable").drop(columns="_rank")


def select_tenant_from_table() -> None:
    selection = st.session_state["fleet_table"].selection.rows
    if selection:
        st.session_state["tenant"] = st.session_state["fleet_rows"][selection[0]]


def show_fleet() -> None:
    st.title("Tenant health")
    st.caption(f"Every tenant over the {ctx.range_label}. Select a row for its detail.")
    frame = fleet_metrics(ctx.since, ctx.now)
    snapshot = queue_snapshot()
    traffic = read_traffic(ctx.now)
    table = fleet_table(frame, snapshot, traffic)
    record_view(ctx, "fleet_health", "*", {"range": ctx.range_key}, row_count=len(table))

    counts = table["Status"].str.split(" ").str[1].value_counts()
    finished = frame["completed"].sum() + frame["failed"].sum()
    tiles = st.columns(5)
    tiles[0].metric("Critical", int(counts.get("critical", 0)), border=True)
    tiles[1].metric("Degraded", int(counts.get("degraded", 0)), border=True)
    tiles[2].metric("Healthy", int(counts.get("healthy", 0)), border=True)
    tiles[3].metric(
        "Fleet success rate",
        f"{frame['completed'].sum() / finished:.1%}" if finished else "–",
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
            "Rating": st.column_config.NumberColumn(format="%.2f"),
            "Positive %": st.column_config.NumberColumn(format="%.0f%%"),
            "Failures by cause": st.column_config.TextColumn(width="medium"),
        },
    )
    with st.expander("How status is decided"):
        st.markdown(
            f"- **Critical**: success rate below {health_rules['success_rate_critical']:.0%}, "
            f"p95 processing time over {health_rules['p95_critical_s']} s, attempts but nothing "
            f"completed for {health_rules['stalled_after_minutes']} min, no webhooks where the "
            "same weekday and hour of past weeks had many (webhook secret), webhooks queued but "
            "no attempt started, or the tenant's oldest queued job older than "
            f"{rules('queue')['oldest_job_stuck_minutes']} min.\n"
            f"- **Degraded**: success below {health_rules['success_rate_target']:.0%}, p95 over "
            f"{health_rules['p95_target_s']} s, runs pending past "
            f"{health_rules['stuck_pending_seconds']} s, rating below "
            f"{health_rules['rating_red_flag']}, positive feedback below "
            f"{health_rules['positive_warning_pct']:.0f}%, fewer than "
            f"{health_rules['ticket_history_min']} history tickets, webhooks rejected by the API, "
            "or no attempts at all.\n"
            f"- Ratios are judged from {health_rules['min_volume_for_ratios']} finished attempts "
            "up. One ticket can have up to 4 attempts (Celery retries); processing time is "
            "completed_at - created_at of an attempt (created_at = a worker started it; queue "
            "wait is not stored). Thresholds live in `dashboard.toml`."
        )


def show_tenant(tenant_id: str) -> None:
    frame = tenant_metrics(tenant_id, ctx.since, ctx.now)
    if frame.empty:
        st.warning(f"No tenant `{tenant_id}` is configured.")
        return
    row = frame.iloc[0].to_dict()
    snapshot = queue_snapshot()
    traffic = read_traffic(ctx.now, tenant_id)
    verdict = verdict_of(row, snapshot, traffic)
    record_view(ctx, "tenant_health", tenant_id, {"range": ctx.range_key}, row_count=1)

    st.title(md(row["name"]))
    st.markdown(f"{STATUS_BADGE[verdict.status]} &nbsp; `{tenant_id}` · {ctx.range_label}")
    tiles = st.columns(4)
    rate, rating, positive = row["success_rate"], row["avg_rating"], row["positive_pct"]
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
        "–" if pd.isna(by_ticket) else f"{by_ticket:.1%}",
        border=True,
        help=f"{row['tickets_enhanced']:,} tickets enhanced (any attempt completed), "
        f"{row['tickets_failed']:,} ended without one",
    )
    tiles[2].metric(
        "Success rate (attempts)",
        "–" if pd.isna(rate) else f"{rate:.1%}",
        border=True,
        help="completed / (completed + failed) attempts",
    )
    tiles[3].metric(
        "p50 · p95 processing time",
        f"{fmt_seconds(row['p50_s'])} · {fmt_seconds(row['p95_s'])}",
        border=True,
        help="completed_at - created_at of completed attempts: a worker's time, from its start "
        "(the webhook's arrival is not stored)",
    )
    tiles = st.columns(4)
    tiles[0].metric("Avg rating", "–" if pd.isna(rating) else f"{rating:.2f} / 5", border=True)
    tiles[1].metric(
        "Positive feedback", "–" if pd.isna(positive) else f"{positive:.0f}%", border=True
    )
    tiles[2].metric("Last enhancement", fmt_when(row["last_completed"], ctx.now), border=True)
    tiles[3].metric(
        "Queued now", snapshot.tenant_counts().get(tenant_id, 0) if snapshot else "–", border=True
    )

    failures = tenant_failures(tenant_id, ctx.since, ctx.now)
    if verdict.reasons and verdict.status != health.INACTIVE:
        st.subheader("What needs attention")
        top_step = failures["next_step"].iloc[0] if not failures.empty else None
        for reason in verdict.reasons:
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
    traffic_note(traffic)

    trend = tenant_trend(tenant_id, ctx.since, ctx.now)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(
            charts.volume_and_success(trend, health_rules["success_rate_target"]),
            width="stretch",
            config={"displayModeBar": False},
        )
    with right:
        st.plotly_chart(
            charts.latency_p95(trend, health_rules["p95_target_s"], health_rules["p95_critical_s"]),
            width="stretch",
            config={"displayModeBar": False},
        )
    st.subheader("Failures by cause")
    if failures.empty:
        st.info("No failed attempts in this range.")
    else:
        left, right = st.columns([2, 3])
        left.plotly_chart(
            charts.failure_breakdown(failures), width="stretch", config={"displayModeBar": False}
        )
        right.dataframe(
            failures[["cause", "attempts", "last_seen", "typical_error", "next_step"]],
            hide_index=True,
            width="stretch",
        )


with guard("tenant health"):
    if ctx.tenant_id:
        show_tenant(ctx.tenant_id)
    elif ctx.user.is_admin:
        show_fleet()
    else:  # support engineers look at one tenant at a time; the fleet is an admin view
        st.title("Tenant health")
        st.info("Pick a tenant in the sidebar to see its health.", icon=":material/arrow_back:")
