-- Opt-in hardening of the PLATFORM's database, run by its DBA after schema/grants.sql:
--   psql "$PLATFORM_DB_URL" -v ON_ERROR_STOP=1 -v platform_roles='aiagents' -f schema/hardening.sql
-- platform_roles: the platform's login role(s), comma-separated (may be empty); app_user and
-- admin are always included. Safe to run again.
--
-- Why: set_tenant_context() is SECURITY DEFINER (runs as its owner, in the platform's compose
-- file a superuser), is executable by PUBLIC and has no pinned search_path. A search_path that
-- does not name pg_temp searches it FIRST, so any role that may create temporary objects can
-- shadow tenant_configs with a temp view whose function then runs as the owner (it can read
-- pg_authid and every tenant's encrypted keys). Two independent fixes:
--   1. pin the function's search_path with pg_temp explicitly last;
--   2. take TEMP away from PUBLIC (every role has it by default) and give it back to the
--      platform's own roles only, so the dashboard's roles cannot create temporary objects.
-- The dashboard's RLS self-test (python -m services.rls_check) fails until both are in place.

\if :{?platform_roles}
\else
\set platform_roles ''
\endif

ALTER FUNCTION public.set_tenant_context(varchar) SET search_path = public, pg_temp;

-- Before PostgreSQL 15, PUBLIC may also create objects in schema public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database())
\gexec
-- A role name that does not exist stops the script (ON_ERROR_STOP): a typo must not pass.
SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), r)
  FROM unnest(array_cat(ARRAY['app_user', 'admin'],
                        array_remove(string_to_array(replace(:'platform_roles', ' ', ''), ','),
                                     ''))) AS r
\gexec
