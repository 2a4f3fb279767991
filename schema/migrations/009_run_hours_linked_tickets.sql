-- Distinct tickets as sums: 99.4% of a 30-day window's tickets (10M fleet) have every attempt
-- in one hour, yet every ticket id was hashed to count them. An hour now keeps ids only for its
-- linked tickets (an attempt of theirs lies in another hour), and counts the rest, whose
-- distinct count over any set of hours is the sum of these counts (services/rollups.py).
-- The old arrays held every ticket: their hours are dropped with the rollup's coverage, so the
-- views read raw until the next `python -m services.rollups refresh` rolls them again.
DELETE FROM dashboard.rollup_state WHERE name = 'run_hours';
DELETE FROM dashboard.run_hours;
ALTER TABLE dashboard.run_hours RENAME COLUMN tickets TO linked_tickets;
ALTER TABLE dashboard.run_hours RENAME COLUMN ticket_enhanced TO linked_enhanced;
ALTER TABLE dashboard.run_hours RENAME COLUMN ticket_open TO linked_open;
ALTER TABLE dashboard.run_hours
    ADD COLUMN solo_tickets INTEGER NOT NULL,   -- tickets with every attempt in this hour
    ADD COLUMN solo_enhanced INTEGER NOT NULL,  -- of them: an attempt completed
    ADD COLUMN solo_failed INTEGER NOT NULL;    -- of them: none completed, none pending
