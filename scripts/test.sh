#!/usr/bin/env bash
# Run the tests: bootstrap, enter the environment, pytest over test/ (or the given pytest args).
# CI=true: no pytest cache, no colour, reasons for every skip/failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/scripts/bootstrap.sh"
set +u
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
set -u


cd "$ROOT"
opts=(-ra)
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    opts+=(-p no:cacheprovider --color=no)
fi
[ "$#" -eq 0 ] && set -- test
exec python -m pytest "${opts[@]}" "$@"
