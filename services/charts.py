"""Pure functions: DataFrame in, plotly Figure out. No data access, no Streamlit.

Figures are built from plain dicts in one go.Figure(data, layout) call: one validation pass,
where make_subplots and each add_* call (add_hrect, add_hline, add_shape, ...) would walk and
validate the figure again."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

OK_GREEN, WARN_ORANGE, BAD_RED, INK = "#2e8b57", "#e08a00", "#c8382d", "#1f5fbf"
GRID = "#e7eaf0"
# A second y axis on the right, as make_subplots(specs=[[{"secondary_y": True}]]) lays it out.
SECONDARY = {
    "xaxis": {"anchor": "y", "domain": [0.0, 0.94]},
    "yaxis": {"anchor": "x", "domain": [0.0, 1.0]},
}


def _figure(
    data: list[dict[str, Any]], layout: dict[str, Any], title: str, height: int = 320
) -> go.Figure:
    """The figure with the dashboard's common layout: title, height, legend below, white
    plot, unified hover, no vertical grid lines, light horizontal ones."""
    full: dict[str, Any] = {
        **layout,
        "title": {"text": title},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "legend": {"orientation": "h", "y": -0.2},
        "plot_bgcolor": "white",
        "hovermode": "x unified",  # on every chart, as drawn since the first version
    }
    full.setdefault("xaxis", {})
    full.setdefault("yaxis", {})
    for key in list(full):
        if key.startswith("xaxis"):
            full[key] = {**full[key], "showgrid": False}
        elif key.startswith("yaxis"):
            full[key] = {**full[key], "gridcolor": GRID}
    return go.Figure(data=data, layout=full)


def _hline(y: float, dash: str, color: str, label: str) -> tuple[dict, dict]:
    """A horizontal line across the plot with its label above its right end (add_hline's)."""
    shape = {"type": "line", "x0": 0, "x1": 1, "xref": "x domain", "y0": y, "y1": y, "yref": "y"}
    shape["line"] = {"color": color, "dash": dash}
    note = {"showarrow": False, "text": label, "x": 1, "xanchor": "right", "xref": "x domain"}
    return shape, {**note, "y": y, "yanchor": "bottom", "yref": "y"}


def _vline(x: Any, color: str, xref: str = "x", yref: str = "y domain") -> dict[str, Any]:
    """A dotted vertical line over the plot's height (add_vline's)."""
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "xref": xref,
        "y0": 0,
        "y1": 1,
        "yref": yref,
        "line": {"color": color, "dash": "dot"},
    }


def epoch_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """UTC times as milliseconds since the epoch, for a date axis (type "date" set): plotly.js
    reads them as the same UTC times as their ISO strings, and a long series ships as a binary
    array (8 bytes a point) that the browser needs not parse, instead of 26-character strings."""
    return index.tz_convert("UTC").as_unit("ms").asi8.astype(float)


def _times(x: Any) -> pd.DatetimeIndex:
    """A trace's x as UTC times: datetimes, or epoch_ms numbers."""
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.number):
        return pd.to_datetime(x, unit="ms", utc=True)
    return pd.to_datetime(x, utc=True)


def bars_and_line(
    x: pd.Series,
    bars: list[tuple[str, pd.Series, str]],
    line: tuple[str, pd.Series],
    target: tuple[float, str] | None = None,
) -> list[dict[str, Any]]:
    """The traces of stacked bars (name, values, colour) on the left axis, a line on the right
    axis, and an optional dotted target line on the right axis too; lay them out with
    SECONDARY and a yaxis2 of `_right_axis`."""
    data: list[dict[str, Any]] = [
        {"type": "bar", "x": x, "y": values, "name": name, "marker": {"color": color}}
        for name, values, color in bars
    ]
    data.append(
        {
            "type": "scatter",
            "x": x,
            "y": line[1],
            "name": line[0],
            "mode": "lines+markers",
            "connectgaps": True,
            "line": {"color": INK, "width": 2},
            "xaxis": "x",
            "yaxis": "y2",
        }
    )
    if target is not None:
        value, label = target
        data.append(
            {
                "type": "scatter",
                "x": x,
                "y": [value] * len(x),
                "mode": "lines",
                "name": label,
                "line": {"color": WARN_ORANGE, "dash": "dot", "width": 1.5},
                "xaxis": "x",
                "yaxis": "y2",
            }
        )
    return data


