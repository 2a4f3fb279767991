"""Pure functions: DataFrame in, plotly Figure out. No data access, no Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

OK_GREEN, WARN_ORANGE, BAD_RED, INK = "#2e8b57", "#e08a00", "#c8382d", "#1f5fbf"


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=-0.2),
        plot_bgcolor="white",
        hovermode="x unified",
    )
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(gridcolor="#e7eaf0")
    return fig


def bars_and_line(
    x: pd.Series,
    bars: list[tuple[str, pd.Series, str]],
    line: tuple[str, pd.Series],
    target: tuple[float, str] | None = None,
) -> go.Figure:
    """Stacked bars (name, values, colour) on the left axis, a line on the right axis, and an
    optional dotted target line on the right axis too."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, values, color in bars:
        fig.add_bar(x=x, y=values, name=name, marker_color=color)
    fig.add_scatter(
        x=x,
        y=line[1],
        name=line[0],
        mode="lines+markers",
        connectgaps=True,
        line=dict(color=INK, width=2),
        secondary_y=True,
    )
    if target is not None:
        value, label = target
        fig.add_scatter(
            x=x,
            y=[value] * len(x),
            mode="lines",
            name=label,
            secondary_y=True,
            line=dict(color=WARN_ORANGE, dash="dot", width=1.5),
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(showgrid=False, secondary_y=True)
    return fig


def volume_and_success(
    trend: pd.DataFrame,
    success_target: float,
    title: str = "Attempts and success rate (by attempt)",
) -> go.Figure:
    """Bars: attempts (completed / failed / pending; a retry is an attempt of its own); line:
    success rate by attempt with its target."""
    other = trend["attempts"] - trend["completed"] - trend["failed"]
    fig = bars_and_line(
        trend["bucket"],
        [
            ("Completed", trend["completed"], OK_GREEN),
            ("Failed", trend["failed"], BAD_RED),
            ("Pending", other, "#9aa5b8"),
        ],
        ("Success rate %", trend["success_rate"] * 100),
        target=(success_target * 100, f"Target {success_target:.0%}"),
    )
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="attempts", secondary_y=False)
    fig.update_yaxes(
        title_text="success %", range=[0, 102], tickvals=[0, 25, 50, 75, 100], secondary_y=True
    )
    return _layout(fig, title)


def latency_p95(
    trend: pd.DataFrame,
    target_s: float,
    critical_s: float,
    title: str = "p95 processing time (worker start → enhancement completed)",
) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(
        x=trend["bucket"],
        y=trend["p95_s"],
        name="p95 processing time (s)",
        mode="lines+markers",
        line=dict(color=INK, width=2),
    )
    fig.add_hline(
        y=target_s,
        line_dash="dot",
        line_color=WARN_ORANGE,
        annotation_text=f"target {target_s:.0f} s",
    )
    fig.add_hline(
        y=critical_s,
        line_dash="dash",
        line_color=BAD_RED,
        annotation_text=f"SLA {critical_s:.0f} s",
    )
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="seconds", rangemode="tozero")
    return _layout(fig, title)


def failure_breakdown(failures: pd.DataFrame) -> go.Figure:
    ordered = failures.sort_values("attempts")
    fig = go.Figure(
        go.Bar(
            x=ordered["attempts"],
            y=ordered["cause"],
            orientation="h",
            marker_color=BAD_RED,
            text=ordered["attempts"],
            textposition="auto",
        )
    )
    fig.update_xaxes(title_text="failed attempts")
    return _layout(fig, "Failures by cause", height=max(220, 60 + 45 * len(ordered)))


RATING_COLORS = ("#c8382d", "#e0702d", "#e0b000", "#7fb069", OK_GREEN)  # 1 star .. 5 stars
VERDICT_COLORS = {"PASS": OK_GREEN, "MARGINAL": WARN_ORANGE, "FAIL": BAD_RED, "NO DATA": "#b8c0cc"}


def feedback_over_time(over_time: pd.DataFrame, rating_target: float) -> go.Figure:
    """Bars: feedback entries per bucket by type; line: average rating with its target."""
    fig = bars_and_line(
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
    fig.update_yaxes(title_text="feedback entries", secondary_y=False)
    fig.update_yaxes(
        title_text="average rating", range=[0.5, 5.5], tickvals=[1, 2, 3, 4, 5], secondary_y=True
    )
    return _layout(fig, "Feedback over time")


def rating_distribution(ratings: pd.DataFrame) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[f"{v} ★" for v in ratings["rating_value"]],
            y=ratings["n"],
            marker_color=list(RATING_COLORS),
            text=ratings["n"],
            textposition="auto",
        )
    )
    fig.update_yaxes(title_text="ratings")
    fig.update_layout(hovermode="closest")
    return _layout(fig, "Rating distribution")


