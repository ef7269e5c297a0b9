"""
A fake Jetson AGX Thor machine tree whose power and temperature follow the simulated work.

Written under a root folder, shaped as on a real Thor (paths as jetson-stats reads them,
github.com/rbonghi/jetson_stats jtop/core/*.py): `proc/device-tree/model`,
`etc/nv_tegra_release` (L4T R38.2 = JetPack 7.0, Thor's first release), an INA238 hwmon
(`power1_input` uW: the module's input power, kernel Documentation/hwmon/ina238.rst) and an
INA3221 hwmon (rails with `in<N>_label`), thermal zones in millidegrees, the GPU's devfreq node
`sys/class/devfreq/gpu-gpc-0` (Hz), cpu0's cpufreq (kHz), and fake `usr/sbin/nvpmodel`,
`usr/bin/jetson_clocks` and `usr/bin/tegrastats` scripts printing what the real tools print.

Power model (the simulated machine's own, not the product's): Thor's module power is
configurable from 40 to 130 W (NVIDIA Jetson Thor product page); idle is assumed 25 W. Loading
streams weights from NVMe (+20 W); prefill is compute-bound near the module maximum (120 W);
decode is memory-bound, so its power grows with the DRAM traffic it drives:
`idle + 25 W + 80 W x (model bytes x tokens/s) / 273 GB/s`. Temperature is first order:
`dT/dt = (ambient + 0.45 degC/W x P - T) / tau` with tau 60 s of the simulated machine; at 87 degC
the GPU clock drops to 75 % (recovering below 82 degC), which slows decode and cuts its power
by the same share. Power runs in wall-clock seconds, so energy at time scale 1/8 is 1/8 of the
real machine's.

The simulator writes the exact energy it drew per model and phase to
`var/lib/ollama_sim/energy_ground_truth.json` (integrated at every power change, not sampled),
so tests can check the product's measured J/token against it: per phase (load, prefill,
decode) and `served`, the whole machine's energy while the model's requests were being served
(the request's own overheads included, as a client sees a request).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

MAX_POWER_W = 130.0
THOR_BANDWIDTH_BYTES_PER_S = 273e9  # the simulated machine's own figure (NVIDIA spec)
GPU_MAX_HZ = 1_575_000_000
GPU_IDLE_HZ = 300_000_000
CPU_MAX_KHZ = 2_601_000
GROUND_TRUTH = "var/lib/ollama_sim/energy_ground_truth.json"
STATE_DIR = "var/lib/ollama_sim"
_RAILS = (("VDD_GPU", 0.55), ("VDD_CPU_SOC_MSS", 0.35), ("VIN_SYS_5V0", 0.10))


@dataclass
class PowerModel:
    """The simulated Thor's power and thermal constants (see the module docstring)."""

    idle_w: float = 25.0
    load_extra_w: float = 20.0
    prefill_w: float = 120.0
    decode_base_extra_w: float = 25.0
    decode_traffic_w: float = 80.0
    ambient_c: float = 35.0
    c_per_w: float = 0.45
    tau_s: float = 60.0
    throttle_on_c: float = 87.0
    throttle_off_c: float = 82.0
    throttle_clock_share: float = 0.75


class Work:
    """One piece of simulated work (a load, a prefill, a decode) drawing power until end()."""

    def __init__(self, machine: Optional["FakeThor"], phase: str, model: str,
                 extra_w: float) -> None:
        self.machine = machine
        self.phase = phase
        self.model = model
        self.extra_w = extra_w
        self.ended = False

    def end(self, tokens: int = 0) -> None:
        if self.machine is not None and not self.ended:
            self.machine.end_work(self, tokens)
        self.ended = True

    def __enter__(self) -> "Work":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.end()


