"""One ticket, every hop: the procedures' "Ticket Investigation Workflow" answered from the data.

For a tenant and a ServiceDesk Plus ticket id: every enhancement run (webhook received, worker
outcome with its failure mode and next step, stuck check, context counts), the ticket's jobs still
waiting in Redis, its feedback, a Jaeger search link, the procedures' commands filled in, and the
"TICKET INVESTIGATION SUMMARY" template filled in from all of it.

- model.py: what is found (runs, feedback, queued jobs, context counts) and the ticket id input
- lookup.py: reading it (SQL inside tenant_scope, queue presence in Redis, the ticket search)
- narrative.py: what it says (root cause, summary, commands, Jaeger link, feedback in short)
- timeline.py: the steps of the page's timeline, per queued job and per attempt
"""
