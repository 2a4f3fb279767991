"""Screenshare mode: one client's service health, in plain words, with nothing internal and
nothing of any other client. The tenant comes from app.py (a client user's own tenant)."""

import streamlit as st

from services import formatting, health, queues, stats
from services.config import rules
from services.timerange import TimeRange
from ui import figures, reads
from ui.common import PUBLIC_UNAVAILABLE, ViewContext, guard, log, md, record_view
from ui.identity import CLIENT, sign_out
from ui.style import use_style

ctx: ViewContext = st.session_state["view_context"]
tenant_id: str = ctx.tenant_id  # app.py: a client's own tenant, or the one presented
health_rules = rules("health")

RANGES = {"Last 7 days": "7d", "Last 30 days": "30d"}
HEADLINE = {
    health.HEALTHY: ("🟢", "Running normally"),
    health.DEGRADED: ("🟠", "Running, with some points we are watching"),
    health.CRITICAL: ("🔴", "Service disruption: our team is on it"),
    health.INACTIVE: ("⚪", "Service not active"),
}
# Plain-language versions of the health rules; nothing internal, no numbers of other clients.
CLIENT_WORDS = {
    "stalled": "New tickets are currently waiting for their enhancement.",
    "no_traffic": "No new tickets were received in this period.",
    "success_rate": "Some tickets did not receive an enhancement.",
    "latency": "Enhancements are taking longer than usual.",
    "stuck": "A few tickets are taking longer than usual.",
    "queue_stuck": "Tickets are waiting longer than usual to be processed.",
    "rating": "Technician ratings are below our target.",
    "positive": "Technician feedback is below our target.",
    "history": "More resolved-ticket history would improve the suggestions.",
}

use_style("client_view")


def show() -> None:
    title, period = st.columns([4, 1], vertical_alignment="bottom")
    choice = (
        period.segmented_control(
            "Period", list(RANGES), default="Last 7 days", key="client_range", required=True
        )
        or "Last 7 days"
    )
    period = TimeRange.last(RANGES[choice], ctx.now)
    metrics = reads.health_metrics(tenant_id, period)
    if metrics.empty:
        st.info("No service data is available for this account yet.")
        return
    row = metrics.iloc[0].to_dict()
    waiting, longest = 0, None
    try:
        snapshot = queues.snapshot()
        waiting = snapshot.tenant_counts().get(tenant_id, 0)
        longest = snapshot.oldest_age_seconds(tenant_id)
    except Exception as exc:  # noqa: BLE001 - the queue tile is optional on a client screen
        log.warning("queue tile unavailable on a client screen: %s", exc)
        snapshot = None
    verdict = health.assess(row, queue_oldest_s=longest)
    record_view(ctx, "client_screenshare", tenant_id, {"range": RANGES[choice]}, row_count=1)

    icon, headline = HEADLINE[verdict.status]
    title.title(f"{md(row['name'])}: ticket enhancement service")
    st.subheader(f"{icon} {headline}")
    for reason in verdict.failing:  # not the notes on too small a sample
        if reason.rule in CLIENT_WORDS:
            st.markdown(f"- {CLIENT_WORDS[reason.rule]}")

    top = st.columns(3)
    top[0].metric(
        "Tickets enhanced",
        f"{row['tickets_enhanced']:,}",
        border=True,
        help=f"of {row['tickets']:,} tickets ({row['attempts']:,} attempts, retries included)",
    )
    rate = row["ticket_success_rate"]
    top[1].metric(
        "Tickets enhanced successfully",
        formatting.percent(rate),
        border=True,
        help="Tickets with a completed enhancement, of those finished (retries included)",
    )
    finished = int(row["tickets_enhanced"] + row["tickets_failed"])
    if finished:
        top[1].caption(f"Based on {formatting.plural(finished, 'ticket')}")
    top[2].metric("Typical processing time", formatting.duration(row["p50_s"]), border=True)
    bottom = st.columns(3)
    bottom[0].metric("95% processed within", formatting.duration(row["p95_s"]), border=True)
    found = health.ratios(row)
    if found["p95_s"].value is not None:
        bottom[0].caption(f"Based on {formatting.plural(found['p95_s'].n, 'enhancement')}")
    rating, votes = found["rating"], found["positive"]
    bottom[1].metric(
        "Technician satisfaction",
        "–" if rating.value is None else f"{rating.value:.1f} / 5",
        border=True,
        delta=None if votes.value is None else f"{votes.value:.0%} thumbs up",
        delta_color="off",
        delta_arrow="off",
        help=f"{client_sample(rating, 'rating')}; {client_sample(votes, 'thumbs up or down')}",
    )
    if rating.value is not None and not rating.judged:
        bottom[1].caption(
            f"From {formatting.plural(rating.n, 'rating')} so far: too few to draw a conclusion."
        )
    elif rating.value is not None or votes.value is not None:
        based = f"{client_sample(rating, 'rating')}; {client_sample(votes, 'thumbs up or down')}"
        bottom[1].caption(based[0].upper() + based[1:])
    bottom[2].metric(
        "Waiting right now",
        "–" if snapshot is None else f"{waiting}",
        border=True,
        delta=None if longest is None else f"longest {formatting.duration(longest)}",
        delta_color="off",
        delta_arrow="off",
    )
    if snapshot is None:  # a dash alone would read as "nothing waiting"
        bottom[2].caption(PUBLIC_UNAVAILABLE)

    trend = reads.health_trend(tenant_id, period)
    # this tenant's own events only: no platform operations, no internal names
    marks = reads.chart_events(tenant_id, period, trend)
    titles = ("Processing attempts and success rate", "Processing time of 95% of attempts")
    figures.show_health_pair(trend, health_rules, marks, static=True, titles=titles)
    st.caption(f"Figures for {choice.lower()}, updated {period.until:%Y-%m-%d %H:%M} UTC.")


def client_sample(e: stats.Estimate, word: str) -> str:
    """How much feedback a figure rests on, in a client's words."""
    if e.value is None:
        return f"no {word} yet"
    enough = "" if e.judged else f" (we draw conclusions from {e.min_n})"
    return f"based on {formatting.plural(e.n, word)}{enough}"


with guard("service health", public=True):
    show()
if ctx.user.role == CLIENT and st.button("Sign out", icon=":material/logout:", type="tertiary"):
    sign_out()