def thumbs_split(thumbs_up: int, thumbs_down: int) -> go.Figure:
    fig = go.Figure(
        go.Pie(
            labels=["Thumbs up", "Thumbs down"],
            values=[thumbs_up, thumbs_down],
            hole=0.55,
            marker_colors=[OK_GREEN, BAD_RED],
            sort=False,
            textinfo="value+percent",
        )
    )
    total = thumbs_up + thumbs_down
    fig.update_layout(
        annotations=[dict(text=f"{total}<br>votes", showarrow=False, font_size=16)],
        hovermode="closest",
    )
    return _layout(fig, "Thumbs up / down")


def theme_shares(themes: pd.DataFrame, side: str) -> go.Figure:
    """For each theme: the share of negative and of positive feedback that mentions it."""
    ordered = themes.iloc[::-1]
    this, other = ("Negative", "Positive") if side == "negative" else ("Positive", "Negative")
    colors = {"Negative": BAD_RED, "Positive": OK_GREEN}
    fig = go.Figure()
    fig.add_bar(
        y=ordered["label"],
        x=ordered["other_share"] * 100,
        orientation="h",
        name=f"% of {other.lower()} feedback",
        marker_color=colors[other],
        opacity=0.45,
    )
    fig.add_bar(
        y=ordered["label"],
        x=ordered["share"] * 100,
        orientation="h",
        name=f"% of {this.lower()} feedback",
        marker_color=colors[this],
        text=[f"lift {lift:.1f}×" for lift in ordered["lift"]],
        textposition="outside",
    )
    fig.update_layout(barmode="group", hovermode="closest")
    fig.update_xaxes(title_text="% of feedback entries with the signal", rangemode="tozero")
    return _layout(fig, f"{this} themes", height=max(240, 90 + 50 * len(ordered)))


