# Two commands: `make demo` (dashboard on a demo stack) and `make test` (the suite but the
# tests that start infrastructure of their own, which `make test-infra` runs; `make test-unit` runs the tests
# marked unit, which need the venv only, not the stack).
# Both install what is missing, start the private stack (scripts/stack.sh: its folders and
# ports) and are safe to re-run. The stack's ports are in .stack/env, which every recipe reads.
SHELL := /bin/bash
ENV := source .stack/env &&
DASHBOARD_PORT ?= 8501
DEMO_DB := aiagents_demo
# The demo fleet's size: days of runs and of Prometheus history (a smaller demo for tests).
DEMO_DAYS ?= 365
DEMO_PROM_DAYS ?= 60
PY := .venv/bin/python

.PHONY: demo test test-infra test-unit stack stop clean install dashboard-port demo-loaded demo-data bench lint \
	bench-10m bench-10m-data bench-load image-check

install:
	scripts/stack.sh install

stack: install
	scripts/stack.sh start

# The demo fleet: 52 tenants over a year (about 1M enhancement runs), its live Redis queues and
# 60 days of Prometheus history, all generated for the same moment (kept in .stack/demo-loaded,
# which a new cluster removes). Loaded once; `make demo-data` reloads it from scratch.
demo-loaded: stack
	@[ -f .stack/demo-loaded ] || $(MAKE) demo-data
	$(ENV) $(PY) -m demo.dbsetup --migrate $(DEMO_DB)

demo-data: stack
	$(eval NOW := $(shell date -u +%Y-%m-%dT%H:%M))
	$(ENV) $(PY) -m demo.dbsetup $(DEMO_DB)
	$(ENV) $(PY) -m demo.generate --database $(DEMO_DB) --tenants 52 --days $(DEMO_DAYS) --now $(NOW)
	$(ENV) $(PY) -m services.rollups refresh
	$(ENV) $(PY) -m demo.seed_redis --now $(NOW)
	$(ENV) $(PY) -m demo.backfill_prometheus --data-dir .stack/prometheus --days $(DEMO_PROM_DAYS) --now $(NOW)
	echo $(NOW) > .stack/demo-loaded

# Demo accounts, held by the demo identity provider (demo/idp.py); their roles come from its
# ID-token claims. nobody@demo.example has no role: it shows the no-access page.
IDP := $(PY) -m demo.idp --state .stack/idp.json
.stack/idp.json: | stack
	$(ENV) PW=demo-admin $(IDP) account admin@demo.example --password-env PW --claim dashboard_role=admin
	$(ENV) PW=demo-support $(IDP) account support@demo.example --password-env PW --claim dashboard_role=support
	$(ENV) PW=demo-client $(IDP) account client@acme.example --password-env PW --claim dashboard_role=client --claim dashboard_tenant=msp-acme-corp
	$(ENV) PW=demo-nobody $(IDP) account nobody@demo.example --password-env PW

# First, before the demo data is loaded.
dashboard-port:
	@if (: </dev/tcp/127.0.0.1/$(DASHBOARD_PORT)) 2>/dev/null; then echo "port $(DASHBOARD_PORT)" \
	    "is in use (another make demo?): choose another, e.g. make demo DASHBOARD_PORT=8502"; exit 1; fi

demo: dashboard-port demo-loaded .stack/idp.json
	# Redis keeps nothing on disk: refill the queues as they were at load time.
	$(ENV) $(PY) -m demo.seed_redis --now $$(cat .stack/demo-loaded)
	# Register this dashboard URL with the provider; st.login reads the [auth] it writes.
	$(ENV) $(IDP) client --issuer "$$IDP_URL" --secrets .stack/secrets.toml \
	    --redirect-uri http://127.0.0.1:$(DASHBOARD_PORT)/oauth2callback
	@echo "Dashboard: http://127.0.0.1:$(DASHBOARD_PORT) (Ctrl-C stops it; make stop stops the stack)"
	@echo "Sign in at the demo identity provider as admin@demo.example / demo-admin,"
	@echo "support@demo.example / demo-support, client@acme.example / demo-client (screenshare"
	@echo "of msp-acme-corp only) or nobody@demo.example / demo-nobody (no role: no access)."
	$(ENV) exec .venv/bin/streamlit run app.py --server.port $(DASHBOARD_PORT) \
	    --secrets.files .stack/secrets.toml

test: stack
	$(ENV) $(PY) -m pytest -q -m "not infra"

# The tests that start infrastructure of their own: two replicas behind HAProxy, a streaming
# standby, PgBouncer, and clones of this repository set up in a private folder and a path with
# spaces (minutes of installs). CI runs it after `make test`.
test-infra: stack
	$(ENV) $(PY) -m pytest -q -m infra

test-unit: install
	$(PY) -m pytest -q -m unit

# A real build of the Dockerfile with buildah on a stand-in base built from Debian packages, and
# the image run as the Deployment runs it (docs/deploy.md; minutes, not part of `make test`).
image-check: stack
	scripts/image_check.sh

# Benchmarks (bench/, docs/performance.md; not part of `make test`). Each writes its table into
# its section of docs/performance.md (the bench extra of pyproject.toml: locust, websocket-client).
BENCH_DB := aiagents_bench10m
# The hourly rollups, brought up to date as the cron job would (services/rollups.py).
ROLLUPS_10M := DATABASE_URL=$${DATABASE_URL%/*}/$(BENCH_DB) \
	ADMIN_DATABASE_URL=$${ADMIN_DATABASE_URL%/*}/$(BENCH_DB) $(PY) -m services.rollups refresh
bench: demo-loaded .stack/idp.json
	$(ENV) $(PY) -m services.rollups refresh
	$(ENV) $(PY) bench/views.py --database $(DEMO_DB) --write docs/performance.md --section 1M

# The 10x fleet (500 tenants, about 10M runs over a year) in a database of its own; the demo's
# Redis queues and Prometheus history are shared. Loaded once; `make bench-10m-data` reloads.
bench-10m-data: stack
	$(ENV) $(PY) -m demo.dbsetup $(BENCH_DB)
	$(ENV) $(PY) -m demo.generate --database $(BENCH_DB) --scale 10m --now $$(cat .stack/demo-loaded)
	$(ENV) $(ROLLUPS_10M)
	touch .stack/bench10m-loaded

bench-10m: demo-loaded .stack/idp.json
	@[ -f .stack/bench10m-loaded ] || $(MAKE) bench-10m-data
	$(ENV) $(ROLLUPS_10M)
	$(ENV) $(PY) bench/views.py --database $(BENCH_DB) --write docs/performance.md --section 10M \
	    --baseline 1M

# Sessions that read each page for 2-6 s, arriving over 10 s (one process, then two), and the
# same sessions clicking back to back (what one process can do at most).
PACED := --think 2 6 --arrival 10
bench-load: demo-loaded .stack/idp.json
	$(ENV) $(PY) bench/load.py --database $(DEMO_DB) --write docs/performance.md $(PACED)
	$(ENV) $(PY) bench/load.py --database $(DEMO_DB) --write docs/performance.md $(PACED) --replicas 2
	$(ENV) $(PY) bench/load.py --database $(DEMO_DB) --write docs/performance.md

lint: install
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

stop:
	scripts/stack.sh stop

# Stop and remove everything the stack keeps (its databases, passwords, demo data and accounts).
clean:
	scripts/stack.sh clean
