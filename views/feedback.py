"""Technician feedback: the platform's statistics, trends, worst-rated enhancements and themes.

One tenant (tenant scope) or, for admins, the fleet. Comments and ticket text are read only for
one tenant, after the engineer confirms the client's consent for the support case named in the
purpose.
"""

import pandas as pd
import streamlit as st

from services import feedback, formatting, themes
from services.config import rules
from services.timerange import TimeRange
from ui import figures, reads
from ui.common import (
    ViewContext,
    client_consent,
    custom_days,
    guard,
    investigation_link,
    lazy_expander,
    md,
    record_view,
    tenants,
    ticket_link,
)

ctx: ViewContext = st.session_state["view_context"]
health_rules = rules("health")


def show_tiles(stats: feedback.FeedbackStats) -> None:
    counts = stats.feedback_counts
    votes = counts["thumbs_up"] + counts["thumbs_down"]
    tiles = st.columns(5)
    tiles[0].metric(
        "Average rating",
        formatting.rating(stats.average_rating),
        border=True,
        help=f"AVG(rating_value) over {counts['rating']} rating entries. "
        f"Target > {health_rules['rating_target']}, red flag < "
        f"{health_rules['rating_red_flag']}.",
    )
    tiles[1].metric(
        "Positive",
        f"{stats.positive_percentage:.2f}%" if votes else "–",
        border=True,
        help="thumbs up / (thumbs up + thumbs down). With no votes "
        "the platform's API reports 0.0; shown here as –. Target > "
        f"{health_rules['positive_target_pct']:.0f}%.",
    )
    tiles[2].metric(
        "Thumbs up / down", f"{counts['thumbs_up']:,} / {counts['thumbs_down']:,}", border=True
    )
    tiles[3].metric("Ratings", f"{counts['rating']:,}", border=True)
    tiles[4].metric("Total feedback", f"{stats.total_feedback:,}", border=True)
    lazy_expander(
        "As the platform's feedback API returns it (GET /api/v1/feedback/stats)",
        "feedback_api_open",
        lambda: st.json(stats.as_api()),
    )


def show_charts(trend: feedback.FeedbackTrend, marks: pd.DataFrame) -> None:
    figures.show(figures.feedback_over_time(trend.over_time, health_rules["rating_target"], marks))
    figures.show(figures.rating_distribution(trend.ratings))  # the thumbs are in the tiles


def show_worst(worst: pd.DataFrame, fleet: bool, consented: bool) -> None:
    st.subheader("Worst-rated enhancements")
    if worst.empty:
        st.info("No rated enhancements in this range.")
        return
    table = feedback.worst_table(worst, consented)
    table["Investigate"] = [
        investigation_link(t, k)
        for t, k in zip(worst["tenant_id"], worst["ticket_id"], strict=True)
    ]
    if not fleet:
        table = table.drop(columns="Tenant")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key=f"worst_{fleet}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "Avg rating": st.column_config.NumberColumn(format="%.2f"),
            "Last feedback": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "Run": st.column_config.TextColumn(
                help="The rated run (its enhancement_id, else the ticket's newest run before "
                "the feedback): status, and the failure cause of a failed one"
            ),
            "Processing": st.column_config.NumberColumn(
                format="%.0f s", help="processing_time_ms of the rated run"
            ),
            "Signals": st.column_config.TextColumn(
                width="medium", help="What the rated run's record says (as in the themes)"
            ),
            "Description": st.column_config.TextColumn(width="large"),
            "Resolution": st.column_config.TextColumn(width="medium"),
            "Comments": st.column_config.TextColumn(width="large"),
            "Investigate": st.column_config.LinkColumn(
                display_text="Open ↗", help="The ticket in the investigation view (new tab)"
            ),
        },
    )
    selected = st.session_state[f"worst_{fleet}"].selection.rows
    if selected:
        row = worst.iloc[selected[0]]
        st.page_link(
            "views/investigation.py",
            icon=":material/troubleshoot:",
            label=f"Investigate ticket {md(row['ticket_id'])} of {md(row['tenant_name'])}",
            query_params={"tenant": row["tenant_id"], "ticket": row["ticket_id"]},
        )
    else:
        st.caption(
            "Select a row to open that ticket in the investigation view here, or use "
            "its Open ↗ link for a new tab."
        )


