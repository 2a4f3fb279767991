"""The Connections tab: the shares of connection-pool exhaustion, connections by state and
source, replication, and what runs (or holds a transaction open) for long."""

from typing import Any

import streamlit as st

from services.dbhealth import connections
from ui import reads
from ui.common import ViewContext, record_view
from views.dbhealth.layout import DONE, show_table, show_tiles


def show_connections(ctx: ViewContext, cfg: dict[str, Any]) -> None:
    users = tuple(cfg["platform_users"])
    conns = reads.db_connections(users)
    usage = connections.connection_usage(
        conns, cfg["pool_size_per_pod"], cfg["api_pods"] + cfg["worker_pods"], cfg["warn_share"]
    )
    record_view(ctx, "db_health", "*", {"section": "connections"}, row_count=conns.count("total"))
    for tile, item in zip(st.columns(3), usage, strict=True):
        tile.metric(
            item.title,
            item.percent,
            item.detail,
            delta_color="red" if item.warn else "off",
            delta_arrow="off",
            border=True,
            help=item.label,
        )
    show_tiles(conns.states())
    for item in usage:
        if item.warn:
            st.warning(item.warning, icon=":material/warning:")
    st.caption(
        connections.settings_note(
            conns, users, cfg["pool_size_per_pod"], cfg["api_pods"], cfg["worker_pods"]
        )
    )
    show_replication(reads.db_replication())
    st.subheader("Connections by source")
    show_table(
        conns.by_source,
        {
            "database": "Database",
            "user": "User",
            "application": "Application",
            "active": "Active",
            "idle": "Idle",
            "idle_in_transaction": "Idle in transaction",
            "other": "Other",
            "total": "Total",
            "platform": st.column_config.CheckboxColumn("Platform"),
        },
    )
    threshold = cfg["long_running_seconds"]
    st.subheader(f"Running, or in a transaction, for more than {threshold} s")
    slow = reads.db_long_running(threshold)
    if slow.empty:
        st.success("Nothing is running, or holding a transaction open, that long.", icon=DONE)
        return
    show_table(
        slow,
        {
            "pid": "PID",
            "database": "Database",
            "user": "User",
            "application": "Application",
            "state": "State",
            "query_seconds": st.column_config.NumberColumn("Query (s)", format="%.0f"),
            "transaction_seconds": st.column_config.NumberColumn("Transaction (s)", format="%.0f"),
            "waiting_on": "Waiting on",
            "query": st.column_config.TextColumn("Query", width="large"),
        },
    )
    st.caption(connections.IDLE_IN_TRANSACTION_ADVICE)


def show_replication(state: connections.Replication) -> None:
    st.subheader("Replication")
    if state.note:
        st.caption(state.note)
    if state.shows_streams:
        show_table(
            state.streams,
            {
                "standby": "Standby",
                "state": "State",
                "lag_seconds": st.column_config.NumberColumn("Replay lag (s)", format="%.1f"),
                "behind_bytes": st.column_config.NumberColumn("WAL not replayed", format="bytes"),
            },
        )
