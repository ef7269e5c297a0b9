#!/usr/bin/env bash
# Start a Docker engine if none is reachable (or reuse the running one); print its DOCKER_HOST.
#
#   export DOCKER_HOST="$(bash scripts/start_docker_engine.sh)"
#
# Order: $DOCKER_HOST, the system socket /var/run/docker.sock, then a private engine under
# /tmp/dockerd (started here when needed: installs Debian's docker.io if dockerd is missing).
# Messages go to stderr; stdout carries only the DOCKER_HOST value. Stops nothing.
# Concurrent callers share one engine: the look-and-start runs under a lock ($D/start.lock,
# flock), so a second caller waits for the first one's engine and reuses it.
set -euo pipefail

D="${DOCKERD_DIR:-/tmp/dockerd}"
PRIVATE_HOST="unix://$D/docker.sock"
READY_TIMEOUT_S="${DOCKERD_READY_TIMEOUT_S:-30}"
LOCK_TIMEOUT_S="${DOCKERD_LOCK_TIMEOUT_S:-$((READY_TIMEOUT_S + 30))}"

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { printf '[docker-engine] ERROR: %s\n' "$*" >&2; exit 1; }

# True when an engine answers /_ping on the given unix:// host within a few seconds.
engine_answers() {
    local host="$1" sock
    case "$host" in unix://*) sock="${host#unix://}" ;; *) return 1 ;; esac
    [ -S "$sock" ] || return 1
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -s --max-time 5 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" = OK ]
    else
        DOCKER_HOST="$host" timeout 5 docker version >/dev/null 2>&1
    fi
}

# A caller that may not write there cannot start an engine either: it only looks, unlocked.
if mkdir -p "$D" 2>/dev/null && (: >>"$D/start.lock") 2>/dev/null; then
    exec 9>>"$D/start.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w "$LOCK_TIMEOUT_S" 9 \
            || die "another start of the engine under $D held $D/start.lock for ${LOCK_TIMEOUT_S} s"
    fi
fi

for host in "${DOCKER_HOST:-}" unix:///var/run/docker.sock "$PRIVATE_HOST"; do
    if [ -n "$host" ] && engine_answers "$host"; then
        log "reusing the Docker engine at $host"
        printf '%s\n' "$host"
        exit 0
    fi
done

if ! command -v dockerd >/dev/null 2>&1; then
    [ "${DOCKERD_NO_INSTALL:-}" != 1 ] || die "dockerd is not installed (DOCKERD_NO_INSTALL=1)"
    [ "$(id -u)" = 0 ] || die "dockerd is not installed; run as root or: sudo apt-get install docker.io"
    log "installing Debian's docker.io (about 20 s)"
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >&2 \
        || die "apt-get install docker.io failed"
fi
[ "$(id -u)" = 0 ] || die "starting dockerd needs root; start a Docker engine and set DOCKER_HOST"

# True when pid is a live (not zombie) process named name; a stale pid file may name a reused pid.
is_live() {
    local pid="$1" name="$2"
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ] \
        && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

mkdir -p "$D/data" "$D/exec"
if [ -f "$D/dockerd.pid" ]; then
    old_pid="$(cat "$D/dockerd.pid" 2>/dev/null || true)"
    if is_live "$old_pid" dockerd; then
        # Started by someone not holding the lock and still starting up: give it its time.
        deadline=$((SECONDS + READY_TIMEOUT_S))
        until engine_answers "$PRIVATE_HOST"; do
            is_live "$old_pid" dockerd && [ "$SECONDS" -lt "$deadline" ] \
                || die "dockerd (pid $old_pid) runs under $D but does not answer; see $D/dockerd.log"
            sleep 0.2
        done
        log "reusing the Docker engine at $PRIVATE_HOST"
        printf '%s\n' "$PRIVATE_HOST"
        exit 0
    fi
    rm -f "$D/dockerd.pid" "$D/docker.sock"
fi
# dockerd waits for a containerd named in a leftover pid file; drop it when that one is gone.
containerd_pid_file="$D/exec/containerd/containerd.pid"
if [ -f "$containerd_pid_file" ] && ! is_live "$(cat "$containerd_pid_file")" containerd; then
    rm -f "$containerd_pid_file"
fi
log "starting dockerd under $D"
# Its own session and no hangup: the engine outlives this script and the shell that ran it.
setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
    --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
    --host "$PRIVATE_HOST" >"$D/dockerd.log" 2>&1 </dev/null 9>&- &
started_pid=$!

deadline=$((SECONDS + READY_TIMEOUT_S))
until engine_answers "$PRIVATE_HOST"; do
    if ! kill -0 "$started_pid" 2>/dev/null; then
        tail -n 20 "$D/dockerd.log" >&2 || true
        die "dockerd exited at start; log: $D/dockerd.log"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 20 "$D/dockerd.log" >&2 || true
        die "dockerd did not answer within ${READY_TIMEOUT_S} s; log: $D/dockerd.log"
    fi
    sleep 0.2
done
log "Docker engine ready at $PRIVATE_HOST"
printf '%s\n' "$PRIVATE_HOST"
