# Two commands: `make demo` (dashboard on a demo stack) and `make test` (the whole suite).
# Both install what is missing, start the private stack under .stack/ and are safe to re-run.
SHELL := /bin/bash
ENV := source .stack/env &&
DEMO_DB := aiagents_demo
PY := .venv/bin/python

.PHONY: demo test stack stop install demo-data bench lint

install:
	scripts/stack.sh install

stack: install
	scripts/stack.sh start

# The demo fleet: ~1M enhancement runs over 30 days, live Redis queues, 30 days of Prometheus
# history. Loaded once; `make demo-data` again reloads it from scratch.
.stack/demo-loaded: | stack
	$(MAKE) demo-data

demo-data: stack
	$(ENV) $(PY) -m demo.dbsetup $(DEMO_DB)
	$(ENV) $(PY) -m demo.generate --database $(DEMO_DB) --days 30 --tickets-per-day-scale 4.5
	touch .stack/demo-loaded

demo: .stack/demo-loaded
	$(ENV) $(PY) -m demo.seed_redis
	$(ENV) $(PY) -m demo.backfill_prometheus --data-dir .stack/prometheus --days 30
	@echo "Dashboard: http://127.0.0.1:8501 (Ctrl-C to stop it; make stop stops the stack)"
	$(ENV) exec .venv/bin/streamlit run app.py --server.port 8501

test: stack
	$(ENV) $(PY) -m pytest -q

bench: .stack/demo-loaded
	$(ENV) $(PY) bench/tenant_health.py

lint: install
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

stop:
	scripts/stack.sh stop
