"""Feedback statistics, trends, worst-rated tickets and themes on planted rows (real PostgreSQL),
checked against values computed by hand. A database of this module's own, so that fleet totals
are exactly what was planted here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from services import feedback, themes
from tests.planting import add_feedback, add_tenant

SINCE = datetime(2025, 3, 3, tzinfo=UTC)
UNTIL = datetime(2025, 3, 9, 23, 59, 59, tzinfo=UTC)
DAY1, DAY2 = SINCE + timedelta(hours=10), SINCE + timedelta(days=1, hours=10)
A, B, EMPTY, VOTES_ONLY, RATINGS_ONLY = "acme-fb", "other-fb", "empty-fb", "votes-fb", "rated-fb"


def add_ticket(
    conn: psycopg.Connection, tenant_id: str, ticket_id: str, subject: str, tags: list[str]
) -> None:
    conn.execute(
        "INSERT INTO ticket_history (tenant_id, ticket_id, subject, description, tags)"
        " VALUES (%s, %s, %s, 'planted', %s)",
        (tenant_id, ticket_id, subject, tags),
    )


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
        # The range is inclusive at both ends, like the platform's API...
        add_feedback(conn, A, "109", "thumbs_up", SINCE)
        add_feedback(conn, A, "110", "thumbs_up", UNTIL)
        # ...and nothing outside it counts.
        add_feedback(conn, A, "111", "rating", SINCE - timedelta(microseconds=1), rating=1)
        add_feedback(conn, A, "112", "thumbs_down", UNTIL + timedelta(microseconds=1))
        # Another tenant with far worse feedback in the same range.
        for i in range(6):
            add_feedback(conn, B, f"9{i}", "rating", DAY1, rating=1, comment="network outage")
            add_feedback(conn, B, f"9{i}", "thumbs_down", DAY1)
        for ticket in ("1", "2"):
            add_feedback(conn, VOTES_ONLY, ticket, "thumbs_up", DAY1)
        add_feedback(conn, VOTES_ONLY, "3", "thumbs_down", DAY1)
        add_feedback(conn, RATINGS_ONLY, "1", "rating", DAY1, rating=3)
    return platform


@pytest.fixture
def use(db) -> Iterator:
    db.use()
    yield db


def test_tenant_statistics_match_the_platform_definition(use):
    stats = feedback.tenant_summary(A, SINCE, UNTIL).total
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
    summary = feedback.tenant_summary(A, SINCE, UNTIL)
    assert summary.by_tenant["tenant_id"].tolist() == [A]
    other = feedback.tenant_summary(B, SINCE, UNTIL).total
    assert other.feedback_counts == {"thumbs_up": 0, "thumbs_down": 6, "rating": 6}
    assert other.average_rating == 1.0
    worst = feedback.tenant_worst_rated(A, SINCE, UNTIL)
    assert set(worst["tenant_id"]) == {A}
    found = themes.tenant_themes(A, SINCE, UNTIL)
    assert "network" not in set(found.negative["term"])  # B's comments never reach A's themes
    assert found.negative_total == 5  # A's 4 thumbs down and the 2-star rating


def test_fleet_statistics_add_up_every_tenant(use):
    summary = feedback.fleet_summary(SINCE, UNTIL)
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
    empty = feedback.tenant_summary(EMPTY, SINCE, UNTIL).total
    assert empty.average_rating is None
    assert empty.positive_percentage == 0.0
    assert empty.total_feedback == 0
    assert empty.feedback_counts == {"thumbs_up": 0, "thumbs_down": 0, "rating": 0}
    votes_only = feedback.tenant_summary(VOTES_ONLY, SINCE, UNTIL).total
    assert votes_only.average_rating is None
    assert votes_only.positive_percentage == 66.67
    ratings_only = feedback.tenant_summary(RATINGS_ONLY, SINCE, UNTIL).total
    assert ratings_only.average_rating == 3.0
    assert ratings_only.positive_percentage == 0.0  # the platform's value when nobody voted
    trend = feedback.tenant_trend(EMPTY, SINCE, UNTIL)
    assert trend.over_time.empty
    assert trend.ratings["n"].tolist() == [0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("up", "down", "expected"),
    [(0, 0, 0.0), (1, 0, 100.0), (1, 2, 33.33), (2, 1, 66.67), (1, 7, 12.5)],
)
def test_positive_percentage_rounds_like_the_platform(up, down, expected):
    assert feedback.positive_percentage(up, down) == expected


def test_trend_per_day_and_rating_distribution(use):
    trend = feedback.tenant_trend(A, SINCE, UNTIL)
    days = trend.over_time.set_index(trend.over_time["bucket"].dt.date)
    first, second = days.loc[DAY1.date()], days.loc[DAY2.date()]
    assert (first["thumbs_up"], first["thumbs_down"], first["rating"]) == (4, 0, 2)  # + SINCE
    assert first["average_rating"] == 4.5
    assert (second["thumbs_up"], second["thumbs_down"], second["rating"]) == (0, 4, 2)
    assert second["average_rating"] == 2.0  # the value-less rating does not count
    assert second["positive_pct"] == 0.0
    assert trend.ratings.to_dict("list") == {"rating_value": [1, 2, 3, 4, 5], "n": [0, 1, 0, 1, 1]}


def test_worst_rated_first_and_comments_only_when_asked(use):
    worst = feedback.tenant_worst_rated(A, SINCE, UNTIL)
    assert worst["ticket_id"].tolist() == ["102", "101", "100"]  # 103 has no rating value
    first = worst.iloc[0]
    assert (first["average_rating"], first["ratings"], first["thumbs_down"]) == (2.0, 1, 1)
    assert worst["comments"].isna().all() and worst["subject"].isna().all()
    revealed = feedback.tenant_worst_rated(A, SINCE, UNTIL, with_comments=True)
    assert revealed.iloc[0]["comments"] == "VPN dropped again | Wrong VPN advice"
    fleet = feedback.fleet_worst_rated(SINCE, UNTIL)
    assert fleet.iloc[0]["tenant_id"] == B and fleet.iloc[0]["average_rating"] == 1.0
    assert fleet["comments"].isna().all()


def test_themes_with_counts_lift_and_examples(make_platform_db):
    """Planted: 10 negative entries, 6 of them on 'network' tickets; 20 positive, 2 on network."""
    db = make_platform_db("themes")
    tenant, other = "themes-a", "themes-b"
    with db.superuser() as conn:
        add_tenant(conn, tenant)
        add_tenant(conn, other)
        for i in range(8):
            tags = ["network", "switch"] if i < 6 else ["printer"]
            add_ticket(conn, tenant, f"n{i}", "Switch port flapping" if i < 6 else "Toner", tags)
            when = DAY1 + timedelta(minutes=i)
            add_feedback(
                conn,
                tenant,
                f"n{i}",
                "thumbs_down",
                when,
                comment="Generic advice with the wrong fix",
            )
        for i in range(2):  # two more negative entries as 1- and 2-star ratings, no ticket row
            add_feedback(conn, tenant, f"x{i}", "rating", DAY1, rating=1 + i)
        add_feedback(conn, tenant, "neutral", "rating", DAY1, rating=3, comment="network ok")
        for i in range(20):
            tags = ["network"] if i < 2 else ["email", "outlook"]
            add_ticket(conn, tenant, f"p{i}", "Outlook profile" if i >= 2 else "Wifi", tags)
            add_feedback(conn, tenant, f"p{i}", "thumbs_up", DAY2 + timedelta(minutes=i))
        for i in range(5):  # another tenant's negative network feedback never counts
            add_ticket(conn, other, f"o{i}", "network", ["network"])
            add_feedback(conn, other, f"o{i}", "thumbs_down", DAY1)
    db.use()
    found = themes.tenant_themes(tenant, SINCE, UNTIL)
    assert (found.negative_total, found.positive_total) == (10, 20)  # the 3-star is neutral
    negative = found.negative.set_index("term")
    network = negative.loc["network"]
    assert network["feedback"] == 6
    assert network["share"] == pytest.approx(6 / 10)
    assert network["other_share"] == pytest.approx(2 / 20)
    assert network["lift"] == pytest.approx(((6 + 1) / 11) / ((2 + 1) / 21))
    assert network["found_in"] == "tags"
    assert network["examples"] == [(tenant, "n5"), (tenant, "n4"), (tenant, "n3")]  # newest first
    assert negative.loc["switch"]["found_in"] == "tags, subjects"
    assert negative.loc["generic"]["found_in"] == "comments"
    assert "with" not in negative.index and "the" not in negative.index  # stopwords, short words
    assert negative.index[0] == "advice"  # most entries first (8), ties by lift, then term
    assert network["comments"] == []  # never without consent
    positive = found.positive.set_index("term")
    assert positive.loc["outlook"]["feedback"] == 18
    assert positive.loc["outlook"]["lift"] == pytest.approx((19 / 21) / (1 / 11))
    assert "network" not in positive.index  # 2 entries, lift below the threshold
    with_comments = themes.tenant_themes(tenant, SINCE, UNTIL, with_comments=True)
    assert with_comments.negative.set_index("term").loc["network"]["comments"] == [
        "Generic advice with the wrong fix"
    ]
    fleet = themes.fleet_themes(SINCE, UNTIL)
    assert fleet.negative_total == 15
    assert fleet.negative.set_index("term").loc["network"]["feedback"] == 11


def test_theme_ranking_is_pure_and_honest_about_small_counts():
    terms = pd.DataFrame(
        {
            "term": ["vpn", "rare"],
            "negative": [9, 2],
            "positive": [1, 0],
            "in_tags": [True, False],
            "in_subjects": [False, True],
            "in_comments": [False, False],
            "negative_examples": [[["t", "1"], ["t", "1"], ["t", "2"]], [["t", "3"]]],
            "positive_examples": [[["t", "4"]], None],
            "negative_comments": [None, None],
            "positive_comments": [None, None],
        }
    )
    ranked = themes.rank(terms, negative_total=10, positive_total=40)
    assert ranked.negative["term"].tolist() == ["vpn"]  # 'rare' has only 2 entries (< 3)
    assert ranked.negative.iloc[0]["examples"] == [("t", "1"), ("t", "2")]  # distinct tickets
    assert ranked.positive.empty
    nothing = themes.rank(terms.iloc[0:0], 0, 0)
    assert nothing.empty and nothing.negative_total == 0


def test_feedback_page_fleet_only_for_admins(use):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import app_test
    from ui.identity import ADMIN, SESSION_KEY, SUPPORT, User

    def run(user: User, **query: str) -> AppTest:
        st.cache_data.clear()
        at = app_test()
        at.session_state[SESSION_KEY] = user
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        return at.switch_page("views/feedback.py").run()

    support = User("eng@example.com", "eng", SUPPORT)
    at = run(support)
    assert not at.exception and not at.metric
    assert "fleet view is for admins" in at.info[0].value
    at = run(support, tenant=A, range="30d")
    assert not at.exception and not at.error
    assert at.title[0].value == f"Feedback · Tenant {A}"
    consent = at.checkbox(key=f"feedback_consent_{A}_None")
    assert consent.disabled  # no support case in the purpose: no comments
    at = run(User("lead@example.com", "lead", ADMIN), range="30d")
    assert at.title[0].value == "Feedback · fleet"
    assert {m.label for m in at.metric} >= {"Average rating", "Positive", "Total feedback"}
