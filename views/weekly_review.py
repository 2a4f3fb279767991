"""The weekly metrics review: each tenant and the fleet against their targets, week over week,
with escalations, the week's feedback themes, and exports to send (Markdown, CSV, HTML)."""

import pandas as pd
import streamlit as st

from services import charts, report, weekly_review
from services.config import rules
from services.weekly_review import CRITICAL, HIGH, MEDIUM, NONE, WeeklyReview
from ui.common import ViewContext, cached, guard, investigation_link, record_view, tenants

ctx: ViewContext = st.session_state["view_context"]
health_rules, review_rules = rules("health"), rules("weekly_review")
PLOTLY = {"displayModeBar": False}
LEVEL_BADGE = {
    CRITICAL: ":red-badge[:material/error: Critical]",
    HIGH: ":orange-badge[:material/warning: High]",
    MEDIUM: ":yellow-badge[:material/info: Medium]",
    NONE: ":green-badge[:material/check_circle: None]",
}
LEVEL_ICON = {CRITICAL: "🔴", HIGH: "🟠", MEDIUM: "🟡", NONE: "🟢"}

# Keyed on the data's cut-off: a past week's end (its data no longer changes, so an hour is
# safe) or, for the week in progress, the current minute.
fleet_review = cached(ttl=3600)(weekly_review.fleet_review)
tenant_review = cached(ttl=3600)(weekly_review.tenant_review)


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


def criteria_table(review: WeeklyReview) -> pd.DataFrame:
    # Headers carry the per-tenant targets; the fleet's throughput target is their sum.
    headers = {c.key: f"{c.label} ({c.target_text})" for c in weekly_review.criteria()}
    rows = []
    for scope in review.scopes:
        level = scope.escalation.level
        row = {
            "Tenant": scope.name if scope.tenant_id else "★ Fleet",
            "Escalation": f"{LEVEL_ICON[level]} {level}",
        }
        row |= {headers[m.criterion.key]: m.cell for m in scope.metrics}
        row |= {"Tickets": scope.received, "Feedback": scope.feedback}
        rows.append(row)
    return pd.DataFrame(rows)


def tenant_table(scope: weekly_review.ScopeReview) -> pd.DataFrame:
    """One tenant: a row per criterion, this week against the last."""
    return pd.DataFrame(
        {
            "Criterion": m.criterion.label,
            "Target": m.criterion.target_text,
            "This week": m.criterion.fmt(m.value),
            "Last week": m.criterion.fmt(m.previous),
            "Change": m.change.text,
            "Verdict": f"{weekly_review.VERDICT_MARK[m.verdict]} {m.verdict}",
            "Based on": "–" if m.sample is None else f"{m.sample:,}",
        }
        for m in scope.metrics
    )


def show_escalations(review: WeeklyReview) -> None:
    escalated = sorted(
        (s for s in review.scopes if s.escalation.reasons),
        key=lambda s: -weekly_review.LEVEL_ORDER[s.escalation.level],
    )
    if not escalated:
        st.success("No escalations this week: every criterion passes.", icon=":material/check:")
        return
    for scope in (s for s in escalated if s.escalation.level == CRITICAL):
        with st.container(border=True):
            st.markdown(
                f"{LEVEL_BADGE[CRITICAL]} **{scope.name}**: "
                + "; ".join(r.text for r in scope.escalation.reasons)
            )
    st.dataframe(
        pd.DataFrame(
            {
                "Level": f"{LEVEL_ICON[s.escalation.level]} {s.escalation.level}",
                "Tenant": s.name if s.tenant_id else "★ Fleet",
                "Why": "; ".join(r.text for r in s.escalation.reasons),
            }
            for s in escalated
        ),
        hide_index=True,
        width="stretch",
        column_config={"Why": st.column_config.TextColumn(width="large")},
    )


