#!/usr/bin/env bash
# Run a command while busy processes keep every core loaded (one per core, or SHB_LOAD_PROCS),
# then stop exactly those processes by their PIDs and exit with the command's status.
#   bash scripts/under_cpu_load.sh python -m pytest test/hostile -q
set -uo pipefail
procs="${SHB_LOAD_PROCS:-$(nproc 2>/dev/null || echo 2)}"
pids=()
stop_load() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    pids=()
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT TERM
for _ in $(seq 1 "$procs"); do
    # A shell loop at normal priority: it competes with the tests for every time slice.
    bash -c 'while :; do :; done' &
    pids+=("$!")
done
echo "[load] $procs busy processes (PIDs ${pids[*]}) while: $*" >&2
"$@"
status=$?
stop_load
echo "[load] stopped; the command exited with $status" >&2
exit "$status"
