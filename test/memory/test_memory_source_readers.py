"""Reading memory sources from real files, a real nvidia-smi stand-in and real processes."""

import importlib.util
import subprocess
import sys

import pytest

from shadowhound_llm_bench.adapters.docker_container import CgroupMemoryFiles
from shadowhound_llm_bench.adapters.memory_sources import (
    GpuMemoryUnavailable, MemorySourceReader, NvidiaSmiGpu, NvmlGpu, cgroup_of, open_gpu_reader,
    read_host_meminfo)
from shadowhound_llm_bench.adapters.process_container import process_tree_memory
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceError

from source_files import (GIB, MIB, compute_apps, write_cgroup_v1, write_cgroup_v2,
                          write_meminfo, write_nvidia_smi)


def test_host_meminfo_is_read_from_a_configurable_path(tmp_path):
    path = tmp_path / "meminfo"
    write_meminfo(path, total=2 * GIB, available=GIB, free=256 * MIB, cached=512 * MIB)
    info = read_host_meminfo(str(path))
    assert (info.total_bytes, info.available_bytes, info.free_bytes, info.cached_bytes) == (
        2 * GIB, GIB, 256 * MIB, 512 * MIB)
    with pytest.raises(MemorySourceError, match=str(tmp_path / "absent")):
        read_host_meminfo(str(tmp_path / "absent"))


def test_the_real_proc_meminfo_reads():
    info = read_host_meminfo()
    assert 0 < info.available_bytes <= info.total_bytes


def test_nvidia_smi_stand_in_is_asked_the_compute_apps_query(tmp_path):
    answer = tmp_path / "answer.csv"
    command = write_nvidia_smi(tmp_path, answer_file=answer)
    answer.write_text(compute_apps((4242, "/usr/bin/ollama", 1536), (7, "nav2", 64)))
    gpu = NvidiaSmiGpu(command=command, deadline_s=5.0)
    assert gpu.available()
    apps = gpu.processes()
    assert [(a.pid, a.used_bytes) for a in apps] == [(4242, 1536 * MIB), (7, 64 * MIB)]
    answer.write_text("")  # the runner exited: nothing holds GPU memory
    assert gpu.processes() == ()


def test_a_hung_nvidia_smi_is_cut_at_the_deadline(tmp_path):
    command = write_nvidia_smi(tmp_path, answer_file=tmp_path / "a.csv", sleep_s=30)
    with pytest.raises(GpuMemoryUnavailable, match="did not answer within 0.5 s"):
        NvidiaSmiGpu(command=command, deadline_s=0.5).processes()


def test_a_failing_nvidia_smi_says_why(tmp_path):
    command = write_nvidia_smi(tmp_path, answer_file=tmp_path / "a.csv", exit_code=9)
    with pytest.raises(GpuMemoryUnavailable, match="exited 9: .*communicate with the driver"):
        NvidiaSmiGpu(command=command, deadline_s=5.0).processes()


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None,
                    reason="the NVML binding is installed here")
def test_without_nvml_and_nvidia_smi_there_is_no_gpu_source(tmp_path):
    with pytest.raises(GpuMemoryUnavailable, match="nvidia-ml-py"):
        NvmlGpu()
    reader, why = open_gpu_reader(nvidia_smi_command=str(tmp_path / "no-such-smi"))
    assert reader is None
    assert "not found" in why and "nvidia-ml-py" in why
    source = MemorySourceReader(meminfo_path=str(tmp_path / "absent"),
                                nvidia_smi_command=str(tmp_path / "no-such-smi"))
    snapshot = source.snapshot(None)
    assert snapshot.gpu_processes is None and snapshot.meminfo is None
    assert "nvidia-ml-py" in snapshot.errors["gpu"] and "absent" in snapshot.errors["meminfo"]


@pytest.mark.parametrize("version", [1, 2])
def test_container_cgroup_files_split_anonymous_and_file_pages(tmp_path, version):
    directory = tmp_path / "cg"
    if version == 2:
        write_cgroup_v2(directory, anon=300 * MIB, file=200 * MIB, inactive_file=150 * MIB)
    else:
        write_cgroup_v1(directory, rss=300 * MIB, cache=200 * MIB, inactive_file=150 * MIB)
    sample = CgroupMemoryFiles(str(directory)).read()
    assert sample.cgroup_version == version
    assert (sample.anon_bytes, sample.file_bytes) == (300 * MIB, 200 * MIB)
    assert sample.working_set_bytes == 350 * MIB
    split = cgroup_of(sample)
    assert split.anon_bytes == 300 * MIB and split.working_set_bytes == 350 * MIB


def test_a_process_trees_anonymous_memory_grows_with_what_it_allocates():
    code = ("import sys, time\nblock = bytearray(96 * 1024 * 1024)\n"
            "for i in range(0, len(block), 4096): block[i] = 1\n"
            "print('held', flush=True)\ntime.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        sample = process_tree_memory(child.pid)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert sample.anon_bytes >= 90 * MIB
    assert 0 <= sample.file_bytes < sample.usage_bytes
