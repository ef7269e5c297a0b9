"""The demo: simulator, robot load, the llm_bench node and a goal sent by the console client."""

# python -m shadowhound_llm_bench.demo [--local | --docker] [--repetitions N] [--preset P]
# Starts the Ollama simulator (thor scenario: a Jetson AGX Thor at 1/64 of its memory) in a
# Docker container when an engine is reachable and as a local process otherwise, a few
# ROS/Nav2-named rclpy processes as robot load, the llm_bench node, then sends the seed's five
# models with the console client, shows its progress and prints where the reports are. Everything
# it starts is stopped by PID (or container handle) at the end.

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .common.process_group import start_process_group, stop_process_group, wait_for_text
from .core.settings.ros_args import parameter_args

REPO = Path(__file__).resolve().parents[1]
SCENARIO = "thor"
CONTAINER_NAME = "shadowhound-demo-ollama"
REEXEC_FLAG = "SHADOWHOUND_DEMO_BOOTSTRAPPED"
GIB = 1024 ** 3
# Part of the thor scenario's ROS/Nav2 load (real machine's GB), scaled 1/64 when started.
ROBOT_LOAD_GB = {"controller_server": 2.4, "planner_server": 2.0, "map_server": 1.6,
                 "amcl": 1.4, "bt_navigator": 1.3}
READY_TEXT = "ready: action"


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def _ensure_environment() -> None:
    """On a fresh clone: bootstrap, then run again inside scripts/env.sh."""
    try:
        import rclpy  # noqa: F401
        from shadowhound_llm_bench_interfaces.action import RunBenchmark  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get(REEXEC_FLAG):
        from .ros.interfaces_import import BUILD_HINT
        sys.exit(f"error: {BUILD_HINT}")
    _say("first run: setting up (scripts/bootstrap.sh), this takes a few minutes")
    subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.sh")], check=True)
    env = dict(os.environ, **{REEXEC_FLAG: "1"})
    command = ('. scripts/env.sh && exec python -m shadowhound_llm_bench.demo "$@"')
    os.execvpe("bash", ["bash", "-c", command, "demo", *sys.argv[1:]], env)


def _docker_client() -> Optional[Any]:
    """Return a Docker client when an engine answers (DOCKER_HOST or the private socket)."""
    try:
        import docker
    except ImportError:
        return None
    if not os.environ.get("DOCKER_HOST") and Path("/tmp/dockerd/docker.sock").exists():
        os.environ["DOCKER_HOST"] = "unix:///tmp/dockerd/docker.sock"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        return client
    except Exception:
        return None


def _node_parameters(scenario: Dict[str, Any], *, backend: str, port: int,
                     results_dir: Path, preset: str, repetitions: int,
                     machine: Any = None) -> Dict[str, Any]:
    """Translate the scenario's node_parameters (bytes) into llm_bench parameters (GiB)."""
    p = scenario
    params: Dict[str, Any] = {
        "ollama_host": f"http://127.0.0.1:{port}",
        "container.backend": backend,
        "container.name": CONTAINER_NAME,
        "policy.preset": preset,
        "policy.safety_buffer_gib": p["safety_buffer_bytes"] / GIB,
        "policy.restart_before_models_over_gib": p["large_model_threshold_bytes"] / GIB,
        # The reserve follows the robot-load processes live; the floor is the scenario's.
        "reserve.floor_gib": p["ros_reserve_bytes"] / GIB / 2,
        "reserve.margin_gib": 0.5 / 64,
        "benchmark.models": list(p["models"]),
        "benchmark.repetitions": repetitions,
        "benchmark.num_ctx": int(p["num_ctx"]),
        "results_dir": str(results_dir),
        "sample_period_s": 0.25,
        # The simulated machine (the simulation group; a robot sets none of these).
        "simulation.memory_scale": float(p["memory_scale"]),
        "simulation.total_gib": p["host_total_bytes"] / GIB,
        "simulation.system_reserve_gib": p["system_reserve_bytes"] / GIB,
    }
    if backend == "process":
        # The simulator also writes a fake Thor sysfs tree whose power follows its work; the
        # node reads it as it would read /sys on the robot.
        fake_thor = str(results_dir / "fake_thor_sysfs")
        params["container.command"] = [sys.executable, "-m", "shadowhound_llm_bench.sim",
                                       "--scenario", SCENARIO, "--port", str(port), "--quiet",
                                       "--platform-root", fake_thor]
        params["platform.sysfs_root"] = fake_thor
    if machine is not None:
        # The simulated Thor's unified memory is not charged to the container: the node reads
        # the machine as it reads a robot's /proc/meminfo, nvidia-smi and drop_caches.
        params["memory.meminfo_path"] = str(machine.meminfo_path)
        params["memory.nvidia_smi_command"] = str(machine.nvidia_smi_path)
        params["memory.drop_caches_path"] = str(machine.drop_caches_path)
    return params


