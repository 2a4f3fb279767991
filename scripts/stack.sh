#!/usr/bin/env bash
# The private stack of this checkout: PostgreSQL 15, Redis and Prometheus, all on loopback.
# Usage: scripts/stack.sh install|start|stop|status|clean
# Idempotent: `start` reuses a running or initialised stack; `stop` stops by PID.
#
# Folders: everything root-owned lives in .stack/ of the checkout. PostgreSQL runs as the
# postgres user, which may not enter the checkout (a 700 home folder, a `mktemp -d` folder), so
# its cluster (data, socket, log) lives in /var/lib/postgresql/aiagents-stack-<hash of the
# checkout's path>/, mode 700, and the checkout's own permissions are left alone.
# Ports: PG_PORT, REDIS_PORT, PROM_PORT, EXPORTER_PORT, IDP_PORT when set (a port in use is then
# an error); otherwise the ones recorded in .stack/env, else 55432/56379/59090/59464/59400, each
# moved to the next free port when another program holds it. The chosen ports go to .stack/env, read by make, the app and tests.
# Each service counts as started only when the process this script started is alive and alone
# on its port (ss); another program that took the port in between (another checkout's stack
# starting in the same second) moves it to the next free port, or is an error for a set port.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
STACK=$ROOT/.stack
PG_BIN=/usr/lib/postgresql/15/bin
PG_BASE=/var/lib/postgresql/aiagents-stack-$(printf %s "$ROOT" | sha256sum | cut -c1-12)
PG_DATA=$PG_BASE/data
PG_RUN=$PG_BASE/run

log() { printf '[stack] %s\n' "$*" >&2; }
TAKEN=""  # set by settle: another program holds the port of the service being started
FIXED=""  # the port variables set by the user: those ports are never moved