def _right_axis(**axis: Any) -> dict[str, Any]:
    return {"anchor": "x", "overlaying": "y", "side": "right", "showgrid": False, **axis}


VOLUME_TITLE = "Attempts and success rate (by attempt)"
LATENCY_TITLE = "p95 processing time (worker start → enhancement completed)"


def volume_and_success(
    trend: pd.DataFrame, success_target: float, title: str = VOLUME_TITLE
) -> go.Figure:
    """Bars: attempts (completed / failed / pending; a retry is an attempt of its own); line:
    success rate by attempt with its target."""
    other = trend["attempts"] - trend["completed"] - trend["failed"]
    data = bars_and_line(
        trend["bucket"],
        [
            ("Completed", trend["completed"], OK_GREEN),
            ("Failed", trend["failed"], BAD_RED),
            ("Pending", other, "#9aa5b8"),
        ],
        ("Success rate %", trend["success_rate"] * 100),
        target=(success_target * 100, f"Target {success_target:.0%}"),
    )
    layout = {
        "barmode": "stack",
        "xaxis": {**SECONDARY["xaxis"], "type": "date"},
        "yaxis": {**SECONDARY["yaxis"], "title": {"text": "attempts"}},
        "yaxis2": _right_axis(
            title={"text": "success %"}, range=[0, 102], tickvals=[0, 25, 50, 75, 100]
        ),
    }
    return _figure(data, layout, title)


def latency_p95(
    trend: pd.DataFrame, target_s: float, critical_s: float, title: str = LATENCY_TITLE
) -> go.Figure:
    line = {
        "type": "scatter",
        "x": trend["bucket"],
        "y": trend["p95_s"],
        "name": "p95 processing time (s)",
        "mode": "lines+markers",
        "line": {"color": INK, "width": 2},
    }
    target = _hline(target_s, "dot", WARN_ORANGE, f"target {target_s:.0f} s")
    critical = _hline(critical_s, "dash", BAD_RED, f"SLA {critical_s:.0f} s")
    layout = {
        "shapes": [target[0], critical[0]],
        "annotations": [target[1], critical[1]],
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": "seconds"}, "rangemode": "tozero"},
    }
    return _figure([line], layout, title)


RATING_COLORS = ("#c8382d", "#e0702d", "#e0b000", "#7fb069", OK_GREEN)  # 1 star .. 5 stars
VERDICT_COLORS = {"PASS": OK_GREEN, "MARGINAL": WARN_ORANGE, "FAIL": BAD_RED, "NO DATA": "#b8c0cc"}


def feedback_over_time(over_time: pd.DataFrame, rating_target: float) -> go.Figure:
    """Bars: feedback entries per bucket by type; line: average rating with its target."""
    data = bars_and_line(
        over_time["bucket"],
        [
            (name, over_time[column], color)
            for column, name, color in (
                ("thumbs_up", "Thumbs up", OK_GREEN),
                ("thumbs_down", "Thumbs down", BAD_RED),
                ("rating", "Ratings", "#9aa5b8"),
            )
        ],
        ("Average rating", over_time["average_rating"]),
        target=(rating_target, f"Rating target {rating_target:g}"),
    )
    layout = {
        "barmode": "stack",
        "xaxis": SECONDARY["xaxis"],
        "yaxis": {**SECONDARY["yaxis"], "title": {"text": "feedback entries"}},
        "yaxis2": _right_axis(
            title={"text": "average rating"}, range=[0.5, 5.5], tickvals=[1, 2, 3, 4, 5]
        ),
    }
    return _figure(data, layout, "Feedback over time")