class ServingWindow:
    """The machine's energy from the start to the end of serving one request, into "served"."""

    def __init__(self, machine: Optional["FakeThor"], model: str) -> None:
        self.machine = machine
        self.model = model
        self._start_j = 0.0
        self._start_s = 0.0

    def __enter__(self) -> "ServingWindow":
        if self.machine is not None:
            self._start_j = self.machine.total_energy_j()
            self._start_s = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        machine = self.machine
        if machine is None:
            return
        energy = machine.total_energy_j() - self._start_j
        machine.add_served(self.model, energy, time.monotonic() - self._start_s)


class FakeThor:
    """The fake machine: writes the tree, follows the work, integrates the true energy."""

    def __init__(self, root: str, *, model: PowerModel = PowerModel(), time_scale: float = 1.0,
                 host_total_bytes: int = 128 * 1024 ** 3, power_mode: str = "MAXN",
                 power_mode_id: int = 0, clocks_locked: bool = True,
                 thermal_period_s: float = 0.25, power_in_sysfs: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.model = model
        self.time_scale = time_scale if time_scale > 0 else 1.0
        self.host_total_bytes = host_total_bytes
        self.thermal_period_s = thermal_period_s
        # False: the power monitors are not readable in sysfs (only tegrastats reports them).
        self.hwmon = "sys/class/hwmon" if power_in_sysfs else f"{STATE_DIR}/hidden_hwmon"
        self._lock = threading.RLock()
        self._works: List[Work] = []
        self._temp_c = model.ambient_c + model.c_per_w * model.idle_w
        self._throttled = False
        self._last_s = time.monotonic()
        self._resumed = False
        self._energy_total_j = 0.0
        self._truth: Dict[str, Any] = {"models": {}, "idle": {"energy_j": 0.0, "duration_s": 0.0}}
        self._stop = threading.Event()
        self._resume()
        self._write_tree(power_mode, power_mode_id, clocks_locked)
        self._publish()
        self._thread = threading.Thread(target=self._thermal_loop, name="fake-thor",
                                        daemon=True)
        self._thread.start()

    def _resume(self) -> None:
        """
        Carry on from an earlier run of the simulator on this tree (Ollama restarted).

        The machine does not cool down or forget its energy when the Ollama container restarts:
        temperature, throttling and the true energy continue from the saved file.
        """
        try:
            with open(self.path(GROUND_TRUTH)) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return
        self._truth = {"models": dict(saved.get("models") or {}),
                       "idle": dict(saved.get("idle") or {"energy_j": 0.0, "duration_s": 0.0})}
        self._temp_c = float(saved.get("temperature_c", self._temp_c))
        self._throttled = bool(saved.get("throttled", False))
        self._resumed = True

    # ------------------------------------------------------------------ the tree
    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def _put(self, rel: str, text: str, mode: int = 0o644) -> None:
        """Replace a file at once (readers never see half a value)."""
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)

    def _write_tree(self, power_mode: str, power_mode_id: int, clocks_locked: bool) -> None:
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.path("proc/device-tree"), exist_ok=True)
        with open(self.path("proc/device-tree/model"), "wb") as f:
            f.write(b"NVIDIA Jetson AGX Thor Developer Kit\0")  # NUL-terminated, as the kernel
        # P3834-0008: the Thor developer kit module (jetson-stats' module table).
        with open(self.path("proc/device-tree/compatible"), "wb") as f:
            f.write(b"nvidia,p3834-0008\0nvidia,p3971-0000\0nvidia,tegra264\0")
        self._put("etc/nv_tegra_release",
                  "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, "
                  "EABI: aarch64, DATE: Fri Aug 22 00:00:00 UTC 2025\n")
        self._put("proc/sys/kernel/osrelease", "6.8.12-tegra\n")
        self._put("etc/machine-id", "5f1d7c0e9a3b4c2d8e6f0a1b2c3d4e5f\n")  # the fake's own
        self._put("proc/cpuinfo", "".join(
            f"processor\t: {i}\nmodel name\t: ARM Neoverse-V3AE\n\n" for i in range(14)))
        self._put("proc/meminfo", f"MemTotal:       {self.host_total_bytes // 1024} kB\n")
        self._put("sys/devices/system/cpu/online", "0-13\n")
        self._put(f"{self.hwmon}/hwmon0/name", "ina238\n")
        self._put(f"{self.hwmon}/hwmon1/name", "ina3221\n")
        for i, (label, _share) in enumerate(_RAILS, start=1):
            self._put(f"{self.hwmon}/hwmon1/in{i}_label", label + "\n")
        for i, kind in enumerate(("cpu-thermal", "gpu-thermal", "soc0-thermal", "tj-thermal")):
            self._put(f"sys/class/thermal/thermal_zone{i}/type", kind + "\n")
        self._put("sys/class/thermal/thermal_zone4/type", "PMIC-Die\n")
        self._put("sys/class/thermal/thermal_zone4/temp", "-256000\n")
        gpc = "sys/class/devfreq/gpu-gpc-0"
        self._put(f"{gpc}/max_freq", f"{GPU_MAX_HZ}\n")
        self._put(f"{gpc}/min_freq", f"{GPU_IDLE_HZ}\n")
        self._put("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", f"{CPU_MAX_KHZ}\n")
        self._put("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", f"{CPU_MAX_KHZ}\n")
        if not self._resumed:  # a restart keeps the mode and clocks the machine had
            self.set_power_mode(power_mode, power_mode_id)
            self.set_clocks_locked(clocks_locked)
        state = self.path(STATE_DIR)
        self._put("usr/sbin/nvpmodel", _NVPMODEL_SCRIPT.replace("@STATE@", state), 0o755)
        self._put("usr/bin/jetson_clocks", _JETSON_CLOCKS_SCRIPT.replace("@STATE@", state),
                  0o755)
        self._put("usr/bin/tegrastats", _TEGRASTATS_SCRIPT.replace("@ROOT@", self.root)
                  .replace("@HWMON@", self.path(self.hwmon)), 0o755)

    def set_power_mode(self, name: str, mode_id: int) -> None:
        """Change the power mode `nvpmodel -q` reports."""
        self._put(f"{STATE_DIR}/power_mode", f"{name}\n{mode_id}\n")

    def set_clocks_locked(self, locked: bool) -> None:
        """Change what `jetson_clocks --show` reports."""
        self._put(f"{STATE_DIR}/clocks_locked", "1\n" if locked else "0\n")

    def set_gpu_load_percent(self, percent: float) -> None:
        """Another process keeping the GPU busy (per mille, as the devfreq load file)."""
        self._put("sys/class/devfreq/gpu-gpc-0/device/load", f"{int(percent * 10)}\n")

    # ------------------------------------------------------------------ power
    def power_w(self) -> float:
        with self._lock:
            extra = sum(w.extra_w for w in self._works)
            if self._throttled:
                extra *= self.model.throttle_clock_share
            return min(MAX_POWER_W, self.model.idle_w + extra)

    def speed_factor(self) -> float:
        """How much slower decode runs now (GPU clock share while throttled)."""
        return self.model.throttle_clock_share if self._throttled else 1.0

    def begin(self, phase: str, model: str, *, model_bytes: int = 0,
              tokens_per_s: float = 0.0) -> Work:
        m = self.model
        if phase == "load":
            extra = m.load_extra_w
        elif phase == "prefill":
            extra = m.prefill_w - m.idle_w
        else:
            traffic = min(1.0, model_bytes * tokens_per_s / THOR_BANDWIDTH_BYTES_PER_S)
            extra = m.decode_base_extra_w + m.decode_traffic_w * traffic
        work = Work(self, phase, model, extra)
        with self._lock:
            self._account()
            self._works.append(work)
            self._publish()
        return work

    def end_work(self, work: Work, tokens: int) -> None:
        """Stop the work's power draw and count its tokens (decode) into the truth."""
        with self._lock:
            self._account()
            if work in self._works:
                self._works.remove(work)
            entry = self._model_truth(work.model)
            entry["generated_tokens"] += int(tokens) if work.phase == "decode" else 0
            entry["requests"] += 1 if work.phase == "decode" else 0
            self._publish()
            self._write_truth()

    def _model_truth(self, model: str) -> Dict[str, Any]:
        models = self._truth["models"]
        if model not in models:
            models[model] = {p: {"energy_j": 0.0, "duration_s": 0.0}
                             for p in ("load", "prefill", "decode", "served")}
            models[model].update(generated_tokens=0, requests=0)
        return models[model]

    def add_served(self, model: str, energy_j: float, duration_s: float) -> None:
        """Add one served request's energy and time to the model's "served" truth."""
        with self._lock:
            served = self._model_truth(model)["served"]
            served["energy_j"] += energy_j
            served["duration_s"] += duration_s

    def serving(self, model: str) -> "ServingWindow":
        """Measure the whole machine's energy while one request is served (overheads too)."""
        return ServingWindow(self, model)

    def total_energy_j(self) -> float:
        """Return the energy the machine drew since it started, up to now."""
        with self._lock:
            self._account()
            return self._energy_total_j

    def _account(self) -> None:
        """Add the energy drawn since the last change (called under the lock)."""
        now = time.monotonic()
        dt = now - self._last_s
        self._last_s = now
        if dt <= 0:
            return
        power = self.power_w()
        self._energy_total_j += power * dt
        self._step_temperature(power, dt)
        if not self._works:
            self._truth["idle"]["energy_j"] += power * dt
            self._truth["idle"]["duration_s"] += dt
            return
        share = dt / len(self._works)  # side by side work shares the machine's power
        for work in self._works:
            bucket = self._model_truth(work.model)[work.phase]
            bucket["energy_j"] += power * share
            bucket["duration_s"] += share

    def _step_temperature(self, power: float, dt: float) -> None:
        m = self.model
        tau_wall = m.tau_s * self.time_scale
        target = m.ambient_c + m.c_per_w * power
        self._temp_c += (target - self._temp_c) * min(1.0, dt / tau_wall)
        if not self._throttled and self._temp_c >= m.throttle_on_c:
            self._throttled = True
        elif self._throttled and self._temp_c < m.throttle_off_c:
            self._throttled = False

    def _publish(self) -> None:
        """Write the sensor files for the current power, temperature and clock."""
        with self._lock:
            power = self.power_w()
            busy = bool(self._works)
            gpu_hz = GPU_MAX_HZ if busy else GPU_IDLE_HZ
            if self._throttled:
                gpu_hz = int(GPU_MAX_HZ * self.model.throttle_clock_share)
            volts = 19.0
            self._put(f"{self.hwmon}/hwmon0/power1_input", f"{int(power * 1e6)}\n")
            self._put(f"{self.hwmon}/hwmon0/in1_input", f"{int(volts * 1000)}\n")
            self._put(f"{self.hwmon}/hwmon0/curr1_input", f"{int(power / volts * 1000)}\n")
            for i, (_label, share) in enumerate(_RAILS, start=1):
                rail_w = power * 0.8 * share
                self._put(f"{self.hwmon}/hwmon1/in{i}_input", "5000\n")
                self._put(f"{self.hwmon}/hwmon1/curr{i}_input", f"{int(rail_w / 5 * 1000)}\n")
            self._put("sys/class/devfreq/gpu-gpc-0/cur_freq", f"{gpu_hz}\n")
            self._write_temperature()

    def _write_temperature(self) -> None:
        base = self._temp_c
        for i, offset in enumerate((-3.0, 0.0, -5.0, 1.0)):
            milli_c = int((base + offset) * 1000)
            self._put(f"sys/class/thermal/thermal_zone{i}/temp", f"{milli_c}\n")

    def _write_truth(self) -> None:
        self._put(GROUND_TRUTH, json.dumps({
            "power_model": self.model.__dict__, "time_scale": self.time_scale,
            "temperature_c": self._temp_c, "throttled": self._throttled,
            **self._truth}, indent=1))

    def _thermal_loop(self) -> None:
        ticks = 0
        while not self._stop.wait(self.thermal_period_s):
            ticks += 1
            with self._lock:
                was = self._throttled
                self._account()
                if was != self._throttled:
                    self._publish()
                else:
                    self._write_temperature()
                if ticks % 4 == 0:  # a killed simulator loses at most a second of its state
                    self._write_truth()

    def ground_truth(self) -> Dict[str, Any]:
        with self._lock:
            self._account()
            return json.loads(json.dumps(self._truth))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            self._account()
            self._write_truth()


