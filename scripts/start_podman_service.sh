#!/usr/bin/env bash
# Start Podman's Docker-compatible API service if none answers (or reuse it); print its socket.
#
#   export SHB_PODMAN_HOST="$(bash scripts/start_podman_service.sh)"
#
# Needs `podman` (Debian: apt-get install podman). The service runs as root under
# $PODMAN_DIR (default /tmp/podman) with a containers.conf that keeps containers' ulimits
# within this machine's hard limits (Podman's defaults exceed them in some sandboxes, and
# runc then refuses to start anything). catatonit (`--init`) is installed when missing.
# Messages go to stderr; stdout carries only the unix:// address. Stops nothing.
set -euo pipefail

P="${PODMAN_DIR:-/tmp/podman}"
HOST="unix://$P/podman.sock"
READY_TIMEOUT_S="${PODMAN_READY_TIMEOUT_S:-30}"

log() { printf '[podman-service] %s\n' "$*" >&2; }
die() { printf '[podman-service] ERROR: %s\n' "$*" >&2; exit 1; }

answers() {
    [ -S "$P/podman.sock" ] && command -v curl >/dev/null 2>&1 \
        && [ "$(curl -s --max-time 5 --unix-socket "$P/podman.sock" http://localhost/_ping)" = OK ]
}

command -v podman >/dev/null 2>&1 || die "podman is not installed (apt-get install podman)"
mkdir -p "$P"
exec 9>>"$P/start.lock"
command -v flock >/dev/null 2>&1 && flock -w $((READY_TIMEOUT_S + 30)) 9
if answers; then
    log "reusing the Podman service at $HOST"
    printf '%s\n' "$HOST"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "this script starts a rootful Podman service; run it as root"
if [ ! -x /usr/libexec/podman/catatonit ] && ! command -v catatonit >/dev/null 2>&1; then
    log "installing catatonit (the init process of --init containers)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq catatonit >&2 \
        || die "apt-get install catatonit failed"
fi
hard() { local v; v="$(ulimit -H "$1")"; [ "$v" = unlimited ] && v=1048576; printf '%s' "$v"; }
cat >"$P/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(hard -n):$(hard -n)", "nproc=$(hard -u):$(hard -u)"]
EOF
rm -f "$P/podman.sock"
log "starting podman system service at $HOST"
CONTAINERS_CONF="$P/containers.conf" setsid nohup podman system service --time=0 "$HOST" \
    >"$P/service.log" 2>&1 </dev/null 9>&- &
echo $! >"$P/service.pid"
deadline=$((SECONDS + READY_TIMEOUT_S))
until answers; do
    kill -0 "$(cat "$P/service.pid")" 2>/dev/null || die "podman service exited; log: $P/service.log"
    [ "$SECONDS" -lt "$deadline" ] || die "podman service did not answer within ${READY_TIMEOUT_S} s"
    sleep 0.2
done
log "Podman service ready at $HOST"
printf '%s\n' "$HOST"
