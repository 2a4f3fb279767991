"""The weekly review as files to send: Markdown (for the review notes), CSV, and one
self-contained HTML page whose charts carry plotly.js inline, so it opens offline."""

from __future__ import annotations

import html
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from services import charts
from services.config import rules
from services.themes import Themes
from services.weekly_review import (
    CRITICAL,
    HIGH,
    LEVEL_ORDER,
    LOWER,
    MEDIUM,
    NONE,
    RANGE,
    VERDICT_MARK,
    ScopeReview,
    WeeklyReview,
    criteria,
    review_rows,
)

LEVEL_MARK = {CRITICAL: "🔴", HIGH: "🟠", MEDIUM: "🟡", NONE: "🟢"}


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def title(review: WeeklyReview) -> str:
    return f"Weekly metrics review {review.week.label}"


def scope_text(review: WeeklyReview) -> str:
    if review.tenant_id:
        name = review.tenants[0].name if review.tenants else review.tenant_id
        return f"tenant {name} ({review.tenant_id})"
    return f"fleet, {len(review.tenants)} active tenants"


def file_stem(review: WeeklyReview) -> str:
    return f"weekly-review-{review.week.label}-{review.tenant_id or 'fleet'}"


def marginal_text() -> str:
    band = rules("weekly_review")["marginal_band"]
    return (
        f"MARGINAL = within {band:.0%} of the target on the wrong side; PASS = at or better "
        "than the target; NO DATA = nothing to judge, or fewer attempts / ratings / votes than "
        "the minimum sample."
    )


def rules_text() -> str:
    h, w = rules("health"), rules("weekly_review")
    return (
        f"Escalation: critical = success rate below {h['success_rate_critical']:.0%} or p95 "
        f"above {h['p95_critical_s']} s; high = a criterion failing, or a decline of more "
        f"than {w['decline_escalation']:.0%} week over week; medium = a marginal criterion. "
        "Major client escalations and security incidents are added by hand."
    )


def escalated(review: WeeklyReview) -> list[ScopeReview]:
    """The scopes with an escalation, the most serious first."""
    return sorted(
        (s for s in review.scopes if s.escalation.reasons),
        key=lambda s: -LEVEL_ORDER[s.escalation.level],
    )


def _scope_name(scope: ScopeReview) -> str:
    return scope.name if scope.tenant_id else "★ Fleet"


def criteria_table(review: WeeklyReview) -> pd.DataFrame:
    """A row per scope, a column per criterion (headers carry the per-tenant targets; the
    fleet's throughput target is their sum)."""
    headers = {c.key: f"{c.label} ({c.target_text})" for c in criteria()}
    rows = []
    for scope in review.scopes:
        level = scope.escalation.level
        row = {"Tenant": _scope_name(scope), "Escalation": f"{LEVEL_MARK[level]} {level}"}
        row |= {headers[m.criterion.key]: m.cell for m in scope.metrics}
        row |= {"Tickets": scope.tickets, "Feedback": scope.feedback}
        rows.append(row)
    return pd.DataFrame(rows)


def scope_table(scope: ScopeReview) -> pd.DataFrame:
    """One scope: a row per criterion, this week against the last."""
    return pd.DataFrame(
        {
            "Criterion": m.criterion.label,
            "Target": m.criterion.target_text,
            "This week": m.criterion.fmt(m.value),
            "Last week": m.criterion.fmt(m.previous),
            "Change": m.change.text,
            "Verdict": f"{VERDICT_MARK[m.verdict]} {m.verdict}",
            "Based on": m.sample_text,
        }
        for m in scope.metrics
    )


def escalations_table(scopes: list[ScopeReview]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Level": f"{LEVEL_MARK[s.escalation.level]} {s.escalation.level}",
            "Tenant": _scope_name(s),
            "Why": "; ".join(r.text for r in s.escalation.reasons),
        }
        for s in scopes
    )