_NVPMODEL_SCRIPT = """#!/bin/sh
# Fake nvpmodel of the simulated Thor: `-q` prints the mode as the real tool does.
case "$1" in
  -q) { read -r name; read -r id; } < "@STATE@/power_mode"
      echo "NV Power Mode: $name"; echo "$id" ;;
  *) echo "nvpmodel (simulated): only -q is supported" >&2; exit 1 ;;
esac
"""

_JETSON_CLOCKS_SCRIPT = """#!/bin/sh
# Fake jetson_clocks of the simulated Thor: `--show` prints the clocks as the real tool does.
[ "$1" = "--show" ] || { echo "jetson_clocks (simulated): only --show" >&2; exit 1; }
read -r locked < "@STATE@/clocks_locked"
if [ "$locked" = 1 ]; then cmin=2601000; gmin=1575000000; else cmin=972000; gmin=300000000; fi
echo "SOC family:tegra264  Machine:NVIDIA Jetson AGX Thor Developer Kit"
echo "Online CPUs: 0-13"
i=0
while [ $i -lt 14 ]; do
  echo "cpu$i: Online=1 Governor=schedutil MinFreq=$cmin MaxFreq=2601000 CurrentFreq=2601000"
  i=$((i+1))
done
echo "GPU MinFreq=$gmin MaxFreq=1575000000 CurrentFreq=1575000000"
echo "EMC MinFreq=204000000 MaxFreq=4266000000 CurrentFreq=4266000000 FreqOverride=0"
{ read -r name; read -r id; } < "@STATE@/power_mode"
echo "NV Power Mode: $name"
"""