def rating_distribution(ratings: pd.DataFrame) -> go.Figure:
    """Ratings per star, as bars across the page (5 stars on top)."""
    bar = {
        "type": "bar",
        "orientation": "h",
        "y": [f"{v} ★" for v in ratings["rating_value"]],
        "x": ratings["n"],
        "marker": {"color": list(RATING_COLORS)},
        "text": ratings["n"],
        "textposition": "outside",
        "textangle": 0,
        "cliponaxis": False,
    }
    layout = {"xaxis": {"title": {"text": "ratings"}}}
    return _figure([bar], layout, "Rating distribution", height=240)


def theme_shares(themes: pd.DataFrame, side: str) -> go.Figure:
    """For each theme: the share of negative and of positive feedback that mentions it."""
    ordered = themes.iloc[::-1]
    this, other = ("Negative", "Positive") if side == "negative" else ("Positive", "Negative")
    colors = {"Negative": BAD_RED, "Positive": OK_GREEN}
    data = [
        {
            "type": "bar",
            "y": ordered["label"],
            "x": ordered["other_share"] * 100,
            "orientation": "h",
            "name": f"% of {other.lower()} feedback",
            "marker": {"color": colors[other]},
            "opacity": 0.45,
        },
        {
            "type": "bar",
            "y": ordered["label"],
            "x": ordered["share"] * 100,
            "orientation": "h",
            "name": f"% of {this.lower()} feedback",
            "marker": {"color": colors[this]},
            "text": [f"lift {lift:.1f}×" for lift in ordered["lift"]],
            "textposition": "outside",
        },
    ]
    layout = {
        "barmode": "group",
        "xaxis": {
            "title": {"text": "% of feedback entries with the signal"},
            "rangemode": "tozero",
        },
    }
    return _figure(data, layout, f"{this} themes", height=max(240, 90 + 50 * len(ordered)))


def weekly_scorecard(rows: pd.DataFrame) -> go.Figure:
    """One panel per criterion: each tenant's value as a bar coloured by its verdict, with the
    target as a dotted line. `rows`: scope, criterion, value (display units), verdict, low, high
    (the target bounds, NaN when open)."""
    labels = list(dict.fromkeys(rows["criterion"]))
    grid = make_subplots(  # only for the panels' axes and titles: computing them is cheap
        rows=1, cols=len(labels), subplot_titles=labels, shared_yaxes=True, horizontal_spacing=0.03
    ).layout.to_plotly_json()
    grid.pop("template", None)
    data, shapes = [], []
    for col, label in enumerate(labels, start=1):
        part = rows[rows["criterion"] == label].iloc[::-1]
        axis = "" if col == 1 else str(col)
        data.append(
            {
                "type": "bar",
                "y": part["scope"],
                "x": part["value"],
                "orientation": "h",
                "showlegend": False,
                "marker": {"color": [VERDICT_COLORS[v] for v in part["verdict"]]},
                "text": part["value_text"],
                "textposition": "auto",
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "hovertemplate": "%{y}: %{text}<extra></extra>",
            }
        )
        for bound in ("low", "high"):
            value = part[bound].dropna()
            if not value.empty:
                shapes.append(_vline(float(value.iloc[0]), INK, f"x{axis}", f"y{axis} domain"))
    height = max(260, 110 + 28 * rows["scope"].nunique())
    layout = {**grid, "shapes": shapes}
    return _figure(data, layout, "Criteria by tenant (dotted line: target)", height=height)


# --- Queues and scaling ----------------------------------------------------------------------

BAND_COLORS = {"ok": OK_GREEN, "info": "#e0b000", "warning": WARN_ORANGE, "critical": BAD_RED}


