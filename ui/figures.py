"""The pages' figures, built once per input and shared: the inputs are cached reads (ui/reads.py),
so the same frames come back for a minute or more, and building a plotly figure costs more than
reading them again. st.cache_resource hands every run the same Figure object, not a copy:
st.plotly_chart only reads it (it serialises a deep copy), and nothing may change one after it
is returned, so each builder adds its event marks (charts.with_events changes the figure it is
given) to a figure of its own before returning it. Keyed by the frames' content (Streamlit
hashes the arguments), so a figure never outlives or mixes up the data it draws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from services import charts

F = TypeVar("F", bound=Callable[..., Any])


def _cached(build: F) -> F:
    # The reads behind the inputs live for 60 s to an hour; a figure is 10-300 kB.
    cached = st.cache_resource(ttl=600, max_entries=100, show_spinner=False)
    return cached(build)  # type: ignore[return-value]


@_cached
def volume_and_success(
    trend: pd.DataFrame, target: float, marks: pd.DataFrame, title: str = charts.VOLUME_TITLE
) -> go.Figure:
    return charts.with_events(charts.volume_and_success(trend, target, title), marks)


@_cached
def latency_p95(
    trend: pd.DataFrame,
    target_s: float,
    critical_s: float,
    marks: pd.DataFrame,
    title: str = charts.LATENCY_TITLE,
) -> go.Figure:
    return charts.with_events(charts.latency_p95(trend, target_s, critical_s, title), marks)


@_cached
def feedback_over_time(
    over_time: pd.DataFrame, rating_target: float, marks: pd.DataFrame
) -> go.Figure:
    figure = charts.feedback_over_time(over_time, rating_target)
    return charts.with_events(figure, marks, charts.FULL_WIDTH_PX)  # drawn across the page


@_cached
def queue_history(
    history: pd.DataFrame, bands: pd.DataFrame, episodes: pd.DataFrame, marks: pd.DataFrame
) -> go.Figure:
    return charts.with_events(charts.queue_history(history, bands, episodes), marks)


rating_distribution = _cached(charts.rating_distribution)
theme_shares = _cached(charts.theme_shares)
weekly_scorecard = _cached(charts.weekly_scorecard)
workers_history = _cached(charts.workers_history)
arrival_heatmap = _cached(charts.arrival_heatmap)
service_time_histogram = _cached(charts.service_time_histogram)
statement_over_time = _cached(charts.statement_over_time)


def show(figure: go.Figure, where: Any = st, static: bool = False) -> None:
    """A figure at its container's width without plotly's toolbar; `static` (the client screen)
    also without hover and zoom."""
    config = {"displayModeBar": False, "staticPlot": static}
    where.plotly_chart(figure, width="stretch", config=config)


def show_health_pair(
    trend: pd.DataFrame,
    rules: dict[str, Any],
    marks: pd.DataFrame,
    static: bool = False,
    titles: tuple[str, str] = (charts.VOLUME_TITLE, charts.LATENCY_TITLE),
) -> None:
    """Attempts and success rate beside the p95 processing time, against the health rules."""
    left, right = st.columns(2)
    success = volume_and_success(trend, rules["success_rate_target"], marks, titles[0])
    show(success, left, static)
    p95 = latency_p95(trend, rules["p95_target_s"], rules["p95_critical_s"], marks, titles[1])
    show(p95, right, static)
