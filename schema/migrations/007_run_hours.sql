-- Hourly rollups of enhancement_history, kept by `python -m services.rollups refresh` (cron) so
-- that the fleet views and the weekly review read a window's closed hours here instead of
-- scanning the platform's table (it has no index on created_at alone: a 30-day window read
-- the whole 8 GB table at 10M runs). One row per tenant and UTC hour with attempts:
-- the additive counts, and what the non-additive figures need to stay exact (the completed
-- attempts' processing times for percentile_cont, the tickets with their outcome flags for
-- count(DISTINCT ticket_id) and the ticket outcomes). Tenant data: RLS as on the platform's
-- tables, plus a SELECT-only policy for the admin role (and the refresh's own writes).
CREATE TABLE IF NOT EXISTS dashboard.run_hours (
    tenant_id VARCHAR(100) NOT NULL,
    hour TIMESTAMPTZ NOT NULL,                -- date_trunc('hour', created_at, 'UTC')
    attempts INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    pending INTEGER NOT NULL,                 -- as of the roll; a later finish makes it stale
    last_attempt TIMESTAMPTZ NOT NULL,        -- max(created_at)
    failures_by_cause JSONB NOT NULL,         -- failure mode -> failed attempts
    latencies DOUBLE PRECISION[] NOT NULL,    -- completed attempts' processing seconds
    tickets VARCHAR(100)[] NOT NULL,          -- the tickets with an attempt in the hour
    ticket_enhanced BOOLEAN[] NOT NULL,       -- per ticket: an attempt of the hour completed
    ticket_open BOOLEAN[] NOT NULL,           -- per ticket: an attempt of the hour pending
    rolled_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX IF NOT EXISTS ix_run_hours_hour ON dashboard.run_hours (hour);
-- The hours still holding pending attempts: the views compare them with the platform's table.
CREATE INDEX IF NOT EXISTS ix_run_hours_pending ON dashboard.run_hours (hour, tenant_id)
    INCLUDE (pending) WHERE pending > 0;

-- The hours the rollup covers: [rolled_from, rolled_until), every hour of it rolled (an hour
-- without attempts has no row).
CREATE TABLE IF NOT EXISTS dashboard.rollup_state (
    name TEXT PRIMARY KEY,
    rolled_from TIMESTAMPTZ NOT NULL,
    rolled_until TIMESTAMPTZ NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE dashboard.run_hours ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS run_hours_tenant_isolation_policy ON dashboard.run_hours;
CREATE POLICY run_hours_tenant_isolation_policy ON dashboard.run_hours FOR ALL
    USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''));
DROP POLICY IF EXISTS dashboard_admin_read ON dashboard.run_hours;
CREATE POLICY dashboard_admin_read ON dashboard.run_hours FOR SELECT TO dashboard_admin
    USING (true);
-- The refresh (admin role, write URL) replaces whole hours: insert and delete, never update.
DROP POLICY IF EXISTS dashboard_admin_refresh_insert ON dashboard.run_hours;
CREATE POLICY dashboard_admin_refresh_insert ON dashboard.run_hours FOR INSERT TO dashboard_admin
    WITH CHECK (true);
DROP POLICY IF EXISTS dashboard_admin_refresh_delete ON dashboard.run_hours;
CREATE POLICY dashboard_admin_refresh_delete ON dashboard.run_hours FOR DELETE TO dashboard_admin
    USING (true);

GRANT SELECT ON dashboard.run_hours, dashboard.rollup_state TO dashboard_reader, dashboard_admin;
GRANT INSERT, DELETE ON dashboard.run_hours TO dashboard_admin;
GRANT INSERT, UPDATE ON dashboard.rollup_state TO dashboard_admin;