def queue_history(history: pd.DataFrame, bands: pd.DataFrame, episodes: pd.DataFrame) -> go.Figure:
    """The celery queue length over time on its depth bands, episodes shaded.

    history: UTC time index, columns queue_length and api_queue_length (drawn thin, not
    judged); bands: low, high (NaN: open), label, severity;
    episodes: start, end (NaT: still going)."""
    times = epoch_ms(history.index)
    top = max(float(history["queue_length"].max(skipna=True) or 0) * 1.15, 25.0)
    shapes, notes = [], []
    for band in bands.itertuples():
        if band.low >= top:
            continue
        high = top if pd.isna(band.high) else min(float(band.high), top)
        shapes.append(
            {
                "type": "rect",
                "x0": 0,
                "x1": 1,
                "xref": "x domain",
                "y0": band.low,
                "y1": high,
                "yref": "y",
                "fillcolor": BAND_COLORS[band.severity],
                "opacity": 0.10,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        notes.append(
            {
                "showarrow": False,
                # name only the bands tall enough for their label not to collide with the next
                "text": band.label if (high - band.low) / top >= 0.08 else "",
                "x": 0,
                "xanchor": "left",
                "xref": "x domain",
                "y": high,
                "yanchor": "top",
                "yref": "y",
                "font": {"size": 10, "color": "#5b6475"},
            }
        )
    last = history.index.max() if len(history) else None
    for episode in episodes.itertuples():
        shapes.append(
            {
                "type": "rect",
                "x0": episode.start,
                "x1": last if pd.isna(episode.end) else episode.end,
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "y domain",
                "fillcolor": INK,
                "opacity": 0.15,
                "line": {"width": 0},
            }
        )
    data = [
        {
            "type": "scatter",
            "x": times,
            "y": history["queue_length"],
            "name": "celery",
            "mode": "lines",
            "line": {"color": INK, "width": 2},
            "connectgaps": False,
        }
    ]
    if history["api_queue_length"].notna().any():
        data.append(
            {
                "type": "scatter",
                "x": times,
                "y": history["api_queue_length"],
                "name": "enhancement:queue",
                "mode": "lines",
                "line": {"color": "#9aa5b8", "width": 1},
            }
        )
    layout = {
        "shapes": shapes,
        "annotations": notes,
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": "jobs queued"}, "range": [0, top]},
    }
    return _figure(data, layout, "Queue length (shaded: episodes)", height=360)


def workers_history(history: pd.DataFrame) -> go.Figure:
    """Workers available (Celery's own count when Kubernetes' is missing) and the HPA's
    min / current / max; webhooks received (enhancement_requests_total) as a light area on a
    second axis."""
    times = epoch_ms(history.index)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": times,
            "y": history["request_rate"],
            "name": "Webhooks received / min",
            "mode": "lines",
            "line": {"width": 0},
            "fill": "tozeroy",
            "fillcolor": "rgba(154, 165, 184, 0.25)",
            "xaxis": "x",
            "yaxis": "y2",
        }
    ]
    workers = "replicas_available" if history["replicas_available"].notna().any() else "workers_up"
    for column, name, style in (
        ("hpa_max", "HPA max", {"color": BAD_RED, "dash": "dash", "width": 1.5}),
        ("hpa_min", "HPA min", {"color": WARN_ORANGE, "dash": "dash", "width": 1.5}),
        ("hpa_current", "HPA current", {"color": "#7a5bbf", "dash": "dot", "width": 1.5}),
        (workers, "Workers available", {"color": OK_GREEN, "width": 2.5}),
    ):
        if history[column].notna().any():
            data.append(
                {
                    "type": "scatter",
                    "x": times,
                    "y": history[column],
                    "name": name,
                    "mode": "lines",
                    "line": {"shape": "hv", **style},
                }
            )
    top_rate = history["request_rate"].max(skipna=True)
    layout = {
        "xaxis": {**SECONDARY["xaxis"], "type": "date"},
        "yaxis": {**SECONDARY["yaxis"], "title": {"text": "workers"}, "rangemode": "tozero"},
        "yaxis2": _right_axis(  # headroom, so the rate stays clear of the HPA lines at the top
            title={"text": "webhooks / min"},
            range=[0, float(top_rate) * 1.8 if top_rate and top_rate > 0 else 1],
        ),
    }
    fig = _figure(data, layout, "Workers and autoscaler", height=360)
    return fig.update_layout(legend={"y": -0.3})  # below the two-line date ticks


