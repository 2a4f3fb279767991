"""Database health, read-only, one module per question (the way PgHero splits its methods):

- statements: which statements take the time (pg_stat_statements snapshots and their deltas)
- explain: what plan one pasted SELECT gets (EXPLAIN, never ANALYZE; what is refused)
- connections: who holds connections, how close the pools are to exhaustion, replication,
  what runs or holds a transaction open for long
- relations: tables and indexes (sizes, dead tuples and vacuum, index candidates, unused and
  duplicate indexes)
- session: the admin session they all read in, and what they share (redaction, durations)

`python -m services.dbhealth snapshot` (__main__.py) is the cron command. Import the topic
modules themselves; this package exports nothing.
"""
