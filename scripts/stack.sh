#!/usr/bin/env bash
# The private stack under .stack/: PostgreSQL 15 (55432), Redis (56379), Prometheus (59090),
# all on loopback. Usage: scripts/stack.sh install|start|stop|status
# Idempotent: `start` reuses a running or initialised stack; `stop` stops by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STACK=$ROOT/.stack
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
PROM_PORT=${PROM_PORT:-59090}

log() { printf '[stack] %s\n' "$*"; }

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
        .venv/bin/pip install -q -e '.[dev]'
        touch .venv/.installed
    fi
}

secret() {  # a per-stack random password, kept in .stack/ so re-runs reuse it
    local f=$STACK/$1.password
    [ -f "$f" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$f")
    cat "$f"
}

pg_alive() { runuser -u postgres -- $PG_BIN/pg_ctl -D "$STACK/pg" status >/dev/null 2>&1; }

start_postgres() {
    mkdir -p "$STACK/run"
    chown postgres:postgres "$STACK/run"
    chmod 755 "$STACK" "$ROOT"
    if [ ! -f "$STACK/pg/PG_VERSION" ]; then
        log "initialising PostgreSQL in .stack/pg"
        mkdir -p "$STACK/pg" && chown postgres:postgres "$STACK/pg"
        runuser -u postgres -- $PG_BIN/initdb -D "$STACK/pg" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$STACK/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$STACK/run'
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
    if pg_alive; then log "PostgreSQL already running on $PG_PORT"; else
        log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        runuser -u postgres -- $PG_BIN/pg_ctl -D "$STACK/pg" -l "$STACK/run/postgres.log" -w -t 60 start >/dev/null
    fi
}

start_redis() {
    if [ -f "$STACK/redis.pid" ] && kill -0 "$(cat "$STACK/redis.pid")" 2>/dev/null; then
        log "Redis already running on $REDIS_PORT"; return; fi
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$STACK/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir "$STACK/redis" --pidfile "$STACK/redis.pid" \
        --logfile "$STACK/redis.log"
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
    log "Redis did not start: see .stack/redis.log"; exit 1
}

start_prometheus() {
    if [ -f "$STACK/prometheus.pid" ] && kill -0 "$(cat "$STACK/prometheus.pid")" 2>/dev/null; then
        log "Prometheus already running on $PROM_PORT"; return; fi
    mkdir -p "$STACK/prometheus"
    [ -f "$STACK/prometheus.yml" ] || printf 'global:\n  scrape_interval: 60s\nscrape_configs: []\n' > "$STACK/prometheus.yml"
    log "starting Prometheus on 127.0.0.1:$PROM_PORT"
    # Long retention: retention counts from the newest block, and history is backfilled.
    nohup prometheus --config.file="$STACK/prometheus.yml" \
        --storage.tsdb.path="$STACK/prometheus" --storage.tsdb.retention.time=3650d \
        --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-admin-api \
        > "$STACK/prometheus.log" 2>&1 &
    echo $! > "$STACK/prometheus.pid"
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && return; sleep 0.2; done
    log "Prometheus did not become ready: see .stack/prometheus.log"; exit 1
}

write_env() {
    local reader admin
    reader=$(secret reader); admin=$(secret admin)
    cat > "$STACK/env" <<ENV
export PGHOST=$STACK/run PGPORT=$PG_PORT PGUSER=postgres REDIS_PORT=$REDIS_PORT
export STACK_SUPERUSER_URL='postgresql://postgres@/postgres?host=$STACK/run&port=$PG_PORT'
export STACK_READER_PASSWORD='$reader'
export STACK_ADMIN_PASSWORD='$admin'
export DATABASE_URL='postgresql://dashboard_reader:$reader@127.0.0.1:$PG_PORT/aiagents_demo'
export ADMIN_DATABASE_URL='postgresql://dashboard_admin:$admin@127.0.0.1:$PG_PORT/aiagents_demo'
export REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export CELERY_BROKER_URL='redis://127.0.0.1:$REDIS_PORT/1'
export PROMETHEUS_URL='http://127.0.0.1:$PROM_PORT'
export JAEGER_URL='http://127.0.0.1:16686'
export DASHBOARD_USERS_FILE='$STACK/users.toml'
ENV
}

start() {
    mkdir -p "$STACK"
    start_postgres; start_redis; start_prometheus; write_env
}

stop_pid() {
    local name=$1 file=$2
    if [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; then
        log "stopping $name"; kill "$(cat "$file")"
        for _ in $(seq 50); do kill -0 "$(cat "$file")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$file"
}

stop() {
    stop_pid dashboard "$STACK/streamlit.pid"
    stop_pid Prometheus "$STACK/prometheus.pid"
    stop_pid Redis "$STACK/redis.pid"
    if pg_alive; then log "stopping PostgreSQL"
        runuser -u postgres -- $PG_BIN/pg_ctl -D "$STACK/pg" -m fast -w stop >/dev/null; fi
}

status() {
    pg_alive && echo "postgres: running on $PG_PORT" || echo "postgres: stopped"
    for s in redis prometheus streamlit; do
        if [ -f "$STACK/$s.pid" ] && kill -0 "$(cat "$STACK/$s.pid")" 2>/dev/null
        then echo "$s: running"; else echo "$s: stopped"; fi
    done
}

"${1:-status}"
