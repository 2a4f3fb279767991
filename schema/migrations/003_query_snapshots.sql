-- Database health: periodic snapshots of pg_stat_statements for this database, so the
-- dashboard can show what changed between two moments, not only totals since the last reset.
-- pg_stat_statements is cumulative and the dashboard never resets it; a snapshot copies the
-- counters (top-level statements of the current database only) and deltas are computed on read.

CREATE TABLE IF NOT EXISTS dashboard.query_snapshots (
    id BIGSERIAL PRIMARY KEY,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    dbid OID NOT NULL,                   -- pg_stat_statements counts per database id
    stats_reset TIMESTAMPTZ,             -- pg_stat_statements_info.stats_reset at that moment
    source TEXT NOT NULL                 -- 'cron' or 'page' (taken on page load when stale)
);
CREATE INDEX IF NOT EXISTS ix_query_snapshots_db_time ON dashboard.query_snapshots (dbid, taken_at);

-- Normalised statement text once per statement, not once per snapshot.
CREATE TABLE IF NOT EXISTS dashboard.query_texts (
    dbid OID NOT NULL,
    queryid BIGINT NOT NULL,
    query TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dbid, queryid)
);

-- Counters summed over the roles that ran the statement (pg_stat_statements keys them per role).
CREATE TABLE IF NOT EXISTS dashboard.query_snapshot_stats (
    snapshot_id BIGINT NOT NULL REFERENCES dashboard.query_snapshots (id) ON DELETE CASCADE,
    queryid BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    total_exec_ms DOUBLE PRECISION NOT NULL,
    max_exec_ms DOUBLE PRECISION NOT NULL,   -- since reset; not meaningful as a delta
    rows BIGINT NOT NULL,
    shared_blks_hit BIGINT NOT NULL,
    shared_blks_read BIGINT NOT NULL,
    roles TEXT NOT NULL,                     -- who ran it, e.g. 'aiagents, dashboard_admin'
    PRIMARY KEY (snapshot_id, queryid)
);
CREATE INDEX IF NOT EXISTS ix_query_snapshot_stats_query
    ON dashboard.query_snapshot_stats (queryid, snapshot_id);

-- Admins only: statement texts can carry literals. The snapshot command and the page write
-- through write_scope(admin=True) and prune old snapshots.
GRANT SELECT, INSERT, DELETE ON dashboard.query_snapshots, dashboard.query_texts,
    dashboard.query_snapshot_stats TO dashboard_admin;
GRANT USAGE ON SEQUENCE dashboard.query_snapshots_id_seq TO dashboard_admin;