def weekly_scorecard(rows: pd.DataFrame) -> go.Figure:
    """One panel per criterion: each tenant's value as a bar coloured by its verdict, with the
    target as a dotted line. `rows`: scope, criterion, value (display units), verdict, low, high
    (the target bounds, NaN when open)."""
    labels = list(dict.fromkeys(rows["criterion"]))
    fig = make_subplots(
        rows=1, cols=len(labels), subplot_titles=labels, shared_yaxes=True, horizontal_spacing=0.03
    )
    for col, label in enumerate(labels, start=1):
        part = rows[rows["criterion"] == label].iloc[::-1]
        fig.add_bar(
            y=part["scope"],
            x=part["value"],
            orientation="h",
            showlegend=False,
            marker_color=[VERDICT_COLORS[v] for v in part["verdict"]],
            text=part["value_text"],
            textposition="auto",
            row=1,
            col=col,
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
        for bound in ("low", "high"):
            value = part[bound].dropna()
            if not value.empty:
                fig.add_vline(
                    x=float(value.iloc[0]), line_dash="dot", line_color=INK, row=1, col=col
                )
    fig.update_layout(hovermode="closest")
    height = max(260, 110 + 28 * rows["scope"].nunique())
    return _layout(fig, "Criteria by tenant (dotted line: target)", height=height)


# --- Queues and scaling ----------------------------------------------------------------------

BAND_COLORS = {"ok": OK_GREEN, "info": "#e0b000", "warning": WARN_ORANGE, "critical": BAD_RED}


def queue_history(history: pd.DataFrame, bands: pd.DataFrame, episodes: pd.DataFrame) -> go.Figure:
    """The celery queue length over time on its depth bands, episodes shaded.

    history: UTC time index, columns queue_length and api_queue_length (drawn thin, not
    judged); bands: low, high (NaN: open), label, severity;
    episodes: start, end (NaT: still going)."""
    fig = go.Figure()
    top = max(float(history["queue_length"].max(skipna=True) or 0) * 1.15, 25.0)
    for band in bands.itertuples():
        if band.low >= top:
            continue
        high = top if pd.isna(band.high) else min(float(band.high), top)
        fig.add_hrect(
            y0=band.low,
            y1=high,
            fillcolor=BAND_COLORS[band.severity],
            opacity=0.10,
            line_width=0,
            layer="below",
            # name only the bands tall enough for their label not to collide with the next
            annotation_text=band.label if (high - band.low) / top >= 0.08 else "",
            annotation_position="top left",
            annotation_font_size=10,
            annotation_font_color="#5b6475",
        )
    last = history.index.max() if len(history) else None
    for episode in episodes.itertuples():
        end = last if pd.isna(episode.end) else episode.end
        fig.add_vrect(x0=episode.start, x1=end, fillcolor=INK, opacity=0.15, line_width=0)
    fig.add_scatter(
        x=history.index,
        y=history["queue_length"],
        name="celery",
        mode="lines",
        line=dict(color=INK, width=2),
        connectgaps=False,
    )
    if history["api_queue_length"].notna().any():
        fig.add_scatter(
            x=history.index,
            y=history["api_queue_length"],
            name="enhancement:queue",
            mode="lines",
            line=dict(color="#9aa5b8", width=1),
        )
    fig.update_yaxes(title_text="jobs queued", range=[0, top])
    return _layout(fig, "Queue length (shaded: episodes)", height=360)


def workers_history(history: pd.DataFrame) -> go.Figure:
    """Workers available (Celery's own count when Kubernetes' is missing) and the HPA's
    min / current / max; requests received as a light area on a second axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(
        x=history.index,
        y=history["request_rate"],
        name="Requests received / min",
        mode="lines",
        line=dict(width=0),
        fill="tozeroy",
        fillcolor="rgba(154, 165, 184, 0.25)",
        secondary_y=True,
    )
    workers = "replicas_available" if history["replicas_available"].notna().any() else "workers_up"
    for column, name, style in (
        ("hpa_max", "HPA max", dict(color=BAD_RED, dash="dash", width=1.5)),
        ("hpa_min", "HPA min", dict(color=WARN_ORANGE, dash="dash", width=1.5)),
        ("hpa_current", "HPA current", dict(color="#7a5bbf", dash="dot", width=1.5)),
        (workers, "Workers available", dict(color=OK_GREEN, width=2.5)),
    ):
        if history[column].notna().any():
            fig.add_scatter(
                x=history.index,
                y=history[column],
                name=name,
                mode="lines",
                line=dict(shape="hv", **style),
            )
    fig.update_yaxes(title_text="workers", rangemode="tozero", secondary_y=False)
    top_rate = history["request_rate"].max(skipna=True)
    fig.update_yaxes(  # headroom, so the rate stays clear of the HPA lines at the top
        title_text="requests / min",
        range=[0, float(top_rate) * 1.8 if top_rate and top_rate > 0 else 1],
        showgrid=False,
        secondary_y=True,
    )
    fig = _layout(fig, "Workers and autoscaler", height=360)
    return fig.update_layout(legend=dict(y=-0.3))  # below the two-line date ticks


def arrival_heatmap(load: pd.DataFrame, weekdays: tuple[str, ...], title: str) -> go.Figure:
    """Average arrivals per hour for each weekday (rows) and hour of day (columns)."""
    grid = load.pivot(index="dow", columns="hour", values="per_hour").sort_index()
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[f"{h:02d}" for h in grid.columns],
            y=[weekdays[d - 1] for d in grid.index],
            colorscale="Blues",
            colorbar=dict(title="jobs/h"),
            hovertemplate="%{y} %{x}:00 · %{z:.1f} jobs/h<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="hour of day")
    fig.update_layout(hovermode="closest")
    return _layout(fig, title, height=300)


def service_time_histogram(histogram: pd.DataFrame, mean_s: float, width_s: int) -> go.Figure:
    """Worker time per job: runs per bucket, with the mean the model uses."""
    fig = go.Figure(
        go.Bar(
            x=histogram["bucket_s"] + width_s / 2,
            y=histogram["runs"],
            width=width_s * 0.9,
            marker_color=INK,
            name="runs",
            hovertemplate="%{x:.0f} s · %{y} runs<extra></extra>",
        )
    )
    fig.add_vline(
        x=mean_s, line_dash="dot", line_color=WARN_ORANGE, annotation_text=f"mean {mean_s:.0f} s"
    )
    fig.update_xaxes(title_text="seconds of worker time per job", rangemode="tozero")
    fig.update_yaxes(title_text="runs")
    fig.update_layout(hovermode="closest")
    return _layout(fig, "Service time (processing_time_ms of finished runs)", height=300)


def statement_over_time(history: pd.DataFrame) -> go.Figure:
    """One SQL statement between consecutive snapshots: calls (bars) and mean time (line)."""
    fig = bars_and_line(
        history["taken_at"],
        [("Calls", history["calls"], "#9aa5b8")],
        ("Mean time (ms)", history["mean_ms"]),
    )
    fig.update_yaxes(title_text="calls per interval", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="mean ms", rangemode="tozero", secondary_y=True)
    return _layout(fig, "The selected statement between snapshots")
