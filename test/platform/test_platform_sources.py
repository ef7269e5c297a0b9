"""Each platform source on a real file tree: sysfs present, jtop absent, nothing present."""

import json
import os
import time

import pytest

from shadowhound_llm_bench.adapters.platform_probe import probe_machine
from shadowhound_llm_bench.adapters.platform_sensors import (
    JtopSensors, SysfsSensors, discover_sysfs, open_sensors,
)
from shadowhound_llm_bench.core.platform.platform_record import machine_warnings
from shadowhound_llm_bench.engine.platform_monitor import PlatformMonitor, PlatformSettings


def test_sysfs_of_a_thor_is_found_where_jetson_stats_reads_it(fake_thor):
    layout = discover_sysfs(fake_thor.root)
    assert [r.label for r in layout.total_rails] == ["VIN (ina238)"]
    assert [r.label for r in layout.rails] == ["VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"]
    assert layout.gpu_devfreq.endswith("sys/class/devfreq/gpu-gpc-0")
    kinds = [kind for kind, _ in layout.thermal_paths]
    assert "tj-thermal" in kinds and not any("PMIC" in k for k in kinds)


def test_jtop_absent_falls_back_to_sysfs_and_power_follows_the_work(fake_thor):
    # A jtop socket without the jtop package (not installed here): the sysfs path is used.
    os.makedirs(os.path.join(fake_thor.root, "run"), exist_ok=True)
    open(os.path.join(fake_thor.root, "run", "jtop.sock"), "w").close()
    assert JtopSensors.open(fake_thor.root, hot_c=85.0) is None
    sensors = open_sensors(fake_thor.root, hot_c=85.0)
    assert isinstance(sensors, SysfsSensors)
    idle = sensors.read("MAXN")
    assert idle.power_w == pytest.approx(fake_thor.power_w(), abs=0.01)
    assert idle.gpu_freq_hz < idle.gpu_freq_max_hz  # idle clock, but cool: not throttled
    assert idle.throttled is False
    with fake_thor.begin("prefill", "m"):
        busy = sensors.read("MAXN")
    assert busy.power_w == pytest.approx(fake_thor.model.prefill_w, abs=0.01)
    assert busy.power_w > idle.power_w
    assert busy.temp_c is not None and busy.power_mode == "MAXN"