def how_verdicts_are_decided() -> str:
    """PASS / MARGINAL / FAIL, week over week and escalation, in words with the thresholds of
    dashboard.toml [health] and [weekly_review]."""
    h, w = rules("health"), rules("weekly_review")
    band = w["marginal_band"]
    lines = [
        f"- **PASS**: at or better than the target. **MARGINAL**: worse than the target but "
        f"within **{band:.0%}** of it (`marginal_band` in `dashboard.toml`). **FAIL**: "
        f"further off. **NO DATA**: nothing to judge, or fewer than "
        f"{h['min_runs_success_rate']} finished attempts (success rate), "
        f"{h['min_runs_p95']} completed attempts (p95), {h['min_ratings']} "
        f"ratings (satisfaction) or {h['min_votes']} votes (positive %). "
        "Shares, ratings and p95 are judged by the end of their 95% interval nearest the "
        "target (the same rules as Tenant health; p95: the order statistics around rank "
        "0.95 n): FAIL means the interval says so. A "
        f"week-over-week decline above {w['decline_escalation']:.0%} escalates "
        "only when both weeks have enough data and their intervals do not overlap "
        "(throughput: the two weeks' ticket counts differ beyond Poisson noise); "
        "otherwise the change reads 'not enough data to compare' or 'within noise'."
    ]
    for c in criteria():
        if c.better == RANGE:
            marginal = (
                f"{c.low * (1 - band):g} to {c.low:g} or {c.high:g} to "
                f"{c.high * (1 + band):g} tickets / day"
            )
        elif c.better == LOWER:
            marginal = f"{c.fmt(c.high)} to {c.fmt(c.high * (1 + band))}"
        else:
            marginal = f"{c.fmt(c.low * (1 - band))} to {c.fmt(c.low)}"
        lines.append(f"  - {c.label}: PASS {c.target_text}; MARGINAL {marginal}")
    lines += [
        f"- **Week over week**: relative change against the week before; → when under "
        f"{w['unchanged_below']:.0%}. For p95 processing time ↑ is worse.",
        "- **Throughput** counts tickets: the tickets a worker attempted at least once in the "
        "week, per day; a retry of the same ticket does not count again. Success rate and p95 "
        "processing time (worker start → enhancement completed) count attempts.",
        "- **Escalation** (the review template's rules): " + rules_text(),
        "- The fleet's throughput target is the sum of its tenants' (tenants × "
        f"{w['throughput_min_per_day']}–{w['throughput_max_per_day']}"
        " tickets / day). Deactivated tenants and tenants onboarded after the week are left out.",
    ]
    return "\n".join(lines)


SIGNALS_TEXT = (
    "Signals of the rated runs: failure cause, context sources that came back empty, context "
    "errors, processing time, hour of day (UTC) and the tenant's ticket_history depth; lift = "
    "how many times more common a signal is on that side than on the other."
)


def _examples(pairs: list[tuple[str, str]], with_tenant: bool) -> str:
    return ", ".join(f"{t} #{k}" if with_tenant else f"#{k}" for t, k in pairs)


# --- Markdown -----------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def sample_note() -> str:
    """What the n in a criteria cell counts."""
    return (
        "n = the finished attempts (success rate), completed attempts (p95), ratings "
        "(satisfaction), votes (positive %) or tickets (throughput) of this week."
    )


def changed_text(changed: list[str]) -> list[str]:
    return [f"- {line}" for line in changed] or [
        "No onboarding, configuration change, platform operation or incident."
    ]


