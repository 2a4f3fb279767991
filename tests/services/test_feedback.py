"""Feedback statistics, trends, worst-rated tickets and themes on planted rows (real PostgreSQL),
checked against values computed by hand. A database of this module's own, so that fleet totals
are exactly what was planted here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from services import feedback, themes
from services.timerange import TimeRange
from tests.planting import add_feedback, add_run, add_runs, add_tenant, add_ticket

SINCE = datetime(2025, 3, 3, tzinfo=UTC)
UNTIL = datetime(2025, 3, 10, tzinfo=UTC)
PERIOD = TimeRange(SINCE, UNTIL, "the week of 3 March 2025")
DAY1, DAY2 = SINCE + timedelta(hours=10), SINCE + timedelta(days=1, hours=10)
A, B, EMPTY, VOTES_ONLY, RATINGS_ONLY = "acme-fb", "other-fb", "empty-fb", "votes-fb", "rated-fb"
EVENTS = "events-fb"  # recent rows only (none in PERIOD): the page's event marks


EMPTY_CONTEXT = {"similar_tickets": [], "kb_articles": [], "ip_info": [], "errors": []}
FULL_CONTEXT = {
    "similar_tickets": [{"ticket_id": "7", "title": "VPN", "similarity_score": 0.9}],
    "kb_articles": [{"title": "VPN guide", "url": "https://kb/1", "relevance_score": 0.8}],
    "ip_info": [{"ip_address": "10.0.0.1", "hostname": "fw1"}],
    "errors": [],
}


@pytest.fixture(scope="module")
def db(make_platform_db) -> Iterator:
    platform = make_platform_db("feedback")
    with platform.superuser() as conn:
        for tenant in (A, B, EMPTY, VOTES_ONLY, RATINGS_ONLY):
            add_tenant(conn, tenant, name=f"Tenant {tenant}")
        # Tenant A, inside the range: ratings 5, 4, 2 and one rating row without a value;
        # 3 thumbs up, 4 thumbs down.
        add_feedback(conn, A, "100", "rating", DAY1, rating=5, comment="Spot on, saved time")
        add_feedback(conn, A, "101", "rating", DAY1, rating=4)
        add_feedback(conn, A, "102", "rating", DAY2, rating=2, comment="Wrong VPN advice")
        add_feedback(conn, A, "103", "rating", DAY2, rating=None)
        # 102's run: slow, nothing similar found; its ticket text is in ticket_history.
        add_run(conn, A, "102", "completed", DAY2 - timedelta(hours=1), 75.0, None, EMPTY_CONTEXT)
        add_ticket(conn, A, "102", "VPN drops every hour for the sales team", DAY2)
        for ticket in ("100", "104", "105"):
            add_feedback(conn, A, ticket, "thumbs_up", DAY1)
        for ticket in ("102", "106", "107", "108"):
            add_feedback(
                conn,
                A,
                ticket,
                "thumbs_down",
                DAY2 + timedelta(hours=1),
                comment="VPN dropped again",
            )
        # The range holds its start and everything before its end (the platform API's
        # inclusive end is 1 µs earlier)...
        add_feedback(conn, A, "109", "thumbs_up", SINCE)
        add_feedback(conn, A, "110", "thumbs_up", UNTIL - timedelta(microseconds=1))
        # ...and nothing outside it counts.
        add_feedback(conn, A, "111", "rating", SINCE - timedelta(microseconds=1), rating=1)
        add_feedback(conn, A, "112", "thumbs_down", UNTIL)
        # Another tenant with far worse feedback in the same range.
        for i in range(6):
            add_feedback(conn, B, f"9{i}", "rating", DAY1, rating=1, comment="network outage")
            add_feedback(conn, B, f"9{i}", "thumbs_down", DAY1)
        for ticket in ("1", "2"):
            add_feedback(conn, VOTES_ONLY, ticket, "thumbs_up", DAY1)
        add_feedback(conn, VOTES_ONLY, "3", "thumbs_down", DAY1)
        add_feedback(conn, RATINGS_ONLY, "1", "rating", DAY1, rating=3)
        # EVENTS: a vote a day this week, an incident 3 days ago (30 failed attempts) and a
        # configuration change 2 days ago.
        now = datetime.now(UTC)
        add_tenant(conn, EVENTS, name="Tenant with events")
        for day in range(7):
            add_feedback(conn, EVENTS, f"e{day}", "thumbs_up", now - timedelta(days=day, hours=1))
        add_runs(conn, EVENTS, 30, "failed", now - timedelta(days=3), 5, "Timeout")
        conn.execute(
            "UPDATE tenant_configs SET created_at = %s, updated_at = %s WHERE tenant_id = %s",
            (now - timedelta(days=30), now - timedelta(days=2), EVENTS),
        )
    return platform


@pytest.fixture
def use(db) -> Iterator:
    db.use()
    yield db


def test_tenant_statistics_match_the_platform_definition(use):
    stats = feedback.summary(A, PERIOD).total
    assert stats.average_rating == pytest.approx((5 + 4 + 2) / 3)  # the value-less row is out
    assert stats.feedback_counts == {"thumbs_up": 5, "thumbs_down": 4, "rating": 4}
    assert stats.total_feedback == 13
    assert stats.positive_percentage == round(5 / 9 * 100, 2) == 55.56
    assert stats.as_api() == {
        "average_rating": stats.average_rating,
        "feedback_counts": {"thumbs_up": 5, "thumbs_down": 4, "rating": 4},
        "total_feedback": 13,
        "positive_percentage": 55.56,
    }


def test_tenant_scope_never_counts_another_tenants_rows(use):
    summary = feedback.summary(A, PERIOD)
    assert summary.by_tenant["tenant_id"].tolist() == [A]
    other = feedback.summary(B, PERIOD).total
    assert other.feedback_counts == {"thumbs_up": 0, "thumbs_down": 6, "rating": 6}
    assert other.average_rating == 1.0
    worst = feedback.worst_rated(A, PERIOD)
    assert set(worst["tenant_id"]) == {A}
    found = themes.themes(A, PERIOD, consented=True)
    assert "word:network" not in set(found.negative["signal"])  # B's comments never reach A
    assert found.negative_total == 5  # A's 4 thumbs down and the 2-star rating


def test_fleet_statistics_add_up_every_tenant(use):
    summary = feedback.summary(None, PERIOD)
    total = summary.total
    assert total.feedback_counts == {"thumbs_up": 7, "thumbs_down": 11, "rating": 11}
    assert total.total_feedback == 29
    assert total.average_rating == pytest.approx((5 + 4 + 2 + 6 * 1 + 3) / 10)
    assert total.positive_percentage == round(7 / 18 * 100, 2)
    by_tenant = summary.by_tenant.set_index("tenant_id")
    assert set(by_tenant.index) == {A, B, VOTES_ONLY, RATINGS_ONLY}  # EMPTY has no feedback
    assert by_tenant.loc[VOTES_ONLY, "positive_percentage"] == 66.67
    assert by_tenant.loc[B, "name"] == f"Tenant {B}"


def test_no_feedback_no_ratings_no_votes(use):
    empty = feedback.summary(EMPTY, PERIOD).total
    assert empty.average_rating is None
    assert empty.positive_percentage == 0.0
    assert empty.total_feedback == 0
    assert empty.feedback_counts == {"thumbs_up": 0, "thumbs_down": 0, "rating": 0}
    votes_only = feedback.summary(VOTES_ONLY, PERIOD).total
    assert votes_only.average_rating is None
    assert votes_only.positive_percentage == 66.67
    ratings_only = feedback.summary(RATINGS_ONLY, PERIOD).total
    assert ratings_only.average_rating == 3.0
    assert ratings_only.positive_percentage == 0.0  # the platform's value when nobody voted
    trend = feedback.trend(EMPTY, PERIOD)
    assert trend.over_time.empty
    assert trend.ratings["n"].tolist() == [0, 0, 0, 0, 0]


def test_trend_per_day_and_rating_distribution(use):
    trend = feedback.trend(A, PERIOD)
    days = trend.over_time.set_index(trend.over_time["bucket"].dt.date)
    first, second = days.loc[DAY1.date()], days.loc[DAY2.date()]
    assert (first["thumbs_up"], first["thumbs_down"], first["rating"]) == (4, 0, 2)  # + SINCE
    assert first["average_rating"] == 4.5
    assert (second["thumbs_up"], second["thumbs_down"], second["rating"]) == (0, 4, 2)
    assert second["average_rating"] == 2.0  # the value-less rating does not count
    assert second["positive_pct"] == 0.0
    assert trend.ratings.to_dict("list") == {"rating_value": [1, 2, 3, 4, 5], "n": [0, 1, 0, 1, 1]}


def test_worst_rated_first_with_the_rated_run_and_text_only_with_consent(use):
    worst = feedback.worst_rated(A, PERIOD)
    assert worst["ticket_id"].tolist() == ["102", "101", "100"]  # 103 has no rating value
    first = worst.iloc[0]
    assert (first["average_rating"], first["ratings"], first["thumbs_down"]) == (2.0, 1, 1)
    assert (first["run_status"], first["cause"], first["processing_s"]) == ("completed", None, 75)
    assert set(first["signals"]) >= {
        "no similar tickets found",
        "no KB articles found",
        "no IP match",
        "processing over 60 s",
    }
    assert pd.isna(worst.iloc[1]["run_status"])  # no run of 101 was recorded
    assert worst.iloc[1]["signals"] == ["no run recorded for the ticket"]
    assert worst["comments"].isna().all()
    assert worst["description"].isna().all() and worst["resolution"].isna().all()
    revealed = feedback.worst_rated(A, PERIOD, consented=True)
    assert revealed.iloc[0]["comments"] == "VPN dropped again | Wrong VPN advice"
    assert revealed.iloc[0]["description"] == "VPN drops every hour for the sales team"
    assert revealed.iloc[0]["resolution"] == "Resolved with the user."
    fleet = feedback.worst_rated(None, PERIOD)
    assert fleet.iloc[0]["tenant_id"] == B and fleet.iloc[0]["average_rating"] == 1.0
    assert fleet["comments"].isna().all() and fleet["description"].isna().all()


def plant_signals(conn, tenant: str, other: str) -> None:
    """10 negative entries: 8 thumbs down on VPN tickets whose runs started in the evening and
    found nothing similar and no IP (6 of them slow, with a kb_search error; half with the
    context stored as a JSON string), a 1-star without any run, a 2-star on a failed run (by
    its enhancement_id, though a newer completed run exists). 20 positive: fast morning runs
    with full context (2 without an IP match), on tickets resolved by clearing the mailbox
    cache. A 3-star is neutral. Another tenant's negative feedback on empty-context runs never
    reaches this tenant's themes, nor do its tickets with the same ids."""
    evening = DAY1 + timedelta(hours=9)  # 19:00 UTC
    for i in range(8):
        ticket = f"n{i}"
        context = {
            **EMPTY_CONTEXT,
            "kb_articles": FULL_CONTEXT["kb_articles"],
            "errors": [{"node_name": "kb_search", "message": "KB search timed out after 10s"}]
            if i < 6
            else [],
        }
        stored = json.dumps(json.dumps(context)) if i < 4 else context
        run_at = evening + timedelta(minutes=i)
        add_run(conn, tenant, ticket, "completed", run_at, 75.0 if i < 6 else 45.0, None, stored)
        # A re-run after the feedback is not the rated one.
        add_run(conn, tenant, ticket, "completed", DAY2, 10.0, None, FULL_CONTEXT)
        add_ticket(conn, tenant, ticket, "VPN tunnel drops every hour", DAY1)
        add_feedback(
            conn,
            tenant,
            ticket,
            "thumbs_down",
            run_at + timedelta(minutes=30),
            comment="Generic advice: the drops were not fixed",
        )
    add_feedback(conn, tenant, "x0", "rating", DAY1, rating=1)
    morning = DAY1 - timedelta(hours=3)
    failed = add_run(
        conn, tenant, "f0", "failed", morning, 5.0, "HTTPStatusError: 401 Unauthorized"
    )
    add_run(conn, tenant, "f0", "completed", morning + timedelta(minutes=10), 20.0, None, None)
    add_feedback(conn, tenant, "f0", "rating", DAY1, rating=2, enhancement_id=failed)
    add_feedback(conn, tenant, "neutral", "rating", DAY1, rating=3, comment="tunnel ok")
    for i in range(20):
        ticket = f"p{i}"
        run_at = DAY2 + timedelta(minutes=i)  # 10:xx UTC
        context = {**FULL_CONTEXT, "ip_info": []} if i < 2 else FULL_CONTEXT
        add_run(conn, tenant, ticket, "completed", run_at, 20.0, None, context)
        add_ticket(conn, tenant, ticket, "Outlook profile rebuild", DAY2, "Mailbox cache cleared")
        add_ticket(conn, other, ticket, "Aardvark", DAY2, "Aardvark aardvark")
        add_feedback(conn, tenant, ticket, "thumbs_up", run_at + timedelta(minutes=5))
    for i in range(5):
        run_at = DAY1 + timedelta(hours=2, minutes=i)
        add_run(conn, other, f"o{i}", "completed", run_at, 20.0, None, EMPTY_CONTEXT)
        add_feedback(conn, other, f"o{i}", "thumbs_down", run_at + timedelta(minutes=5))


