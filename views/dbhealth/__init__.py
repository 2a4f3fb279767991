"""The tabs of the Database health page (views/slow_queries.py), one module per topic like
services/dbhealth: statements (slow queries), explain, connections, relations (tables and
indexes). Each draws what its service returns; layout.py holds what they draw alike."""
