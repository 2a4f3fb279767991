"""The one time range: half-open, whoever picks it."""

from datetime import UTC, date, datetime, timedelta

import pytest

from services.timerange import TimeRange

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 2, 14, 37, tzinfo=UTC)


def test_the_sidebars_ranges_end_now():
    day = TimeRange.last("24h", NOW)
    assert (day.since, day.until, day.label) == (NOW - timedelta(hours=24), NOW, "last 24 hours")
    assert day.params == {"since": NOW - timedelta(hours=24), "until": NOW}
    assert day.bucket == "hour" and TimeRange.last("7d", NOW).bucket == "day"


def test_whole_days_end_at_the_next_midnight_or_now():
    past = TimeRange.days(date(2026, 11, 2), date(2026, 11, 8), NOW)
    assert past.since == datetime(2026, 11, 2, tzinfo=UTC)
    assert past.until == datetime(2026, 11, 9, tzinfo=UTC)  # excluded: the 8th is whole
    assert past.label == "02 Nov 2026 – 08 Nov 2026 (UTC)"
    assert TimeRange.days(date(2026, 12, 1), date(2026, 12, 2), NOW).until == NOW