def test_themes_from_run_signals_with_counts_lift_and_examples(make_platform_db):
    db = make_platform_db("themes")
    tenant, other = "themes-a", "themes-b"
    with db.superuser() as conn:
        add_tenant(conn, tenant)
        add_tenant(conn, other)
        plant_signals(conn, tenant, other)
    db.use()
    found = themes.themes(tenant, PERIOD)
    assert (found.negative_total, found.positive_total) == (10, 20)  # the 3-star is neutral
    negative = found.negative.set_index("signal")
    assert negative.index.tolist() == [  # most entries first, ties by lift, then key
        "empty:similar_tickets",
        "hour:3",
        "empty:ip_info",
        "node:kb_search",
        "time:slow",
    ]
    similar = negative.loc["empty:similar_tickets"]
    assert similar["label"] == "no similar tickets found"
    assert (similar["feedback"], similar["share"], similar["other_share"]) == (8, 0.8, 0.0)
    assert similar["lift"] == pytest.approx((9 / 11) / (1 / 21))
    assert similar["found_in"] == "context sources"
    assert similar["examples"] == [(tenant, "n7"), (tenant, "n6"), (tenant, "n5")]  # newest
    assert negative.loc["empty:ip_info", "lift"] == pytest.approx((9 / 11) / (3 / 21))
    assert negative.loc["hour:3", "label"] == "evening tickets (18-24h UTC)"
    assert negative.loc["node:kb_search", "label"] == "context error in node “kb_search”"
    assert negative.loc["time:slow", "label"] == "processing over 60 s"
    assert negative.loc["time:slow", "feedback"] == 6  # the later fast re-runs do not count
    assert similar["comments"] == []  # never without consent
    positive = found.positive.set_index("signal")
    assert positive.index.tolist() == ["hour:1", "time:fast"]
    assert positive.loc["time:fast", "label"] == "processing under 30 s"
    # 20 positive; 1 negative: the failed run of f0, chosen by its enhancement_id.
    assert positive.loc["time:fast", "lift"] == pytest.approx((21 / 21) / (2 / 11))
    # Without consent no word is a signal; with it, descriptions, resolutions and comments are.
    assert not any(s.startswith("word:") for s in found.negative["signal"])
    consented = themes.themes(tenant, PERIOD, consented=True)
    words = consented.negative.set_index("signal")
    # Ties in key order, and words take at most half of the 8 rows.
    assert [s for s in words.index if s.startswith("word:")] == [
        "word:advice",
        "word:drops",
        "word:fixed",
        "word:generic",
    ]
    assert words.loc["word:drops", "found_in"] == "ticket description, feedback comment"
    assert words.loc["word:drops", "label"] == "mentions “drops”"
    assert words.loc["word:generic", "found_in"] == "feedback comment"
    assert words.loc["word:generic", "comments"] == ["Generic advice: the drops were not fixed"]
    assert "word:the" not in words.index and "word:with" not in words.index
    # Resolution words, of this tenant's tickets only (the other's "aardvark" would sort first).
    assert [s for s in consented.positive["signal"] if s.startswith("word:")] == [
        "word:cache",
        "word:cleared",
        "word:mailbox",
        "word:outlook",
    ]
    assert consented.positive.set_index("signal").loc["word:cache", "found_in"] == (
        "ticket resolution"
    )
    assert not any(s.startswith("word:") for s in found.positive["signal"])
    fleet = themes.themes(None, PERIOD)
    assert fleet.negative_total == 15
    assert fleet.negative.set_index("signal").loc["empty:similar_tickets", "feedback"] == 13
    assert not any(s.startswith("word:") for s in fleet.negative["signal"])
    worst = feedback.worst_rated(tenant, PERIOD)
    f0 = worst.set_index("ticket_id").loc["f0"]
    assert (f0["run_status"], f0["cause"]) == (
        "failed",
        "ServiceDesk Plus credentials expired (401/403)",
    )


