"""Pure functions: DataFrame in, plotly Figure out. No data access, no Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

OK_GREEN, WARN_ORANGE, BAD_RED, INK = "#2e8b57", "#e08a00", "#c8382d", "#1f5fbf"


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.2), plot_bgcolor="white",
                      hovermode="x unified")
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(gridcolor="#e7eaf0")
    return fig


def volume_and_success(trend: pd.DataFrame, success_target: float,
                       title: str = "Volume and success rate") -> go.Figure:
    """Bars: runs received (completed / failed / other); line: success rate with its target."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    other = trend["received"] - trend["completed"] - trend["failed"]
    for name, values, color in (("Completed", trend["completed"], OK_GREEN),
                                ("Failed", trend["failed"], BAD_RED),
                                ("Pending", other, "#9aa5b8")):
        fig.add_bar(x=trend["bucket"], y=values, name=name, marker_color=color)
    fig.add_scatter(x=trend["bucket"], y=trend["success_rate"] * 100, name="Success rate %",
                    mode="lines+markers", line=dict(color=INK, width=2), secondary_y=True)
    fig.add_scatter(x=trend["bucket"], y=[success_target * 100] * len(trend), mode="lines",
                    name=f"Target {success_target:.0%}", secondary_y=True,
                    line=dict(color=WARN_ORANGE, dash="dot", width=1.5))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="runs", secondary_y=False)
    fig.update_yaxes(title_text="success %", range=[0, 105], secondary_y=True, showgrid=False)
    return _layout(fig, title)


def latency_p95(trend: pd.DataFrame, target_s: float, critical_s: float,
                title: str = "p95 latency (webhook received → enhancement completed)") -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=trend["bucket"], y=trend["p95_s"], name="p95 latency (s)",
                    mode="lines+markers", line=dict(color=INK, width=2))
    fig.add_hline(y=target_s, line_dash="dot", line_color=WARN_ORANGE,
                  annotation_text=f"target {target_s:.0f} s")
    fig.add_hline(y=critical_s, line_dash="dash", line_color=BAD_RED,
                  annotation_text=f"SLA {critical_s:.0f} s")
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="seconds", rangemode="tozero")
    return _layout(fig, title)


def failure_breakdown(failures: pd.DataFrame) -> go.Figure:
    ordered = failures.sort_values("runs")
    fig = go.Figure(go.Bar(x=ordered["runs"], y=ordered["cause"], orientation="h",
                           marker_color=BAD_RED, text=ordered["runs"], textposition="auto"))
    fig.update_xaxes(title_text="failed runs")
    return _layout(fig, "Failures by cause", height=max(220, 60 + 45 * len(ordered)))
