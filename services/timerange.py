"""The one time range: a half-open UTC span that every query reads as
`created_at >= :since AND created_at < :until`, whoever chose it (the sidebar, custom dates,
a client screen's period, a review week)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGE_LABELS = {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
DEFAULT_RANGE = "24h"
HOURLY_UP_TO = timedelta(days=2)  # longer ranges chart per day


@dataclass(frozen=True)
class TimeRange:
    since: datetime  # included
    until: datetime  # excluded
    label: str

    @classmethod
    def last(cls, key: str, now: datetime) -> TimeRange:
        """One of RANGES, ending now."""
        return cls(now - RANGES[key], now, RANGE_LABELS[key])

    @classmethod
    def days(cls, first: date, last: date, now: datetime) -> TimeRange:
        """Whole UTC days from `first` to `last` (both included), never past now."""
        since = datetime.combine(first, time.min, tzinfo=UTC)
        until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        return cls(since, min(until, now), f"{first:%d %b %Y} – {last:%d %b %Y} (UTC)")

    @property
    def params(self) -> dict[str, datetime]:
        """The bind parameters of `>= :since AND < :until`."""
        return {"since": self.since, "until": self.until}

    @property
    def bucket(self) -> str:
        """The chart bucket (date_trunc unit): hours for short ranges, days for longer ones."""
        return "hour" if self.until - self.since <= HOURLY_UP_TO else "day"
