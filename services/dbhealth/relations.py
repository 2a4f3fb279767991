"""Tables and indexes of this database (pg_stat_user_*): sizes, dead tuples and (auto)vacuum
times, tables read mostly by sequential scans (index candidates), unused and duplicate indexes."""

from __future__ import annotations

import pandas as pd

from services.db import read_frame
from services.dbhealth.session import monitor, read


def tables(dead_ratio_warning: float, dead_rows_min: int) -> pd.DataFrame:
    """Every user table of this database: sizes, scans, dead tuples and (auto)vacuum times."""
    with read() as conn, monitor(conn):
        return read_frame(
            conn,
            """
            SELECT schemaname AS schema, relname AS "table",
                   pg_total_relation_size(relid) AS total_bytes,
                   pg_table_size(relid) AS table_bytes,
                   pg_indexes_size(relid) AS index_bytes,
                   n_live_tup AS live_rows, n_dead_tup AS dead_rows,
                   n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) AS dead_ratio,
                   n_dead_tup >= :dead_min
                       AND n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) >= :ratio
                       AS needs_vacuum,
                   seq_scan, idx_scan, last_vacuum, last_autovacuum,
                   greatest(last_vacuum, last_autovacuum) AS last_any_vacuum,
                   greatest(last_analyze, last_autoanalyze) AS last_any_analyze
              FROM pg_stat_user_tables
             ORDER BY total_bytes DESC, schema, "table"
            """,
            {"ratio": dead_ratio_warning, "dead_min": dead_rows_min},
        )


def index_candidates(min_rows: int, seq_share_flag: float) -> pd.DataFrame:
    """Large tables read mostly by sequential scans: where an index may be missing."""
    with read() as conn, monitor(conn):
        return read_frame(
            conn,
            """
            SELECT schemaname AS schema, relname AS "table", n_live_tup AS live_rows,
                   seq_scan, coalesce(idx_scan, 0) AS idx_scan,
                   seq_scan::float8 / nullif(seq_scan + coalesce(idx_scan, 0), 0) AS seq_share,
                   seq_tup_read, seq_tup_read / nullif(seq_scan, 0) AS rows_per_seq_scan,
                   pg_table_size(relid) AS table_bytes
              FROM pg_stat_user_tables
             WHERE n_live_tup >= :min_rows AND seq_scan > 0
               AND seq_scan::float8 / (seq_scan + coalesce(idx_scan, 0)) > :flag
             ORDER BY seq_tup_read DESC
            """,
            {"min_rows": min_rows, "flag": seq_share_flag},
        )


def indexes() -> pd.DataFrame:
    """Every index of this database with its size and scans. `unused`: never scanned since the
    statistics were reset and not needed for a constraint (primary key, unique, exclusion)."""
    with read() as conn, monitor(conn):
        return read_frame(
            conn,
            """
            SELECT s.schemaname AS schema, s.relname AS "table", s.indexrelname AS index,
                   pg_relation_size(s.indexrelid) AS index_bytes, s.idx_scan,
                   i.indisunique AS is_unique,
                   s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                        WHERE c.conindid = s.indexrelid) AS unused,
                   pg_get_indexdef(s.indexrelid) AS definition,
                   (SELECT stats_reset FROM pg_stat_database
                     WHERE datname = current_database()) AS counted_since
              FROM pg_stat_user_indexes s
              JOIN pg_index i ON i.indexrelid = s.indexrelid
             ORDER BY index_bytes DESC, schema, "table", index
            """,
        )


