"""Processes inside the Ollama container never count as ROS memory, whatever their arguments."""

import io
import os
import signal
import subprocess
import tarfile

import pytest
from reserve_helpers import by_pid

from shadowhound_llm_bench.adapters.ros_processes import RosProcessScanner
from shadowhound_llm_bench.engine.ros_headroom import RosHeadroom
from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings

PREFIX = f'reserve-test-{os.getpid()}'
HOST_DIRS = ('/usr', '/lib', '/lib64', '/bin', '/etc')
LOOP = 'while :; do sleep 1; done'
ROS_ARGS = ['--ros-args', '-r', '__node:=looks_like_ros']


@pytest.fixture(scope='module')
def container(docker_client):
    """Run a throwaway image (host binaries mounted read-only) whose PID 1 has --ros-args."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode='w') as tar:
        tmp = tarfile.TarInfo('tmp')
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    image = f'{PREFIX}-hostfs'
    docker_client.api.import_image_from_data(archive.getvalue(), repository=image, tag='latest')
    handle = None
    try:
        handle = docker_client.containers.run(
            f'{image}:latest', ['/bin/sh', '-c', LOOP, 'in_container', *ROS_ARGS],
            name=f'{PREFIX}-ollama', detach=True, network_mode='none', init=False,
            volumes={path: {'bind': path, 'mode': 'ro'} for path in HOST_DIRS})
        handle.reload()
        yield handle
    finally:
        if handle is not None:
            handle.remove(force=True)
        docker_client.images.remove(f'{image}:latest', force=True)


@pytest.fixture
def host_twin():
    """Run the same command line outside any container."""
    proc = subprocess.Popen(['sh', '-c', LOOP, 'on_host', *ROS_ARGS], start_new_session=True)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_container_processes_are_excluded_by_container_id(container, host_twin):
    container_pid = container.attrs['State']['Pid']
    seen = by_pid(RosProcessScanner().scan())
    assert container_pid in seen  # it does look like a ROS node

    scanner = RosProcessScanner(exclude_container_ids=[container.id])
    found = by_pid(scanner.scan())
    assert container_pid not in found
    assert host_twin.pid in found

    short = by_pid(RosProcessScanner(exclude_container_ids=[container.id[:12]]).scan())
    assert container_pid not in short


def test_headroom_takes_the_container_id_from_its_factory(container):
    headroom = RosHeadroom.from_settings(
        RosReserveSettings(), exclude_container_ids=[container.id])
    pids = {p.pid for p in headroom.sample().processes}
    assert container.attrs['State']['Pid'] not in pids


def test_a_container_name_is_refused_with_a_hint():
    with pytest.raises(ValueError, match='container.id, not the container name'):
        RosProcessScanner(exclude_container_ids=['ollama'])
