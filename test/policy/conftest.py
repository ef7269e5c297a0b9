"""Fixtures of the memory policy tests: a real Docker container and real local processes."""

import io
import os
import re
import sys
import tarfile
import uuid

import docker.errors
import pytest

from shadowhound_llm_bench.common.net import free_port

from support.containers import docker_client_per_engine  # noqa: F401
from support.ros_domains import area_domain_id
from support.waiting import wait_http

os.environ.setdefault("ROS_DOMAIN_ID", str(area_domain_id(41)))
os.environ.setdefault("DOCKER_HOST", "unix:///tmp/dockerd/docker.sock")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
PREFIX = "policy-test"

from policy_engine_support import tiny_binds  # noqa: E402


def imported_image_id(result):
    """Return the image ID an import answered with (Docker streams it, Podman returns it)."""
    ids = re.findall(r"sha256:[0-9a-f]{64}", str(result))
    return ids[-1]


@pytest.fixture(scope="session")
def empty_image(docker_client):
    """Import an empty image; containers bind-mount the host's system read-only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    tag = f"{PREFIX}-empty:{uuid.uuid4().hex[:8]}"
    result = docker_client.api.import_image_from_data(
        buffer.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1])
    # Podman names an import after its repository alone: tag it as asked.
    docker_client.images.get(imported_image_id(result)).tag(*tag.split(":"))
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except Exception:
        pass


@pytest.fixture
def tiny_container(docker_client, empty_image):
    """Run policy_tiny_ollama.py in a container on a free port; removed by handle afterwards."""
    port = free_port()
    binds = tiny_binds()
    name = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.run(
        empty_image, [sys.executable if sys.executable.startswith("/usr") else "/usr/bin/python3",
                      "/policy/policy_tiny_ollama.py", str(port)],
        name=name, detach=True, init=True, network_mode="host", volumes=binds,
        mem_limit="256m", memswap_limit="256m")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/version")
        yield name, url, container
    finally:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass  # a test replaced it (and removes its own)


@pytest.fixture
def tiny_process():
    """Give argv and URL of policy_tiny_ollama.py as a local process (the backend starts it)."""
    port = free_port()
    return [sys.executable, os.path.join(HERE, "policy_tiny_ollama.py"), str(port)], \
        f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def thor_scenario():
    from shadowhound_llm_bench.sim.scenario import load_scenario
    return load_scenario("thor_faults")


@pytest.fixture
def thor_sim_with(docker_client, thor_scenario):
    """
    Start thor simulator containers with extra faults on their command line.

    Such faults survive a container restart, unlike faults switched at run time.
    """
    from policy_sim_container import start_sim_container
    started = []

    def start(faults=""):
        sim = start_sim_container(docker_client, scenario="thor_faults", faults=faults,
                                  mem_limit_bytes=thor_scenario.container_limit_physical_bytes)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.remove()


@pytest.fixture
def thor_sim(thor_sim_with):
    """Start the thor scenario in a real container with Thor's (scaled) memory limit."""
    return thor_sim_with()
