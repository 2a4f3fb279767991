"""The demo and test schema (schema/platform.sql) is the platform's as its migrations leave it:
every column, type, nullability and default, the uniqueness, the indexes and the row-level
security policies of contract sections 1-2, read back from information_schema and pg_policies.

The expected tables are written from the contract. Where the contract gives no default (the
`id` columns the platform's ORM fills in Python), the default is not compared: our schema adds
gen_random_uuid() there so tests can plant rows. (Running the migrations at c710354 also leaves
enhancement_preferences without a server default; the contract's '{}' is kept here.)
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from tests.planting import add_feedback, add_run, add_tenant, add_ticket

ANY = object()  # a default the contract does not give: not compared
NOW = "now()"

# (column, data type, max length, nullable, default)
COLUMNS: dict[str, list[tuple[str, str, int | None, bool, object]]] = {
    "enhancement_history": [
        ("id", "uuid", None, False, ANY),
        ("tenant_id", "character varying", 100, False, None),
        ("ticket_id", "character varying", 100, False, None),
        ("status", "character varying", 50, False, None),
        ("context_gathered", "json", None, True, None),
        ("llm_output", "text", None, True, None),
        ("error_message", "text", None, True, None),
        ("processing_time_ms", "integer", None, True, None),
        ("created_at", "timestamp with time zone", None, False, NOW),
        ("completed_at", "timestamp with time zone", None, True, None),
    ],
    "tenant_configs": [
        ("id", "uuid", None, False, ANY),
        ("tenant_id", "character varying", 100, False, None),
        ("name", "character varying", 255, False, None),
        ("servicedesk_url", "character varying", 500, False, None),
        ("servicedesk_api_key_encrypted", "text", None, False, None),
        ("webhook_signing_secret_encrypted", "text", None, False, None),
        ("enhancement_preferences", "json", None, False, "'{}'::json"),
        ("created_at", "timestamp with time zone", None, False, NOW),
        ("updated_at", "timestamp with time zone", None, False, NOW),
        (
            "rate_limits",
            "json",
            None,
            True,
            """'{"webhooks": {"ticket_created": 100, "ticket_resolved": 100}}'::jsonb""",
        ),
        ("is_active", "boolean", None, False, "true"),
        ("tool_type", "character varying", 50, False, "'servicedesk_plus'::character varying"),
        ("jira_url", "character varying", 500, True, None),
        ("jira_api_token_encrypted", "bytea", None, True, None),
        ("jira_project_key", "character varying", 50, True, None),
    ],
    "enhancement_feedback": [
        ("id", "uuid", None, False, "gen_random_uuid()"),
        ("tenant_id", "character varying", 100, False, None),
        ("ticket_id", "character varying", 255, False, None),
        ("enhancement_id", "uuid", None, True, None),
        ("technician_email", "character varying", 255, True, None),
        ("feedback_type", "character varying", 50, False, None),
        ("rating_value", "integer", None, True, None),
        ("feedback_comment", "text", None, True, None),
        ("created_at", "timestamp with time zone", None, False, NOW),
    ],
    "ticket_history": [
        ("id", "uuid", None, False, ANY),
        ("tenant_id", "character varying", 100, False, None),
        ("ticket_id", "character varying", 100, False, None),
        ("description", "text", None, False, None),
        ("resolution", "text", None, False, None),
        ("resolved_date", "timestamp with time zone", None, False, None),
        ("created_at", "timestamp with time zone", None, False, NOW),
        ("updated_at", "timestamp with time zone", None, False, NOW),
        ("source", "character varying", 50, False, "'bulk_import'::character varying"),
        ("ingested_at", "timestamp with time zone", None, False, NOW),
    ],
    "system_inventory": [
        ("id", "uuid", None, False, "gen_random_uuid()"),
        ("tenant_id", "character varying", 100, False, None),
        ("ip_address", "character varying", 45, False, None),
        ("hostname", "character varying", 255, True, None),
        ("role", "character varying", 100, True, None),
        ("client", "character varying", 200, True, None),
        ("location", "character varying", 200, True, None),
        ("created_at", "timestamp with time zone", None, False, "CURRENT_TIMESTAMP"),
        ("updated_at", "timestamp with time zone", None, False, "CURRENT_TIMESTAMP"),
    ],
    "audit_log": [
        ("id", "uuid", None, False, ANY),
        ("timestamp", "timestamp with time zone", None, False, NOW),
        ("user", "character varying", 255, False, None),
        ("operation", "character varying", 100, False, None),
        ("details", "json", None, True, None),
        ("status", "character varying", 50, False, None),
    ],
}

# Unique column sets (primary keys included).
UNIQUE = {
    "enhancement_history": {("id",)},
    "tenant_configs": {("id",), ("tenant_id",)},
    "enhancement_feedback": {("id",)},
    "ticket_history": {("id",), ("tenant_id", "ticket_id")},
    "system_inventory": {("id",), ("tenant_id", "ip_address")},
    "audit_log": {("id",)},
}

# The contract's enhancement_history indexes, as column lists.
HISTORY_INDEXES = {
    "status",
    "tenant_id",
    "ticket_id",
    "tenant_id, ticket_id",
    "status, created_at",
    "status, completed_at",
    "tenant_id, status, created_at DESC",
}

OLD = (
    "((tenant_id)::text = ((current_setting('app.current_tenant_id'::text))"
    "::character varying)::text)"
)
NEW = (
    "((tenant_id)::text = COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text))"
)
POLICIES = {
    ("tenant_configs", "tenant_config_isolation_policy"): OLD,
    ("tenant_configs", "tenant_configs_tenant_isolation_policy"): NEW,
    ("enhancement_history", "tenant_isolation_policy"): OLD,
    ("enhancement_history", "enhancement_history_tenant_isolation_policy"): NEW,
    ("enhancement_feedback", "tenant_isolation_policy_enhancement_feedback"): OLD,
    ("ticket_history", "ticket_history_tenant_isolation_policy"): NEW,
    ("system_inventory", "system_inventory_tenant_isolation_policy"): NEW,
}


@pytest.fixture(scope="module")
def bare(make_platform_db) -> psycopg.Connection:
    """platform.sql as dbsetup applies it (grants.sql adds its dashboard_admin_read policies),
    without the opt-in hardening.sql: the platform as shipped."""
    platform = make_platform_db("schema", harden=False)
    with platform.superuser() as conn:
        yield conn


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns_match_the_contract(bare, table):
    rows = bare.execute(
        "SELECT column_name, data_type, character_maximum_length, is_nullable = 'YES',"
        " column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    expected = COLUMNS[table]
    assert [r[0] for r in rows] == [c[0] for c in expected]  # names, in the migrations' order
    for got, want in zip(rows, expected, strict=True):
        default = want[4]
        assert got[1:4] == want[1:4], got[0]
        if default is not ANY:
            assert got[4] == default, got[0]


def test_no_column_the_platform_lacks(bare):
    """subject, priority and tags never reach the real ticket_history."""
    names = {
        r[0]
        for r in bare.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'ticket_history'"
        )
    }
    assert not names & {"subject", "priority", "tags"}
    history = {
        r[0]
        for r in bare.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'enhancement_history'"
        )
    }
    assert not history & {"updated_at", "job_id", "trace_id", "model", "cost", "retries"}


def test_uniqueness_indexes_and_checks(bare):
    for table, wanted in UNIQUE.items():
        found = {
            tuple(r[0])
            for r in bare.execute(
                "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index x"
                " CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, ord)"
                " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum"
                " WHERE x.indrelid = %s::regclass AND x.indisunique GROUP BY x.indexrelid",
                (table,),
            )
        }
        assert found == wanted, table
    definitions = [
        r[0]
        for r in bare.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = 'enhancement_history' AND indexname <> 'enhancement_history_pkey'"
        )
    ]
    assert {d.split("btree (", 1)[1].rstrip(")") for d in definitions} == HISTORY_INDEXES
    checks = dict(
        bare.execute(
            "SELECT conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
        ).fetchall()
    )
    # Only enhancement_feedback has checks; ticket_history.source has none.
    assert sorted(checks) == [
        "enhancement_feedback.ck_feedback_type_valid",
        "enhancement_feedback.ck_rating_value_range",
    ]
    assert "'thumbs_up'" in checks["enhancement_feedback.ck_feedback_type_valid"]
    assert "rating_value IS NULL" in checks["enhancement_feedback.ck_rating_value_range"]


def test_policies_have_the_migrations_names_and_styles(bare):
    rows = bare.execute(
        "SELECT tablename, policyname, permissive, roles::text[], cmd, qual FROM pg_policies"
        " WHERE schemaname = 'public' AND policyname <> 'dashboard_admin_read'"
    ).fetchall()
    assert {(r[0], r[1]): r[5] for r in rows} == POLICIES
    assert {(r[2], tuple(r[3]), r[4]) for r in rows} == {("PERMISSIVE", ("public",), "ALL")}
    admin_read = bare.execute(
        "SELECT tablename, roles::text[], cmd FROM pg_policies"
        " WHERE schemaname = 'public' AND policyname = 'dashboard_admin_read' ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in admin_read] == sorted({t for t, _ in POLICIES})
    assert {(tuple(r[1]), r[2]) for r in admin_read} == {(("dashboard_admin",), "SELECT")}
    secured = bare.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relrowsecurity ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in secured] == sorted({t for t, _ in POLICIES})  # not audit_log


def test_set_tenant_context_as_shipped(bare):
    definer, config, owner_super, public_exec, source = bare.execute(
        "SELECT p.prosecdef, p.proconfig, r.rolsuper,"
        " has_function_privilege('public', p.oid, 'EXECUTE'), p.prosrc"
        " FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
        " WHERE p.proname = 'set_tenant_context'"
    ).fetchone()
    assert definer and config is None  # SECURITY DEFINER, no pinned search_path
    assert owner_super and public_exec
    assert "set_config('app.current_tenant_id', p_tenant_id, false)" in source
    add_tenant(bare, "known-t")
    with pytest.raises(psycopg.errors.RaiseException, match="Invalid tenant_id: nobody"):
        bare.execute("SELECT set_tenant_context('nobody')")
    bare.execute("SELECT set_tenant_context('known-t')")
    # Session-level: it outlives the statement's transaction (autocommit here).
    assert bare.execute("SELECT current_setting('app.current_tenant_id')").fetchone() == (
        "known-t",
    )


def test_no_tenant_set_errors_or_sees_nothing_by_policy_style(bare, make_platform_db):
    """Old style raises without the setting; new style shows no rows; both on one table: the
    old one is evaluated and raises (as soon as there is a row to check)."""
    platform = make_platform_db("nosetting")
    with platform.superuser() as conn:
        add_tenant(conn, "t-1")
        add_run(conn, "t-1", "1", "pending", datetime.now(UTC))
        add_feedback(conn, "t-1", "1", "thumbs_up", datetime.now(UTC))
        add_ticket(conn, "t-1", "1", "d", datetime.now(UTC))
    outcome = {}
    for table in (
        "tenant_configs",
        "enhancement_history",
        "enhancement_feedback",
        "ticket_history",
    ):
        with psycopg.connect(platform.reader_url) as reader:
            try:
                outcome[table] = reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except psycopg.errors.UndefinedObject:
                outcome[table] = "error"
    assert outcome == {
        "tenant_configs": "error",
        "enhancement_history": "error",
        "enhancement_feedback": "error",
        "ticket_history": 0,
    }
