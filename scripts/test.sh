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
mkdir -p log
# The Docker tests need an engine: reuse the one at DOCKER_HOST or a running one, or start one
# (root, dockerd installed); without one they skip and the last line below says which.
# SHB_NO_ENGINE_START=1 leaves DOCKER_HOST as it is.
if [ "${SHB_NO_ENGINE_START:-}" != 1 ] && host="$(DOCKERD_NO_INSTALL=1 \
        bash "$ROOT/scripts/start_docker_engine.sh" 2>"$ROOT/log/docker-engine.log")"; then
    export DOCKER_HOST="$host"
fi
opts=(-ra)
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    opts+=(-p no:cacheprovider --color=no)
fi
[ "$#" -eq 0 ] && set -- test
skips="$(mktemp)"
trap 'rm -f "$skips"' EXIT
set +e
SHB_ENGINE_SKIPS_FILE="$skips" python -m pytest "${opts[@]}" "$@"
status=$?
set -e
if [ -s "$skips" ]; then
    printf '\n\033[1;31m%s\033[0m\n' "$(cat "$skips")"
fi
exit "$status"
