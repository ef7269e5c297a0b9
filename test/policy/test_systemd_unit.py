"""
The systemd backend against a real unit-like service.

systemd is not PID 1 on the test machine (no /run/systemd/system), so what stands in for it is
systemctl_standin.py: a systemctl-compatible command that starts the unit's process (the tiny
Ollama) inside a real cgroup v1 memory cgroup it creates under /sys/fs/cgroup/memory, stops it
by signalling every process of that cgroup, and answers `show` from the cgroup's processes.
The backend reads the real cgroup files and restarts a real process through that command.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from support.waiting import wait_http

from shadowhound_llm_bench.common.net import free_port
from shadowhound_llm_bench.adapters.cgroup_memory import (
    CgroupMemoryFiles, memory_cgroup_dir, memory_cgroup_of_pid)
from shadowhound_llm_bench.adapters.container_backend import (
    ContainerControlUnavailable, ContainerNotFound)
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.adapters.systemd_unit import SystemdUnit, unit_name
from shadowhound_llm_bench.core.memory.memory_reading import ContainerState
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "systemctl_standin.py")
V1_MEMORY = "/sys/fs/cgroup/memory"
HOLD = 64 * MIB


def _v1_memory_writable():
    if not os.path.isdir(V1_MEMORY):
        return "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory"
    probe = os.path.join(V1_MEMORY, f"shb-probe-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        return f"cannot create a memory cgroup here ({exc}): needs root and cgroup v1"
    return ""


@pytest.fixture
def service(tmp_path):
    """Run a unit `shb-ollama-<id>.service` through the stand-in, in its own memory cgroup."""
    why = _v1_memory_writable()
    if why:
        pytest.skip(why)
    tag = uuid.uuid4().hex[:8]
    name = f"shb-ollama-{tag}"
    slice_path = f"/shb-test-{tag}"
    port = free_port()
    units = {unit_name(name): {
        "cgroup": f"{slice_path}/{unit_name(name)}",
        "argv": [sys.executable, os.path.join(HERE, "policy_tiny_ollama.py"), str(port)],
        "log": str(tmp_path / "service.log")}}
    (tmp_path / "units.json").write_text(json.dumps(units))
    systemctl = [sys.executable, STANDIN, "--state", str(tmp_path)]
    subprocess.run([*systemctl, "start", unit_name(name)], check=True, timeout=30)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/version")
        yield name, url, systemctl, tmp_path
    finally:
        (tmp_path / "deny").unlink(missing_ok=True)
        subprocess.run([*systemctl, "stop", unit_name(name)], timeout=30, check=False)
        for directory in (os.path.join(V1_MEMORY, slice_path.lstrip("/"), unit_name(name)),
                          os.path.join(V1_MEMORY, slice_path.lstrip("/"))):
            for _ in range(50):  # the kernel frees an emptied cgroup a moment later
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def test_unit_memory_is_read_from_its_own_cgroup(service):
    name, url, systemctl, _ = service
    backend = SystemdUnit(name=name, ollama_base_url=url, systemctl=systemctl)
    assert backend.unit == f"{name}.service"
    assert backend.cgroup_directory.startswith(V1_MEMORY + "/shb-test-")
    pid = CgroupMemoryFiles(backend.cgroup_directory).pids()[0]
    assert memory_cgroup_of_pid(pid).endswith(f"/{name}.service")
    empty = backend.sample()
    assert empty.state is ContainerState.RUNNING and empty.working_set_bytes > 0
    httpx.post(f"{url}/hold/{HOLD}", timeout=10)
    held = backend.sample()
    assert held.working_set_bytes - empty.working_set_bytes >= 0.9 * HOLD
    assert backend.state() is ContainerState.RUNNING


def test_restart_goes_through_systemctl_and_returns_the_memory(service):
    name, url, systemctl, _ = service
    backend = SystemdUnit(name=name, ollama_base_url=url, systemctl=systemctl)
    cgroup = CgroupMemoryFiles(backend.cgroup_directory)
    first_pids = cgroup.pids()
    httpx.post(f"{url}/hold/{HOLD}", timeout=10)
    before = backend.sample().working_set_bytes
    took_s = backend.restart(deadline_s=30)
    assert 0 < took_s < 30
    assert httpx.get(f"{url}/api/version", timeout=2).json()["version"] == "0.0.0-tiny"
    assert cgroup.pids() and set(cgroup.pids()).isdisjoint(first_pids)  # a new process
    after = backend.sample()
    assert after.state is ContainerState.RUNNING
    assert before - after.working_set_bytes >= 0.9 * HOLD


def test_a_stopped_unit_reads_stopped_and_start_brings_it_back(service):
    name, url, systemctl, _ = service
    backend = SystemdUnit(name=name, ollama_base_url=url, systemctl=systemctl,
                          resolve_period_s=0.0)
    subprocess.run([*systemctl, "stop", f"{name}.service"], check=True, timeout=30)
    assert backend.state() is ContainerState.STOPPED
    stopped = backend.sample()
    assert stopped.state is ContainerState.STOPPED and stopped.working_set_bytes == 0
    backend.start(deadline_s=30)
    assert backend.state() is ContainerState.RUNNING
    assert backend.sample().state is ContainerState.RUNNING


def test_without_permission_restart_is_a_clear_error_and_the_guard_goes_on(service):
    name, url, systemctl, state_dir = service
    backend = SystemdUnit(name=name, ollama_base_url=url, systemctl=systemctl)
    (state_dir / "deny").write_text("")  # the stand-in answers as systemd does to non-root
    with pytest.raises(ContainerControlUnavailable, match="no permission to restart"):
        backend.restart(deadline_s=10)
    with OllamaClient(base_url=url) as client:
        guard = build_memory_guard(settings=preset_settings("default"), client=client,
                                   backend=backend, footprint_cache_path=None,
                                   management_costs_path="")
        try:
            retry = guard.on_load_failure("phi4:14b", "do load request: EOF", 1)
            assert retry  # the policy's next option: retry once without the restart
            impossible = [d for d in guard.decisions() if "restart not possible" in d.reason]
            assert impossible and "no permission to restart" in impossible[0].reason
        finally:
            guard.close()
    assert backend.state() is ContainerState.RUNNING


def test_the_memory_limit_is_set_through_systemd(service):
    name, url, systemctl, _ = service
    backend = SystemdUnit(name=name, ollama_base_url=url, systemctl=systemctl)
    backend.set_memory_limit(300 * MIB)
    assert backend.sample().limit_bytes == 300 * MIB


def test_an_unknown_unit_is_not_found(service):
    _, url, systemctl, _ = service
    with pytest.raises(ContainerNotFound, match="no systemd unit shb-nothing.service"):
        SystemdUnit(name="shb-nothing", ollama_base_url=url, systemctl=systemctl)


def test_a_cgroup_v2_unit_directory_is_found_and_read(tmp_path):
    # A unified (v2) hierarchy laid out as files: what systemd's ControlGroup path points to.
    unit_dir = tmp_path / "system.slice" / "ollama.service"
    unit_dir.mkdir(parents=True)
    (unit_dir / "memory.current").write_text(str(96 * MIB))
    (unit_dir / "memory.stat").write_text(f"anon {80 * MIB}\ninactive_file {16 * MIB}\n")
    (unit_dir / "memory.max").write_text("max\n")
    directory = memory_cgroup_dir("/system.slice/ollama.service", str(tmp_path))
    assert directory == str(unit_dir)
    sample = CgroupMemoryFiles(directory).read()
    assert (sample.working_set_bytes, sample.usage_bytes, sample.limit_bytes) == \
        (80 * MIB, 96 * MIB, 0)
