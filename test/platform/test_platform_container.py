"""The machine record names the Ollama container's image and digest (real Docker engine)."""

import uuid

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.engine.platform_monitor import PlatformMonitor, PlatformSettings
from shadowhound_llm_bench.sim.launcher import start_container_simulator


def test_container_image_and_digest_are_recorded(docker_client, tmp_path):
    name = f"platform-test-sim-{uuid.uuid4().hex[:8]}"
    handle = start_container_simulator(docker_client=docker_client, name=name,
                                       scenario="small", port=0, mem_limit_bytes=None)
    container = None
    monitor = PlatformMonitor(PlatformSettings(sysfs_root=str(tmp_path)), bandwidth_table=[])
    try:
        container = DockerContainer(name=name, ollama_base_url=f"http://127.0.0.1:{handle.port}",
                                    docker_client=docker_client)
        image, digest = container.image_ref()
        expected = docker_client.containers.get(name).image
        assert image in expected.tags
        assert digest and (digest == expected.id or digest.startswith("sha256:"))
        record = monitor.machine(ollama_version="0.0", container=container)
        assert (record.container_image, record.container_digest) == (image, digest)
    finally:
        monitor.close()
        if container is not None:
            container.close()
        handle.remove()
