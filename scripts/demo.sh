#!/usr/bin/env bash
# Run the demo (python -m shadowhound_llm_bench.demo) in the bootstrapped environment.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/scripts/bootstrap.sh"
set +u
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
set -u

cd "$ROOT"
exec python -m shadowhound_llm_bench.demo "$@"
