"""The Database health page under AppTest, on a planted database: it ranks, explains and records
every view and attempt; the Connections and Tables tabs warn as they should; without
pg_stat_statements it says how to enable it; support engineers cannot open it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import PlatformDb, app_test
from tests.dbhealth_workload import SLOW_RUNS, in_use
from ui.common import md


def open_page(section: str) -> AppTest:
    at = app_test()
    at.query_params["section"] = section
    at.run()
    return at.switch_page("views/slow_queries.py").run()


def access_kinds(db: PlatformDb) -> list[tuple[str, str, dict]]:
    with db.superuser() as conn:
        return conn.execute(
            "SELECT query_kind, tenant_id, query_params FROM dashboard.data_access_log ORDER BY id"
        ).fetchall()


def test_the_page_ranks_explains_and_records(hdb):
    at = open_page("Slow queries")
    assert not at.exception and not at.error
    at.segmented_control(key="dbh_mode").set_value("Since reset").run()
    at.segmented_control(key="dbh_sort").set_value("mean").run()
    statements = at.dataframe[0].value
    assert statements["Mean (ms)"].is_monotonic_decreasing
    slow = statements[statements["Statement"].str.contains("FROM dbh_slow", regex=False)]
    assert slow["Calls"].tolist() == [SLOW_RUNS]
    assert [m.label for m in at.metric][:3] == ["Time in statements", "Calls", "Statements"]
    at.text_area(key="dbh_explain").input("SELECT * FROM dbh_big WHERE k = 3")
    next(b for b in at.button if b.label == "Explain").click().run()
    assert not at.error
    assert any("Seq Scan on dbh_big" in code.value for code in at.code)
    kinds = access_kinds(hdb)
    assert ("db_health", "*") in {(k, t) for k, t, _ in kinds}
    assert ("db_explain", "*", {"statement": "SELECT * FROM dbh_big WHERE k = 3"}) in kinds
    # A refused attempt is shown as such and recorded too.
    trick = "SELECT E'\\'' ; DELETE FROM dbh_big"
    at.text_area(key="dbh_explain").input(trick)
    next(b for b in at.button if b.label == "Explain").click().run()
    assert any("Only one statement" in e.value for e in at.error)
    refused = [p for k, _, p in access_kinds(hdb) if k == "explain_refused"]
    assert refused[-1]["statement"] == trick and "Only one statement" in refused[-1]["reason"]
    # PostgreSQL's reason quotes what was pasted: shown as text, never as a link.
    at.text_area(key="dbh_explain").input('SELECT * FROM "[x](http://evil.example/x)"')
    next(b for b in at.button if b.label == "Explain").click().run()
    reason = 'relation "[x](http://evil.example/x)" does not exist'
    assert [e.value for e in at.error if "could not plan" in e.value] == [
        md(f"PostgreSQL could not plan that statement: {reason}")
    ]


def test_the_connections_and_tables_tabs(hdb):
    at = open_page("Connections")
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert labels == [
        "Server connections",
        "Platform pools",
        "Pool capacity",
        "Active",
        "Idle",
        "Idle in transaction",
    ]
    # dashboard.toml: 20 per pod x (2 API + 3 worker) = 100 = max_connections of the stack.
    assert any("Pool capacity vs max_connections: 100%" in w.value for w in at.warning)
    at = open_page("Tables and indexes")
    assert not at.exception and not at.error
    tiles = {m.label: m.value for m in at.metric}
    assert int(tiles["Index candidates"]) >= 1 and int(tiles["Duplicate indexes"]) >= 1
    assert any("dbh_dead" in w.value and "50% dead" in w.value for w in at.warning)


def test_the_page_without_the_extension_explains_how_to_enable_it(bare_db):
    with in_use(bare_db):
        at = open_page("Slow queries")
        assert not at.exception and not at.error
        assert any(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in w.value for w in at.warning
        )
        at = open_page("Connections")
        assert not at.exception and not at.error and len(at.metric) == 6


def test_support_engineers_cannot_open_it(hdb, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ROLE", "support")
    at = app_test().run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/slow_queries.py").run()
