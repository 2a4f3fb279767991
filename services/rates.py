"""The shared rates: success and positive-feedback percentages, computed one way everywhere
(a page, an export, the exporter), with one rounding rule."""

from __future__ import annotations

import pandas as pd


def positive_percentage(thumbs_up: int, thumbs_down: int) -> float:
    """The platform's feedback API value: up / (up + down) * 100 with Python's round() to
    2 decimals, 0.0 without votes."""
    votes = thumbs_up + thumbs_down
    return round(thumbs_up / votes * 100, 2) if votes > 0 else 0.0


def positive_percentages(thumbs_up: pd.Series, thumbs_down: pd.Series) -> pd.Series:
    """positive_percentage per row, NaN where a row has no votes (nothing to chart)."""
    values = [
        positive_percentage(int(up), int(down)) if up + down > 0 else float("nan")
        for up, down in zip(thumbs_up, thumbs_down, strict=True)
    ]
    return pd.Series(values, index=thumbs_up.index, dtype=float)


def share(part: float, whole: float) -> float | None:
    """part / whole as a ratio (0..1), None when whole is 0 (nothing to judge)."""
    return part / whole if whole else None


def ratio(part: pd.Series, whole: pd.Series) -> pd.Series:
    """part / whole as a float ratio (0..1), NaN where whole is 0 (nothing to judge)."""
    return (part / whole.where(whole > 0)).astype(float)


def success_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """success_rate (attempts: completed of finished) and, where the frame counts tickets,
    ticket_success_rate (tickets that ended with an enhancement of those that ended)."""
    frame = frame.copy()
    frame["success_rate"] = ratio(frame["completed"], frame["completed"] + frame["failed"])
    if "tickets_enhanced" in frame:
        ended = frame["tickets_enhanced"] + frame["tickets_failed"]
        frame["ticket_success_rate"] = ratio(frame["tickets_enhanced"], ended)
    return frame
