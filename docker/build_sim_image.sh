#!/usr/bin/env bash
# Build the Ollama simulator image locally (no registry): an empty image whose container
# bind-mounts the host's /usr /lib /bin /etc, the Python prefix, the venv and the repository.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$HERE/.venv/bin/python}"
cd "$HERE"
exec "$PY" -m shadowhound_llm_bench.sim.launcher build "$@"
