-- The worker time of each hour's finished attempts (processing_time_ms, which the worker
-- records), so that the capacity measurement (Queues and scaling) reads the rollup too: its
-- sum per hour for the cost shares and its values for the service-time distribution.
-- Hours rolled before this migration lack them: they are dropped with the rollup's coverage,
-- so the views read raw until the next `python -m services.rollups refresh` rolls them again.
ALTER TABLE dashboard.run_hours
    ADD COLUMN IF NOT EXISTS busy_ms BIGINT,           -- sum(processing_time_ms), finished
    ADD COLUMN IF NOT EXISTS processing_ms INTEGER[];  -- processing_time_ms of each, sorted
DELETE FROM dashboard.rollup_state WHERE name = 'run_hours'
   AND EXISTS (SELECT 1 FROM dashboard.run_hours WHERE processing_ms IS NULL);
DELETE FROM dashboard.run_hours WHERE processing_ms IS NULL;
ALTER TABLE dashboard.run_hours
    ALTER COLUMN busy_ms SET NOT NULL,
    ALTER COLUMN processing_ms SET NOT NULL;