@pytest.mark.unit
def test_theme_ranking_is_pure_and_honest_about_small_counts():
    signals = pd.DataFrame(
        {
            "signal": ["time:slow", "empty:kb_articles"],
            "negative": [9, 2],
            "positive": [1, 0],
            "in_description": [False, False],
            "in_resolution": [False, False],
            "in_comment": [False, False],
            "negative_examples": [[["t", "1"], ["t", "1"], ["t", "2"]], [["t", "3"]]],
            "positive_examples": [[["t", "4"]], None],
            "negative_comments": [None, None],
            "positive_comments": [None, None],
        }
    )
    ranked = themes.rank(signals, negative_total=10, positive_total=40)
    assert ranked.negative["signal"].tolist() == ["time:slow"]  # the other has 2 entries (< 3)
    assert ranked.negative.iloc[0]["label"] == "processing over 60 s"
    assert ranked.negative.iloc[0]["found_in"] == "processing time"
    assert ranked.negative.iloc[0]["examples"] == [("t", "1"), ("t", "2")]  # distinct tickets
    assert ranked.negative.iloc[0]["lift"] == pytest.approx(themes.lift(9, 10, 1, 40))
    assert ranked.positive.empty
    nothing = themes.rank(signals.iloc[0:0], 0, 0)
    assert nothing.empty and nothing.negative_total == 0