def duplicate_indexes() -> pd.DataFrame:
    """B-tree indexes whose columns are the leading columns of another index on the same table
    (same operator classes, no expressions or predicates): the other index serves their
    queries. A unique index is never reported (it enforces something)."""
    with read() as conn, monitor(conn):
        return read_frame(
            conn,
            """
            SELECT n.nspname AS schema, t.relname AS "table", ia.relname AS index,
                   pg_relation_size(a.indexrelid) AS index_bytes,
                   string_agg(ib.relname, ', ' ORDER BY ib.relname) AS covered_by,
                   pg_get_indexdef(a.indexrelid) AS definition
              FROM pg_index a
              JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
              JOIN pg_class ia ON ia.oid = a.indexrelid
              JOIN pg_class ib ON ib.oid = b.indexrelid
              JOIN pg_class t ON t.oid = a.indrelid
              JOIN pg_namespace n ON n.oid = t.relnamespace
              JOIN pg_am am ON am.oid = ia.relam
             WHERE am.amname = 'btree' AND ib.relam = ia.relam
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%'
               AND NOT a.indisunique
               AND a.indexprs IS NULL AND b.indexprs IS NULL
               AND a.indpred IS NULL AND b.indpred IS NULL
               AND (b.indkey::text = a.indkey::text OR b.indkey::text LIKE a.indkey::text || ' %')
               AND (b.indclass::text = a.indclass::text
                    OR b.indclass::text LIKE a.indclass::text || ' %')
               -- two identical non-unique indexes: report one of them, not both
               AND NOT (b.indkey::text = a.indkey::text AND NOT b.indisunique
                        AND a.indexrelid < b.indexrelid)
             GROUP BY n.nspname, t.relname, ia.relname, a.indexrelid
             ORDER BY index_bytes DESC, schema, "table", index
            """,
        )


# --- what the page shows -------------------------------------------------------------------------


CANDIDATES_ADVICE = (
    "Find the statement that reads the table under *Slow queries*, EXPLAIN it"
    " and propose an index to Engineering (procedures: Database Performance"
    " Tuning, option 1)."
)
DUPLICATES_NOTE = (
    "Their columns lead another index on the same table, which serves the same"
    " queries: dropping them saves space and write time."
)


def unused_indexes(index_frame: pd.DataFrame) -> pd.DataFrame:
    return index_frame[index_frame["unused"]]


def overview(
    table_frame: pd.DataFrame,
    candidates: pd.DataFrame,
    index_frame: pd.DataFrame,
    duplicates: pd.DataFrame,
) -> list[tuple[str, str | int]]:
    """(label, value) of the page's tiles: the size of tables and indexes together, in MiB,
    and how many index candidates, unused and duplicate indexes there are."""
    return [
        ("Tables and indexes", f"{table_frame['total_bytes'].sum() / 2**20:,.1f} MiB"),
        ("Index candidates", len(candidates)),
        ("Unused indexes", len(unused_indexes(index_frame))),
        ("Duplicate indexes", len(duplicates)),
    ]


def vacuum_warnings(table_frame: pd.DataFrame) -> list[str]:
    """Markdown, one per table with too many dead tuples (tables() judged them)."""
    warnings = []
    for row in table_frame[table_frame["needs_vacuum"].fillna(False)].itertuples():
        last = "never" if pd.isna(row.last_any_vacuum) else f"{row.last_any_vacuum:%Y-%m-%d %H:%M}"
        warnings.append(
            f"`{row.schema}.{row.table}`: {row.dead_ratio:.0%} dead tuples"
            f" ({row.dead_rows:,}); last (auto)vacuum: {last}."
        )
    return warnings


def unused_note(index_frame: pd.DataFrame) -> str:
    """Since when indexes() counted the scans, and what to check before dropping one."""
    since = index_frame["counted_since"].dropna()
    return (
        "Never scanned since the statistics were "
        + (f"reset ({since.iloc[0]:%Y-%m-%d})" if len(since) else "started")
        + "; indexes behind a constraint are left out. Check the replicas too before"
        " dropping one."
    )


def unused_table(index_frame: pd.DataFrame) -> pd.DataFrame:
    """The unused indexes of indexes(), with the columns the page shows."""
    return unused_indexes(index_frame)[["schema", "table", "index", "index_bytes", "definition"]]


def indexes_table(index_frame: pd.DataFrame) -> pd.DataFrame:
    """indexes() as the page shows it: counted_since is said once, above the unused ones."""
    return index_frame.drop(columns="counted_since")


def tables_table(table_frame: pd.DataFrame) -> pd.DataFrame:
    """tables() as the page shows it: needs_vacuum is shown as warnings, and the last vacuum
    of either kind stands for both."""
    return table_frame.drop(columns=["needs_vacuum", "last_vacuum", "last_autovacuum"])
