-- Sign-ins to the dashboard, append-only like the data access log: who, when, from where, and
-- how a session began or ended. No password or token is ever stored here.
CREATE TABLE IF NOT EXISTS dashboard.sign_ins (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    email TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('signed_in', 'no_access', 'signed_out', 'expired')),
    role TEXT,                         -- the role granted; NULL for no_access
    session_ref TEXT NOT NULL,         -- a hash naming the sign-in session (never the token)
    client_address TEXT
);
CREATE INDEX IF NOT EXISTS ix_sign_ins_time ON dashboard.sign_ins (at);
CREATE INDEX IF NOT EXISTS ix_sign_ins_email ON dashboard.sign_ins (email, at);

GRANT INSERT ON dashboard.sign_ins TO dashboard_reader, dashboard_admin;
GRANT USAGE ON SEQUENCE dashboard.sign_ins_id_seq TO dashboard_reader, dashboard_admin;
GRANT SELECT ON dashboard.sign_ins TO dashboard_admin;
