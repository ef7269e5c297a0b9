# Source me (bash): activates .venv and the colcon install of this repository.
#   source scripts/env.sh
# Afterwards `python -c "from shadowhound_llm_bench_interfaces.action import RunBenchmark"` works.
# Run `make bootstrap` first.

_shb_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -f "$_shb_root/.venv/bin/activate" ] || [ ! -f "$_shb_root/install/setup.bash" ]; then
    echo "shadowhound_llm_bench: not bootstrapped yet; run: make bootstrap" >&2
    return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
. "$_shb_root/.venv/bin/activate"

# ROS 2 from wheels: the wheels' ament index and libraries live in the venv. A system ROS 2
# (ROS_DISTRO set by its setup.bash) brings its own paths.
if ! grep -q '^include-system-site-packages *= *true' "$_shb_root/.venv/pyvenv.cfg"; then
    _shb_site="$("$_shb_root/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)"
    case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
        export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
    case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
        export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
    # The same libraries the wheels' .pth hook adds when it re-executes Python; set here too so
    # that processes which are not Python (or skip the hook) find them.
    for _shb_lib in "$VIRTUAL_ENV/lib" "$_shb_site"/ros_*.libs; do
        [ -d "$_shb_lib" ] || continue
        case ":${LD_LIBRARY_PATH:-}:" in *":$_shb_lib:"*) ;; *)
            export LD_LIBRARY_PATH="$_shb_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
    done
    unset _shb_lib _shb_site
fi

# shellcheck disable=SC1091
. "$_shb_root/install/setup.bash"
# The package's commands (shadowhound-llm-bench, llm_bench_client, ...) as `ros2 run` finds them.
_shb_bin="$_shb_root/install/shadowhound_llm_bench/lib/shadowhound_llm_bench"
case ":$PATH:" in *":$_shb_bin:"*) ;; *) export PATH="$_shb_bin:$PATH" ;; esac
# Reuse the private Docker engine that scripts/start_docker_engine.sh starts, if it runs.
if [ -z "${DOCKER_HOST:-}" ] && [ -S /tmp/dockerd/docker.sock ]; then
    export DOCKER_HOST=unix:///tmp/dockerd/docker.sock
fi
unset _shb_root _shb_bin
