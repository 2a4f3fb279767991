"""Technician feedback: the platform's statistics, trends, worst-rated enhancements and themes.

One tenant (tenant scope) or, for admins, the fleet. Comments and ticket text are read only for
one tenant, after the engineer confirms the client's consent for the support case named in the
purpose.
"""

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from services import charts, events, feedback, themes
from services.config import rules
from services.investigation.model import case_reference
from ui.common import ViewContext, cached, guard, investigation_link, record_view, tenants

ctx: ViewContext = st.session_state["view_context"]
health_rules, feedback_rules = rules("health"), rules("feedback")
PLOTLY = {"displayModeBar": False}

tenant_summary = cached(ttl=60)(feedback.tenant_summary)
fleet_summary = cached(ttl=60)(feedback.fleet_summary)
tenant_trend = cached(ttl=60)(feedback.tenant_trend)
fleet_trend = cached(ttl=60)(feedback.fleet_trend)
tenant_worst = cached(ttl=60)(feedback.tenant_worst_rated)
fleet_worst = cached(ttl=60)(feedback.fleet_worst_rated)
tenant_themes = cached(ttl=60)(themes.tenant_themes)
fleet_themes = cached(ttl=60)(themes.fleet_themes)
tenant_events = cached(ttl=60)(events.for_tenant)
fleet_events = cached(ttl=60)(events.platform_events)  # the fleet view is admin-only


def time_range() -> tuple[datetime, datetime, str]:
    """The sidebar's range, or whole UTC days picked here."""
    if not st.toggle(
        "Custom dates",
        key="feedback_custom_dates",
        bind="query-params",
        help="Any range of whole days (UTC) instead of the sidebar's range.",
    ):
        return ctx.since, ctx.now, ctx.range_label
    picked = st.date_input(
        "Dates (UTC)",
        value=(ctx.since.date(), ctx.now.date()),
        max_value=ctx.now.date(),
        key="feedback_dates",
        bind="query-params",
    )
    first, last = (picked[0], picked[-1]) if picked else (ctx.since.date(), ctx.now.date())
    since = datetime.combine(first, time.min, tzinfo=UTC)
    until = min(
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        - timedelta(microseconds=1),
        ctx.now,
    )
    return since, until, f"{first:%d %b %Y} – {last:%d %b %Y} (UTC)"


def rating_text(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.2f} / 5"