def arrival_heatmap(load: pd.DataFrame, weekdays: tuple[str, ...], title: str) -> go.Figure:
    """Average arrivals per hour for each weekday (rows) and hour of day (columns)."""
    grid = load.pivot(index="dow", columns="hour", values="per_hour").sort_index()
    heatmap = {
        "type": "heatmap",
        "z": grid.to_numpy(),
        "x": [f"{h:02d}" for h in grid.columns],
        "y": [weekdays[d - 1] for d in grid.index],
        "colorscale": "Blues",
        "colorbar": {"title": {"text": "jobs/h"}},
        "hovertemplate": "%{y} %{x}:00 · %{z:.1f} jobs/h<extra></extra>",
    }
    layout = {
        "yaxis": {"autorange": "reversed"},
        "xaxis": {"title": {"text": "hour of day"}},
    }
    return _figure([heatmap], layout, title, height=300)


def service_time_histogram(histogram: pd.DataFrame, mean_s: float, width_s: int) -> go.Figure:
    """Worker time per job: runs per bucket, with the mean the model uses."""
    bar = {
        "type": "bar",
        "x": histogram["bucket_s"] + width_s / 2,
        "y": histogram["runs"],
        "width": width_s * 0.9,
        "marker": {"color": INK},
        "name": "runs",
        "hovertemplate": "%{x:.0f} s · %{y} runs<extra></extra>",
    }
    mean = _vline(mean_s, WARN_ORANGE)
    note = {"showarrow": False, "text": f"mean {mean_s:.0f} s", "x": mean_s, "xanchor": "left"}
    layout = {
        "shapes": [mean],
        "annotations": [{**note, "xref": "x", "y": 1, "yanchor": "top", "yref": "y domain"}],
        "xaxis": {"title": {"text": "seconds of worker time per job"}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": "runs"}},
    }
    return _figure([bar], layout, "Service time (processing_time_ms of finished runs)", height=300)


def statement_over_time(history: pd.DataFrame) -> go.Figure:
    """One SQL statement between consecutive snapshots: calls (bars) and mean time (line)."""
    data = bars_and_line(
        history["taken_at"],
        [("Calls", history["calls"], "#9aa5b8")],
        ("Mean time (ms)", history["mean_ms"]),
    )
    layout = {
        "barmode": "stack",
        "xaxis": SECONDARY["xaxis"],
        "yaxis": {
            **SECONDARY["yaxis"],
            "title": {"text": "calls per interval"},
            "rangemode": "tozero",
        },
        "yaxis2": _right_axis(title={"text": "mean ms"}, rangemode="tozero"),
    }
    return _figure(data, layout, "The selected statement between snapshots")


EVENT_COLORS = {"incident": BAD_RED, "onboarded": OK_GREEN, "config_changed": INK}


# Event labels: about 6 px per character at font size 10. A chart beside another has a plot
# about 400 px wide, a full-width one about 800 px (on narrower screens labels may touch).
LABEL_CHAR_PX = 6
HALF_WIDTH_PX = 400
FULL_WIDTH_PX = 800
LABEL_CHARS = 30  # longer labels are cut (the hover has the whole detail)
LABEL_ROWS = 3
LABEL_ROW_PX = 13
LABEL_JOIN_DISTANCE = 0.1  # of the time axis: events this close share a label when crowded


def label_places(positions: list[float], widths: list[float]) -> list[tuple[int, str] | None]:
    """(row, xanchor) of each label, given its event's position on the time axis (0 to 1, in time
    order) and its width (same unit): each goes into the lowest row where it does not run into an
    earlier label. Where no row has room, an event close to the one labelled just before it
    joins that label (None); any other takes the row that frees up first. A label reads to the
    right of its line in the left part of the chart and to the left in the right part, so that
    it stays inside the plot and does not stretch the axis (plotly widens the range to fit
    annotations)."""
    ends = [-1.0] * LABEL_ROWS  # where each row's last label ends
    last_at = -1.0  # the event labelled last
    places: list[tuple[int, str] | None] = []
    for at, width in zip(positions, widths, strict=True):
        anchor = "left" if at < 0.6 else "right"
        start = at if anchor == "left" else at - width
        row = next((row for row in range(LABEL_ROWS) if ends[row] < start), None)
        if row is None and at - last_at <= LABEL_JOIN_DISTANCE:
            places.append(None)
            continue
        if row is None:
            row = min(range(LABEL_ROWS), key=ends.__getitem__)
        ends[row], last_at = start + width, at
        places.append((row, anchor))
    return places


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def with_events(fig: go.Figure, events: pd.DataFrame, plot_px: int = HALF_WIDTH_PX) -> go.Figure:
    """Events (services.events frames) as dotted vertical lines with a short label at the top;
    hovering the label shows the detail (of every event it stands for, where labels had to be
    joined). `plot_px`: about how wide the plot is drawn, for the labels' room. Events outside
    the figure's data range are not drawn (they would stretch its time axis). Changes `fig` (and
    returns it): never pass a figure that is cached."""
    xs = [_times(t.x) for t in fig.data if getattr(t, "x", None) is not None]
    xs = [x for x in xs if len(x)]
    if events.empty or not xs:
        return fig
    first, last = min(x.min() for x in xs), max(x.max() for x in xs)
    shown = events[(events["at"] >= first) & (events["at"] <= last)].sort_values("at")
    span = max((last - first).total_seconds(), 1.0)
    positions = [(at - first).total_seconds() / span for at in shown["at"]]
    labels = [_short(label) for label in shown["label"]]
    widths = [LABEL_CHAR_PX * (len(label) + 2) / plot_px for label in labels]  # with "▾ "
    shapes, notes = list(fig.layout.shapes), list(fig.layout.annotations)
    placed: list[tuple[dict[str, Any], str, int]] = []  # note, its label, events joined to it
    places = label_places(positions, widths)
    for event, label, place in zip(shown.itertuples(), labels, places, strict=True):
        color = EVENT_COLORS.get(event.kind, "#6b7280")
        at = event.at.to_pydatetime()
        line = _vline(at, color, yref="paper")
        shapes.append({**line, "line": {**line["line"], "width": 1}})
        hover = f"{at:%Y-%m-%d %H:%M} UTC: {event.detail}"
        if place is None:  # joins the label placed before it (the first always has a row)
            note, text, joined = placed[-1]
            note["hovertext"] += f"<br>{hover}"
            placed[-1] = (note, text, joined + 1)
            continue
        row, anchor = place
        note = {
            "x": at,
            "y": 1,
            "xref": "x",
            "yref": "paper",
            "hovertext": hover,
            "showarrow": False,
            "yanchor": "bottom",
            "xanchor": anchor,
            "yshift": LABEL_ROW_PX * row,
            "font": {"size": 10, "color": color},
        }
        placed.append((note, label, 0))
    for note, label, joined in placed:
        text = f"{label} (+{joined})" if joined else label
        note["text"] = f"▾ {text}" if note["xanchor"] == "left" else f"{text} ▾"
        notes.append(note)
    return fig.update_layout(shapes=shapes, annotations=notes, margin={"t": 95}, title_y=0.98)
