"""No term counted twice in the budget; footprints outside the sanity bound are not kept."""

import pytest

from shadowhound_llm_bench.adapters.docker_container import CgroupMemoryFiles
from shadowhound_llm_bench.adapters.host_memory import ProcMeminfoHost
from shadowhound_llm_bench.adapters.memory_sources import MemorySourceReader
from shadowhound_llm_bench.core.memory.footprint_check import rejected_measurement
from shadowhound_llm_bench.core.memory.memory_calibration import ChosenSources
from shadowhound_llm_bench.core.memory.memory_reading import ContainerState
from shadowhound_llm_bench.engine.memory_monitor import MemoryMonitor
from shadowhound_llm_bench.engine.model_memory import ModelMemoryGauge

from source_files import GIB, MIB, write_cgroup_v2, write_meminfo


class FileCgroup:
    """A container backend over cgroup files in a folder."""

    name = "files"

    def __init__(self, directory):
        self.files = CgroupMemoryFiles(str(directory))

    def sample(self):
        """Read the files now."""
        return self.files.read()

    def state(self):
        """Report running."""
        return ContainerState.RUNNING


def _budget(tmp_path, chosen):
    cgroup = tmp_path / "cg"
    # 300 MiB anonymous, 200 MiB page cache of which 150 MiB active (in the working set).
    write_cgroup_v2(cgroup, anon=300 * MIB, file=200 * MIB, inactive_file=50 * MIB)
    (cgroup / "memory.stat").write_text(
        (cgroup / "memory.stat").read_text() + f"file_mapped {120 * MIB}\n")
    meminfo = tmp_path / "meminfo"
    # MemAvailable counts the container's page cache as reclaimable, as the kernel does.
    write_meminfo(meminfo, total=8 * GIB, available=4 * GIB, free=3 * GIB, cached=GIB)
    gauge = None
    if chosen is not None:
        reader = MemorySourceReader(meminfo_path=str(meminfo),
                                    nvidia_smi_command=str(tmp_path / "none"))
        gauge = ModelMemoryGauge(reader=reader, chosen=ChosenSources(sources=chosen))
    monitor = MemoryMonitor(backend=FileCgroup(cgroup), host=ProcMeminfoHost(path=str(meminfo)),
                            safety_buffer_bytes=0, model_memory=gauge)
    return monitor.sample_now()


def test_page_cache_in_the_working_set_and_in_memavailable_is_counted_once(tmp_path):
    anon = _budget(tmp_path, ("cgroup_anon",))
    working_set = _budget(tmp_path, ("cgroup_working_set",))
    mapped = _budget(tmp_path, ("cgroup_mapped",))
    legacy = _budget(tmp_path, None)
    assert anon.memory_in_use_bytes == 300 * MIB
    assert working_set.memory_in_use_bytes == 450 * MIB
    assert mapped.memory_in_use_bytes == 420 * MIB
    # One machine, one budget, whichever source reads the model.
    expected = 300 * MIB + 4 * GIB
    assert anon.model_budget_bytes == expected
    assert working_set.model_budget_bytes == expected
    assert mapped.model_budget_bytes == expected
    assert working_set.cache_in_model_memory_bytes == 150 * MIB
    # Without the sources the 150 MiB of active page cache were counted twice.
    assert legacy.model_budget_bytes == expected + 150 * MIB
    assert anon.host_free_bytes == 3 * GIB and anon.source == "cgroup_anon"


def test_a_measurement_within_half_to_twice_the_estimate_is_kept():
    assert rejected_measurement(model="m", measured_bytes=GIB,
                                metadata_estimate_bytes=GIB) is None
    assert rejected_measurement(model="m", measured_bytes=GIB // 2,
                                metadata_estimate_bytes=GIB) is None
    assert rejected_measurement(model="m", measured_bytes=2 * GIB,
                                metadata_estimate_bytes=GIB) is None
    assert rejected_measurement(model="m", measured_bytes=7 * GIB,
                                metadata_estimate_bytes=0) is None  # no estimate to check


@pytest.mark.parametrize("measured, fragment", [
    (GIB // 3, "0.33x the metadata estimate 1.00 GiB"),
    (5 * GIB, "5.00x the metadata estimate"),
])
def test_a_measurement_outside_the_bound_is_rejected_with_the_numbers(measured, fragment):
    reason = rejected_measurement(model="m", measured_bytes=measured,
                                  metadata_estimate_bytes=GIB)
    assert reason and fragment in reason and "not kept" in reason


def test_a_measurement_taken_while_ollama_evicted_another_model_is_rejected():
    reason = rejected_measurement(model="m", measured_bytes=GIB, metadata_estimate_bytes=GIB,
                                  evicted_models=["llama3.1:8b"])
    assert reason and "evicted llama3.1:8b" in reason
