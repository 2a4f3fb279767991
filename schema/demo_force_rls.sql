-- Demo and test databases only: make RLS apply to the table owner too, so that a mistake in the
-- dashboard (connecting as the owner) shows up as "no rows" here instead of passing silently.
-- Production does not FORCE it, which is why the dashboard never connects as the owner.
ALTER TABLE tenant_configs FORCE ROW LEVEL SECURITY;
ALTER TABLE enhancement_history FORCE ROW LEVEL SECURITY;
ALTER TABLE enhancement_feedback FORCE ROW LEVEL SECURITY;
ALTER TABLE ticket_history FORCE ROW LEVEL SECURITY;
ALTER TABLE system_inventory FORCE ROW LEVEL SECURITY;
