"""The weekly metrics review: each tenant and the fleet against their targets, week over week,
with escalations, the week's feedback themes, and exports to send (Markdown, CSV, HTML)."""

import pandas as pd
import streamlit as st

from services import events, report, weekly_review
from services.config import rules
from services.weekly_review import CRITICAL, HIGH, MEDIUM, NONE, WeeklyReview
from ui import figures, reads
from ui.common import ViewContext, guard, lazy_expander, md, record_view, tenants, ticket_link

ctx: ViewContext = st.session_state["view_context"]
health_rules = rules("health")
LEVEL_BADGE = {
    CRITICAL: ":red-badge[:material/error: Critical]",
    HIGH: ":orange-badge[:material/warning: High]",
    MEDIUM: ":yellow-badge[:material/info: Medium]",
    NONE: ":green-badge[:material/check_circle: None]",
}


def pick_week() -> str:
    weeks = weekly_review.recent_weeks(ctx.now)
    labels = {
        w.label: f"{w.label} · {w.span}" + (" · in progress" if i == 0 else "")
        for i, w in enumerate(weeks)
    }
    wanted = st.query_params.get("week")
    if wanted and wanted not in labels:  # an older week from a pasted link
        with guard("the week"):
            week = weekly_review.Week.parse(wanted)
            labels = {week.label: f"{week.label} · {week.span}", **labels}
    chosen = st.selectbox(
        "Week (Monday to Sunday, UTC)",
        list(labels),
        index=list(labels).index(wanted) if wanted in labels else 1,  # last complete week
        format_func=labels.get,
        key="review_week",
    )
    st.query_params["week"] = chosen
    return chosen


def show_escalations(review: WeeklyReview) -> None:
    escalated = report.escalated(review)
    if not escalated:
        st.success("No escalations this week: every criterion passes.", icon=":material/check:")
        return
    for scope in (s for s in escalated if s.escalation.level == CRITICAL):
        with st.container(border=True):
            st.markdown(
                f"{LEVEL_BADGE[CRITICAL]} **{md(scope.name)}**: "
                + "; ".join(r.text for r in scope.escalation.reasons)
            )
    st.dataframe(
        report.escalations_table(escalated),
        hide_index=True,
        width="stretch",
        column_config={"Why": st.column_config.TextColumn(width="large")},
    )


def show_rules() -> None:
    with st.expander("How PASS / MARGINAL / FAIL and the escalation level are decided"):
        st.markdown(report.how_verdicts_are_decided())


def week_events(review: WeeklyReview) -> pd.DataFrame:
    """The week's events: a tenant's own (and platform operations for admins), or for the fleet
    review (admins) every tenant's onboarding and configuration changes and the operations."""
    week = review.week.range(review.as_of)
    return reads.chart_marks(review.tenant_id, week, review.daily, ctx.user.is_admin)


def show_what_changed(lines: list[str]) -> None:
    st.subheader("What changed this week")
    if not lines:
        st.caption(report.changed_text([])[0])
    else:
        st.markdown("\n".join(f"- {md(line)}" for line in lines))


def show_charts(review: WeeklyReview, marks: pd.DataFrame) -> None:
    rows = weekly_review.review_rows(review)
    tenant_rows = rows[rows["tenant_id"] != ""]
    if review.fleet is not None and not tenant_rows.empty:
        lazy_expander(
            "Every tenant's criteria as a chart",
            "scorecard_open",
            lambda: figures.show(figures.weekly_scorecard(tenant_rows)),
            expanded=len(review.tenants) <= 12,
        )
    if review.daily.empty:
        st.info("No enhancement attempts in this week.")
        return
    figures.show_health_pair(review.daily, health_rules, marks)


