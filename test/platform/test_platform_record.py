"""Parsing the Jetson tools' output, the bandwidth table, and the machine warnings."""

from pathlib import Path

import pytest

from shadowhound_llm_bench.core.platform.platform_record import (
    BandwidthTableError, MachineRecord, bandwidth_for, jetpack_for, load_bandwidth_table,
    machine_warnings, parse_device_tree_model, parse_jetson_clocks_show, parse_module_sku,
    parse_nv_tegra_release, parse_nvpmodel_query, power_mode_is_max,
)

TABLE = Path(__file__).resolve().parents[2] / "config" / "memory_bandwidth.yaml"
GIB = 1024 ** 3

ORIN_SHOW = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=115200 MaxFreq=2201600 CurrentFreq=1728000 WFI=1
cpu1: Online=1 Governor=schedutil MinFreq=115200 MaxFreq=2201600 CurrentFreq=2201600 WFI=1
GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=306000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=0
NV Power Mode: MAXN
"""


def test_device_tree_model_and_l4t_release_parse():
    assert parse_device_tree_model(b"NVIDIA Jetson AGX Thor Developer Kit\0") == \
        "NVIDIA Jetson AGX Thor Developer Kit"
    line = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64"
    assert parse_nv_tegra_release(line) == "36.4.3"
    assert jetpack_for("36.4.3") == "6.1 / 6.2"
    assert jetpack_for("99.1.0") == ""
    assert parse_nv_tegra_release("garbage") == ""


def test_module_sku_from_boardids_or_compatible():
    assert parse_module_sku(b"3701:0005", b"") == "p3701-0005"
    assert parse_module_sku(b"", b"nvidia,p3834-0008\0nvidia,p3971-0000\0nvidia,tegra264\0") \
        == "p3834-0008"
    assert parse_module_sku(b"", b"") == ""


def test_nvpmodel_query_parses_name_and_id():
    assert parse_nvpmodel_query("NV Power Mode: MAXN\n0\n") == ("MAXN", 0)
    assert parse_nvpmodel_query("NV Power Mode: 30W\n2\n") == ("30W", 2)
    assert parse_nvpmodel_query("nvpmodel: command not found") == ("", None)
    assert power_mode_is_max("MAXN_SUPER") is True
    assert power_mode_is_max("15W") is False
    assert power_mode_is_max("") is None


def test_jetson_clocks_show_locked_only_when_every_min_is_its_max():
    assert parse_jetson_clocks_show(ORIN_SHOW) is False
    locked = ORIN_SHOW.replace("MinFreq=115200", "MinFreq=2201600").replace(
        "MinFreq=306000000", "MinFreq=1300500000")
    assert parse_jetson_clocks_show(locked) is True
    assert parse_jetson_clocks_show("jetson_clocks: must be run as root") is None


def test_bandwidth_table_has_a_source_for_every_entry_and_matches_modules():
    table = load_bandwidth_table(TABLE)
    assert table and all(e.source for e in table)
    thor = bandwidth_for("NVIDIA Jetson AGX Thor Developer Kit", 128 * GIB, table)
    assert thor is not None and thor.bandwidth_bytes_per_s == pytest.approx(273e9)
    orin32 = bandwidth_for("NVIDIA Jetson AGX Orin", 30 * GIB, table)
    orin64 = bandwidth_for("NVIDIA Jetson AGX Orin Developer Kit", 62 * GIB, table)
    assert orin32.name != orin64.name
    assert orin64.bandwidth_bytes_per_s == pytest.approx(204.8e9)
    assert bandwidth_for("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", 15 * GIB,
                         table).bandwidth_bytes_per_s == pytest.approx(102.4e9)
    assert bandwidth_for("", 8 * GIB, table) is None
    assert bandwidth_for("Some x86 workstation", 64 * GIB, table) is None


def test_a_table_entry_without_a_source_is_refused(tmp_path):
    path = tmp_path / "bw.yaml"
    path.write_text("modules:\n  - name: x\n    model_contains: [x]\n    bandwidth_gbps: 1\n")
    with pytest.raises(BandwidthTableError, match="source"):
        load_bandwidth_table(path)


def test_each_warning_and_none_at_maxn_with_locked_clocks():
    good = MachineRecord(power_mode="MAXN", power_mode_id=0, power_mode_is_max=True,
                         clocks_locked=True)
    assert machine_warnings(good) == []
    low = MachineRecord(power_mode="70W", power_mode_id=2, power_mode_is_max=False)
    assert any("not MAXN" in w and "70W" in w for w in machine_warnings(low))
    unlocked = MachineRecord(clocks_locked=False)
    assert any("not locked" in w for w in machine_warnings(unlocked))
    busy = MachineRecord(gpu_processes=["python3 (pid 42)"])
    assert any("another process uses the GPU" in w and "pid 42" in w
               for w in machine_warnings(busy))
    unknown = MachineRecord()  # nothing read: nothing claimed
    assert machine_warnings(unknown) == []
