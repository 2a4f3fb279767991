"""How numbers read on every page: one rule each, whatever the page."""

from datetime import UTC, datetime, timedelta

import pytest

from services import formatting

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.04, "0.0 s"),
        (9.94, "9.9 s"),
        (10, "10 s"),
        (89.4, "89 s"),
        (90, "2 min"),
        (89 * 60, "89 min"),
        (90 * 60, "1.5 h"),
        (47.9 * 3600, "47.9 h"),
        (48 * 3600, "2.0 d"),
        (10 * 86400, "10.0 d"),
        (None, "–"),
        (float("nan"), "–"),
    ],
)
def test_durations_are_shown_in_the_unit_that_reads_best(seconds, shown):
    assert formatting.duration(seconds) == shown


def test_ages_say_never_or_how_long_ago():
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert formatting.since(now - timedelta(minutes=14), now) == "14 min ago"
    assert formatting.since(None, now) == "never"
    assert formatting.ago(None, never="") == ""
    assert formatting.ago(3 * 3600) == "3.0 h ago"


def test_counts_percentages_ratings_and_times():
    assert formatting.count(1234) == "1,234"
    assert formatting.count(None, "unknown") == "unknown"
    assert formatting.percent(0.9617) == "96.2%"
    assert formatting.percent(0.5, digits=0) == "50%"
    assert formatting.percent(None) == "–"
    assert formatting.rating(4.2) == "4.20 / 5"
    assert formatting.timestamp(datetime(2026, 12, 1, 9, 5, 3, tzinfo=UTC)) == (
        "2026-12-01 09:05:03 UTC"
    )
    assert [formatting.plural(n, "attempt") for n in (1, 3)] == ["1 attempt", "3 attempts"]
