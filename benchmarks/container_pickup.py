"""
How fast the Docker backend finds its container again: recreated under its name, or restarted.

Run (with DOCKER_HOST set, or --podman for the Podman socket):
    .venv/bin/python benchmarks/container_pickup.py --rounds 5
For each round a small container (the host's python holding a few MiB, bind-mounted read-only)
is recreated under the same name, then stopped and started again. Printed: the median and max
seconds from the engine reporting the new container running to the backend reading its cgroup
files (the fast path) again, side by side with the node's default sampling period, and the
backend's polling period.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from shadowhound_llm_bench.adapters.docker_container import DockerContainer  # noqa: E402
from shadowhound_llm_bench.core.settings.node_settings import NodeSettings  # noqa: E402

COMMAND = ["/usr/bin/python3", "-c",
           "import time; b = bytearray(8 << 20); b[::4096] = b'x' * len(b[::4096]); "
           "time.sleep(3600)"]
BINDS = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/bin", "/etc")}


def empty_image(client: Any) -> str:
    """Import an empty image; return its ID (Docker and Podman name imports differently)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w"):
        pass
    result = client.api.import_image_from_data(data.getvalue(), repository="shb-pickup-empty")
    return str(result).split("sha256:")[-1][:64]


def run(client: Any, image: str, name: str) -> Any:
    """Run the holder container under `name`."""
    return client.containers.run(image, COMMAND, name=name, detach=True, init=True,
                                 network_mode="host", volumes=BINDS, mem_limit="128m")


def until_running(container: Any) -> float:
    """Wait until the engine says running; the moment it did (monotonic)."""
    while True:
        container.reload()
        if container.status == "running":
            return time.monotonic()
        time.sleep(0.005)


def until_fast_path(backend: DockerContainer, container_id: str, deadline_s: float) -> float:
    """Sample as the monitor does until the backend reads this container's cgroup files."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        backend.sample()
        if backend.sampling == "cgroup" and backend.container_id == container_id:
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError("the backend did not get back to the cgroup files")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--podman", default="", help="Podman socket, e.g. "
                        "unix:///tmp/podman/podman.sock (default: the Docker engine)")
    args = parser.parse_args()
    client = (docker.DockerClient(base_url=args.podman, timeout=60) if args.podman
              else docker.from_env(timeout=60))
    image = empty_image(client)
    name = f"shb-pickup-{uuid.uuid4().hex[:8]}"
    container = run(client, image, name)
    until_running(container)
    backend = DockerContainer(name=name, ollama_base_url="http://127.0.0.1:9",
                              docker_client=client)
    recreated: List[float] = []
    restarted: List[float] = []
    try:
        for _ in range(args.rounds):
            container.remove(force=True)
            container = run(client, image, name)
            running_at = until_running(container)
            recreated.append(until_fast_path(backend, container.id, 30) - running_at)
            container.stop(timeout=1)
            while backend.sample().state.name == "RUNNING":
                time.sleep(0.01)
            container.start()
            running_at = until_running(container)
            restarted.append(until_fast_path(backend, container.id, 30) - running_at)
    finally:
        backend.close()
        container.remove(force=True)
        try:
            client.images.remove(image, force=True)
        except docker.errors.APIError:
            pass
    period_s = float(NodeSettings()["sample_period_s"])
    engine = "podman" if args.podman else "docker"
    print(f"engine {engine}, {args.rounds} rounds; node sampling period {period_s:.2f} s, "
          f"backend look-up period {backend.resolve_period_s:.2f} s")
    for label, values in (("recreated under its name", recreated),
                          ("stopped, then started", restarted)):
        print(f"{label:26s} back on cgroup files after: median {statistics.median(values):.3f} s"
              f", max {max(values):.3f} s = {max(values) / period_s:.2f} sampling periods")
    return 0


if __name__ == "__main__":
    sys.exit(main())