def theme_table(frame: pd.DataFrame, side: str, fleet: bool, consented: bool) -> None:
    other = "positive" if side == themes.NEGATIVE else "negative"
    if frame.empty:
        st.info(themes.no_theme_text(side))
        return
    table = themes.theme_table(frame, side, fleet, consented)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            f"% of {side}": st.column_config.NumberColumn(format="%.0f%%"),
            f"% of {other}": st.column_config.NumberColumn(format="%.0f%%"),
            "Lift": st.column_config.NumberColumn(
                format="%.1f×",
                help=(
                    f"How many times more often {side} feedback has it than {other} "
                    "feedback does (counts + 1)."
                ),
            ),
            "Example comments": st.column_config.TextColumn(width="large"),
        },
    )


def show_themes(found: themes.Themes, fleet: bool, consented: bool) -> None:
    st.subheader("Themes: negative versus positive feedback")
    st.caption(themes.method_text(found, consented))
    st.markdown("**:red[Negative] themes**")
    theme_table(found.negative, themes.NEGATIVE, fleet, consented)
    st.markdown("**:green[Positive] themes**")
    theme_table(found.positive, themes.POSITIVE, fleet, consented)
    if not found.negative.empty:
        figures.show(figures.theme_shares(found.negative, themes.NEGATIVE))
    # Example tickets open in the investigation view.
    if examples := themes.negative_examples(found):
        st.caption(
            "Open a negative-theme example: "
            + " · ".join(ticket_link(t, k, name_tenant=fleet) for t, k in examples)
        )


def show_tenants(summary: feedback.FeedbackSummary) -> None:
    st.subheader("By tenant")
    tenants = summary.by_tenant
    st.session_state["feedback_tenant_rows"] = tenants["tenant_id"].tolist()
    st.dataframe(
        feedback.tenants_table(tenants),
        hide_index=True,
        width="stretch",
        key="feedback_tenants",
        on_select=pick_tenant,
        selection_mode="single-row",
        column_config={"Avg rating": st.column_config.NumberColumn(format="%.2f")},
    )


def pick_tenant() -> None:
    rows = st.session_state["feedback_tenants"].selection.rows
    if rows:
        st.session_state["tenant"] = st.session_state["feedback_tenant_rows"][rows[0]]


def show(tenant_id: str | None, period: TimeRange) -> None:
    """One tenant (its scope), or every tenant (None: admins) with a row per tenant."""
    fleet = tenant_id is None
    summary = reads.feedback_summary(tenant_id, period)
    params = {"since": period.since, "until": period.until}
    kind = "fleet_feedback" if fleet else "tenant_feedback"
    record_view(ctx, kind, tenant_id or "*", params, row_count=summary.total.total_feedback)
    if fleet:
        st.caption(
            f"Every tenant · {period.label}. Pick a tenant in the sidebar (or a row below) for "
            "its detail and, with the client's consent, its comments."
        )
    else:
        st.caption(f"`{tenant_id}` · {period.label}")
    trend = None if fleet else reads.health_trend(tenant_id, period)  # for its incidents
    marks = reads.chart_marks(tenant_id, period, trend, ctx.user.is_admin)
    show_tiles(summary.total)
    show_charts(reads.feedback_trend(tenant_id, period), marks)
    if fleet:
        show_tenants(summary)
        consented = False
    else:
        with st.container(border=True):
            consented = client_consent(
                ctx, tenant_id, "feedback comments and ticket text", "feedback_comments", params
            )
            if not consented:
                st.caption(
                    "Feedback comments and ticket descriptions and resolutions stay hidden "
                    "without consent; the worst-rated list and the themes below use only the "
                    "runs' signals."
                )
    show_worst(reads.worst_rated(tenant_id, period, consented), fleet, consented)
    show_themes(reads.feedback_themes(tenant_id, period, consented), fleet, consented)


names = {t.tenant_id: t.name for t in tenants()}
st.title(
    f"Feedback · {md(names.get(ctx.tenant_id, ctx.tenant_id))}"
    if ctx.tenant_id
    else "Feedback · fleet"
)
with guard("feedback"):
    if ctx.tenant_id or ctx.user.is_admin:
        show(ctx.tenant_id, custom_days(ctx, "feedback"))
    else:
        st.info(
            "Choose a tenant in the sidebar. The fleet view is for admins.",
            icon=":material/domain:",
        )