def markdown(review: WeeklyReview, changed: list[str] | None = None) -> str:
    """The review notes; `changed` is "what changed this week" (events.what_changed), left
    out when not given."""
    week = review.week
    lines = [
        f"# {title(review)}",
        "",
        f"**Week:** {week.span}{' — in progress' if review.in_progress else ''}  ",
        f"**Scope:** {scope_text(review)}  ",
        f"**Data as of:** {_when(review.as_of)}; compared with {week.previous.label}",
        "",
        "## Escalations",
        "",
    ]
    escalations = escalated(review)
    for scope in escalations:
        reasons = "; ".join(r.text for r in scope.escalation.reasons)
        lines.append(
            f"- {LEVEL_MARK[scope.escalation.level]} **{scope.escalation.level.upper()}**"
            f" — {_md_cell(scope.name)}: {_md_cell(reasons)}"
        )
    if not escalations:
        lines.append("No escalations this week.")
    header = ["Tenant", "Escalation"] + [f"{c.label} ({c.target_text})" for c in criteria()]
    lines += [
        "",
        "## Success criteria",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for scope in review.scopes:
        name = f"**{scope.name}**" if scope.tenant_id is None else scope.name
        cells = [_md_cell(name), scope.escalation.level] + [_md_cell(m.cell) for m in scope.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{VERDICT_MARK['PASS']} PASS · {VERDICT_MARK['MARGINAL']} MARGINAL · "
        f"{VERDICT_MARK['FAIL']} FAIL · {VERDICT_MARK['NO DATA']} NO DATA. {marginal_text()} "
        f"Changes are relative to {week.previous.label} (↑ on p95 processing time is worse). "
        f"{sample_note()} The fleet's throughput target is the sum of the tenants' targets.",
        "",
        rules_text(),
        "",
    ]
    if changed is not None:
        lines += ["## What changed this week", "", *changed_text(changed), ""]
    lines += [
        "## What to look at: signals of the week's feedback",
        "",
    ]
    lines += _md_themes(review.themes, with_tenant=review.tenant_id is None)
    lines += [
        "",
        "## Action items",
        "",
        "| # | Action | Owner | Due date | Status |",
        "|---|---|---|---|---|",
        "| 1 |  |  |  | Open |",
        "",
    ]
    return "\n".join(lines)


def _md_themes(found: Themes, with_tenant: bool) -> list[str]:
    lines = [
        f"{found.negative_total} negative and {found.positive_total} positive feedback "
        f"entries (3-star ratings are neutral). {SIGNALS_TEXT}"
    ]
    for label, frame, other in (
        ("Negative", found.negative, "positive"),
        ("Positive", found.positive, "negative"),
    ):
        lines += ["", f"**{label}:**"]
        if frame.empty:
            lines.append("- no recurring signal")
        for i, t in enumerate(frame.itertuples(), start=1):
            lines.append(
                f"{i}. **{_md_cell(t.label)}**: {t.feedback} entries ({t.share:.0%} of "
                f"{label.lower()} feedback, {t.other_share:.0%} of {other}; lift {t.lift:.1f}×; "
                f"from {t.found_in})"
                f"; e.g. {_md_cell(_examples(t.examples, with_tenant))}"
            )
    return lines


# --- CSV ----------------------------------------------------------------------------------------


def csv_text(review: WeeklyReview) -> str:
    frame = review_rows(review).drop(columns=["low", "high", "value_text"])
    return frame.to_csv(index=False, float_format="%.4g")


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; color: #1b2330;
       margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .meta { color: #5b6575; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: 14px; }
th, td { border: 1px solid #dde2ea; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f9; }
td.PASS { background: #e7f4ec; } td.MARGINAL { background: #fff3dc; }
td.FAIL { background: #fbe5e3; } td.NODATA { background: #f3f5f9; color: #5b6575; }
.level { font-weight: 600; text-transform: uppercase; }
.critical { color: #c8382d; } .high { color: #d0601b; } .medium { color: #a07800; }
.none { color: #2e8b57; }
.note { color: #5b6575; font-size: 13px; } .chart { margin: 1rem 0; }
"""


def _cell_class(verdict: str) -> str:
    return verdict.replace(" ", "")


def _figures(review: WeeklyReview) -> list[go.Figure]:
    h = rules("health")
    figures = []
    rows = review_rows(review)
    tenant_rows = rows[rows["tenant_id"] != ""]
    if not tenant_rows.empty:
        figures.append(charts.weekly_scorecard(tenant_rows))
    if not review.daily.empty:
        figures.append(charts.volume_and_success(review.daily, h["success_rate_target"]))
        figures.append(charts.latency_p95(review.daily, h["p95_target_s"], h["p95_critical_s"]))
    if not review.themes.negative.empty:
        figures.append(charts.theme_shares(review.themes.negative, "negative"))
    return figures


def html_document(review: WeeklyReview, changed: list[str] | None = None) -> str:
    """The review as one offline page; `changed` as for markdown()."""
    e = html.escape
    week = review.week
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title(review))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title(review))}</h1>",
        f'<p class="meta">{e(week.span)}{" — in progress" if review.in_progress else ""} · '
        f"{e(scope_text(review))} · data as of {e(_when(review.as_of))} · compared with "
        f"{e(week.previous.label)}</p>",
        "<h2>Escalations</h2>",
    ]
    escalations = escalated(review)
    if escalations:
        parts.append("<ul>")
        for scope in escalations:
            level = scope.escalation.level
            reasons = "; ".join(r.text for r in scope.escalation.reasons)
            parts.append(
                f'<li><span class="level {level}">{level}</span> — '
                f"<b>{e(scope.name)}</b>: {e(reasons)}</li>"
            )
        parts.append("</ul>")
    else:
        parts.append("<p>No escalations this week.</p>")
    parts.append("<h2>Success criteria</h2><table><tr><th>Tenant</th><th>Escalation</th>")
    parts += [
        f"<th>{e(c.label)}<br><span class='note'>{e(c.target_text)}</span></th>" for c in criteria()
    ]
    parts.append("</tr>")
    for scope in review.scopes:
        name = f"<b>{e(scope.name)}</b>" if scope.tenant_id is None else e(scope.name)
        level = scope.escalation.level
        parts.append(f'<tr><td>{name}</td><td class="level {level}">{level}</td>')
        parts += [f'<td class="{_cell_class(m.verdict)}">{e(m.cell)}</td>' for m in scope.metrics]
        parts.append("</tr>")
    parts += [
        "</table>",
        f'<p class="note">{e(marginal_text())} Changes are relative to '
        f"{e(week.previous.label)} (↑ on p95 processing time is worse). {e(sample_note())} The"
        f" fleet's throughput target is the sum of the tenants' targets.<br>{e(rules_text())}</p>",
    ]
    if changed is not None:
        parts.append("<h2>What changed this week</h2>")
        if changed:
            parts.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in changed) + "</ul>")
        else:
            parts.append(f"<p>{e(changed_text([])[0])}</p>")
    parts.append("<h2>Charts</h2>")
    for i, figure in enumerate(_figures(review)):
        # Inside Streamlit plotly's default template is Streamlit's (its frontend styles the
        # chart); a standalone file needs a complete one, with axis labels that fit.
        figure.update_layout(template="plotly_white")
        # plotly.js goes inline once, with the first chart: the file works offline.
        parts.append(
            '<div class="chart">'
            + figure.to_html(
                full_html=False,
                include_plotlyjs=i == 0,
                config={"displayModeBar": False},
            )
            + "</div>"
        )
    parts.append("<h2>What to look at: signals of the week's feedback</h2>")
    with_tenant = review.tenant_id is None
    found = review.themes
    parts.append(
        f"<p>{found.negative_total} negative and {found.positive_total} positive "
        f"feedback entries (3-star ratings are neutral). {e(SIGNALS_TEXT)}</p>"
    )
    for label, frame in (("Negative", found.negative), ("Positive", found.positive)):
        parts.append(f"<h3>{label}</h3>")
        if frame.empty:
            parts.append("<p>No recurring signal.</p>")
            continue
        parts.append(
            "<table><tr><th>Signal</th><th>Entries</th><th>Share</th>"
            "<th>Share of the other side</th><th>Lift</th><th>From</th>"
            "<th>Example tickets</th></tr>"
        )
        for t in frame.itertuples():
            parts.append(
                f"<tr><td>{e(t.label)}</td><td>{t.feedback}</td><td>{t.share:.0%}</td>"
                f"<td>{t.other_share:.0%}</td><td>{t.lift:.1f}×</td><td>{e(t.found_in)}</td>"
                f"<td>{e(_examples(t.examples, with_tenant))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
