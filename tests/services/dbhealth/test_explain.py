"""EXPLAIN on the private stack: a pasted SELECT is planned and never run, whatever its literals
and comments say; anything more than one plain SELECT is refused with a clear message; planning
stops at the timeout. Unit tests: what PostgreSQL's parser lets through, without a database."""

from __future__ import annotations

import time

import pytest

from services.dbhealth import explain
from services.errors import InvalidInput, QueryTimeout
from tests.dbhealth_workload import BIG_ROWS, stat


def test_explain_plans_without_running(hdb):
    plan = explain.explain("SELECT count(*) FROM dbh_big WHERE k = 7;")
    assert "Seq Scan on dbh_big" in plan and "actual time" not in plan
    started = time.monotonic()
    assert "Result" in explain.explain("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 2  # planned, not slept
    with hdb.superuser() as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS dbh_seq")
        before = conn.execute("SELECT last_value FROM dbh_seq").fetchone()[0]
        explain.explain("SELECT nextval('dbh_seq')")
        assert conn.execute("SELECT last_value FROM dbh_seq").fetchone()[0] == before
    # Literals and comments may hold ';' and keywords.
    assert "Result" in explain.explain("SELECT ';' AS semi, 'DELETE' AS word -- ; done")


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM dbh_big WHERE pad <> 'delete from dbh_big; update'",
        "/* DELETE */ SELECT E'it\\'s; DELETE' AS s;",
        "SELECT 'a'';DELETE FROM dbh_big' AS s ; -- trailing",
        "VALUES (1, 'insert'), (2, 'into')",
        "SELECT k FROM dbh_big UNION ALL SELECT 1 ORDER BY 1 LIMIT 3",
        "WITH w AS (SELECT k FROM dbh_big) SELECT count(*) FROM w",
        "SELECT 'délété ✓' AS s",
    ],
)
def test_explain_accepts_plain_selects_whatever_their_literals_say(hdb, statement):
    assert "cost=" in explain.explain(statement)  # a plan, not an error
    assert stat(hdb, "SELECT count(*) FROM dbh_big") == BIG_ROWS


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("", "Paste a SELECT"),
        ("EXPLAIN ANALYZE SELECT 1", "Only a SELECT statement"),
        ("DELETE FROM dbh_big", "Only a SELECT statement"),
        ("SELECT 1; DELETE FROM dbh_big", "Only one statement"),
        ("WITH d AS (DELETE FROM dbh_big RETURNING *) SELECT * FROM d", "contains DELETE"),
        ("SELECT * INTO dbh_copy FROM dbh_big", "contains INTO"),
        ("SELECT * FROM dbh_big WHERE k = $1", "Replace the placeholders"),
        # The keyword filter's blind spot: E'\'' is one string, so the DELETE is a statement.
        ("SELECT E'\\'' ; DELETE FROM dbh_big", "Only one statement"),
        ("SELECT E'\\'';DELETE FROM dbh_big;--'", "Only one statement"),
        ("SELECT E'x\\\\' ; DELETE FROM dbh_big", "Only one statement"),
        ("SELECT $$;$$; DELETE FROM dbh_big", "Only one statement"),
        ("SELECT 1 /* ; */ ; SELECT 2", "Only one statement"),
        ("SELECT * FROM dbh_big FOR UPDATE", "contains FOR UPDATE/SHARE"),
        ("SELECT 1 UNION SELECT k FROM (SELECT k FROM dbh_big FOR SHARE) s", "FOR UPDATE/SHARE"),
        ("WITH d AS (UPDATE dbh_big SET k = 0 RETURNING k) SELECT 1", "contains UPDATE"),
        (
            "WITH a AS (SELECT 1), b AS (INSERT INTO dbh_big VALUES (1) RETURNING 1) TABLE a",
            "INSERT",
        ),
        ("SELECT 1 FROM dbh_big WHERE", "not valid SQL: syntax error"),
        ("/* only a comment */", "Paste a SELECT"),
        ("UPDATE dbh_big SET k = 0", "Only a SELECT statement"),
        ("SELECT * FROM no_such_table", "could not plan that statement"),
        ("SELECT servicedesk_api_key_encrypted FROM tenant_configs", "permission denied"),
    ],
)
def test_explain_refuses_with_a_clear_message(hdb, statement, message):
    with pytest.raises(InvalidInput, match=message):
        explain.explain(statement)
    assert stat(hdb, "SELECT count(*) FROM dbh_big") == BIG_ROWS


def test_explain_stops_at_the_timeout(hdb):
    """The planner folds an IMMUTABLE function call into a constant, so planning runs it."""
    with hdb.superuser() as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION dbh_slow_constant() RETURNS int IMMUTABLE"
            " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN 1; END $$"
        )
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        explain.explain("SELECT dbh_slow_constant()", timeout_ms=300)
    assert time.monotonic() - started < 2


# --- without a database ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("statement", "checked"),
    [
        ("  SELECT 1;  ", "SELECT 1"),
        ("SELECT 'a;b' AS s; -- trailing", "SELECT 'a;b' AS s"),
        ("/* DELETE */ SELECT 1;", "SELECT 1"),
        ("VALUES (1), (2)", "VALUES (1), (2)"),
        # pglast counts characters: a multi-byte one must not cut the statement short
        ("SELECT 'délété ✓' AS s;", "SELECT 'délété ✓' AS s"),
        ("/* é */ SELECT 'ü' AS a ;", "SELECT 'ü' AS a "),
    ],
)
def test_the_checked_statement_is_exactly_the_select(statement, checked):
    assert explain.check_explainable(statement) == checked


@pytest.mark.unit
@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("   ", "Paste a SELECT"),
        ("-- nothing but a comment", "Paste a SELECT"),
        ("SELECT 1; SELECT 2", "Only one statement"),
        ("SELECT E'\\'' ; DELETE FROM t", "Only one statement"),
        ("EXPLAIN SELECT 1", "Only a SELECT statement"),
        ("COPY t TO STDOUT", "Only a SELECT statement"),
        ("SELECT * INTO t2 FROM t", "contains INTO"),
        ("SELECT * FROM t FOR SHARE", "contains FOR UPDATE/SHARE"),
        ("WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE) SELECT 1", "MERGE"),
        (
            "WITH d AS (DELETE FROM t RETURNING 1), u AS (UPDATE t SET k = 1 RETURNING 1) TABLE d",
            "contains DELETE, UPDATE",
        ),
        ("SELECT * FROM t WHERE k = $1", "Replace the placeholders"),
        ("SELECT FROM WHERE", "not valid SQL"),
        ("SELECT '" + "x" * explain.MAX_EXPLAIN_CHARS + "'", "longer than 20,000 characters"),
    ],
)
def test_the_parser_refuses_without_a_database(statement, message):
    with pytest.raises(InvalidInput, match=message):
        explain.check_explainable(statement)


@pytest.mark.unit
def test_the_access_record_keeps_the_first_500_characters():
    assert explain.record_params("  SELECT 1  ") == {"statement": "SELECT 1"}
    assert explain.record_params("SELECT '" + "x" * 600 + "'")["statement"] == (
        "SELECT '" + "x" * 492
    )
    assert "gives up after 3 s" in explain.guidance(3000)
