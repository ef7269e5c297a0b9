#!/usr/bin/env bash
# Start the simulator container (default name `ollama`, scenario thor, port 11434, host network,
# init process, memory limit from the scenario). Example:
#   docker/run_sim_container.sh --scenario small --port 11500 --name sim-test
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$HERE/.venv/bin/python}"
cd "$HERE"
exec "$PY" -m shadowhound_llm_bench.sim.launcher run "$@"
