"""How numbers read on every page and export: durations, ages, counts, percentages, ratings and
times, each written once. Missing values read as "–"."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd

MISSING = "–"


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def duration(seconds: float | None) -> str:
    """0.4 s, 12 s, 14 min, 3.5 h, 2.1 d: the unit that reads best."""
    if missing(seconds):
        return MISSING
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} d"


def ago(seconds: float | None, never: str = "never") -> str:
    """An age: "14 min ago", or `never` when there is none."""
    return never if missing(seconds) else f"{duration(seconds)} ago"


def since(when: Any, now: Any, never: str = "never") -> str:
    """How long before `now` a timestamp was: "14 min ago"."""
    if missing(when):
        return never
    return ago((pd.Timestamp(now) - pd.Timestamp(when)).total_seconds(), never)


def count(value: float | None, unknown: str = MISSING) -> str:
    """1,234."""
    return unknown if missing(value) else f"{value:,.0f}"


def percent(ratio: float | None, digits: int = 1) -> str:
    """A ratio (0..1) as a percentage: 96.2%."""
    return MISSING if missing(ratio) else f"{ratio:.{digits}%}"


def rating(value: float | None) -> str:
    """An average 1-5 rating: 4.20 / 5."""
    return MISSING if missing(value) else f"{value:.2f} / 5"


def timestamp(value: datetime | None) -> str:
    """2026-12-02 14:05:09 UTC."""
    return MISSING if missing(value) else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def plural(n: int, word: str, suffix: str = "s") -> str:
    """1 attempt, 3 attempts."""
    return f"{n} {word}" if n == 1 else f"{n} {word}{suffix}"
