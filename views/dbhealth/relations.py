"""The Tables and indexes tab: index candidates, duplicate and unused indexes, tables with
their dead tuples and (auto)vacuum times."""

from typing import Any

import streamlit as st

from services.dbhealth import relations
from ui import reads
from ui.common import ViewContext, record_view
from views.dbhealth.layout import DONE, SHARE, SIZE, show_table, show_tiles


def show_tables_and_indexes(ctx: ViewContext, cfg: dict[str, Any]) -> None:
    table_frame = reads.db_tables(cfg["dead_ratio_warning"], cfg["dead_rows_min"])
    candidates = reads.db_index_candidates(cfg["large_table_rows"], cfg["seq_scan_share_flag"])
    index_frame = reads.db_indexes()
    duplicates = reads.db_duplicate_indexes()
    params = {"section": "tables and indexes"}
    record_view(ctx, "db_health", "*", params, row_count=len(table_frame))
    show_tiles(relations.overview(table_frame, candidates, index_frame, duplicates))

    st.subheader("Sequential scans on large tables (index candidates)")
    if candidates.empty:
        st.success(
            f"No table of {cfg['large_table_rows']:,}+ rows is read mostly by sequential scans.",
            icon=DONE,
        )
    else:
        show_table(
            candidates,
            {
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
        st.caption(relations.CANDIDATES_ADVICE)

    names = {
        "schema": "Schema",
        "table": "Table",
        "index": "Index",
        "index_bytes": SIZE,
        "covered_by": "Covered by",
        "definition": "Definition",
    }
    st.subheader("Duplicate indexes")
    st.caption(relations.DUPLICATES_NOTE)
    show_table(duplicates, names)
    st.subheader("Unused indexes")
    st.caption(relations.unused_note(index_frame))
    show_table(relations.unused_table(index_frame), names)

    st.subheader("Tables")
    for warning in relations.vacuum_warnings(table_frame):
        st.warning(warning, icon=":material/cleaning_services:")
    show_table(
        relations.tables_table(table_frame),
        {
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
        show_table(
            relations.indexes_table(index_frame),
            {**names, "idx_scan": "Scans", "is_unique": "Unique", "unused": "Unused"},
        )
