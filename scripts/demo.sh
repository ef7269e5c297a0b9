#!/usr/bin/env bash
# Run the demo (python -m shadowhound_llm_bench.demo) in the bootstrapped environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/scripts/bootstrap.sh"
set +u
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
set -u
if [ -z "${DOCKER_HOST:-}" ] && [ -S /tmp/dockerd/docker.sock ]; then
    export DOCKER_HOST=unix:///tmp/dockerd/docker.sock
fi

cd "$ROOT"
if ! python -c 'import importlib.util, sys
sys.exit(0 if importlib.util.find_spec("shadowhound_llm_bench.demo") else 1)' 2>/dev/null; then
    echo "The demo is not available yet: module shadowhound_llm_bench.demo does not exist." >&2
    echo "What exists can be checked with: make test" >&2
    exit 2
fi
exec python -m shadowhound_llm_bench.demo "$@"
