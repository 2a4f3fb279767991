-- The dashboard's own schema: access records and helpers. Never touches the platform tables.
CREATE SCHEMA IF NOT EXISTS dashboard;

CREATE TABLE IF NOT EXISTS dashboard.data_access_log (
    id BIGSERIAL PRIMARY KEY,
    accessed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    tenant_id VARCHAR(100) NOT NULL,         -- '*' for a cross-tenant (admin) read
    purpose TEXT NOT NULL,
    query_kind TEXT NOT NULL,
    query_params JSONB NOT NULL DEFAULT '{}',
    row_count INTEGER,
    sensitive_revealed BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS ix_access_log_time ON dashboard.data_access_log (accessed_at);
CREATE INDEX IF NOT EXISTS ix_access_log_tenant ON dashboard.data_access_log (tenant_id, accessed_at);

-- Whether a tenant's secrets are set, without letting anyone read them: the dashboard roles have
-- no SELECT on the *_encrypted columns, so this owner-run function answers only yes/no, and only
-- for the tenant in scope.
CREATE OR REPLACE FUNCTION dashboard.secret_presence()
RETURNS TABLE (tenant_id VARCHAR, servicedesk_api_key_set BOOLEAN,
               webhook_signing_secret_set BOOLEAN, jira_api_token_set BOOLEAN)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.tenant_id,
           coalesce(length(c.servicedesk_api_key_encrypted), 0) > 0,
           coalesce(length(c.webhook_signing_secret_encrypted), 0) > 0,
           c.jira_api_token_encrypted IS NOT NULL
      FROM public.tenant_configs c
     WHERE c.tenant_id = current_setting('app.current_tenant_id', true)
$$;
REVOKE ALL ON FUNCTION dashboard.secret_presence() FROM PUBLIC;

GRANT USAGE ON SCHEMA dashboard TO dashboard_reader, dashboard_admin;
GRANT INSERT ON dashboard.data_access_log TO dashboard_reader, dashboard_admin;
GRANT USAGE ON SEQUENCE dashboard.data_access_log_id_seq TO dashboard_reader, dashboard_admin;
GRANT SELECT, DELETE ON dashboard.data_access_log TO dashboard_admin;
GRANT EXECUTE ON FUNCTION dashboard.secret_presence() TO dashboard_reader, dashboard_admin;
