"""
Power, temperature and clock sensors of a Jetson: jtop when its service runs, else sysfs.

(`tegrastats`, adapters/tegrastats_sensors.py, stands in when sysfs has no power sensor.)

jetson-stats' jtop service when it runs, otherwise straight from sysfs under a configurable root.

Paths, as jetson-stats reads them (github.com/rbonghi/jetson_stats, jtop/core/*.py) and as the
kernel documents them:

- power: `/sys/class/hwmon/hwmon*/` whose `name` is `ina3221` (Orin and Thor rails:
  `in<N>_label`, `in<N>_input` mV, `curr<N>_input` mA; jtop/core/power.py, kernel
  Documentation/hwmon/ina3221.rst) or `ina238` (Thor's VIN monitor: `power1_input` uW,
  `in1_input` bus mV, `curr1_input` mA; kernel Documentation/hwmon/ina238.rst; NVIDIA forum
  "Question about power monitor with additional load on Jetson Thor": the INA238 measures the
  module's total input power, the INA3221 its rails). Total power is the INA238 (or a rail
  labelled VDD_IN / VIN) when there is one, else the sum of the INA3221 rails.
- temperature: `/sys/class/thermal/thermal_zone*/{type,temp}` in millidegrees
  (jtop/core/temperature.py); offline zones read -256000 and are skipped.
- GPU clock: devfreq `/sys/class/devfreq/gpu-gpc-0/{cur_freq,max_freq}` on Thor
  (jtop/core/gpu.py, THOR_GPC) and `/sys/class/devfreq/17000000.gpu` (or `.ga10b`) on Orin,
  in Hz; GPU load `<devfreq>/device/load` in per mille (jtop/core/gpu.py).
- CPU clock: `/sys/devices/system/cpu/cpu0/cpufreq/{scaling_cur_freq,cpuinfo_max_freq}` kHz
  (jtop/core/cpu.py).
- jtop: the `jtop` Python package talks to the jtop service over `/run/jtop.sock`; its
  `power["tot"]["power"]` is mW and `temperature[*]["temp"]` degC (jtop/jtop.py).

Every file is opened and read per sample (a few microseconds each): sysfs regenerates a value
on each read, and a replaced file (the simulator's tree) is picked up at once.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

from ..core.platform.energy_accounting import PowerSample
from .machine_paths import under_root
from .tegrastats_sensors import TegrastatsSensors

INVALID_TEMP_MILLI_C = -40000  # below this a zone is offline (Jetsons report -256000)
JTOP_SOCKET = "run/jtop.sock"


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "r") as f:
            return f.read()
    except OSError:
        return None


def _read_number(path: str) -> Optional[float]:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


@dataclass
class PowerRail:
    label: str
    power_uw_path: str = ""  # direct power reading (INA238)
    volt_mv_path: str = ""
    curr_ma_path: str = ""

    def read_w(self) -> Optional[float]:
        if self.power_uw_path:
            uw = _read_number(self.power_uw_path)
            return None if uw is None else uw / 1e6
        mv, ma = _read_number(self.volt_mv_path), _read_number(self.curr_ma_path)
        if mv is None or ma is None:
            return None
        return mv * ma / 1e6


@dataclass
class SysfsLayout:
    """The sensor files found under a root at start-up."""

    total_rails: List[PowerRail] = field(default_factory=list)
    rails: List[PowerRail] = field(default_factory=list)
    thermal_paths: List[Tuple[str, str]] = field(default_factory=list)  # (type, temp path)
    gpu_devfreq: str = ""
    cpu_cur_khz_path: str = ""
    cpu_max_khz_path: str = ""

    @property
    def empty(self) -> bool:
        return not (self.total_rails or self.rails or self.thermal_paths or self.gpu_devfreq)


def discover_sysfs(root: str) -> SysfsLayout:
    """Find the power, thermal and clock files of a Jetson under root."""
    layout = SysfsLayout()
    for hwmon in sorted(glob.glob(under_root(root, "/sys/class/hwmon/hwmon*"))):
        name = (_read_text(os.path.join(hwmon, "name")) or "").strip().lower()
        if name == "ina238":
            layout.total_rails.append(PowerRail(
                label="VIN (ina238)", power_uw_path=os.path.join(hwmon, "power1_input")))
        elif name == "ina3221":
            for label_path in sorted(glob.glob(os.path.join(hwmon, "in*_label"))):
                number = os.path.basename(label_path)[2:-len("_label")]
                label = (_read_text(label_path) or "").strip()
                if not label or label.upper() in ("NC", "SUM OF SHUNT VOLTAGES"):
                    continue
                rail = PowerRail(label=label,
                                 volt_mv_path=os.path.join(hwmon, f"in{number}_input"),
                                 curr_ma_path=os.path.join(hwmon, f"curr{number}_input"))
                if label.upper() in ("VDD_IN", "VIN"):
                    layout.total_rails.append(rail)
                else:
                    layout.rails.append(rail)
    for zone in sorted(glob.glob(under_root(root, "/sys/class/thermal/thermal_zone*"))):
        kind = (_read_text(os.path.join(zone, "type")) or "").strip()
        temp_path = os.path.join(zone, "temp")
        if kind and "pmic" not in kind.lower() and os.path.isfile(temp_path):
            layout.thermal_paths.append((kind, temp_path))
    for name in ("gpu-gpc-0", "17000000.gpu", "17000000.ga10b"):
        node = under_root(root, f"/sys/class/devfreq/{name}")
        if os.path.isfile(os.path.join(node, "cur_freq")):
            layout.gpu_devfreq = node
            break
    cpufreq = under_root(root, "/sys/devices/system/cpu/cpu0/cpufreq")
    if os.path.isfile(os.path.join(cpufreq, "scaling_cur_freq")):
        layout.cpu_cur_khz_path = os.path.join(cpufreq, "scaling_cur_freq")
        layout.cpu_max_khz_path = os.path.join(cpufreq, "cpuinfo_max_freq")
    return layout


class SysfsSensors:
    """Reads one PowerSample from the files of a SysfsLayout."""

    name = "sysfs"

    def __init__(self, layout: SysfsLayout, *, hot_c: float) -> None:
        self.layout = layout
        self.hot_c = hot_c
        self._gpu_max_hz: Optional[float] = None

    def read(self, power_mode: str = "") -> PowerSample:
        layout = self.layout
        power: Optional[float] = None
        sources = layout.total_rails or layout.rails
        if sources:
            readings = [r.read_w() for r in sources[:1]] if layout.total_rails \
                else [r.read_w() for r in sources]
            if all(w is not None for w in readings):
                power = float(sum(w for w in readings if w is not None))
        temp: Optional[float] = None
        for _kind, path in layout.thermal_paths:
            milli = _read_number(path)
            if milli is not None and milli > INVALID_TEMP_MILLI_C:
                temp = milli / 1000.0 if temp is None else max(temp, milli / 1000.0)
        gpu_hz: Optional[float] = None
        if layout.gpu_devfreq:
            gpu_hz = _read_number(os.path.join(layout.gpu_devfreq, "cur_freq"))
            if self._gpu_max_hz is None:
                self._gpu_max_hz = _read_number(os.path.join(layout.gpu_devfreq, "max_freq"))
        throttled = throttled_now(temp, gpu_hz, self._gpu_max_hz, hot_c=self.hot_c)
        return PowerSample(t_s=time.time(), power_w=power, temp_c=temp, gpu_freq_hz=gpu_hz,
                           gpu_freq_max_hz=self._gpu_max_hz, throttled=throttled,
                           power_mode=power_mode)

    def gpu_load_percent(self) -> Optional[float]:
        if not self.layout.gpu_devfreq:
            return None
        per_mille = _read_number(os.path.join(self.layout.gpu_devfreq, "device", "load"))
        return None if per_mille is None else per_mille / 10.0

    def close(self) -> None:
        """Nothing to release: files are opened per read."""


def throttled_now(temp_c: Optional[float], gpu_hz: Optional[float],
                  gpu_max_hz: Optional[float], *, hot_c: float) -> Optional[bool]:
    """Clock below its maximum while hot; None when temperature or clock is unknown."""
    if temp_c is None or gpu_hz is None or not gpu_max_hz:
        return None
    return temp_c >= hot_c and gpu_hz < gpu_max_hz * 0.99


class JtopSensors:
    """Reads samples through the jetson-stats service (jtop), when it runs."""

    name = "jtop"

    def __init__(self, jetson: Any, *, hot_c: float) -> None:
        self._jetson = jetson
        self.hot_c = hot_c

    @classmethod
    def open(cls, root: str, *, hot_c: float) -> Optional["JtopSensors"]:
        """Connect to the jtop service; None when jtop is not installed or its service is down."""
        if not os.path.exists(under_root(root, "/" + JTOP_SOCKET)):
            return None
        try:
            from jtop import jtop  # type: ignore[import-not-found]
        except ImportError:
            return None
        try:
            jetson = jtop()
            jetson.start()
        except Exception:  # service down or version mismatch: fall back to sysfs
            return None
        return cls(jetson, hot_c=hot_c)

    def read(self, power_mode: str = "") -> PowerSample:
        jetson = self._jetson
        power_w: Optional[float] = None
        try:
            total = (jetson.power or {}).get("tot") or {}
            if "power" in total:
                power_w = float(total["power"]) / 1000.0
        except Exception:
            power_w = None
        temp: Optional[float] = None
        try:
            for sensor in (jetson.temperature or {}).values():
                value = sensor.get("temp") if isinstance(sensor, dict) else None
                if isinstance(value, (int, float)) and value > INVALID_TEMP_MILLI_C / 1000:
                    temp = value if temp is None else max(temp, value)
        except Exception:
            temp = None
        gpu_hz = gpu_max = None
        try:
            for gpu in (jetson.gpu or {}).values():
                freq = gpu.get("freq") or {}
                gpu_hz = float(freq["cur"]) * 1000.0 if "cur" in freq else None  # kHz in jtop
                gpu_max = float(freq["max"]) * 1000.0 if "max" in freq else None
                break
        except Exception:
            gpu_hz = gpu_max = None
        mode = power_mode
        try:
            mode = str(jetson.nvpmodel) if jetson.nvpmodel is not None else power_mode
        except Exception:
            pass
        return PowerSample(t_s=time.time(), power_w=power_w, temp_c=temp, gpu_freq_hz=gpu_hz,
                           gpu_freq_max_hz=gpu_max,
                           throttled=throttled_now(temp, gpu_hz, gpu_max, hot_c=self.hot_c),
                           power_mode=mode)

    def gpu_load_percent(self) -> Optional[float]:
        try:
            for gpu in (self._jetson.gpu or {}).values():
                return float((gpu.get("status") or {}).get("load"))
        except Exception:
            return None
        return None

    def close(self) -> None:
        try:
            self._jetson.close()
        except Exception:
            pass


def open_sensors(root: str, *, hot_c: float, use_jtop: bool = True,
                 tegrastats_interval_ms: int = 50) -> Optional[Any]:
    """
    Open the best source: jtop, sysfs with power, tegrastats, sysfs without power, or None.

    tegrastats is started only when sysfs has no readable power sensor (hidden hwmon files).
    """
    if use_jtop:
        sensors = JtopSensors.open(root, hot_c=hot_c)
        if sensors is not None:
            return sensors
    layout = discover_sysfs(root)
    if layout.total_rails or layout.rails:
        return SysfsSensors(layout, hot_c=hot_c)
    tegrastats = TegrastatsSensors.open(root, interval_ms=tegrastats_interval_ms)
    if tegrastats is not None:
        return tegrastats
    if layout.empty:
        return None
    return SysfsSensors(layout, hot_c=hot_c)