_TEGRASTATS_SCRIPT = """#!/bin/sh
# Fake tegrastats of the simulated Thor: one line per --interval ms from the fake sensor files.
ms=1000
[ "$1" = "--interval" ] && ms=$2
r=@ROOT@/sys/class
while :; do
  read -r uw < @HWMON@/hwmon0/power1_input
  read -r tj < $r/thermal/thermal_zone3/temp
  read -r gpu < $r/thermal/thermal_zone1/temp
  read -r hz < $r/devfreq/gpu-gpc-0/cur_freq
  echo "RAM 3500/125772MB CPU [2%@2601,1%@2601] GR3D_FREQ 0%@[$((hz / 1000000))]" \\
       "gpu@$((gpu / 1000)).$((gpu % 1000 / 100))C tj@$((tj / 1000)).$((tj % 1000 / 100))C" \\
       "VIN $((uw / 1000))mW/$((uw / 1000))mW"
  sleep $(awk "BEGIN{print $ms/1000}")
done
"""

# ---------------------------------------------------------------------------- the sim's hooks
_ACTIVE: Optional[FakeThor] = None


def install(machine: Optional[FakeThor]) -> None:
    """Make a fake machine the one the simulator's work draws power from (None: none)."""
    global _ACTIVE
    _ACTIVE = machine


def begin(phase: str, model: str, **kwargs: Any) -> Work:
    """Start a piece of work on the active fake machine (a no-op without one)."""
    machine = _ACTIVE
    if machine is None:
        return Work(None, phase, model, 0.0)
    return machine.begin(phase, model, **kwargs)


def serving(model: str) -> ServingWindow:
    """Window of one request being served on the active fake machine (a no-op without one)."""
    return ServingWindow(_ACTIVE, model)


def speed_factor() -> float:
    """Decode speed share on the active fake machine (1.0 without one)."""
    machine = _ACTIVE
    return machine.speed_factor() if machine is not None else 1.0