def show_tiles(stats: feedback.FeedbackStats) -> None:
    counts = stats.feedback_counts
    votes = counts["thumbs_up"] + counts["thumbs_down"]
    tiles = st.columns(5)
    tiles[0].metric(
        "Average rating",
        rating_text(stats.average_rating),
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
    with st.expander("As the platform's feedback API returns it (GET /api/v1/feedback/stats)"):
        st.json(stats.as_api())


def show_charts(
    trend: feedback.FeedbackTrend, stats: feedback.FeedbackStats, marks: pd.DataFrame
) -> None:
    st.plotly_chart(
        charts.with_events(
            charts.feedback_over_time(trend.over_time, health_rules["rating_target"]), marks
        ),
        width="stretch",
        config=PLOTLY,
    )
    left, right = st.columns(2)
    left.plotly_chart(charts.rating_distribution(trend.ratings), width="stretch", config=PLOTLY)
    right.plotly_chart(
        charts.thumbs_split(
            stats.feedback_counts["thumbs_up"], stats.feedback_counts["thumbs_down"]
        ),
        width="stretch",
        config=PLOTLY,
    )


def percent_text(value: float, votes: int) -> str:
    return f"{value:.2f}%" if votes else "– (no votes)"


def comment_consent(tenant_id: str, params: dict) -> bool:
    """The investigation view's rule: ticket text and feedback comments only with the client's
    consent for a named support case, and the reveal is recorded as a sensitive access."""
    case = case_reference(ctx.purpose)
    label = (
        f"The client consented to showing feedback comments and ticket text for **{case}**"
        if case
        else "The client consented to showing feedback comments and ticket text"
    )
    consent = st.checkbox(
        label,
        key=f"feedback_consent_{tenant_id}_{case}",
        disabled=case is None,
        help=None
        if case
        else "Name the support case (e.g. SUP-567) in the sidebar's 'Purpose of access' first.",
    )
    if not consent:
        st.caption(
            "Feedback comments and ticket descriptions and resolutions stay hidden without "
            "consent; the worst-rated list and the themes below use only the runs' signals."
        )
        return False
    record_view(ctx, "feedback_comments", tenant_id, params, sensitive=True)
    return True


def show_worst(worst: pd.DataFrame, fleet: bool, consented: bool) -> None:
    st.subheader("Worst-rated enhancements")
    if worst.empty:
        st.info("No rated enhancements in this range.")
        return
    table = pd.DataFrame(
        {
            "Tenant": worst["tenant_name"],
            "Ticket": worst["ticket_id"],
            "Avg rating": worst["average_rating"],
            "Lowest": worst["lowest_rating"],
            "Ratings": worst["ratings"],
            "👎": worst["thumbs_down"],
            "👍": worst["thumbs_up"],
            "Last feedback": worst["last_feedback"],
            "Run": [
                "not found" if pd.isna(status) else f"{status}: {cause}" if cause else status
                for status, cause in zip(worst["run_status"], worst["cause"], strict=True)
            ],
            "Processing": worst["processing_s"],
            "Signals": ["; ".join(signals) for signals in worst["signals"]],
        }
    )
    if consented:
        table["Description"] = worst["description"]
        table["Resolution"] = worst["resolution"]
        table["Comments"] = worst["comments"]
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
            label=f"Investigate ticket {row['ticket_id']} of {row['tenant_name']}",
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
        st.info(
            f"No recurring theme in {side} feedback (a theme needs at least "
            f"{feedback_rules['theme_min_feedback']} entries and a lift of "
            f"{feedback_rules['theme_min_lift']}×)."
        )
        return
    table = pd.DataFrame(
        {
            "Signal": frame["label"],
            "Entries": frame["feedback"],
            f"% of {side}": frame["share"] * 100,
            f"% of {other}": frame["other_share"] * 100,
            "Lift": frame["lift"],
            "From": frame["found_in"],
            "Example tickets": [
                ", ".join(f"{t} #{k}" if fleet else f"#{k}" for t, k in pairs)
                for pairs in frame["examples"]
            ],
        }
    )
    if consented:
        table["Example comments"] = [" | ".join(c) for c in frame["comments"]]
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
    text = (
        " and, with the client's consent, the words of ticket descriptions and comments"
        if consented
        else ""
    )
    st.caption(
        "Signals of the rated runs (failure cause, context sources that came back empty, "
        "context errors, processing time, hour of day, the tenant's ticket_history depth)"
        f"{text}, over {found.negative_total:,} negative (👎 or ≤ "
        f"{feedback_rules['negative_rating_max']} ★) and {found.positive_total:,} positive "
        f"(👍 or ≥ {feedback_rules['positive_rating_min']} ★) entries. Lift 3× = three times "
        "as common on that side as on the other. Counts are shown so that small themes look "
        "small."
    )
    st.markdown("**:red[Negative] themes**")
    theme_table(found.negative, themes.NEGATIVE, fleet, consented)
    st.markdown("**:green[Positive] themes**")
    theme_table(found.positive, themes.POSITIVE, fleet, consented)
    if not found.negative.empty:
        st.plotly_chart(
            charts.theme_shares(found.negative, themes.NEGATIVE), width="stretch", config=PLOTLY
        )
    # Example tickets open in the investigation view.
    examples = list(dict.fromkeys(pair for pairs in found.negative["examples"] for pair in pairs))
    if examples:
        st.caption(
            "Open a negative-theme example: "
            + " · ".join(
                f"[{(t + ' ') if fleet else ''}#{k}]({investigation_link(t, k)})"
                for t, k in examples[:10]
            )
        )


def show_fleet(since: datetime, until: datetime, label: str) -> None:
    st.caption(
        f"Every tenant · {label}. Pick a tenant in the sidebar (or a row below) for its "
        "detail and, with the client's consent, its comments."
    )
    summary = fleet_summary(since, until)
    record_view(
        ctx,
        "fleet_feedback",
        "*",
        {"since": since, "until": until},
        row_count=summary.total.total_feedback,
    )
    show_tiles(summary.total)
    show_charts(fleet_trend(since, until), summary.total, fleet_events(since, until))
    st.subheader("By tenant")
    tenants = summary.by_tenant
    st.session_state["feedback_tenant_rows"] = tenants["tenant_id"].tolist()
    st.dataframe(
        pd.DataFrame(
            {
                "Tenant": tenants["name"],
                "Tenant id": tenants["tenant_id"],
                "Avg rating": tenants["average_rating"],
                "Positive": [
                    percent_text(p, u + d)
                    for p, u, d in zip(
                        tenants["positive_percentage"],
                        tenants["thumbs_up"],
                        tenants["thumbs_down"],
                        strict=True,
                    )
                ],
                "👍": tenants["thumbs_up"],
                "👎": tenants["thumbs_down"],
                "Ratings": tenants["rating"],
                "Total": tenants["total_feedback"],
            }
        ),
        hide_index=True,
        width="stretch",
        key="feedback_tenants",
        on_select=pick_tenant,
        selection_mode="single-row",
        column_config={
            "Avg rating": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    show_worst(fleet_worst(since, until), fleet=True, consented=False)
    show_themes(fleet_themes(since, until), fleet=True, consented=False)


def pick_tenant() -> None:
    rows = st.session_state["feedback_tenants"].selection.rows
    if rows:
        st.session_state["tenant"] = st.session_state["feedback_tenant_rows"][rows[0]]


def show_tenant(tenant_id: str, since: datetime, until: datetime, label: str) -> None:
    summary = tenant_summary(tenant_id, since, until)
    params = {"since": since, "until": until}
    record_view(ctx, "tenant_feedback", tenant_id, params, row_count=summary.total.total_feedback)
    st.caption(f"`{tenant_id}` · {label}")
    show_tiles(summary.total)
    marks = tenant_events(tenant_id, since, until, with_platform=ctx.user.is_admin)
    show_charts(tenant_trend(tenant_id, since, until), summary.total, marks)
    with st.container(border=True):
        consented = comment_consent(tenant_id, params)
    show_worst(tenant_worst(tenant_id, since, until, consented), fleet=False, consented=consented)
    show_themes(tenant_themes(tenant_id, since, until, consented), fleet=False, consented=consented)


names = {t.tenant_id: t.name for t in tenants()}
st.title(
    f"Feedback · {names.get(ctx.tenant_id, ctx.tenant_id)}" if ctx.tenant_id else "Feedback · fleet"
)
with guard("feedback"):
    if ctx.tenant_id:
        show_tenant(ctx.tenant_id, *time_range())
    elif ctx.user.is_admin:
        show_fleet(*time_range())
    else:
        st.info(
            "Choose a tenant in the sidebar. The fleet view is for admins.",
            icon=":material/domain:",
        )
