"""
Power and temperature from NVIDIA's `tegrastats`, when the sysfs power sensors cannot be read.

tegrastats prints one line per interval (`--interval` ms) with each power rail as
`NAME <now>mW/<average>mW` and each temperature as `name@<degC>C`, and the GPU as
`GR3D_FREQ <load>%@[<MHz>...]` (Jetson Linux Developer Guide, "tegrastats Utility"; patterns as
jetson-stats parses them, jtop/core/tegra_parse.py WATT_RE, TEMP_RE, VALS_ARRAY_RE). Total power
is the VIN / VDD_IN rail when there is one, else the sum of the rails. One process runs for the
monitor's life; a reader thread keeps the latest line, so read() never waits for it.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from typing import Optional

from ..core.platform.energy_accounting import PowerSample
from ..common.process_group import start_process_group, stop_process_group
from .machine_paths import find_tool

WATT_RE = re.compile(r"\b([A-Z][A-Z0-9_]+) ([0-9.]+)mW/([0-9.]+)mW\b")
TEMP_RE = re.compile(r"\b(\w+)@(-?[0-9.]+)C\b")
GPU_RE = re.compile(r"\bGR3D_FREQ (?:\d+%)?@?\[?(\d+)")
TOTAL_RAILS = ("VIN", "VDD_IN")
INVALID_TEMP_C = -40.0


def parse_tegrastats_line(line: str, *, power_mode: str = "") -> Optional[PowerSample]:
    """Return a sample from one tegrastats line; None when it carries neither power nor temp."""
    rails = {name: float(now) / 1000.0 for name, now, _avg in WATT_RE.findall(line)}
    power: Optional[float] = None
    totals = [rails[name] for name in TOTAL_RAILS if name in rails]
    if totals:
        power = totals[0]
    elif rails:
        power = sum(rails.values())
    temps = [float(value) for name, value in TEMP_RE.findall(line)
             if float(value) > INVALID_TEMP_C and "pmic" not in name.lower()]
    gpu = GPU_RE.search(line)
    if power is None and not temps:
        return None
    return PowerSample(t_s=time.time(), power_w=power, temp_c=max(temps) if temps else None,
                       gpu_freq_hz=float(gpu.group(1)) * 1e6 if gpu else None,
                       power_mode=power_mode)


class TegrastatsSensors:
    """Runs `tegrastats --interval N` and keeps its latest line as a sample."""

    name = "tegrastats"

    def __init__(self, process: subprocess.Popen) -> None:
        self._process = process
        self._latest: Optional[PowerSample] = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read_lines, name="tegrastats",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, root: str, *, interval_ms: int, first_line_s: float = 3.0
             ) -> Optional["TegrastatsSensors"]:
        """Start tegrastats; None when it is missing or prints nothing usable in time."""
        tool = find_tool(root, "tegrastats")
        if tool is None:
            return None
        try:
            process = start_process_group([tool, "--interval", str(max(1, interval_ms))],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True)
        except OSError:
            return None
        sensors = cls(process)
        deadline = time.monotonic() + first_line_s
        while time.monotonic() < deadline and not sensors.has_reading:
            if process.poll() is not None:
                break
            time.sleep(0.01)
        if not sensors.has_reading:
            sensors.close()
            return None
        return sensors

    @property
    def has_reading(self) -> bool:
        """Whether tegrastats has printed a usable line yet."""
        with self._lock:
            return self._latest is not None

    def _read_lines(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        for line in stdout:
            sample = parse_tegrastats_line(line)
            if sample is not None:
                with self._lock:
                    self._latest = sample

    def read(self, power_mode: str = "") -> PowerSample:
        with self._lock:
            latest = self._latest
        if latest is None:
            return PowerSample(t_s=time.time(), power_mode=power_mode)
        # Stamped now: the value holds until the next line, as a sensor register does.
        return PowerSample(t_s=time.time(), power_w=latest.power_w, temp_c=latest.temp_c,
                           gpu_freq_hz=latest.gpu_freq_hz, power_mode=power_mode)

    def gpu_load_percent(self) -> Optional[float]:
        return None

    def close(self) -> None:
        stop_process_group(self._process, grace_s=2.0)
        if self._process.stdout is not None:
            self._process.stdout.close()
