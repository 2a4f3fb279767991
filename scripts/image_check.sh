#!/usr/bin/env bash
# Builds the Dockerfile for real with buildah (Debian; no daemon needed) and runs the image as
# the Deployment would: its user, its command, its health check. This machine reaches no
# container registry, so python:3.11-slim-bookworm is replaced (buildah bud --from) by a
# stand-in built from Debian's own packages: bookworm minbase with Debian's python3.11 in a
# venv at /usr/local, where the official image has its python and pip. What this proves: the
# pip layer installs pyproject's dependencies, the COPYs and the user work, and the app starts
# as uid 10001 from /app and answers its health check. What it does not: the official base.
# Usage: scripts/image_check.sh (after make stack; a few minutes, most of it the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
source .stack/env

STANDIN=localhost/python-standin:3.11-slim-bookworm
IMAGE=localhost/support-dashboard:check
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot  # no overlay mounts or namespaces needed

log() { printf '[image] %s\n' "$*" >&2; }

command -v buildah >/dev/null && command -v mmdebstrap >/dev/null || {
    log "installing buildah and mmdebstrap (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah mmdebstrap
}

if ! buildah inspect --type image "$STANDIN" >/dev/null 2>&1; then
    log "building the stand-in base image from Debian packages"
    work=$(mktemp -d /var/tmp/image-standin-XXXXXX)
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --customize-hook='chroot "$1" python3 -m venv /usr/local' bookworm "$work/root.tar"
    ctr=$(buildah from scratch)
    tar -xf "$work/root.tar" -C "$(buildah mount "$ctr")"
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit --quiet --rm "$ctr" "$STANDIN" >/dev/null
    rm -rf "$work"
fi

log "building $IMAGE from the Dockerfile"
# The host's CA bundle over the base's: this machine's HTTPS to PyPI is re-signed by a local CA.
# Docker format: the OCI format has no HEALTHCHECK.
buildah bud --quiet --format docker --pull=never --from "$STANDIN" --network host --layers=false \
    --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    -t "$IMAGE" -f Dockerfile . >/dev/null

ctr=$(buildah from --pull=never "$IMAGE")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
    # chroot isolation shares the host's process ids: stop the server the check started.
    pid=$(buildah run "$ctr" -- cat /tmp/server.pid 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && sleep 1
    buildah rm "$ctr" >/dev/null
}
trap cleanup EXIT
inside() { buildah run --network host "$ctr" -- "$@"; }  # as the image's USER

[ "$(inside id -u)" = 10001 ] || { log "FAIL: the image does not run as uid 10001"; exit 1; }
if inside sh -c 'touch /app/x' 2>/dev/null; then log "FAIL: /app is writable"; exit 1; fi
if inside python -c 'import demo' 2>/dev/null; then log "FAIL: the demo is in the image"; exit 1; fi
if ! out=$(inside python -c 'import services.db, ui.common' 2>&1); then
    printf '%s\n' "$out" >&2
    log "FAIL: the app does not import"
    exit 1
fi

log "starting the image's CMD on 127.0.0.1:$port"
buildah run --network host --env STREAMLIT_SERVER_ADDRESS=127.0.0.1 \
    --env STREAMLIT_SERVER_PORT="$port" --env DATABASE_URL="$DATABASE_URL" \
    --env ADMIN_DATABASE_URL="$ADMIN_DATABASE_URL" --env REDIS_URL="$REDIS_URL" \
    "$ctr" -- sh -c "echo \$\$ > /tmp/server.pid && exec $(buildah inspect \
        --format '{{range .OCIv1.Config.Cmd}}{{.}} {{end}}' "$IMAGE")" \
    >/tmp/image-check-$port.log 2>&1 &
for _ in $(seq 60); do
    curl -fsS -m 2 "http://127.0.0.1:$port/_stcore/health" >/dev/null 2>&1 && break
    sleep 1
done
# The image's own HEALTHCHECK (["CMD", "python", "-c", code]), inside the image, on this port.
code=$(buildah inspect --format '{{index .Docker.Config.Healthcheck.Test 3}}' "$IMAGE")
inside python -c "${code//8501/$port}" || {
    log "FAIL: the health check does not pass"
    cat "/tmp/image-check-$port.log" >&2
    exit 1
}
log "OK: built, runs as uid 10001 from a read-only /app, without the demo, health check passes"