@pytest.mark.unit
def test_consented_words_take_at_most_half_the_rows():
    keys = [f"word:w{i}" for i in range(8)] + ["time:slow", "hour:3"]
    signals = pd.DataFrame(
        {
            "signal": keys,
            "negative": [9] * 8 + [5, 4],
            "positive": [0] * 10,
            "in_description": [True] * 8 + [False] * 2,
            "in_resolution": [False] * 10,
            "in_comment": [False] * 10,
            "negative_examples": [[["t", "1"]]] * 10,
            "positive_examples": [None] * 10,
            "negative_comments": [None] * 10,
            "positive_comments": [None] * 10,
        }
    )
    shown = themes.rank(signals, negative_total=10, positive_total=10).negative["signal"]
    assert shown.tolist() == ["word:w0", "word:w1", "word:w2", "word:w3", "time:slow", "hour:3"]


def run_page(user, **query: str):
    from tests.conftest import run_page_as

    return run_page_as(user, "views/feedback.py", **query)


def test_feedback_page_fleet_only_for_admins(use):
    from ui.common import md
    from ui.identity import ADMIN, SUPPORT, User

    support = User("eng@example.com", "eng", SUPPORT)
    at = run_page(support)
    assert not at.exception and not at.metric
    assert "fleet view is for admins" in at.info[0].value
    at = run_page(support, tenant=A, range="30d")
    assert not at.exception and not at.error
    assert at.title[0].value == f"Feedback · Tenant {md(A)}"  # the name is shown as text
    consent = at.checkbox(key=f"feedback_comments_consent_{A}_None")
    assert consent.disabled  # no support case in the purpose: no comments
    at = run_page(User("lead@example.com", "lead", ADMIN), range="30d")
    assert at.title[0].value == "Feedback · fleet"
    assert {m.label for m in at.metric} >= {"Average rating", "Positive", "Total feedback"}


def test_feedback_charts_draw_the_tenants_events(use):
    from tests.conftest import chart_labels
    from ui.identity import ADMIN, SUPPORT, User

    at = run_page(User("eng@example.com", "eng", SUPPORT), tenant=EVENTS, range="7d")
    assert not at.exception
    over_time = chart_labels(at)[0]  # the feedback trend
    assert "Incident: low success rate" in over_time
    assert "Configuration changed" in over_time
    at = run_page(User("lead@example.com", "lead", ADMIN), range="7d")  # the fleet
    assert not at.exception
    # the tenant's name starts the label (cut at charts.LABEL_CHARS; the hover has it all)
    assert any(label.startswith("Tenant with events") for label in chart_labels(at)[0])
