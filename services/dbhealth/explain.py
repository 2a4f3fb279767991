"""EXPLAIN (never ANALYZE) of one pasted SELECT: what is refused before PostgreSQL sees it (its
own parser, pglast, decides what the statement is) and the planning itself, in a READ ONLY
transaction with a short timeout, so nothing is ever executed."""

from __future__ import annotations

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Visitor
from sqlalchemy import text

from services.config import rules
from services.db import admin_scope
from services.dbhealth.session import limits
from services.errors import InvalidInput, QueryTimeout

MAX_EXPLAIN_CHARS = 20000
_WRITES = {
    ast.InsertStmt: "INSERT",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.MergeStmt: "MERGE",
}


class _Refusals(Visitor):
    """What, anywhere in a parsed SELECT, makes it more than a plain read."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()
        self.placeholders = False

    def visit(self, ancestors: object, node: ast.Node) -> None:
        if type(node) in _WRITES:  # a data-modifying WITH
            self.found.add(_WRITES[type(node)])
        elif isinstance(node, ast.SelectStmt):
            if node.intoClause:
                self.found.add("INTO")
            if node.lockingClause:
                self.found.add("FOR UPDATE/SHARE")
        elif isinstance(node, ast.ParamRef):
            self.placeholders = True


def check_explainable(statement: str) -> str:
    """The statement if PostgreSQL's own parser (pglast) reads it as exactly one plain SELECT
    (or VALUES, or a set operation of them) with concrete values: no INTO, no FOR UPDATE/SHARE,
    no data-modifying WITH. InvalidInput otherwise. Functions it calls are not judged: EXPLAIN
    does not run the statement, and the read-only transaction and timeout stay the guarantee."""
    sql = statement.strip()
    if not sql:
        raise InvalidInput("Paste a SELECT statement to explain.")
    if len(sql) > MAX_EXPLAIN_CHARS:
        raise InvalidInput(f"That statement is longer than {MAX_EXPLAIN_CHARS:,} characters.")
    try:
        parsed = parse_sql(sql)
    except ParseError as exc:
        raise InvalidInput(f"That is not valid SQL: {exc.args[0]}.") from exc
    if not parsed:  # only comments
        raise InvalidInput("Paste a SELECT statement to explain.")
    if len(parsed) != 1:
        raise InvalidInput("Only one statement can be explained: remove everything after ';'.")
    if not isinstance(parsed[0].stmt, ast.SelectStmt):
        raise InvalidInput(
            "Only a SELECT statement can be explained. Paste the statement alone: EXPLAIN is"
            " added for you, and EXPLAIN ANALYZE (which runs the statement) is never used."
        )
    refusals = _Refusals()
    refusals(parsed[0])
    if refusals.found:
        raise InvalidInput(
            "Only a plain SELECT can be explained; this one contains"
            f" {', '.join(sorted(refusals.found))}."
        )
    if refusals.placeholders:
        raise InvalidInput(
            "Replace the placeholders ($1, $2, …) with concrete values: pg_stat_statements shows"
            " statements with their values taken out, and a plan depends on them."
        )
    # Exactly the statement that was checked, without a trailing ';' (pglast gives its
    # location in characters, not bytes: 'é' is one).
    start, length = parsed[0].stmt_location, parsed[0].stmt_len
    return sql[start : start + length if length else len(sql)]


def guidance(timeout_ms: int) -> str:
    """What to paste, and what is done with it."""
    return (
        "Paste one SELECT with concrete values in place of $1, $2… PostgreSQL's own parser"
        " checks that it is one plain SELECT; it is planned with EXPLAIN (never ANALYZE, so it"
        " does not run) in a read-only transaction that gives up after"
        f" {timeout_ms / 1000:.0f} s. Refused attempts are recorded."
    )


def record_params(statement: str) -> dict[str, str]:
    """What the access record keeps of an attempt to explain `statement`."""
    return {"statement": statement.strip()[:500]}


def explain(statement: str, timeout_ms: int | None = None) -> str:
    """The planner's plan for one SELECT: EXPLAIN without ANALYZE, so nothing is executed, in a
    READ ONLY transaction with a short timeout, as the admin role (its grants and RLS apply)."""
    sql = check_explainable(statement)
    with admin_scope() as conn:
        limits(conn, timeout_ms or rules("db_health")["explain_timeout_ms"])
        # The server must read string literals as the checker did (E'' and '' alike).
        conn.execute(text("SELECT set_config('standard_conforming_strings', 'on', true)"))
        cursor = conn.connection.driver_connection.cursor()
        try:
            # The extended protocol (binary results) holds exactly one command: the server
            # refuses a second one. Unnamed, so nothing is left on a pooled server connection.
            cursor.execute(f"EXPLAIN {sql}".encode(), binary=True)
            return "\n".join(row[0] for row in cursor.fetchall())
        except psycopg.errors.QueryCanceled as exc:
            raise QueryTimeout() from exc
        except psycopg.Error as exc:
            reason = exc.diag.message_primary or str(exc).splitlines()[0]
            raise InvalidInput(f"PostgreSQL could not plan that statement: {reason}") from exc
