"""The Slow queries tab: statements ranked between two snapshots (or since the reset), the
selected one's trend and text, and the Explain form."""

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from services.dbhealth import statements
from ui import figures, reads
from ui.common import ViewContext, guard, own_filter, record_view
from views.dbhealth.explain import show_explain
from views.dbhealth.layout import SHARE, show_tiles


def pick_window(
    ctx: ViewContext, cfg: dict[str, Any]
) -> tuple[int, int | None, pd.DataFrame] | None:
    """Two snapshots to compare, or one for the totals since the reset. None: nothing to show."""
    with guard("the snapshot"):
        statements.snapshot_if_stale(cfg["snapshot_max_age_minutes"])
    shots = statements.snapshots(ctx.range.since)
    if shots.empty:
        st.info("No snapshot of pg_stat_statements yet.")
        return None
    labels = statements.snapshot_labels(shots)
    ids = list(labels)
    left, middle, right, button = st.columns([2.6, 3, 3, 1.4], vertical_alignment="bottom")
    mode = left.segmented_control(
        "Compare",
        ["Between snapshots", "Since reset"],
        key="dbh_mode",
        default="Between snapshots",
        required=True,
    )
    if mode == "Since reset" or len(ids) < 2:
        to_id = middle.selectbox("As of", ids[::-1], format_func=labels.get)
        from_id = None
    else:
        from_id = middle.selectbox("From", ids[:-1], format_func=labels.get)
        to_id = right.selectbox("To", ids[::-1], format_func=labels.get)
    if button.button("Snapshot now", icon=":material/photo_camera:", width="stretch"):
        with guard("the snapshot"):
            statements.take_snapshot("page")
            st.rerun()
    st.caption(statements.snapshots_note(shots, ctx.range.label, cfg["snapshot_max_age_minutes"]))
    if len(ids) < 2 and mode == "Between snapshots":
        st.info("Only one snapshot so far: showing the totals since the last statistics reset.")
    problem = statements.window_problem(shots, from_id, to_id)
    if problem:
        st.warning(problem)
        return None
    return to_id, from_id, shots


def show_statement_detail(ctx: ViewContext, row: pd.Series, until: datetime) -> None:
    history = reads.statement_history(int(row["queryid"]), ctx.range.since, until)
    left, right = st.columns([3, 2])
    with left:
        if len(history) < 2:
            st.info("The trend needs at least three snapshots in the range.")
        else:
            figures.show(figures.statement_over_time(history))
    with right:
        st.markdown(statements.statement_heading(row))
        st.code(row["query"], language="sql", wrap_lines=True, height=250)


def show_slow_queries(ctx: ViewContext, cfg: dict[str, Any]) -> None:
    status = reads.statements_extension()
    if not status.ready:
        st.warning(status.instructions(), icon=":material/extension_off:")
        return
    window = pick_window(ctx, cfg)
    if window is None:
        return
    to_id, from_id, shots = window
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    sort = left.segmented_control(
        "Rank by",
        list(statements.SORTS),
        format_func=statements.SORTS.get,
        key="dbh_sort",
        default="total",
        required=True,
    )
    own = own_filter(right.toggle, "Include the dashboard's own statements", key="dbh_own")
    hidden = () if own else tuple(cfg["own_roles"])
    top = reads.top_statements(to_id, from_id, sort, cfg["top_statements"], hidden)
    params = {"section": "slow queries", "from": from_id, "to": to_id, "sort": sort}
    record_view(ctx, "db_health", "*", params, row_count=len(top))
    if top.empty:
        st.info("No statement ran in this window.")
        show_explain(ctx, cfg)
        return
    summary = statements.window_summary(top, shots, to_id, from_id)
    show_tiles(summary.tiles())
    if summary.reset:
        st.info(
            "pg_stat_statements was reset in this window: those counters start at the reset.",
            icon=":material/restart_alt:",
        )
    ms = st.column_config.NumberColumn(format="%.1f")
    event = st.dataframe(
        statements.statements_table(top, window=from_id is not None),
        hide_index=True,
        width="stretch",
        key="dbh_statements",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "Statement": st.column_config.TextColumn(width="large"),
            "Share of time": st.column_config.ProgressColumn(**SHARE),
            "Total (s)": st.column_config.NumberColumn(format="%.2f"),
            "Mean (ms)": ms,
            "Rows / call": ms,
            "Cache hit": st.column_config.NumberColumn(format="percent"),
            "Max (ms)": st.column_config.NumberColumn(format="%.1f", help="Since the reset"),
        },
    )
    chosen = event.selection.rows[0] if event.selection.rows else 0
    st.caption("Select a row for that statement's trend and full text (the first is shown).")
    show_statement_detail(ctx, top.iloc[chosen], summary.until)
    show_explain(ctx, cfg)