class Children:
    """Processes started by the demo, each in its own session, stopped by PID."""

    def __init__(self) -> None:
        self.processes: List[subprocess.Popen] = []

    def start(self, argv: List[str], **kwargs: Any) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        process = start_process_group(argv, cwd=str(REPO), env=env, **kwargs)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        # Interrupt every child first so that they shut down side by side, then reap each group.
        for process in reversed(self.processes):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGINT)
        deadline = time.monotonic() + 15.0
        for process in reversed(self.processes):
            stop_process_group(process, first_signal=None,
                               grace_s=max(0.1, deadline - time.monotonic()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shadowhound_llm_bench.demo",
                                     description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="simulator as a local process")
    where.add_argument("--docker", action="store_true", help="simulator in a Docker container")
    parser.add_argument("--preset", default="default",
                        help="memory policy preset: default | fast | conservative | adaptive")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--results-dir", default=str(Path.home() / "ollama_benchmarks" / "demo"))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the whole demo; returns the client's exit status."""
    args = build_parser().parse_args(argv)
    _ensure_environment()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", "68")
    from .common.net import free_port
    from .sim.launcher import start_container_simulator
    from .sim.scenario import load_scenario

    scenario = load_scenario(SCENARIO)
    node_parameters = _raw_node_parameters()
    docker_client = None if args.local else _docker_client()
    if args.docker and docker_client is None:
        _say("no Docker engine answers (start one with scripts/start_docker_engine.sh)")
        return 1
    results_dir = Path(args.results_dir).expanduser()
    log_dir = results_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    children = Children()
    container = None
    port = free_port()
    try:
        if docker_client is not None:
            _say(f"starting the simulator ({SCENARIO}) in Docker container {CONTAINER_NAME!r} "
                 f"on port {port}")
            container = start_container_simulator(docker_client=docker_client,
                                                  name=CONTAINER_NAME, scenario=SCENARIO,
                                                  port=port)
            backend = "docker"
        else:
            _say(f"no Docker engine: the node starts the simulator ({SCENARIO}) as a local "
                 f"process on port {port}")
            backend = "process"
        machine = getattr(container, "machine", None)
        for name, gb in ROBOT_LOAD_GB.items():
            load = children.start(
                [sys.executable, "-m", "shadowhound_llm_bench.ros.robot_load_node",
                 "--hold-mb", f"{gb * 1000 / 64:.0f}", "--ros-args", "-r", f"__node:={name}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if machine is not None:
                machine.join(load.pid, "ros")  # Nav2 shares the Thor's unified memory
        _say(f"robot load: {', '.join(ROBOT_LOAD_GB)} (rclpy processes, Nav2 sizes / 64)")
        params = _node_parameters(node_parameters, backend=backend, port=port,
                                  results_dir=results_dir, preset=args.preset,
                                  repetitions=args.repetitions,
                                  machine=machine)
        argv_node = [sys.executable, "-m", "shadowhound_llm_bench.ros.node", "--ros-args"]
        for name, value in params.items():
            argv_node += parameter_args(name, value)
        node_log = log_dir / "llm_bench_node.log"
        with open(node_log, "wb") as log:
            node = children.start(argv_node, stdout=log, stderr=subprocess.STDOUT)
        wait_for_text(node_log, READY_TEXT, node, timeout_s=60.0, what="the node")
        _say(f"llm_bench node ready (log: {node_log}); memory on /llm_bench/container_memory")
        _say(f"sending the seed's models: {', '.join(params['benchmark.models'])} "
             f"(preset {args.preset}, {args.repetitions} repetition(s))")
        client = children.start([sys.executable, "-m", "shadowhound_llm_bench.ros.client",
                                 "--server-timeout", "30"])
        status = client.wait()
        _say(f"done (client exit status {status}); scenario {scenario.name}: "
             f"{scenario.description}")
        return status
    except KeyboardInterrupt:
        _say("interrupted: stopping everything")
        return 130
    finally:
        children.stop_all()
        if container is not None:
            container.remove()


def _raw_node_parameters() -> Dict[str, Any]:
    import yaml
    from .sim.scenario import scenario_path
    data = yaml.safe_load(Path(scenario_path(SCENARIO)).read_text())
    return dict(data["node_parameters"])


if __name__ == "__main__":
    sys.exit(main())
