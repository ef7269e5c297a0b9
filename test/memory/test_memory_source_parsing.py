"""Parsing every memory source into typed records (core/memory/memory_sources.py)."""

import pytest

from shadowhound_llm_bench.core.memory.memory_sources import (
    CGROUP_ANON, GPU_PROCESSES, HOST_USED, NVMAP, OLLAMA_PS, MemorySourceError,
    MemorySourceSettings, SourceSnapshot, cgroup_memory, host_meminfo, ollama_ps_memory,
    parse_cgroup_stat, parse_compute_apps, parse_meminfo, parse_sources_setting, source_values)

KIB = 1024
MIB = 1024 * KIB


def test_meminfo_fields_are_bytes_and_nvmap_is_read_where_present():
    text = ("MemTotal:  131072000 kB\nMemFree:  1000 kB\nMemAvailable:  64000000 kB\n"
            "Cached:  60000000 kB\nNvMapMemUsed:  2048 kB\nHugePages_Total:  0\n")
    info = host_meminfo(parse_meminfo(text))
    assert info.total_bytes == 131072000 * KIB
    assert info.free_bytes == 1000 * KIB
    assert info.cached_bytes == 60000000 * KIB
    assert info.nvmap_bytes == 2048 * KIB
    assert info.used_bytes == (131072000 - 64000000) * KIB
    # Thor has no NvMapMemUsed: the field is absent, not zero; MemFree and Cached not read: -1.
    without = host_meminfo(parse_meminfo("MemTotal: 10 kB\nMemAvailable: 5 kB\n"))
    assert without.nvmap_bytes is None and without.free_bytes == -1
    assert without.cached_bytes == -1 and without.used_bytes == 5 * KIB


@pytest.mark.parametrize("text, fragment", [
    ("MemTotal 10 kB\n", "line 1"),
    ("MemTotal: ten kB\n", "no number"),
    ("MemFree: 10 kB\n", "lacks MemTotal, MemAvailable"),
])
def test_a_broken_meminfo_is_refused_with_the_line(text, fragment):
    with pytest.raises(MemorySourceError, match=fragment):
        host_meminfo(parse_meminfo(text))


def test_cgroup_v2_splits_anonymous_and_file_pages():
    stat = parse_cgroup_stat(f"anon {300 * MIB}\nfile {200 * MIB}\n"
                             f"inactive_file {150 * MIB}\nslab 4096\n")
    split = cgroup_memory(usage_bytes=500 * MIB, stat=stat, limit_bytes=0, version=2)
    assert (split.anon_bytes, split.file_bytes) == (300 * MIB, 200 * MIB)
    assert split.working_set_bytes == 350 * MIB  # active file pages stay in the working set


def test_cgroup_v1_uses_the_hierarchical_totals_or_the_local_counts():
    hierarchical = parse_cgroup_stat(f"rss 1\ncache 2\ntotal_rss {64 * MIB}\n"
                                     f"total_cache {32 * MIB}\ntotal_inactive_file {8 * MIB}\n")
    split = cgroup_memory(usage_bytes=96 * MIB, stat=hierarchical, limit_bytes=0, version=1)
    assert (split.anon_bytes, split.file_bytes) == (64 * MIB, 32 * MIB)
    assert split.working_set_bytes == 88 * MIB
    local = cgroup_memory(usage_bytes=96 * MIB, stat={"cache": 16 * MIB}, limit_bytes=0,
                          version=1)
    assert (local.anon_bytes, local.file_bytes) == (80 * MIB, 16 * MIB)


def test_compute_apps_csv_with_na_and_commas_in_names():
    text = ("1234, /usr/bin/ollama, 4096\n"
            "99, python3 -c print(1,2), 10\n"
            "77, gst-launch-1.0, [N/A]\n"
            "\n")
    apps = parse_compute_apps(text)
    assert [(a.pid, a.process_name, a.used_bytes) for a in apps] == [
        (1234, "/usr/bin/ollama", 4096 * MIB), (99, "python3 -c print(1,2)", 10 * MIB),
        (77, "gst-launch-1.0", 0)]
    assert parse_compute_apps("No running processes found\n") == ()
    with pytest.raises(MemorySourceError, match="line 1"):
        parse_compute_apps("pid, name, 12\n")


def test_ollama_ps_sizes_are_summed_and_scaled_to_this_machine():
    ps = ollama_ps_memory([{"size": 64 * MIB, "size_vram": 64 * MIB},
                           {"size": 128 * MIB, "size_vram": 0}], memory_scale=0.5)
    assert (ps.models, ps.size_bytes, ps.size_vram_bytes) == (2, 96 * MIB, 32 * MIB)


def test_source_values_take_only_ollamas_gpu_processes_and_leave_absent_sources_out():
    snapshot = SourceSnapshot(
        stamp_s=0.0, cgroup=cgroup_memory(usage_bytes=10 * MIB, stat={"anon": 6 * MIB},
                                          limit_bytes=0, version=2),
        meminfo=host_meminfo({"MemTotal": 100 * MIB, "MemAvailable": 40 * MIB}),
        gpu_processes=parse_compute_apps("1, /usr/bin/ollama, 30\n2, nav2_costmap, 5\n"),
        ros_live_bytes=10 * MIB)
    values = source_values(snapshot, gpu_name_pattern="ollama", other_host_bytes=20 * MIB)
    assert values[CGROUP_ANON] == 6 * MIB
    assert values[GPU_PROCESSES] == 30 * MIB  # the robot's own GPU user is not Ollama's
    assert values[HOST_USED] == (60 - 10 - 20) * MIB
    assert NVMAP not in values and OLLAMA_PS not in values


def test_sources_setting_is_auto_or_known_names():
    assert parse_sources_setting("auto") == ()
    assert parse_sources_setting(["auto"]) == ()
    assert parse_sources_setting(["cgroup_anon", "gpu_processes", "cgroup_anon"]) == (
        "cgroup_anon", "gpu_processes")
    with pytest.raises(MemorySourceError, match="unknown source.*vram"):
        parse_sources_setting(["vram"])
    with pytest.raises(MemorySourceError, match="must not be empty"):
        MemorySourceSettings(meminfo_path=" ")