def show_themes(review: WeeklyReview) -> None:
    found = review.themes
    fleet = review.tenant_id is None
    st.subheader("What to look at: signals of the week's feedback")
    st.caption(
        f"{found.negative_total:,} negative and {found.positive_total:,} positive feedback "
        f"entries. {report.SIGNALS_TEXT} No ticket text or comment is read here."
    )
    left, right = st.columns(2)
    for column, frame, label in (
        (left, found.negative, ":red[Negative]"),
        (right, found.positive, ":green[Positive]"),
    ):
        with column:
            st.markdown(f"**{label}**")
            if frame.empty:
                st.caption("No recurring signal.")
                continue
            for t in frame.head(5).itertuples():
                examples = " ".join(
                    ticket_link(tenant, ticket, name_tenant=fleet) for tenant, ticket in t.examples
                )
                st.markdown(
                    f"- **{t.label}**: {t.feedback} entries ({t.share:.0%} against "
                    f"{t.other_share:.0%}), lift {t.lift:.1f}× · {examples}"
                )


def show_exports(review: WeeklyReview, changed: list[str] | None = None) -> None:
    st.subheader("Export")
    stem = report.file_stem(review)
    markdown = report.markdown(review, changed)
    buttons = st.columns(3)
    buttons[0].download_button(
        "Markdown (review notes)",
        markdown,
        file_name=f"{stem}.md",
        mime="text/markdown",
        icon=":material/description:",
        on_click="ignore",
        width="stretch",
    )
    buttons[1].download_button(
        "CSV (one row per tenant and criterion)",
        report.csv_text(review),
        file_name=f"{stem}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
        width="stretch",
    )
    buttons[2].download_button(
        "HTML with charts (works offline)",
        # built on click: it carries plotly.js inline
        lambda: report.html_document(review, changed),
        file_name=f"{stem}.html",
        mime="text/html",
        icon=":material/html:",
        on_click="ignore",
        width="stretch",
    )
    lazy_expander(
        "Markdown to paste into the review notes",
        "review_markdown_open",
        lambda: st.code(markdown, language="markdown"),
    )


def show(review: WeeklyReview) -> None:
    if review.in_progress:
        st.info(
            f"{review.week.label} is still in progress ({review.days:.1f} of 7 days): "
            "throughput is per elapsed day, and the other numbers will still change.",
            icon=":material/hourglass_top:",
        )
    if not review.tenants:
        st.warning("No active tenant was configured in that week: nothing to review.")
        show_exports(review)
        return
    if review.fleet is not None:
        levels = [s.escalation.level for s in review.tenants]
        tiles = st.columns(4)
        for tile, level in zip(tiles, (CRITICAL, HIGH, MEDIUM, NONE), strict=True):
            tile.metric(
                f"{report.LEVEL_MARK[level]} {level.capitalize()}",
                levels.count(level),
                border=True,
                help="Tenants at this escalation level",
            )
    else:
        st.markdown(f"Escalation: {LEVEL_BADGE[review.tenants[0].escalation.level]}")
    st.subheader("Escalations")
    show_escalations(review)
    st.subheader("Success criteria")
    table = report.criteria_table(review) if review.fleet else report.scope_table(review.tenants[0])
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        f"✅ PASS · ⚠️ MARGINAL · ❌ FAIL · ▫️ NO DATA · arrows: change against "
        f"{review.week.previous.label}." + (f" {report.sample_note()}" if review.fleet else "")
    )
    show_rules()
    marks = week_events(review)
    changed = events.what_changed(marks)
    show_what_changed(changed)
    show_charts(review, marks)
    show_themes(review)
    show_exports(review, changed)


st.title("Weekly metrics review")
names = {t.tenant_id: t.name for t in tenants()}
with guard("the weekly review"):
    if not ctx.tenant_id and not ctx.user.is_admin:
        st.info("Choose a tenant in the sidebar. The fleet review is for admins.")
    else:
        week_label = pick_week()
        scope = names.get(ctx.tenant_id, ctx.tenant_id) if ctx.tenant_id else "the fleet"
        st.caption(
            f"Scope: **{md(scope)}** (pick a tenant in the sidebar for one tenant's review) · "
            f"compared with {weekly_review.Week.parse(week_label).previous.label}"
        )
        as_of = weekly_review.as_of(week_label, ctx.now)
        # Keyed on the data's cut-off: a past week's end (its data no longer changes) or, for
        # the week in progress, the current minute.
        review = reads.review(ctx.tenant_id, week_label, as_of)
        record_view(
            ctx,
            "weekly_review",
            ctx.tenant_id or "*",
            {"week": week_label},
            row_count=len(review.tenants),
        )
        show(review)