def test_nothing_present_gives_no_sensor_and_a_record_without_jetson_fields(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert open_sensors(str(empty), hot_c=85.0) is None
    monitor = PlatformMonitor(PlatformSettings(sysfs_root=str(empty)), bandwidth_table=[])
    try:
        assert monitor.source == "none"
        assert monitor.sample_now() is None
        record = monitor.machine()
        assert record.is_jetson is False
        assert record.power_mode == "" and record.power_mode_is_max is None
        assert record.clocks_locked is None
        assert record.memory_bandwidth_bytes_per_s is None
        assert machine_warnings(record) == []
    finally:
        monitor.close()


def test_the_machine_record_of_the_fake_thor(fake_thor):
    record = probe_machine(root=fake_thor.root, sensors=open_sensors(fake_thor.root, hot_c=85.0),
                           bandwidth_table=PlatformMonitor(
                               PlatformSettings(sysfs_root=fake_thor.root)).bandwidth_table)
    assert record.module_model == "NVIDIA Jetson AGX Thor Developer Kit"
    assert record.module_sku == "p3834-0008"
    assert record.l4t_release == "38.2.0" and record.jetpack_release == "7.0"
    assert record.power_mode == "MAXN" and record.power_mode_id == 0
    assert record.clocks_locked is True
    assert record.cpu_count == 14
    assert record.memory_bandwidth_bytes_per_s == pytest.approx(273e9)
    assert "jetson-thor" in record.memory_bandwidth_source
    assert record.sensor_source == "sysfs"
    assert machine_warnings(record) == []


def test_a_parameter_overrides_the_bandwidth_table(fake_thor):
    record = probe_machine(root=fake_thor.root, bandwidth_override_bytes_per_s=100e9)
    assert record.memory_bandwidth_bytes_per_s == 100e9
    assert "parameter" in record.memory_bandwidth_source


@pytest.mark.parametrize("change, words", [
    (lambda m: m.set_power_mode("70W", 2), "not MAXN"),
    (lambda m: m.set_clocks_locked(False), "not locked"),
    (lambda m: m.set_gpu_load_percent(60.0), "another process uses the GPU"),
])
def test_each_warning_comes_from_the_machine(fake_thor, change, words):
    change(fake_thor)
    sensors = open_sensors(fake_thor.root, hot_c=85.0)
    record = probe_machine(root=fake_thor.root, sensors=sensors)
    warnings = machine_warnings(record)
    assert len(warnings) == 1 and words in warnings[0]


def test_the_monitor_samples_on_its_thread_and_sees_throttling(tmp_path):
    from shadowhound_llm_bench.sim.platform_sysfs import FakeThor, PowerModel
    hot = FakeThor(str(tmp_path / "hot"), model=PowerModel(ambient_c=70.0, tau_s=0.4),
                   time_scale=1.0, thermal_period_s=0.02)
    monitor = PlatformMonitor(PlatformSettings(sysfs_root=hot.root, sample_hz=50.0))
    try:
        monitor.machine()
        monitor.start()
        work = hot.begin("prefill", "m")
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            latest = monitor.latest()
            if latest is not None and latest.throttled:
                break
            time.sleep(0.05)
        work.end()
        assert monitor.latest().throttled is True
        assert monitor.latest().temp_c >= 85.0
        energy_j, _ = monitor.totals()
        truth = hot.ground_truth()
        assert energy_j > 0
        assert truth["models"]["m"]["prefill"]["energy_j"] > 0
    finally:
        monitor.close()
        hot.close()
    saved = json.loads(open(os.path.join(hot.root, "var/lib/ollama_sim/"
                                         "energy_ground_truth.json")).read())
    assert "m" in saved["models"]


def test_a_restarted_simulator_keeps_the_machine_state(tmp_path):
    from shadowhound_llm_bench.sim.platform_sysfs import FakeThor, PowerModel
    root = str(tmp_path / "thor")
    first = FakeThor(root, model=PowerModel(ambient_c=70.0, tau_s=0.2), time_scale=1.0,
                     thermal_period_s=0.02)
    with first.begin("prefill", "m"):
        time.sleep(0.5)
    first.set_power_mode("40W", 3)
    prefill_j = first.ground_truth()["models"]["m"]["prefill"]["energy_j"]
    first.close()
    second = FakeThor(root, model=PowerModel(ambient_c=70.0, tau_s=0.2), time_scale=1.0)
    try:
        truth = second.ground_truth()
        assert truth["models"]["m"]["prefill"]["energy_j"] == pytest.approx(prefill_j, rel=0.01)
        assert second.speed_factor() < 1.0  # still throttled: a restart does not cool it
        record = probe_machine(root=root)
        assert record.power_mode == "40W"
    finally:
        second.close()


def test_tegrastats_stands_in_when_sysfs_has_no_power_sensor(tmp_path):
    from shadowhound_llm_bench.adapters.tegrastats_sensors import (
        TegrastatsSensors, parse_tegrastats_line)
    from shadowhound_llm_bench.sim.platform_sysfs import FakeThor
    machine = FakeThor(str(tmp_path / "thor"), time_scale=1 / 8, power_in_sysfs=False)
    monitor = PlatformMonitor(PlatformSettings(sysfs_root=machine.root, sample_hz=20.0))
    try:
        assert isinstance(monitor.sensors, TegrastatsSensors)
        assert monitor.source == "tegrastats"
        with machine.begin("prefill", "m"):
            deadline = time.monotonic() + 10.0
            sample = monitor.sample_now()
            while sample.power_w != pytest.approx(machine.model.prefill_w) \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
                sample = monitor.sample_now()
        assert sample.power_w == pytest.approx(machine.model.prefill_w)
        assert sample.temp_c is not None and sample.gpu_freq_hz == 1575e6
    finally:
        monitor.close()
        machine.close()
    line = ("RAM 2000/62800MB CPU [1%@1728] GR3D_FREQ 0%@[306] cpu@45.5C tj@48.2C "
            "VDD_GPU_SOC 3200mW/3100mW VDD_CPU_CV 800mW/790mW VIN_SYS_5V0 4000mW/3900mW")
    orin = parse_tegrastats_line(line)  # an AGX Orin line: no VIN rail, the rails are summed
    assert orin.power_w == pytest.approx(8.0) and orin.temp_c == 48.2


def test_a_power_mode_change_reaches_the_current_record_without_a_new_probe(fake_thor):
    monitor = PlatformMonitor(PlatformSettings(sysfs_root=fake_thor.root, sample_hz=20.0,
                                               power_mode_period_s=0.1))
    try:
        assert monitor.machine().power_mode == "MAXN"
        monitor.start()
        fake_thor.set_power_mode("30W", 2)
        deadline = time.monotonic() + 10.0
        while monitor.current_machine().power_mode != "30W" and time.monotonic() < deadline:
            time.sleep(0.05)
        current = monitor.current_machine()
        assert (current.power_mode, current.power_mode_id) == ("30W", 2)
        assert any("not MAXN" in w for w in machine_warnings(current))
        assert monitor.last_machine.power_mode == "MAXN"  # the probed record is kept as read
    finally:
        monitor.close()


def test_an_orin_tree_sums_its_ina3221_rails(tmp_path):
    # AGX Orin: no INA238; INA3221 rails as jetson-stats lists them, devfreq 17000000.gpu.
    root = tmp_path / "orin"
    hwmon = root / "sys/class/hwmon/hwmon3"
    hwmon.mkdir(parents=True)
    (hwmon / "name").write_text("ina3221\n")
    for number, label, mv, ma in ((1, "VDD_GPU_SOC", 5000, 1000), (2, "VDD_CPU_CV", 5000, 400),
                                  (3, "VIN_SYS_5V0", 5000, 600), (4, "NC", 0, 0)):
        (hwmon / f"in{number}_label").write_text(label + "\n")
        (hwmon / f"in{number}_input").write_text(f"{mv}\n")
        (hwmon / f"curr{number}_input").write_text(f"{ma}\n")
    gpu = root / "sys/class/devfreq/17000000.gpu"
    gpu.mkdir(parents=True)
    (gpu / "cur_freq").write_text("1300500000\n")
    (gpu / "max_freq").write_text("1300500000\n")
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("gpu-thermal\n")
    (zone / "temp").write_text("51500\n")
    sensors = open_sensors(str(root), hot_c=85.0)
    assert isinstance(sensors, SysfsSensors)
    assert [r.label for r in sensors.layout.rails] == ["VDD_GPU_SOC", "VDD_CPU_CV",
                                                       "VIN_SYS_5V0"]
    sample = sensors.read()
    assert sample.power_w == pytest.approx(5.0 + 2.0 + 3.0)
    assert sample.temp_c == 51.5 and sample.gpu_freq_hz == 1300500000.0
    assert sample.throttled is False