install() {
    local missing=()
    [ -x $PG_BIN/postgres ] || missing+=(postgresql-15 postgresql-contrib-15 postgresql-client-15)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v prometheus >/dev/null || missing+=(prometheus)
    command -v promtool >/dev/null || missing+=(prometheus)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    # Fonts for screenshots: text, and the status emoji used in tables.
    [ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
    [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
    command -v runuser >/dev/null || missing+=(util-linux)
    command -v make >/dev/null || missing+=(make)
    command -v curl >/dev/null || missing+=(curl)
    command -v ss >/dev/null || missing+=(iproute2)
    # The deployment tests: a load balancer in front of two replicas, a connection pooler.
    [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        # --no-install-recommends: prometheus would otherwise pull node-exporter and more.
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt .venv/.installed ]; then
        log "installing the Python project into .venv"
        python3 -m venv .venv
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -e '.[dev,bench]'
        touch .venv/.installed
    fi
}

secret() {  # a per-stack random password, kept in .stack/ so re-runs reuse it
    local f=$STACK/$1.password
    [ -f "$f" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$f")
    cat "$f"
}

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }  # single-quoted for the shell (and shlex)

recorded() {  # a value an earlier start wrote to .stack/env
    if [ -f "$STACK/env" ]; then sed -n "s/^export $1='\(.*\)'\$/\1/p" "$STACK/env"; fi
}

port_taken() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

listeners() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }

unbindable() {  # a socket merely bound (not listening) also keeps a service from the port
    ! python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# Waits up to $3 s for process $2 to be alive and the only listener on port $1: a health check
# alone could be answered by another checkout's service on that port. When another program
# holds the port, stops process $2 and sets TAKEN; else the service failed: says $4 and exits.
settle() {
    local port=$1 pid=$2 others
    TAKEN=""
    for _ in $(seq $(($3 * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$(listeners "$port")" = "$pid" ] && return 0
        sleep 0.1
    done
    others=$(listeners "$port" | grep -vx "$pid" || true)
    if [ -n "$others" ] || { ! kill -0 "$pid" 2>/dev/null && unbindable "$port"; }; then
        TAKEN=1
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        return 0
    fi
    log "$4"; exit 1
}

# Runs start_$1 until its service is this stack's on its port, moving a port that another
# program took between its choice and the bind to the next free one (5 tries).
launch() {
    local svc=$1 name=$2 var=$3 port next
    for _ in 1 2 3 4 5; do
        TAKEN=""
        "start_$svc"
        if [ -z "$TAKEN" ]; then return 0; fi
        port=${!var}
        if [[ " $FIXED " == *" $var "* ]]; then
            log "port $port ($var) was taken by another program as $name started (another" \
                "checkout's stack?): set $var to a free port"
            exit 1
        fi
        next=$((port + 1))
        while port_taken "$next"; do next=$((next + 1)); done
        log "port $port was taken by another program as $name started: $name uses $next" \
            "(recorded in .stack/env; set $var to choose)"
        printf -v "$var" %s "$next"
        write_env
    done
    log "$name found no free port in 5 tries, the last $port: set $var to a free port"
    exit 1
}

# The port of one service: the one it already runs on; else $var when set; else the recorded one
# or the default, moved to the next free port when another program holds it.
choose_port() {
    local name=$1 var=$2 wanted=${!2:-} running=$3 port=${4:-$5}
    if [ -n "$running" ]; then
        if [ -n "$wanted" ] && [ "$wanted" != "$running" ]; then
            log "$name of this checkout runs on port $running, not $var=$wanted: run 'make stop' first"
            exit 1
        fi
        echo "$running"; return
    fi
    if [ -n "$wanted" ]; then
        if port_taken "$wanted"; then
            log "port $wanted ($var) is in use by another program (another checkout's stack, a" \
                "system $name?): set $var to a free port, or stop that program ('make stop'" \
                "stops this checkout's stack)"
            exit 1
        fi
        echo "$wanted"; return
    fi
    local first=$port
    while port_taken "$port"; do port=$((port + 1)); done
    [ "$port" = "$first" ] || log "port $first is in use by another program: $name uses $port" \
        "(recorded in .stack/env; set $var to choose)"
    echo "$port"
}

# PostgreSQL tools run as postgres from /, which it can always enter (unlike the checkout).
pg() { (cd / && runuser -u postgres -- "$PG_BIN/$1" "${@:2}"); }

pg_alive() { [ -f "$PG_DATA/PG_VERSION" ] && pg pg_ctl -D "$PG_DATA" status >/dev/null 2>&1; }

start_postgres() {
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "initialising PostgreSQL in $PG_DATA"
        command install -d -o postgres -g postgres -m 700 "$PG_BASE" "$PG_RUN"
        printf '%s\n' "$ROOT" > "$PG_BASE/checkout"  # whose cluster this is, for a clean-up
        pg initdb -D "$PG_DATA" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        # A new cluster holds no demo data: load it again on the next `make demo`.
        rm -f "$STACK/demo-loaded"
        cat >> "$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_RUN'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_io_timing = on
max_connections = 100
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 2GB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    fi
    if pg_alive; then log "PostgreSQL already running on $PG_PORT"; return; fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    local pid=""
    if pg pg_ctl -D "$PG_DATA" -o "-p $PG_PORT" -l "$PG_BASE/postgres.log" -w -t 60 start \
        >/dev/null; then pid=$(head -1 "$PG_DATA/postmaster.pid"); fi
    settle "$PG_PORT" "$pid" 10 "PostgreSQL did not start: see $PG_BASE/postgres.log"
}

start_redis() {
    if alive "$STACK/redis.pid"; then log "Redis already running on $REDIS_PORT"; return; fi
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$STACK/redis"
    # In the foreground (of nohup), so that its pid is known before it binds the port.
    nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$STACK/redis" --logfile "$STACK/redis.log" >/dev/null 2>&1 &
    echo $! > "$STACK/redis.pid"
    settle "$REDIS_PORT" $! 10 "Redis did not start: see .stack/redis.log"
    if [ -n "$TAKEN" ]; then return 0; fi
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
    log "Redis did not start: see .stack/redis.log"; exit 1
}

# The demo Prometheus scrapes the dashboard's verdict exporter and evaluates the example alerts.
write_prometheus_config() {
    cat > "$STACK/prometheus.yml" <<YML
# Written by scripts/stack.sh on every start.
global:
  scrape_interval: 60s
  evaluation_interval: 60s
rule_files: ['$ROOT/demo/prometheus/alerts.yml']
scrape_configs:
  - job_name: dashboard-verdicts
    static_configs: [{targets: ['127.0.0.1:$EXPORTER_PORT']}]
YML
}

start_prometheus() {
    write_prometheus_config
    if alive "$STACK/prometheus.pid"; then
        log "Prometheus already running on $PROM_PORT (configuration reloaded)"
        kill -HUP "$(cat "$STACK/prometheus.pid")"; return
    fi
    mkdir -p "$STACK/prometheus"
    log "starting Prometheus on 127.0.0.1:$PROM_PORT"
    # Long retention: retention counts from the newest block, and history is backfilled.
    nohup prometheus --config.file="$STACK/prometheus.yml" \
        --storage.tsdb.path="$STACK/prometheus" --storage.tsdb.retention.time=3650d \
        --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-admin-api \
        > "$STACK/prometheus.log" 2>&1 &
    echo $! > "$STACK/prometheus.pid"
    settle "$PROM_PORT" $! 20 "Prometheus did not start: see .stack/prometheus.log"
    if [ -n "$TAKEN" ]; then return 0; fi
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && return; sleep 0.2; done
    log "Prometheus did not become ready: see .stack/prometheus.log"; exit 1
}

start_exporter() {  # the verdict exporter (services/exporter.py) on the demo database
    if alive "$STACK/exporter.pid"; then log "verdict exporter already running on $EXPORTER_PORT"; return; fi
    log "starting the verdict exporter on 127.0.0.1:$EXPORTER_PORT"
    (
        source "$STACK/env"
        nohup .venv/bin/python -m services.exporter --port "$EXPORTER_PORT" \
            > "$STACK/exporter.log" 2>&1 &
        echo $! > "$STACK/exporter.pid"
    )
    settle "$EXPORTER_PORT" "$(cat "$STACK/exporter.pid")" 30 \
        "the verdict exporter did not start: see .stack/exporter.log"
}

# The demo's OpenID Connect provider (demo/idp.py, demo only); its accounts are in .stack/idp.json.
start_idp() {
    if alive "$STACK/idp.pid"; then log "identity provider already running on $IDP_PORT"; return; fi
    log "starting the demo identity provider on 127.0.0.1:$IDP_PORT"
    nohup .venv/bin/python -m demo.idp --state "$STACK/idp.json" serve --port "$IDP_PORT" \
        > "$STACK/idp.log" 2>&1 &
    echo $! > "$STACK/idp.pid"
    settle "$IDP_PORT" $! 20 "the identity provider did not start: see .stack/idp.log"
    if [ -n "$TAKEN" ]; then return 0; fi
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$IDP_PORT/health" >/dev/null 2>&1 && return; sleep 0.2; done
    log "the identity provider did not start: see .stack/idp.log"; exit 1
}

# One `export KEY='value'` per line: sourced by make, parsed by tests/conftest.py.
write_env() {
    local reader admin
    reader=$(secret reader); admin=$(secret admin)
    cat > "$STACK/env" <<ENV
export PGHOST='$PG_RUN'
export PGPORT='$PG_PORT'
export PGUSER='postgres'
export REDIS_PORT='$REDIS_PORT'
export PROM_PORT='$PROM_PORT'
export EXPORTER_PORT='$EXPORTER_PORT'
export STACK_SUPERUSER_URL='postgresql://postgres@/postgres?host=$PG_RUN&port=$PG_PORT'
export STACK_READER_PASSWORD='$reader'
export STACK_ADMIN_PASSWORD='$admin'
export DATABASE_URL='postgresql://dashboard_reader:$reader@127.0.0.1:$PG_PORT/aiagents_demo'
export ADMIN_DATABASE_URL='postgresql://dashboard_admin:$admin@127.0.0.1:$PG_PORT/aiagents_demo'
export REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export CELERY_BROKER_URL='redis://127.0.0.1:$REDIS_PORT/1'
export PROMETHEUS_URL='http://127.0.0.1:$PROM_PORT'
export JAEGER_URL='http://127.0.0.1:16686'
export DASHBOARD_USERS_FILE=$(q "$STACK/users.toml")
export IDP_PORT='$IDP_PORT'
export IDP_URL='http://127.0.0.1:$IDP_PORT'
ENV
}

start() {
    mkdir -p "$STACK"
    local var pg_running=""
    for var in PG_PORT REDIS_PORT PROM_PORT EXPORTER_PORT IDP_PORT; do
        if [ -n "${!var:-}" ]; then FIXED+=" $var"; fi
    done
    pg_alive && pg_running=$(sed -n 4p "$PG_DATA/postmaster.pid")
    PG_PORT=$(choose_port PostgreSQL PG_PORT "$pg_running" "$(recorded PGPORT)" 55432)
    REDIS_PORT=$(choose_port Redis REDIS_PORT "$(alive "$STACK/redis.pid" && recorded REDIS_PORT)" \
        "$(recorded REDIS_PORT)" 56379)
    PROM_PORT=$(choose_port Prometheus PROM_PORT \
        "$(alive "$STACK/prometheus.pid" && recorded PROM_PORT)" "$(recorded PROM_PORT)" 59090)
    EXPORTER_PORT=$(choose_port exporter EXPORTER_PORT \
        "$(alive "$STACK/exporter.pid" && recorded EXPORTER_PORT)" "$(recorded EXPORTER_PORT)" 59464)
    IDP_PORT=$(choose_port "identity provider" IDP_PORT \
        "$(alive "$STACK/idp.pid" && recorded IDP_PORT)" "$(recorded IDP_PORT)" 59400)
    # Written first, so the recorded ports are those of whatever runs, even after a failed start.
    write_env
    launch postgres PostgreSQL PG_PORT
    launch redis Redis REDIS_PORT
    # The exporter before Prometheus, whose configuration names the exporter's final port.
    launch exporter "the verdict exporter" EXPORTER_PORT
    launch idp "the identity provider" IDP_PORT
    launch prometheus Prometheus PROM_PORT
}

stop_pid() {
    local name=$1 file=$2 pid
    if alive "$file"; then
        pid=$(cat "$file")
        log "stopping $name"; kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$file"
}

stop() {
    stop_pid dashboard "$STACK/streamlit.pid"
    stop_pid "verdict exporter" "$STACK/exporter.pid"
    stop_pid "identity provider" "$STACK/idp.pid"
    stop_pid Prometheus "$STACK/prometheus.pid"
    stop_pid Redis "$STACK/redis.pid"
    if pg_alive; then log "stopping PostgreSQL"; pg pg_ctl -D "$PG_DATA" -m fast -w stop >/dev/null; fi
    # Older versions of this script kept the cluster in .stack/pg.
    if [ -f "$STACK/pg/postmaster.pid" ]; then
        log "stopping PostgreSQL in .stack/pg (older layout; the folder can be removed)"
        pg pg_ctl -D "$STACK/pg" -m fast -w stop >/dev/null || true
    fi
}

clean() {  # stop, then remove everything the stack keeps (data, passwords, demo accounts)
    stop
    log "removing $PG_BASE and .stack/"
    rm -rf "$PG_BASE" "$STACK"
}

status() {
    if pg_alive; then echo "postgres: running on $(recorded PGPORT) ($PG_DATA)"
    else echo "postgres: stopped ($PG_DATA)"; fi
    for s in redis prometheus exporter idp streamlit; do
        if alive "$STACK/$s.pid"; then echo "$s: running"; else echo "$s: stopped"; fi
    done
}

"${1:-status}"
