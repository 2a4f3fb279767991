"""The chart builders (services/charts.py): figures built from plain dicts keep their layout, and
long time series ship as epoch milliseconds on a date axis without losing their event marks."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import plotly.io
import pytest

from services import charts

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 30, tzinfo=UTC)


def history(minutes: int = 1441) -> pd.DataFrame:
    index = pd.date_range(START, periods=minutes, freq="60s", tz="UTC")
    ramp = np.arange(minutes, dtype=float) % 40
    return pd.DataFrame(
        {
            "queue_length": ramp,
            "api_queue_length": ramp / 2,
            "request_rate": ramp * 3,
            "replicas_available": np.full(minutes, 3.0),
            "workers_up": np.full(minutes, np.nan),
            "hpa_min": np.full(minutes, 2.0),
            "hpa_max": np.full(minutes, 10.0),
            "hpa_current": np.full(minutes, 3.0),
        },
        index=index,
    )


def marks(*moments: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "at": pd.to_datetime(list(moments), utc=True),
            "kind": "config_changed",
            "label": [f"change {i}" for i in range(len(moments))],
            "detail": "Configuration changed",
        }
    )


def test_history_times_are_epoch_ms_on_a_date_axis_and_events_still_fall_inside() -> None:
    frame = history()
    bands = pd.DataFrame([{"low": 0, "high": 20, "label": "Within target", "severity": "ok"}])
    episodes = pd.DataFrame({"start": [frame.index[100]], "end": [pd.NaT]})
    fig = charts.queue_history(frame, bands, episodes)
    assert fig.layout.xaxis.type == "date"
    first = fig.data[0].x
    assert first.dtype == float and first[0] == START.timestamp() * 1000
    assert first[-1] - first[0] == 1440 * 60_000
    inside, outside = START + timedelta(hours=5), START - timedelta(days=3)
    fig = charts.with_events(fig, marks(inside, outside))
    labels = [a.text for a in fig.layout.annotations if a.hovertext]
    assert labels == ["▾ change 0"]  # the event before the data is not drawn
    spec = plotly.io.to_json(fig, validate=False)
    assert '"bdata"' in spec and "2026-11-30T00:01:00" not in spec  # no per-point date strings
    workers = charts.workers_history(frame)
    assert workers.layout.xaxis.type == "date"
    assert [t.name for t in workers.data] == [
        "Webhooks received / min",
        "HPA max",
        "HPA min",
        "HPA current",
        "Workers available",
    ]


def test_bars_and_line_keeps_the_line_on_the_right_axis_over_the_bars() -> None:
    trend = pd.DataFrame(
        {
            "bucket": pd.date_range(START, periods=3, freq="h", tz="UTC"),
            "attempts": [10, 12, 8],
            "completed": [9, 10, 8],
            "failed": [1, 1, 0],
            "success_rate": [0.9, 10 / 11, 1.0],
        }
    )
    fig = charts.volume_and_success(trend, 0.95)
    assert fig.layout.title.text == charts.VOLUME_TITLE
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis2.side == "right"
    assert fig.layout.xaxis.domain == (0.0, 0.94)  # room for the right axis' labels
    assert [t.yaxis for t in fig.data] == [None, None, None, "y2", "y2"]
    assert list(fig.data[3].y) == pytest.approx([90, 100 * 10 / 11, 100])
    assert fig.layout.barmode == "stack" and fig.layout.hovermode == "x unified"
    assert fig.layout.yaxis.gridcolor == charts.GRID and fig.layout.xaxis.showgrid is False


def test_close_event_labels_take_separate_rows_and_right_hand_labels_read_leftwards() -> None:
    # two labels close together, one far from both, two near the right edge
    places = charts.label_places([0.10, 0.12, 0.40, 0.90, 0.91], [0.1, 0.1, 0.1, 0.1, 0.1])
    assert places == [(0, "left"), (1, "left"), (0, "left"), (0, "right"), (1, "right")]
    # more overlapping labels than rows: the fourth, close to the third, joins it
    crowded = charts.label_places([0.1, 0.1, 0.1, 0.1], [0.3, 0.2, 0.1, 0.1])
    assert crowded == [(0, "left"), (1, "left"), (2, "left"), None]
    # an event far from the last label is not joined to it: it takes the row free soonest
    far = charts.label_places([0.1, 0.1, 0.5, 0.9], [0.9, 0.9, 0.3, 0.5])
    assert far[3] == (2, "right")


def test_event_labels_follow_time_order_and_crowded_ones_are_joined() -> None:
    frame = history()
    no_bands = pd.DataFrame(columns=["low", "high", "label", "severity"])
    fig = charts.queue_history(frame, no_bands, pd.DataFrame({"start": [], "end": []}))
    late, early = START + timedelta(hours=23), START + timedelta(hours=1)
    crowd = [early + timedelta(minutes=m) for m in (5, 10, 15)]
    fig = charts.with_events(fig, marks(late, early, *crowd))
    notes = [a for a in fig.layout.annotations if a.hovertext]
    assert [(a.text, a.xanchor, a.yshift) for a in notes] == [
        ("▾ change 1", "left", 0),
        ("▾ change 2", "left", charts.LABEL_ROW_PX),
        ("▾ change 3 (+1)", "left", 2 * charts.LABEL_ROW_PX),
        ("change 0 ▾", "right", 0),
    ]
    assert notes[2].hovertext.count("Configuration changed") == 2  # both events' details
    assert len([s for s in fig.layout.shapes if s.line.width == 1]) == 5  # every event's line
