-- Roles for the support dashboard. A DBA runs this against the platform database:
--   psql "$PLATFORM_DB_URL" -v ON_ERROR_STOP=1 \
--        -v reader_password='...' -v admin_password='...' -f schema/grants.sql
-- Safe to run again. It only creates two roles, grants SELECT and adds SELECT-only policies.
-- Then the migrations, and schema/hardening.sql (the platform-side fix the RLS self-test asks for).
-- The dashboard's own tables get their grants in the migration that creates them; the one holding
-- tenant data (dashboard.run_hours, 007) carries tenant_id, the platform's tenant policy and a
-- SELECT-only policy for dashboard_admin, like the platform tables below.
--
-- dashboard_reader: tenant-scoped reads. RLS applies to it (no superuser, no BYPASSRLS, owns
--   nothing), so it sees a tenant's rows only inside a transaction that set app.current_tenant_id.
-- dashboard_admin: cross-tenant aggregates for signed-in admins (fleet views, database health).
--   It sees every tenant through explicit SELECT-only policies, never by bypassing RLS.
-- Neither role can read a *_encrypted column: column-level grants leave them out, so even a
-- buggy `SELECT *` fails instead of leaking a secret.

SELECT format('CREATE ROLE %I LOGIN', r)
  FROM unnest(ARRAY['dashboard_reader', 'dashboard_admin']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
\gexec

ALTER ROLE dashboard_reader LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
ALTER ROLE dashboard_admin LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
-- The passwords must never reach pg_stat_statements: the admin role reads it and the dashboard
-- copies its texts into dashboard.query_texts. Untracked for this session only; setting it needs
-- a superuser (or GRANT SET ON PARAMETER), and without that the script stops here, before any
-- password is sent. A SCRAM-SHA-256 verifier computed client-side may be passed instead of the
-- password (demo/dbsetup.py does): then the password never reaches the server at all.
SELECT set_config('pg_stat_statements.track_utility', 'off', false);
ALTER ROLE dashboard_reader PASSWORD :'reader_password';
ALTER ROLE dashboard_admin PASSWORD :'admin_password';
RESET pg_stat_statements.track_utility;
ALTER ROLE dashboard_reader SET default_transaction_read_only = on;
ALTER ROLE dashboard_admin SET default_transaction_read_only = on;
ALTER ROLE dashboard_reader SET statement_timeout = '5s';
ALTER ROLE dashboard_admin SET statement_timeout = '10s';
-- JIT compilation costs seconds on the dashboard's short aggregates (measured: 2.1 s of a
-- 2.2 s tenant-health query on 1M rows), far more than it ever saves them.
ALTER ROLE dashboard_reader SET jit = off;
ALTER ROLE dashboard_admin SET jit = off;
ALTER ROLE dashboard_reader SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE dashboard_admin SET idle_in_transaction_session_timeout = '60s';
-- Database health (pg_stat_statements, pg_stat_activity of every user) needs the monitoring role.
GRANT pg_monitor TO dashboard_admin;

GRANT USAGE ON SCHEMA public TO dashboard_reader, dashboard_admin;
REVOKE ALL ON tenant_configs, enhancement_history, enhancement_feedback, ticket_history,
    system_inventory, audit_log FROM dashboard_reader, dashboard_admin;

GRANT SELECT (id, tenant_id, name, servicedesk_url, enhancement_preferences, rate_limits,
              is_active, tool_type, jira_url, jira_project_key, created_at, updated_at)
    ON tenant_configs TO dashboard_reader, dashboard_admin;
GRANT SELECT ON enhancement_history, enhancement_feedback, ticket_history, system_inventory
    TO dashboard_reader, dashboard_admin;
-- Platform operations (pause, clear queue) are not tenant data: admins only.
GRANT SELECT ON audit_log TO dashboard_admin;

-- Explicit cross-tenant read policies for the admin role only (permissive: OR-ed with the
-- tenant policy, and FOR SELECT so they can never widen a write).
SELECT format('DROP POLICY IF EXISTS dashboard_admin_read ON %I', t),
       format('CREATE POLICY dashboard_admin_read ON %I FOR SELECT TO dashboard_admin USING (true)', t)
  FROM unnest(ARRAY['tenant_configs', 'enhancement_history', 'enhancement_feedback',
                    'ticket_history', 'system_inventory']) AS t
\gexec
