"""Tables and indexes on the private stack: the sequential-scan-heavy table is an index
candidate, the planted unused and duplicate indexes are found, dead tuples and vacuum times are
read. Unit tests: what the page shows of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from services.dbhealth import relations
from tests.dbhealth_workload import BIG_ROWS, SEQ_SCANS

# --- on the stack --------------------------------------------------------------------------------


def test_the_seq_scan_heavy_table_is_an_index_candidate(hdb):
    candidates = relations.index_candidates(min_rows=10000, seq_share_flag=0.05)
    big = candidates[candidates["table"] == "dbh_big"].iloc[0]
    assert big["live_rows"] == BIG_ROWS and big["seq_scan"] >= SEQ_SCANS
    assert big["seq_share"] == 1.0 and big["idx_scan"] == 0
    assert big["seq_tup_read"] >= SEQ_SCANS * BIG_ROWS
    assert "dbh_dead" not in set(candidates["table"])  # small tables are not candidates


def test_unused_and_duplicate_indexes(hdb):
    index_frame = relations.indexes().set_index("index")
    assert index_frame.loc["dbh_big_id", "unused"] and index_frame.loc["dbh_big_id_pad", "unused"]
    assert not index_frame.loc["tenant_configs_pkey", "unused"]  # primary keys are needed
    duplicates = relations.duplicate_indexes().set_index("index")
    assert duplicates.loc["dbh_big_id", "covered_by"] == "dbh_big_id_pad"
    assert "dbh_big_id_pad" not in duplicates.index
    # The platform's own schema has one: (tenant_id) leads two other indexes.
    assert duplicates.loc["ix_enhancement_history_tenant_id", "covered_by"] == (
        "ix_enhancement_history_tenant_ticket, ix_history_tenant_status_created"
    )


def test_dead_tuples_and_vacuum_times(hdb):
    table_frame = relations.tables(dead_ratio_warning=0.2, dead_rows_min=500).set_index("table")
    dead = table_frame.loc["dbh_dead"]
    assert (dead["live_rows"], dead["dead_rows"], dead["dead_ratio"]) == (1000, 1000, 0.5)
    assert dead["needs_vacuum"] and pd.isna(dead["last_any_vacuum"])
    assert pd.notna(table_frame.loc["dbh_slow", "last_vacuum"])
    assert not table_frame.loc["dbh_slow", "needs_vacuum"]
    assert table_frame.loc["dbh_big", "total_bytes"] > table_frame.loc["dbh_big", "table_bytes"]


# --- what the page shows (no stack) --------------------------------------------------------------

VACUUMED = datetime(2026, 3, 1, 4, 30, tzinfo=UTC)


def planted_tables() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "schema": ["public", "public", "public"],
            "table": ["dead", "vacuumed", "fine"],
            "total_bytes": [3 * 2**20, 2**19, 2**19],
            "table_bytes": [2**20, 2**18, 2**18],
            "index_bytes": [2 * 2**20, 2**18, 2**18],
            "live_rows": [1000, 500, 10],
            "dead_rows": [1000, 1500, 0],
            "dead_ratio": [0.5, 0.75, 0.0],
            "needs_vacuum": [True, True, None],  # NULL: a table without rows
            "seq_scan": [1, 2, 3],
            "idx_scan": [0, 0, 0],
            "last_vacuum": [pd.NaT, VACUUMED, pd.NaT],
            "last_autovacuum": [pd.NaT, pd.NaT, pd.NaT],
            "last_any_vacuum": [pd.NaT, VACUUMED, pd.NaT],
            "last_any_analyze": [pd.NaT, pd.NaT, pd.NaT],
        }
    )


def planted_indexes(counted_since: datetime | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "schema": ["public", "public"],
            "table": ["t", "t"],
            "index": ["t_pkey", "t_k"],
            "index_bytes": [8192, 16384],
            "idx_scan": [0, 0],
            "is_unique": [True, False],
            "unused": [False, True],
            "definition": ["CREATE UNIQUE INDEX t_pkey ...", "CREATE INDEX t_k ..."],
            "counted_since": [counted_since, counted_since],
        }
    )


@pytest.mark.unit
def test_the_overview_tiles():
    candidates = pd.DataFrame({"table": ["big"]})
    duplicates = pd.DataFrame({"index": ["a", "b"]})
    tiles = relations.overview(planted_tables(), candidates, planted_indexes(None), duplicates)
    assert tiles == [
        ("Tables and indexes", "4.0 MiB"),
        ("Index candidates", 1),
        ("Unused indexes", 1),
        ("Duplicate indexes", 2),
    ]


@pytest.mark.unit
def test_a_warning_for_each_table_that_needs_a_vacuum():
    assert relations.vacuum_warnings(planted_tables()) == [
        "`public.dead`: 50% dead tuples (1,000); last (auto)vacuum: never.",
        "`public.vacuumed`: 75% dead tuples (1,500); last (auto)vacuum: 2026-03-01 04:30.",
    ]


@pytest.mark.unit
def test_the_unused_note_says_since_when_scans_are_counted():
    assert "since the statistics were reset (2026-03-01)" in relations.unused_note(
        planted_indexes(VACUUMED)
    )
    assert relations.unused_note(planted_indexes(None)).startswith(
        "Never scanned since the statistics were started; indexes behind a constraint"
    )


@pytest.mark.unit
def test_the_tables_the_page_shows():
    shown = relations.tables_table(planted_tables())
    assert shown.columns.tolist() == [
        "schema",
        "table",
        "total_bytes",
        "table_bytes",
        "index_bytes",
        "live_rows",
        "dead_rows",
        "dead_ratio",
        "seq_scan",
        "idx_scan",
        "last_any_vacuum",
        "last_any_analyze",
    ]
    unused = relations.unused_table(planted_indexes(None))
    assert unused.columns.tolist() == ["schema", "table", "index", "index_bytes", "definition"]
    assert unused["index"].tolist() == ["t_k"]
    every = relations.indexes_table(planted_indexes(None))
    assert "counted_since" not in every.columns and every["index"].tolist() == ["t_pkey", "t_k"]
