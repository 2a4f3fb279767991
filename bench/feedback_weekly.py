"""Feedback view and weekly review timings on the demo database: their SQL, and the page script
under AppTest with a cold and a warm cache. Medians over several runs.

    source .stack/env && .venv/bin/python bench/feedback_weekly.py

"Cold" re-runs the page after clearing Streamlit's cache (every query runs; the database's own
cache is warm: each measurement runs once untimed first); "warm" re-runs it with the cache
filled. Target: every view under 1 s warm. The page runs record their access in the demo
database's dashboard.data_access_log, as every view does.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from sqlalchemy import text  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from services import db, feedback, report, themes, weekly_review  # noqa: E402
from ui.identity import ADMIN, SESSION_KEY, User  # noqa: E402

RUNS = 5
ADMIN_USER = User("bench@example.com", "bench", ADMIN)


def median_of(action: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    action()  # warms the database cache
    samples = []
    for _ in range(RUNS):
        before()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def page(path: str, query: dict[str, str]) -> AppTest:
    """The app on `path`. Its first run is app.py's default page: Streamlit's legacy pages/ mode
    runs a fresh process's very first script run, so a page cannot be the first."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[SESSION_KEY] = ADMIN_USER
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(path).run()
    if at.exception or at.error:
        raise SystemExit(f"{path} failed: {at.exception or [e.value for e in at.error]}")
    return at


def main() -> None:
    with db.admin_scope() as conn:
        rows = conn.execute(text("SELECT count(*) FROM enhancement_history")).scalar_one()
        feedback_rows = conn.execute(text("SELECT count(*) FROM enhancement_feedback")).scalar_one()
        busiest = conn.execute(
            text(
                "SELECT tenant_id FROM enhancement_history"
                " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    week = weekly_review.recent_weeks(now, 2)[1].label  # the last whole week
    as_of = weekly_review.as_of(week, now)
    print(
        f"enhancement_history {rows:,} rows, enhancement_feedback {feedback_rows:,} rows; "
        f"busiest tenant {busiest}; week {week}; {RUNS} runs each, medians"
    )

    def feedback_fleet(days: int) -> Callable[[], object]:
        since = now - timedelta(days=days)
        return lambda: (
            feedback.fleet_summary(since, now),
            feedback.fleet_trend(since, now),
            feedback.fleet_worst_rated(since, now),
            themes.fleet_themes(since, now),
        )

    def feedback_tenant(days: int) -> Callable[[], object]:
        since = now - timedelta(days=days)
        return lambda: (
            feedback.tenant_summary(busiest, since, now),
            feedback.tenant_trend(busiest, since, now),
            feedback.tenant_worst_rated(busiest, since, now, True),
            themes.tenant_themes(busiest, since, now, True),
        )

    views = (
        ("feedback, fleet, 7d", feedback_fleet(7), "views/feedback.py", {"range": "7d"}),
        ("feedback, fleet, 30d", feedback_fleet(30), "views/feedback.py", {"range": "30d"}),
        (
            f"feedback, {busiest}, 30d",
            feedback_tenant(30),
            "views/feedback.py",
            {"range": "30d", "tenant": busiest},
        ),
        (
            f"weekly review, fleet {week}",
            lambda: weekly_review.fleet_review(week, as_of),
            "views/weekly_review.py",
            {"week": week},
        ),
        (
            f"weekly review, {busiest}",
            lambda: weekly_review.tenant_review(busiest, week, as_of),
            "views/weekly_review.py",
            {"week": week, "tenant": busiest},
        ),
    )
    print(f"{'view':<40}{'SQL':>9}{'page cold':>11}{'page warm':>11}")
    for label, sql, path, query in views:
        sql_s = median_of(sql)
        app = page(path, query)  # later runs stay on that page: page script + app.py's sidebar
        cold = median_of(app.run, before=st.cache_data.clear)
        warm = median_of(app.run)
        assert app.title[0].value.startswith(("Feedback", "Weekly")), app.title[0].value
        print(f"{label:<40}{sql_s:>8.3f}s{cold:>10.3f}s{warm:>10.3f}s")

    review = weekly_review.fleet_review(week, as_of)
    print(f"{'export':<40}{'median':>9}")
    for label, export in (
        ("Markdown", report.markdown),
        ("CSV", report.csv_text),
        ("HTML with charts", report.html_document),
    ):
        print(f"{label:<40}{median_of(lambda e=export: e(review)):>8.3f}s")


if __name__ == "__main__":
    main()
