"""Database health (admins only): slow statements, connections, tables and indexes. Read-only."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from services import access_log, charts, dbhealth
from services.config import rules
from services.errors import DashboardError
from ui.common import ViewContext, cached, guard, record_view

ctx: ViewContext = st.session_state["view_context"]
cfg = rules("db_health")

extension_status = cached(ttl=60)(dbhealth.extension_status)
# A snapshot never changes once taken: results keyed by snapshot ids can be kept long.
top_statements = cached(ttl=3600)(dbhealth.top_statements)
statement_history = cached(ttl=3600)(dbhealth.statement_history)
connections = cached(ttl=15)(dbhealth.connections)
long_running = cached(ttl=15)(dbhealth.long_running)
replication = cached(ttl=15)(dbhealth.replication)
tables = cached(ttl=60)(dbhealth.tables)
index_candidates = cached(ttl=60)(dbhealth.index_candidates)
indexes = cached(ttl=60)(dbhealth.indexes)
duplicate_indexes = cached(ttl=60)(dbhealth.duplicate_indexes)

SIZE = st.column_config.NumberColumn("Size", format="bytes")
SHARE = {"format": "percent", "min_value": 0, "max_value": 1}


def one_line(queries: pd.Series, width: int = 160) -> pd.Series:
    flat = queries.str.replace(r"\s+", " ", regex=True).str.strip()
    return flat.where(flat.str.len() <= width, flat.str.slice(0, width - 1) + "…")


def fmt_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} d"


def snapshot_label(row: pd.Series) -> str:
    # The id keeps labels unique: Streamlit identifies a selectbox choice by its label, so two
    # snapshots taken in the same second would collapse into one and From would equal To.
    return f"#{row['id']} · {row['taken_at']:%b %d %H:%M:%S} UTC ({row['source']})"


# --- slow queries --------------------------------------------------------------------------------


def pick_window() -> tuple[int, int | None, pd.DataFrame] | None:
    """Two snapshots to compare, or one for the totals since the reset. None: nothing to show."""
    with guard("the snapshot"):
        dbhealth.snapshot_if_stale(cfg["snapshot_max_age_minutes"])
    shots = dbhealth.snapshots(ctx.since)
    if shots.empty:
        st.info("No snapshot of pg_stat_statements yet.")
        return None
    labels = {row["id"]: snapshot_label(row) for _, row in shots.iterrows()}
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
            dbhealth.take_snapshot("page")
            st.rerun()
    age_s = (datetime.now(UTC) - shots.iloc[-1]["taken_at"]).total_seconds()
    st.caption(
        f"{len(ids)} snapshots in the {ctx.range_label} (sidebar); the newest is"
        f" {fmt_duration(age_s)} old. They are taken by cron (`python -m services.dbhealth"
        f" snapshot`) and by this page when the newest is older than"
        f" {cfg['snapshot_max_age_minutes']} min. Only this database's top-level statements count."
    )
    if len(ids) < 2 and mode == "Between snapshots":
        st.info("Only one snapshot so far: showing the totals since the last statistics reset.")
    taken = shots.set_index("id")["taken_at"]
    if from_id is not None and taken[from_id] >= taken[to_id]:
        st.warning("Pick a *From* snapshot that is older than *To*.")
        return None
    return to_id, from_id, shots


def statements_table(top: pd.DataFrame, window: bool) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "Statement": one_line(top["query"]),
            "Share of time": top["share"],
            "Total (s)": top["total_ms"] / 1000,
            "Mean (ms)": top["mean_ms"],
            "Calls": top["calls"],
            "Rows": top["rows"],
            "Rows / call": top["rows_per_call"],
            "Cache hit": top["cache_hit_ratio"],
            "Max (ms)": top["max_exec_ms"],
            "Run by": top["roles"],
        }
    )
    # A maximum since the reset says nothing about a window.
    return table.drop(columns="Max (ms)") if window else table


def show_statement_detail(row: pd.Series, until: datetime) -> None:
    history = statement_history(int(row["queryid"]), ctx.since, until)
    left, right = st.columns([3, 2])
    with left:
        if len(history) < 2:
            st.info("The trend needs at least three snapshots in the range.")
        else:
            st.plotly_chart(
                charts.statement_over_time(history),
                width="stretch",
                config={"displayModeBar": False},
            )
    with right:
        st.markdown(
            f"**Selected statement** · run by {row['roles']} · {row['mean_ms']:,.1f} ms on average"
        )
        st.code(row["query"], language="sql", wrap_lines=True, height=250)


def show_explain() -> None:
    st.subheader("Explain a statement")
    st.caption(
        "Paste one SELECT with concrete values in place of $1, $2… PostgreSQL's own parser"
        " checks that it is one plain SELECT; it is planned with EXPLAIN (never ANALYZE, so it"
        " does not run) in a read-only transaction that gives up after"
        f" {cfg['explain_timeout_ms'] / 1000:.0f} s. Refused attempts are recorded."
    )
    with st.form("explain"):
        statement = st.text_area(
            "SELECT statement",
            height=110,
            key="dbh_explain",
            placeholder="SELECT * FROM enhancement_history WHERE ticket_id = 'REQ-1042'",
        )
        submitted = st.form_submit_button("Explain", icon=":material/account_tree:")
    if submitted:
        with guard("the plan"):
            params = {"statement": statement.strip()[:500]}
            try:
                plan = dbhealth.explain(statement)
            except DashboardError as exc:
                # Refused or failed attempts are recorded too: probing shows in the record.
                record_view(ctx, access_log.EXPLAIN_REFUSED, "*", {**params, "reason": str(exc)})
                raise
            record_view(ctx, "db_explain", "*", params)
            # Kept for the session, so the plan stays on screen through later reruns.
            st.session_state["dbh_plan"] = plan
    if "dbh_plan" in st.session_state:
        st.code(st.session_state["dbh_plan"], language="text")


def show_slow_queries() -> None:
    status = extension_status()
    if not status.ready:
        st.warning(status.instructions(), icon=":material/extension_off:")
        return
    window = pick_window()
    if window is None:
        return
    to_id, from_id, shots = window
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    sort = left.segmented_control(
        "Rank by",
        list(dbhealth.SORTS),
        format_func=dbhealth.SORTS.get,
        key="dbh_sort",
        default="total",
        required=True,
    )
    own = right.toggle("Include the dashboard's own statements", key="dbh_own", bind="query-params")
    hidden = () if own else tuple(cfg["own_roles"])
    top = top_statements(to_id, from_id, sort, cfg["top_statements"], hidden)
    record_view(
        ctx,
        "db_health",
        "*",
        {"section": "slow queries", "from": from_id, "to": to_id, "sort": sort},
        row_count=len(top),
    )
    if top.empty:
        st.info("No statement ran in this window.")
        show_explain()
        return
    taken = shots.set_index("id")
    first = top.iloc[0]
    tiles = st.columns(4)
    tiles[0].metric("Time in statements", fmt_duration(first["all_total_ms"] / 1000), border=True)
    tiles[1].metric("Calls", f"{int(first['all_calls']):,}", border=True)
    tiles[2].metric("Statements", f"{int(first['all_statements']):,}", border=True)
    tiles[3].metric(
        "Window",
        "since reset"
        if from_id is None
        else fmt_duration(
            (taken.loc[to_id, "taken_at"] - taken.loc[from_id, "taken_at"]).total_seconds()
        ),
        border=True,
    )
    resets = taken.loc[[to_id] if from_id is None else [from_id, to_id], "stats_reset"]
    if top["reset_between"].any() or resets.nunique() > 1:
        st.info(
            "pg_stat_statements was reset in this window: those counters start at the reset.",
            icon=":material/restart_alt:",
        )
    event = st.dataframe(
        statements_table(top, window=from_id is not None),
        hide_index=True,
        width="stretch",
        key="dbh_statements",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "Statement": st.column_config.TextColumn(width="large"),
            "Share of time": st.column_config.ProgressColumn(**SHARE),
            "Total (s)": st.column_config.NumberColumn(format="%.2f"),
            "Mean (ms)": st.column_config.NumberColumn(format="%.1f"),
            "Rows / call": st.column_config.NumberColumn(format="%.1f"),
            "Cache hit": st.column_config.NumberColumn(format="percent"),
            "Max (ms)": st.column_config.NumberColumn(format="%.1f", help="Since the reset"),
        },
    )
    chosen = event.selection.rows[0] if event.selection.rows else 0
    st.caption("Select a row for that statement's trend and full text (the first is shown).")
    show_statement_detail(top.iloc[chosen], taken.loc[to_id, "taken_at"])
    show_explain()


# --- connections ---------------------------------------------------------------------------------


def show_connections() -> None:
    users = tuple(cfg["platform_users"])
    pods = cfg["api_pods"] + cfg["worker_pods"]
    conns = connections(users)
    server, pools, capacity = dbhealth.connection_usage(
        conns, cfg["pool_size_per_pod"], pods, cfg["warn_share"]
    )
    record_view(ctx, "db_health", "*", {"section": "connections"}, row_count=conns.count("total"))
    usage_tiles, state_tiles = st.columns(3), st.columns(3)
    for tile, item, title, unit in (
        (usage_tiles[0], server, "Server connections", "max_connections"),
        (usage_tiles[1], pools, "Platform pools", "pool slots"),
        (usage_tiles[2], capacity, "Pool capacity", "max_connections"),
    ):
        tile.metric(
            title,
            f"{item.share:.0%}",
            f"{item.used} of {item.limit} {unit}",
            delta_color="red" if item.warn else "off",
            delta_arrow="off",
            border=True,
            help=item.label,
        )
    state_tiles[0].metric("Active", conns.count("active"), border=True)
    state_tiles[1].metric("Idle", conns.count("idle"), border=True)
    state_tiles[2].metric("Idle in transaction", conns.count("idle_in_transaction"), border=True)
    for item in (server, pools, capacity):
        if item.warn:
            st.warning(
                f"**{item.label}: {item.share:.0%}** ({item.used} of {item.limit};"
                f" the warning starts at {item.warn_share:.0%}). {item.advice}",
                icon=":material/warning:",
            )
    st.caption(
        f"max_connections is {conns.max_connections} for the whole server ({conns.reserved}"
        f" reserved for superusers). The platform's connections are those of the database"
        f" user(s) {', '.join(users) or '(none configured)'}; its pools hold up to"
        f" {cfg['pool_size_per_pod']} per pod × {pods} pods ({cfg['api_pods']} API +"
        f" {cfg['worker_pods']} worker). Set these in `dashboard.toml` [db_health]."
    )
    show_replication(replication())
    st.subheader("Connections by source")
    st.dataframe(
        conns.by_source,
        hide_index=True,
        width="stretch",
        column_config={
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
    slow = long_running(threshold)
    if slow.empty:
        st.success(
            "Nothing is running, or holding a transaction open, that long.",
            icon=":material/check_circle:",
        )
        return
    st.dataframe(
        slow,
        hide_index=True,
        width="stretch",
        column_config={
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
    st.caption(
        "A session idle in a transaction holds its locks and holds back vacuum: ask its"
        " owner to finish it before anyone ends it with pg_cancel_backend."
    )


def show_replication(state: dbhealth.Replication) -> None:
    st.subheader("Replication")
    if state.standby:
        lag = state.streams["lag_seconds"].iloc[0]
        behind = "how far behind is unknown" if pd.isna(lag) else f"{fmt_duration(lag)} behind"
        st.caption(
            f"The dashboard reads from a hot standby, {behind} the primary; its own writes"
            " (access records, snapshots) go to the primary."
        )
    elif state.streams.empty:
        st.caption("The dashboard reads from a primary that no standby streams from.")
        return
    st.dataframe(
        state.streams,
        hide_index=True,
        width="stretch",
        column_config={
            "standby": "Standby",
            "state": "State",
            "lag_seconds": st.column_config.NumberColumn("Replay lag (s)", format="%.1f"),
            "behind_bytes": st.column_config.NumberColumn("WAL not replayed", format="bytes"),
        },
    )


# --- tables and indexes --------------------------------------------------------------------------


def show_tables_and_indexes() -> None:
    table_frame = tables(cfg["dead_ratio_warning"], cfg["dead_rows_min"])
    candidates = index_candidates(cfg["large_table_rows"], cfg["seq_scan_share_flag"])
    index_frame = indexes()
    duplicates = duplicate_indexes()
    unused = index_frame[index_frame["unused"]]
    record_view(
        ctx, "db_health", "*", {"section": "tables and indexes"}, row_count=len(table_frame)
    )
    tiles = st.columns(4)
    tiles[0].metric(
        "Tables and indexes", f"{table_frame['total_bytes'].sum() / 2**20:,.1f} MiB", border=True
    )
    tiles[1].metric("Index candidates", len(candidates), border=True)
    tiles[2].metric("Unused indexes", len(unused), border=True)
    tiles[3].metric("Duplicate indexes", len(duplicates), border=True)

    st.subheader("Sequential scans on large tables (index candidates)")
    if candidates.empty:
        st.success(
            f"No table of {cfg['large_table_rows']:,}+ rows is read mostly by sequential scans.",
            icon=":material/check_circle:",
        )
    else:
        st.dataframe(
            candidates,
            hide_index=True,
            width="stretch",
            column_config={
                "schema": "Schema",
                "table": "Table",
                "live_rows": "Rows",
                "seq_scan": "Seq scans",
                "idx_scan": "Index scans",
                "seq_share": st.column_config.ProgressColumn("Sequential share", **SHARE),
                "seq_tup_read": "Rows read sequentially",
                "rows_per_seq_scan": "Rows per seq scan",
                "table_bytes": SIZE,
            },
        )
        st.caption(
            "Find the statement that reads the table under *Slow queries*, EXPLAIN it"
            " and propose an index to Engineering (procedures: Database Performance"
            " Tuning, option 1)."
        )

    names = {
        "schema": "Schema",
        "table": "Table",
        "index": "Index",
        "index_bytes": SIZE,
        "covered_by": "Covered by",
        "definition": "Definition",
    }
    st.subheader("Duplicate indexes")
    st.caption(
        "Their columns lead another index on the same table, which serves the same"
        " queries: dropping them saves space and write time."
    )
    st.dataframe(duplicates, hide_index=True, width="stretch", column_config=names)
    st.subheader("Unused indexes")
    since = index_frame["counted_since"].dropna()
    st.caption(
        "Never scanned since the statistics were "
        + (f"reset ({since.iloc[0]:%Y-%m-%d})" if len(since) else "started")
        + "; indexes behind a constraint are left out. Check the replicas too before"
        " dropping one."
    )
    st.dataframe(
        unused[["schema", "table", "index", "index_bytes", "definition"]],
        hide_index=True,
        width="stretch",
        column_config=names,
    )

    st.subheader("Tables")
    for row in table_frame[table_frame["needs_vacuum"].fillna(False)].itertuples():
        last = "never" if pd.isna(row.last_any_vacuum) else f"{row.last_any_vacuum:%Y-%m-%d %H:%M}"
        st.warning(
            f"`{row.schema}.{row.table}`: {row.dead_ratio:.0%} dead tuples"
            f" ({row.dead_rows:,}); last (auto)vacuum: {last}.",
            icon=":material/cleaning_services:",
        )
    st.dataframe(
        table_frame.drop(columns=["needs_vacuum", "last_vacuum", "last_autovacuum"]),
        hide_index=True,
        width="stretch",
        column_config={
            "schema": "Schema",
            "table": "Table",
            "total_bytes": st.column_config.NumberColumn("Total", format="bytes"),
            "table_bytes": st.column_config.NumberColumn("Data", format="bytes"),
            "index_bytes": st.column_config.NumberColumn("Indexes", format="bytes"),
            "live_rows": "Live rows",
            "dead_rows": "Dead rows",
            "dead_ratio": st.column_config.NumberColumn("Dead %", format="percent"),
            "seq_scan": "Seq scans",
            "idx_scan": "Index scans",
            "last_any_vacuum": st.column_config.DatetimeColumn(
                "Last (auto)vacuum", format="distance"
            ),
            "last_any_analyze": st.column_config.DatetimeColumn(
                "Last (auto)analyze", format="distance"
            ),
        },
    )
    with st.expander("All indexes"):
        st.dataframe(
            index_frame.drop(columns="counted_since"),
            hide_index=True,
            width="stretch",
            column_config={**names, "idx_scan": "Scans", "is_unique": "Unique", "unused": "Unused"},
        )


st.title("Database health")
st.caption(
    "The platform database, read-only, through the dashboard's admin role; every view"
    " is recorded in the data access log."
)
sections = {
    "Slow queries": show_slow_queries,
    "Connections": show_connections,
    "Tables and indexes": show_tables_and_indexes,
}
# Bound to ?section=...: only the open tab runs its queries, and a tab can be linked to.
for tab, (name, show) in zip(
    st.tabs(list(sections), key="section", bind="query-params"), sections.items(), strict=True
):
    if tab.open:
        with tab, guard(name.lower()):
            show()
