-- The AI Agents platform's own tables, as its migrations create them (reference snapshot c710354).
-- Used for the demo and test databases only; the dashboard never changes a production platform
-- database except through schema/grants.sql and its own `dashboard` schema.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

DO $$ BEGIN
    CREATE ROLE app_user NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
    CREATE ROLE admin NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS tenant_configs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    servicedesk_url VARCHAR(500) NOT NULL,
    servicedesk_api_key_encrypted TEXT NOT NULL,
    webhook_signing_secret_encrypted TEXT NOT NULL,
    enhancement_preferences JSON NOT NULL DEFAULT '{}',
    rate_limits JSON DEFAULT '{"webhooks": {"ticket_created": 100, "ticket_resolved": 100}}',
    is_active BOOLEAN NOT NULL DEFAULT true,
    tool_type VARCHAR(50) NOT NULL DEFAULT 'servicedesk_plus',
    jira_url VARCHAR(500),
    jira_project_key VARCHAR(50),
    jira_api_token_encrypted BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

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
CREATE INDEX IF NOT EXISTS ix_enhancement_history_ticket_id ON enhancement_history (ticket_id);
CREATE INDEX IF NOT EXISTS idx_tenant_ticket ON enhancement_history (tenant_id, ticket_id);
CREATE INDEX IF NOT EXISTS idx_status_created ON enhancement_history (status, created_at);
CREATE INDEX IF NOT EXISTS idx_status_completed ON enhancement_history (status, completed_at);
CREATE INDEX IF NOT EXISTS idx_tenant_status_created
    ON enhancement_history (tenant_id, status, created_at DESC);

CREATE TABLE IF NOT EXISTS enhancement_feedback (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ticket_id VARCHAR(255) NOT NULL,
    enhancement_id UUID,
    technician_email VARCHAR(255),
    feedback_type VARCHAR(50) NOT NULL
        CHECK (feedback_type IN ('thumbs_up', 'thumbs_down', 'rating')),
    rating_value INTEGER CHECK (rating_value BETWEEN 1 AND 5),
    feedback_comment TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_tenant_id ON enhancement_feedback (tenant_id);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_ticket_id ON enhancement_feedback (ticket_id);
CREATE INDEX IF NOT EXISTS ix_enhancement_feedback_created_at ON enhancement_feedback (created_at);
CREATE INDEX IF NOT EXISTS ix_feedback_tenant_created ON enhancement_feedback (tenant_id, created_at);

CREATE TABLE IF NOT EXISTS ticket_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ticket_id VARCHAR(100) NOT NULL,
    subject VARCHAR(255),
    description TEXT NOT NULL,
    resolution TEXT,
    resolved_date TIMESTAMPTZ,
    priority VARCHAR(20),
    tags TEXT[],
    source VARCHAR(50) NOT NULL DEFAULT 'bulk_import'
        CHECK (source IN ('bulk_import', 'webhook_resolved')),
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_ticket_history_tenant_ticket UNIQUE (tenant_id, ticket_id)
);
CREATE INDEX IF NOT EXISTS ix_ticket_history_tenant_id ON ticket_history (tenant_id);
CREATE INDEX IF NOT EXISTS ix_ticket_history_resolved_date ON ticket_history (resolved_date);

CREATE TABLE IF NOT EXISTS system_inventory (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id VARCHAR(100) NOT NULL,
    ip_address VARCHAR(45) NOT NULL,
    hostname VARCHAR(255),
    role VARCHAR(100),
    client VARCHAR(255),
    location VARCHAR(255),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_system_inventory_tenant_ip UNIQUE (tenant_id, ip_address)
);
CREATE INDEX IF NOT EXISTS ix_system_inventory_tenant_id ON system_inventory (tenant_id);

CREATE TABLE IF NOT EXISTS audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "user" VARCHAR(255) NOT NULL,
    operation VARCHAR(100) NOT NULL,
    details JSON,
    status VARCHAR(50) NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_audit_log_timestamp ON audit_log ("timestamp");

-- Row-level security exactly as production has it: two policy styles coexist.
-- Older style (raises when the setting was never defined in the session):
ALTER TABLE tenant_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE enhancement_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON tenant_configs;
CREATE POLICY tenant_isolation_policy ON tenant_configs
    USING (tenant_id = current_setting('app.current_tenant_id'));
DROP POLICY IF EXISTS tenant_isolation_policy ON enhancement_history;
CREATE POLICY tenant_isolation_policy ON enhancement_history
    USING (tenant_id = current_setting('app.current_tenant_id'));

-- Newer style (no rows when the setting is missing):
ALTER TABLE enhancement_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_inventory ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation_policy ON enhancement_feedback;
CREATE POLICY tenant_isolation_policy ON enhancement_feedback
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));
DROP POLICY IF EXISTS tenant_isolation_policy ON ticket_history;
CREATE POLICY tenant_isolation_policy ON ticket_history
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));
DROP POLICY IF EXISTS tenant_isolation_policy ON system_inventory;
CREATE POLICY tenant_isolation_policy ON system_inventory
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));

CREATE OR REPLACE FUNCTION set_tenant_context(p_tenant_id VARCHAR)
RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenant_configs WHERE tenant_id = p_tenant_id) THEN
        RAISE EXCEPTION 'Invalid tenant_id: %', p_tenant_id;
    END IF;
    PERFORM set_config('app.current_tenant_id', p_tenant_id, false);
END;
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_user;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO admin;