def show_rules() -> None:
    band = review_rules["marginal_band"]
    with st.expander("How PASS / MARGINAL / FAIL and the escalation level are decided"):
        lines = [
            f"- **PASS**: at or better than the target. **MARGINAL**: worse than the target but "
            f"within **{band:.0%}** of it (`marginal_band` in `dashboard.toml`). **FAIL**: "
            f"further off. **NO DATA**: nothing to judge, or fewer than "
            f"{health_rules['min_volume_for_ratios']} finished attempts (success, p95) or "
            f"{review_rules['min_feedback_for_ratios']} ratings / votes (satisfaction, positive %)."
        ]
        for c in weekly_review.criteria():
            if c.better == weekly_review.RANGE:
                marginal = (
                    f"{c.low * (1 - band):g} to {c.low:g} or {c.high:g} to "
                    f"{c.high * (1 + band):g} / day"
                )
            elif c.better == weekly_review.LOWER:
                marginal = f"{c.fmt(c.high)} to {c.fmt(c.high * (1 + band))}"
            else:
                marginal = f"{c.fmt(c.low * (1 - band))} to {c.fmt(c.low)}"
            lines.append(f"  - {c.label}: PASS {c.target_text}; MARGINAL {marginal}")
        lines += [
            f"- **Week over week**: relative change against the week before; → when under "
            f"{review_rules['unchanged_below']:.0%}. For p95 latency ↑ is worse.",
            "- **Escalation** (the review template's rules): " + report.rules_text(),
            "- The fleet's throughput target is the sum of its tenants' (tenants × "
            f"{review_rules['throughput_min_per_day']}–{review_rules['throughput_max_per_day']}"
            " / day). Deactivated tenants and tenants onboarded after the week are left out.",
        ]
        st.markdown("\n".join(lines))


def show_charts(review: WeeklyReview) -> None:
    rows = weekly_review.review_rows(review)
    tenant_rows = rows[rows["tenant_id"] != ""]
    if review.fleet is not None and not tenant_rows.empty:
        with st.expander("Every tenant's criteria as a chart", expanded=len(review.tenants) <= 12):
            st.plotly_chart(charts.weekly_scorecard(tenant_rows), width="stretch", config=PLOTLY)
    if review.daily.empty:
        st.info("No enhancement attempts in this week.")
        return
    left, right = st.columns(2)
    left.plotly_chart(
        charts.volume_and_success(review.daily, health_rules["success_rate_target"]),
        width="stretch",
        config=PLOTLY,
    )
    right.plotly_chart(
        charts.latency_p95(
            review.daily, health_rules["p95_target_s"], health_rules["p95_critical_s"]
        ),
        width="stretch",
        config=PLOTLY,
    )


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
                    f"[{(tenant + ' ') if fleet else ''}#{ticket}]"
                    f"({investigation_link(tenant, ticket)})"
                    for tenant, ticket in t.examples
                )
                st.markdown(
                    f"- **{t.label}**: {t.feedback} entries ({t.share:.0%} against "
                    f"{t.other_share:.0%}), lift {t.lift:.1f}× · {examples}"
                )


def show_exports(review: WeeklyReview) -> None:
    st.subheader("Export")
    stem = report.file_stem(review)
    markdown = report.markdown(review)
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
        lambda: report.html_document(review),  # built on click: it carries plotly.js inline
        file_name=f"{stem}.html",
        mime="text/html",
        icon=":material/html:",
        on_click="ignore",
        width="stretch",
    )
    with st.expander("Markdown to paste into the review notes"):
        st.code(markdown, language="markdown")


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
                f"{LEVEL_ICON[level]} {level.capitalize()}",
                levels.count(level),
                border=True,
                help="Tenants at this escalation level",
            )
    else:
        st.markdown(f"Escalation: {LEVEL_BADGE[review.tenants[0].escalation.level]}")
    st.subheader("Escalations")
    show_escalations(review)
    st.subheader("Success criteria")
    table = criteria_table(review) if review.fleet else tenant_table(review.tenants[0])
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        f"✅ PASS · ⚠️ MARGINAL · ❌ FAIL · ▫️ NO DATA · arrows: change against "
        f"{review.week.previous.label}."
    )
    show_rules()
    show_charts(review)
    show_themes(review)
    show_exports(review)


st.title("Weekly metrics review")
names = {t.tenant_id: t.name for t in tenants()}
with guard("the weekly review"):
    if not ctx.tenant_id and not ctx.user.is_admin:
        st.info("Choose a tenant in the sidebar. The fleet review is for admins.")
    else:
        week_label = pick_week()
        scope = names.get(ctx.tenant_id, ctx.tenant_id) if ctx.tenant_id else "the fleet"
        st.caption(
            f"Scope: **{scope}** (pick a tenant in the sidebar for one tenant's review) · "
            f"compared with {weekly_review.Week.parse(week_label).previous.label}"
        )
        as_of = weekly_review.as_of(week_label, ctx.now)
        if ctx.tenant_id:
            review = tenant_review(ctx.tenant_id, week_label, as_of)
        else:
            review = fleet_review(week_label, as_of)
        record_view(
            ctx,
            "weekly_review",
            ctx.tenant_id or "*",
            {"week": week_label},
            row_count=len(review.tenants),
        )
        show(review)
