-- The AI Agents platform's own tables, exactly as its migrations leave them (`alembic upgrade
-- head` at the reference snapshot c710354, checked column by column, index by index and policy
-- by policy against a database migrated that way; tests/test_platform_schema.py keeps it so).
-- Used for the demo and test databases only; the dashboard never changes a production platform
-- database except through schema/grants.sql and its own `dashboard` schema.
--
-- Two deliberate differences, both defaults only (the dashboard only reads, so a default cannot
-- change what it sees): the `id` columns that the platform's ORM fills in Python (uuid4) get
-- DEFAULT gen_random_uuid(), so tests can plant rows without inventing ids; and
-- enhancement_preferences gets the contract's DEFAULT '{}' (the migrations leave the ORM to
-- supply it).
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;

DO $$ BEGIN
    CREATE ROLE app_user;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
    CREATE ROLE admin;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

-- Columns in the order the migrations add them (initial schema, then server defaults, rate
-- limits, is_active, tool_type, Jira fields).
CREATE TABLE IF NOT EXISTS tenant_configs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    servicedesk_url VARCHAR(500) NOT NULL,
    servicedesk_api_key_encrypted TEXT NOT NULL,
    webhook_signing_secret_encrypted TEXT NOT NULL,
    enhancement_preferences JSON NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    rate_limits JSON DEFAULT '{"webhooks": {"ticket_created": 100, "ticket_resolved": 100}}'::jsonb,
    is_active BOOLEAN NOT NULL DEFAULT true,
    tool_type VARCHAR(50) NOT NULL DEFAULT 'servicedesk_plus',
    jira_url VARCHAR(500),
    jira_api_token_encrypted BYTEA,
    jira_project_key VARCHAR(50)
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_tenant_configs_tenant_id ON tenant_configs (tenant_id);
CREATE INDEX IF NOT EXISTS idx_tenant_configs_tool_type ON tenant_configs (tool_type);

CREATE TABLE IF NOT EXISTS enhancement_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ticket_id VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL,
    context_gathered JSON,
    llm_output TEXT,
    error_message TEXT,
    processing_time_ms INTEGER,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS ix_enhancement_history_status ON enhancement_history (status);
CREATE INDEX IF NOT EXISTS ix_enhancement_history_tenant_id ON enhancement_history (tenant_id);
CREATE INDEX IF NOT EXISTS ix_enhancement_history_tenant_ticket
    ON enhancement_history (tenant_id, ticket_id);
CREATE INDEX IF NOT EXISTS ix_enhancement_history_ticket_id ON enhancement_history (ticket_id);
CREATE INDEX IF NOT EXISTS idx_enhancement_history_status_created
    ON enhancement_history (status, created_at);
CREATE INDEX IF NOT EXISTS idx_enhancement_history_status_completed
    ON enhancement_history (status, completed_at);
CREATE INDEX IF NOT EXISTS ix_history_tenant_status_created
    ON enhancement_history (tenant_id, status, created_at DESC);

-- Created by 169d8c9e1f5a, completed by 8f9c7d8a3e2b (source, ingested_at, the UNIQUE); the
-- later CREATE TABLE IF NOT EXISTS of 168c9b67e6ca (with subject, priority, tags) is then a
-- no-op, but its three indexes are created. No CHECK on source.
CREATE TABLE IF NOT EXISTS ticket_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ticket_id VARCHAR(100) NOT NULL,
    description TEXT NOT NULL,
    resolution TEXT NOT NULL,
    resolved_date TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    source VARCHAR(50) NOT NULL DEFAULT 'bulk_import',  -- 'bulk_import' or 'webhook_resolved'
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_ticket_history_tenant_ticket UNIQUE (tenant_id, ticket_id)
);
CREATE INDEX IF NOT EXISTS ix_ticket_history_tenant_id ON ticket_history (tenant_id);
CREATE INDEX IF NOT EXISTS ix_ticket_history_resolved_date ON ticket_history (resolved_date);
CREATE INDEX IF NOT EXISTS idx_ticket_history_tenant_id ON ticket_history (tenant_id);
CREATE INDEX IF NOT EXISTS idx_ticket_history_ticket_id ON ticket_history (ticket_id);
CREATE INDEX IF NOT EXISTS idx_ticket_history_resolved_date ON ticket_history (resolved_date);

CREATE TABLE IF NOT EXISTS system_inventory (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ip_address VARCHAR(45) NOT NULL,
    hostname VARCHAR(255),
    role VARCHAR(100),
    client VARCHAR(200),
    location VARCHAR(200),
    created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (tenant_id, ip_address)
);
CREATE INDEX IF NOT EXISTS idx_system_inventory_tenant_id ON system_inventory (tenant_id);
CREATE INDEX IF NOT EXISTS idx_system_inventory_ip_address ON system_inventory (ip_address);

CREATE TABLE IF NOT EXISTS enhancement_feedback (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ticket_id VARCHAR(255) NOT NULL,
    enhancement_id UUID,
    technician_email VARCHAR(255),
    feedback_type VARCHAR(50) NOT NULL,
    rating_value INTEGER,
    feedback_comment TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ck_feedback_type_valid
        CHECK (feedback_type IN ('thumbs_up', 'thumbs_down', 'rating')),
    CONSTRAINT ck_rating_value_range
        CHECK (rating_value IS NULL OR (rating_value >= 1 AND rating_value <= 5))
);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_tenant_id ON enhancement_feedback (tenant_id);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_created_at ON enhancement_feedback (created_at);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_feedback_type
    ON enhancement_feedback (feedback_type);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_tenant_ticket
    ON enhancement_feedback (tenant_id, ticket_id);

CREATE TABLE IF NOT EXISTS audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "user" VARCHAR(255) NOT NULL,
    operation VARCHAR(100) NOT NULL,
    details JSON,
    status VARCHAR(50) NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_audit_log_timestamp ON audit_log ("timestamp" DESC);
CREATE INDEX IF NOT EXISTS ix_audit_log_operation ON audit_log (operation);

-- Row-level security as the migrations leave it: permissive FOR ALL policies, OR-ed where a
-- table has two. Old style (2075b4285d2b, 9a2d3e4f5b6c) raises when the setting is missing;
-- new style (168c9b67e6ca) sees no rows then.
ALTER TABLE tenant_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE enhancement_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE enhancement_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_inventory ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_config_isolation_policy ON tenant_configs;
CREATE POLICY tenant_config_isolation_policy ON tenant_configs
    USING (tenant_id = current_setting('app.current_tenant_id')::VARCHAR)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::VARCHAR);
DROP POLICY IF EXISTS tenant_isolation_policy ON enhancement_history;
CREATE POLICY tenant_isolation_policy ON enhancement_history
    USING (tenant_id = current_setting('app.current_tenant_id')::VARCHAR)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::VARCHAR);
DROP POLICY IF EXISTS tenant_isolation_policy_enhancement_feedback ON enhancement_feedback;
CREATE POLICY tenant_isolation_policy_enhancement_feedback ON enhancement_feedback
    USING (tenant_id = current_setting('app.current_tenant_id')::VARCHAR)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::VARCHAR);

DROP POLICY IF EXISTS tenant_configs_tenant_isolation_policy ON tenant_configs;
CREATE POLICY tenant_configs_tenant_isolation_policy ON tenant_configs FOR ALL
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));
DROP POLICY IF EXISTS enhancement_history_tenant_isolation_policy ON enhancement_history;
CREATE POLICY enhancement_history_tenant_isolation_policy ON enhancement_history FOR ALL
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));
DROP POLICY IF EXISTS ticket_history_tenant_isolation_policy ON ticket_history;
CREATE POLICY ticket_history_tenant_isolation_policy ON ticket_history FOR ALL
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));
DROP POLICY IF EXISTS system_inventory_tenant_isolation_policy ON system_inventory;
CREATE POLICY system_inventory_tenant_isolation_policy ON system_inventory FOR ALL
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));

-- As shipped: SECURITY DEFINER without a pinned search_path, owned by whoever ran the
-- migrations, executable by PUBLIC, and session-level (set_config(..., false)).
CREATE OR REPLACE FUNCTION set_tenant_context(p_tenant_id VARCHAR)
RETURNS VOID AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenant_configs WHERE tenant_id = p_tenant_id) THEN
        RAISE EXCEPTION 'Invalid tenant_id: %', p_tenant_id;
    END IF;
    PERFORM set_config('app.current_tenant_id', p_tenant_id, false);
END;
$$ LANGUAGE plpgsql SECURITY DEFINER;

-- The platform's grants (2075b4285d2b, 9a2d3e4f5b6c); ticket_history, system_inventory and
-- audit_log get none.
GRANT USAGE ON SCHEMA public TO app_user;
GRANT SELECT, INSERT, UPDATE ON enhancement_history, tenant_configs TO app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON enhancement_feedback TO app_user;
GRANT ALL PRIVILEGES ON tenant_configs, enhancement_history, enhancement_feedback TO admin;
