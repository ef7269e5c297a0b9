"""Calibration chooses the sources that track a model: cgroup-charged vs unified memory."""

import pytest

from shadowhound_llm_bench.adapters.docker_container import CgroupMemoryFiles
from shadowhound_llm_bench.adapters.memory_sources import MemorySourceReader
from shadowhound_llm_bench.core.memory.memory_calibration import (
    CalibrationResult, choose_sources, model_memory_bytes)
from shadowhound_llm_bench.core.memory.memory_sources import source_values
from shadowhound_llm_bench.engine.calibration_store import CalibrationStore

from source_files import (GIB, MIB, compute_apps, write_cgroup_v2, write_meminfo,
                          write_nvidia_smi)

MODEL_BYTES = 600 * MIB


class Machine:
    """Real files of one machine: cgroup v2 directory, meminfo, an nvidia-smi stand-in."""

    def __init__(self, tmp_path):
        self.cgroup = tmp_path / "cgroup"
        self.meminfo = tmp_path / "meminfo"
        self.answer = tmp_path / "apps.csv"
        self.smi = write_nvidia_smi(tmp_path, answer_file=self.answer)
        self.reader = MemorySourceReader(meminfo_path=str(self.meminfo),
                                         nvidia_smi_command=self.smi, gpu_deadline_s=5.0)

    def set(self, *, anon, file, gpu, available, free):
        write_cgroup_v2(self.cgroup, anon=anon, file=file, inactive_file=file // 2)
        write_meminfo(self.meminfo, total=8 * GIB, available=available, free=free,
                      cached=file + 512 * MIB)
        self.answer.write_text(compute_apps((4242, "/usr/bin/ollama", gpu // MIB)) if gpu
                               else "")

    def values(self, other_host_bytes=0):
        container = CgroupMemoryFiles(str(self.cgroup)).read()
        snapshot = self.reader.snapshot(container, ros_live_bytes=0, with_ps=False)
        assert not snapshot.errors, snapshot.errors
        return source_values(snapshot, gpu_name_pattern="ollama",
                             other_host_bytes=other_host_bytes)


def _calibrate(machine, loaded):
    machine.set(anon=50 * MIB, file=20 * MIB, gpu=0, available=6 * GIB, free=3 * GIB)
    before = machine.values()
    other = 2 * GIB - before["cgroup_anon"]  # host used (8 - 6 GiB) minus the container
    before = machine.values(other)
    machine.set(**loaded)
    after = machine.values(other)
    return choose_sources(machine="robot|8GiB", model="qwen2.5:0.5b",
                          predicted_bytes=MODEL_BYTES, before=before, after=after,
                          other_host_bytes=other)


def test_a_cgroup_charged_machine_reads_the_containers_anonymous_pages(tmp_path):
    # CPU-only / discrete GPU: the weights are the runner's anonymous pages in the container.
    result = _calibrate(Machine(tmp_path), dict(anon=50 * MIB + MODEL_BYTES, file=20 * MIB,
                                                gpu=0, available=6 * GIB - MODEL_BYTES,
                                                free=3 * GIB - MODEL_BYTES))
    assert result.tracked and result.chosen == ("cgroup_anon",)
    moved = {m.source: m for m in result.movements}
    assert moved["cgroup_anon"].ratio == pytest.approx(1.0)
    assert moved["gpu_processes"].delta_bytes == 0
    assert "cgroup-charged" in result.reason


def test_a_unified_machine_adds_gpu_memory_held_outside_the_cgroup(tmp_path):
    # Jetson Thor: the driver holds the weights; the container sees the runner's CPU share.
    result = _calibrate(Machine(tmp_path), dict(anon=50 * MIB + 40 * MIB, file=20 * MIB,
                                                gpu=560 * MIB, available=6 * GIB - MODEL_BYTES,
                                                free=3 * GIB - MODEL_BYTES))
    assert result.tracked and result.chosen == ("cgroup_anon", "gpu_processes")
    moved = {m.source: m for m in result.movements}
    assert not moved["cgroup_anon"].tracks and moved["gpu_processes"].tracks
    assert "outside the container" in result.reason


def test_gpu_memory_charged_to_the_cgroup_is_counted_once(tmp_path):
    result = _calibrate(Machine(tmp_path), dict(anon=50 * MIB + MODEL_BYTES, file=20 * MIB,
                                                gpu=MODEL_BYTES,
                                                available=6 * GIB - MODEL_BYTES,
                                                free=3 * GIB - MODEL_BYTES))
    assert result.chosen == ("cgroup_anon",)
    assert "counted once" in result.note


def test_only_the_host_saw_it_when_there_are_no_gpu_numbers(tmp_path):
    machine = Machine(tmp_path)
    result = _calibrate(machine, dict(anon=60 * MIB, file=20 * MIB, gpu=0,
                                      available=6 * GIB - MODEL_BYTES, free=3 * GIB - MODEL_BYTES))
    assert result.chosen == ("host_used",)
    # host_used then reads as model memory: what the machine uses beyond ROS and the rest.
    values = machine.values(result.other_host_bytes)
    assert model_memory_bytes(values, result.chosen) == pytest.approx(
        MODEL_BYTES + 50 * MIB, abs=MIB)


def test_nothing_tracked_keeps_the_working_set_and_says_so(tmp_path):
    result = _calibrate(Machine(tmp_path), dict(anon=52 * MIB, file=20 * MIB, gpu=0,
                                                available=6 * GIB, free=3 * GIB))
    assert not result.tracked and result.chosen == ("cgroup_working_set",)
    assert "may be wrong" in result.describe()


def test_the_result_is_kept_per_machine_beside_the_footprint_cache(tmp_path):
    result = _calibrate(Machine(tmp_path), dict(anon=50 * MIB + 40 * MIB, file=20 * MIB,
                                                gpu=560 * MIB, available=6 * GIB - MODEL_BYTES,
                                                free=3 * GIB - MODEL_BYTES))
    path = tmp_path / "memory_calibration.json"
    CalibrationStore(str(path)).put(result)
    again = CalibrationStore(str(path)).get("robot|8GiB")
    assert again == CalibrationResult.from_dict(result.to_dict())
    assert again.chosen == ("cgroup_anon", "gpu_processes")
    assert CalibrationStore(str(path)).get("another-robot") is None
    path.write_text("{not json")
    assert CalibrationStore(str(path)).get("robot|8GiB") is None  # damaged: set aside
    assert list(tmp_path.glob("memory_calibration.json.damaged-*"))
