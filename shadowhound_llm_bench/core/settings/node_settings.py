"""Every setting of the benchmark node: names, defaults, ranges, descriptions and validation."""

# One table (PARAMETER_SPECS) drives the ROS parameter declarations, config/llm_bench.yaml and the
# checks made at start-up and on every `set_parameters`; this module has no rclpy import.

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..decider.cache_drop import DROP_CACHES_MODES
from ..memory.memory_sources import (MemorySourceError, MemorySourceSettings,
                                     parse_sources_setting)
from ..decider.policy_settings import PolicySettings, PolicySettingsError, preset_settings
from ..memory.ros_reserve import InvalidRosReserveSettings, RosReserveSettings
from .run_options import OptionsError, validate_keep_alive
from ..runs.inert_text import quoted
from ..units import GIB

ParamValue = Union[bool, int, float, str, List[str]]

PRESETS = ("default", "fast", "conservative", "adaptive")
ORDERS = ("small_to_large", "large_to_small", "as_given")
CONTAINER_BACKENDS = ("auto", "docker", "podman", "systemd", "process", "api_only")

# Ollama model names: [namespace/]name[:tag]; characters as Ollama itself accepts them.
_MODEL_NAME = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,2}"
    r"(:[A-Za-z0-9_][A-Za-z0-9._-]*)?$")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOST_URL = re.compile(r"^https?://[A-Za-z0-9._\-\[\]:]+(:\d{1,5})?/?$")


class NodeSettingsError(ValueError):
    """One or more settings are invalid; `errors` lists each reason."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: name, default, a sentence for people, and its allowed values."""

    name: str
    default: ParamValue
    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    read_only: bool = False  # changes need a restart of the node

    @property
    def kind(self) -> type:
        """Return the Python type of the value (bool, int, float, str or list)."""
        return type(self.default)


def _spec(name: str, default: ParamValue, description: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name=name, default=default, description=description, **kw)


# One set of ROS reserve defaults for the node and the library (core/memory/ros_reserve.py).
_RESERVE_DEFAULTS = RosReserveSettings()

PARAMETER_SPECS: Tuple[ParamSpec, ...] = (
    _spec("ollama_host", "http://localhost:11434",
          "Base URL of the Ollama server (http://host:port).", read_only=True),
    _spec("request_timeout_s", 300.0,
          "Deadline of one benchmark request (whole stream), seconds.", minimum=1.0,
          maximum=7200.0),
    _spec("container.backend", "auto",
          "How Ollama is measured and restarted: auto (a Docker or Podman container of "
          "container.name, else an active systemd unit of that name, else api_only), docker, "
          "podman, systemd (a service such as ollama.service), process (a local process tree) "
          "or api_only (sizes from /api/ps, unverified, no restart).",
          choices=CONTAINER_BACKENDS, read_only=True),
    _spec("container.name", "ollama",
          "Name of the Ollama container, or of its systemd unit (ollama = ollama.service).",
          read_only=True),
    _spec("container.systemctl", ["systemctl"],
          "systemd backend: the systemctl command (e.g. ['sudo', '-n', 'systemctl'] when the "
          "node may restart the unit only through sudo).", read_only=True),
    _spec("container.command", [""],
          "process backend: the command the node starts as Ollama (e.g. ['ollama', 'serve'] "
          "or the simulator); [''] means none.", read_only=True),
    _spec("container.restart_timeout_s", 60.0,
          "Deadline for a container restart until Ollama answers again, seconds.",
          minimum=1.0, maximum=600.0),
    _spec("policy.preset", "default",
          "Memory policy preset: default (unload after each model, restart before large "
          "ones), fast (neither), conservative (restart before every model), adaptive (only "
          "when the next model would not fit).", choices=PRESETS),
    _spec("policy.memory_scale", 1.0,
          "Scale of every preset byte size: 1 on a real robot, 1/64 for the thor simulator.",
          minimum=0.0001, maximum=1.0),
    _spec("policy.restart_before_models_over_gib", -1.0,
          "Restart the container before models predicted larger than this, GiB; -1 keeps the "
          "preset's value (the seed's 40 GB rule in the default preset), 0 restarts always.",
          minimum=-1.0, maximum=4096.0),
    _spec("policy.safety_buffer_gib", -1.0,
          "Memory always kept free on top of the ROS reserve, GiB; -1 keeps the preset's "
          "value.", minimum=-1.0, maximum=4096.0),
    _spec("policy.pressure_warn_percent", 80.0,
          "Container working set, in percent of the model budget, that raises a warning.",
          minimum=1.0, maximum=200.0),
    _spec("policy.pressure_error_percent", 100.0,
          "Percent of the model budget at which a running model is stopped (the robot wins).",
          minimum=1.0, maximum=200.0),
    _spec("policy.keep_alive", "5m",
          "keep_alive of test requests when the policy does not decide (seconds or a Go "
          "duration such as 5m)."),
    _spec("policy.dynamic_keep_alive", False,
          "Longer keep_alive when more memory is free (the seed's idea)."),
    _spec("policy.parallel_small_models", False,
          "Test several small models side by side when they all fit together."),
    _spec("policy.parallel_max_models", 3,
          "Most models tested side by side in one batch (Ollama's OLLAMA_MAX_LOADED_MODELS "
          "must allow as many).", minimum=1, maximum=16),
    _spec("policy.parallel_max_model_gib", 0.0,
          "Only models predicted at most this large are tested side by side, GiB; 0 means any "
          "models that fit in the budget together.", minimum=0.0, maximum=4096.0),
    _spec("policy.load_retries", 1, "Retries of a failed load, each after a restart.",
          minimum=0, maximum=5),
    _spec("policy.load_deadline_s", 600.0,
          "Deadline of one model load, seconds (a 43 GB 70B model read cold at ~130 MB/s "
          "takes ~330 s; Ollama itself gives up on a stuck runner after 5 min).",
          minimum=1.0, maximum=7200.0),
    _spec("policy.stream_stall_s", 60.0,
          "A streamed answer with no token for this long is stalled (its own error), seconds.",
          minimum=0.5, maximum=3600.0),
    _spec("policy.preempt", True,
          "On every memory sample: cut the load or stream in flight and unload when the ROS "
          "headroom falls under the reserve or pressure crosses policy.pressure_error_percent."),
    _spec("policy.preempt_wait_s", 30.0,
          "After a preemption, wait this long for headroom before the run ends, seconds.",
          minimum=0.0, maximum=3600.0),
    _spec("policy.enforce_container_limit", False,
          "Keep the container's memory limit at the model budget through the Docker API "
          "(where model memory is charged to the container)."),
    _spec("policy.oom_score_backstop", False,
          "Make Ollama's runners the kernel's first OOM victims and the measured ROS processes "
          "its last (oom_score_adj; lowering needs root with CAP_SYS_RESOURCE)."),
    _spec("policy.keep_models_found_loaded", False,
          "Models another client had loaded when a run starts stay loaded and their memory is "
          "counted (false: unloaded, the run starts from an empty container); those the run "
          "tests are unloaded either way."),
    _spec("policy.drop_caches", "auto",
          "Drop the page cache when memory does not come back after an unload or when Ollama "
          "would refuse a load for free memory while available memory suffices: auto or never "
          "(needs the privilege to write memory.drop_caches_path).", choices=DROP_CACHES_MODES),
    _spec("memory.meminfo_path", "/proc/meminfo",
          "Linux-format meminfo file of the machine Ollama and ROS share (MemAvailable, "
          "MemFree, Cached, NvMapMemUsed).", read_only=True),
    _spec("memory.nvidia_smi_command", "nvidia-smi",
          "Command answering nvidia-smi --query-compute-apps (per-process GPU memory; NVML is "
          "used when it is missing).", read_only=True),
    _spec("memory.drop_caches_path", "/proc/sys/vm/drop_caches",
          "File the policy writes 3 to when it drops the page cache.", read_only=True),
    _spec("memory.sources", ["auto"],
          "Where model memory is read: ['auto'] (calibration with the smallest model on the "
          "machine's first run chooses) or any of cgroup_working_set, cgroup_anon, "
          "gpu_processes, host_used, nvmap (summed).", read_only=True),
    _spec("host.simulated_total_gib", 0.0,
          "0 reads /proc/meminfo; otherwise the total memory of a simulated machine, GiB.",
          minimum=0.0, maximum=4096.0, read_only=True),
    _spec("host.system_reserve_gib", 10.0,
          "Memory the operating system needs on a simulated machine, GiB.", minimum=0.0,
          maximum=4096.0, read_only=True),
    _spec("reserve.fixed_gib", -1.0,
          "-1 measures ROS 2 / Nav2 processes live; otherwise a fixed ROS reserve, GiB.",
          minimum=-1.0, maximum=4096.0, read_only=True),
    _spec("reserve.floor_gib", _RESERVE_DEFAULTS.floor_bytes / GIB,
          "Smallest memory reserve held back for ROS 2 / Nav2 processes, GiB.",
          minimum=0.0, maximum=4096.0, read_only=True),
    _spec("reserve.window_s", float(_RESERVE_DEFAULTS.window_s),
          "Sliding window over which the peak of live ROS memory is taken, seconds.",
          minimum=1.0, maximum=86400.0, read_only=True),
    _spec("reserve.growth_factor", float(_RESERVE_DEFAULTS.growth_factor),
          "Factor applied to the live ROS peak to allow for growth.", minimum=1.0,
          maximum=10.0, read_only=True),
    _spec("reserve.margin_gib", _RESERVE_DEFAULTS.margin_bytes / GIB,
          "Margin added to the ROS reserve, GiB.", minimum=0.0,
          maximum=1024.0, read_only=True),
    _spec("reserve.scan_period_s", 5.0,
          "Period of the scan of ROS 2 / Nav2 processes for the live reserve, seconds (the "
          "container is sampled every sample_period_s).", minimum=0.05, maximum=60.0,
          read_only=True),
    _spec("reserve.include_patterns", [""],
          "Extra command-line patterns (regular expressions) counted as ROS processes; "
          "[''] means none.", read_only=True),
    _spec("reserve.exclude_patterns", [""],
          "Command-line patterns (regular expressions) never counted as ROS processes; "
          "[''] means none.", read_only=True),
    _spec("benchmark.models", ["phi4:14b", "qwen2.5-coder:32b", "llama3.3:70b"],
          "Models tested when a goal names none."),
    _spec("benchmark.suite", "robot_mission",
          "Task suite: a name from config/suites, or a path to a suite YAML file inside one of "
          "benchmark.suite_path_dirs."),
    _spec("benchmark.suite_path_dirs", [""],
          "Folders under which a goal or benchmark.suite may name a suite file by path; [''] "
          "means none (suites by name only).", read_only=True),
    _spec("benchmark.repetitions", 3, "Measured repetitions per task (warm-up not counted).",
          minimum=1, maximum=100),
    _spec("benchmark.order", "small_to_large",
          "Model order: small_to_large, large_to_small or as_given.", choices=ORDERS),
    _spec("benchmark.num_ctx", 4096, "Context length pinned for every request (tokens).",
          minimum=256, maximum=1048576),
    _spec("benchmark.num_predict", 512, "Maximum tokens generated per request.",
          minimum=1, maximum=131072),
    _spec("benchmark.temperature", 0.0, "Sampling temperature pinned for every request.",
          minimum=0.0, maximum=2.0),
    _spec("benchmark.seed", 42, "Sampling seed pinned for every request.", minimum=0,
          maximum=2 ** 31 - 1),
    _spec("benchmark.pull_missing", True, "Pull models that are not present yet."),
    _spec("benchmark.warmup", True,
          "Send one unmeasured request per model before the measured repetitions."),
    _spec("benchmark.memory_bandwidth_gbps", 0.0,
          "Memory bandwidth for the roofline efficiency column, GB/s (Jetson AGX Thor: 273); "
          "0 leaves it out.", minimum=0.0, maximum=100000.0),
    _spec("benchmark.canary_model", "",
          "Small model timed before and after every run to tell when the machine slowed down "
          "(as Thor does after many reloads); empty: no canary."),
    _spec("benchmark.canary_min_tokens_per_s", 0.0,
          "Canary decode tokens/s below which the machine counts as slowed down.",
          minimum=0.0, maximum=100000.0),
    _spec("results_dir", "~/ollama_benchmarks",
          "Folder under which each run writes <run_id>/ with its reports.", read_only=True),
    _spec("state_dir", "",
          "Folder of the state kept between runs (measured footprints, unload and restart "
          "durations), shared with the llm_bench CLI; empty means "
          "$XDG_CACHE_HOME/shadowhound_llm_bench (~/.cache/shadowhound_llm_bench).",
          read_only=True),
    _spec("history_db", "",
          "SQLite database every finished run is recorded in and compared against (the "
          "regression flag in the result summary); empty: history.sqlite3 in state_dir "
          "(~/.cache/shadowhound_llm_bench/history.sqlite3 by default).", read_only=True),
    _spec("publish_rate_hz", 2.0, "Rate of ~/container_memory messages, Hz.", minimum=0.1,
          maximum=50.0, read_only=True),
    _spec("sample_period_s", 0.5, "Period of the background memory sampler, seconds.",
          minimum=0.05, maximum=10.0, read_only=True),
    _spec("diagnostics_period_s", 1.0, "Period of /diagnostics messages, seconds.",
          minimum=0.1, maximum=60.0, read_only=True),
    _spec("feedback_period_s", 2.0,
          "Longest time between two feedback messages during a long phase, seconds.",
          minimum=0.1, maximum=60.0),
    _spec("platform.enabled", True,
          "Record the machine (module, L4T, power mode, clocks) and sample power, temperature "
          "and clocks; publish ~/platform_status.", read_only=True),
    _spec("platform.sysfs_root", "/",
          "Root of the machine's /sys, /proc, /etc and tools for the platform readings (a "
          "simulator's fake Thor tree in tests).", read_only=True),
    _spec("platform.sample_hz", 20.0, "Power / temperature samples per second.",
          minimum=0.5, maximum=200.0, read_only=True),
    _spec("platform.hot_c", 85.0,
          "Temperature at or above which a GPU clock below its maximum counts as throttled, "
          "degrees Celsius.", minimum=30.0, maximum=120.0, read_only=True),
    _spec("platform.use_jtop", True,
          "Read through the jetson-stats (jtop) service when it runs; sysfs otherwise.",
          read_only=True),
)

SPECS_BY_NAME: Dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETER_SPECS}


def closest_parameter(name: str) -> Optional[str]:
    """Return the known parameter a misspelt name most likely meant, or None."""
    close = difflib.get_close_matches(name, list(SPECS_BY_NAME), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_parameter_error(name: str) -> str:
    """Say that a parameter is not one of the node's, with the closest known name."""
    hint = closest_parameter(name)
    return f"unknown parameter {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")


def default_values() -> Dict[str, ParamValue]:
    """Return every parameter at its default value."""
    return {spec.name: spec.default for spec in PARAMETER_SPECS}


def non_empty(values: Sequence[str]) -> List[str]:
    """Drop the empty placeholder entries of a string-array parameter."""
    return [v.strip() for v in values if v.strip()]


def model_name_error(name: str) -> Optional[str]:
    """Say why an Ollama model name is malformed, or None when it is fine."""
    if not name or len(name) > 200:
        return f"model name {quoted(name)} must have 1 to 200 characters"
    if not _MODEL_NAME.match(name):
        return (f"model name {name!r} is malformed (expected name[:tag] with letters, digits, "
                "'.', '-' or '_', e.g. 'phi4:14b')")
    return None


def _type_error(spec: ParamSpec, value: Any) -> Optional[str]:
    kind = spec.kind
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is list:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, str)
    if ok:
        return None
    return f"{spec.name} must be a {kind.__name__ if kind is not list else 'list of strings'}, " \
        f"got {quoted(value)}"


def value_errors(spec: ParamSpec, value: Any) -> List[str]:
    """List the reasons one value is not acceptable for its parameter."""
    type_error = _type_error(spec, value)
    if type_error:
        return [type_error]
    errors: List[str] = []
    if spec.minimum is not None and value < spec.minimum:
        errors.append(f"{spec.name} must be at least {spec.minimum:g}, got {quoted(value)}")
    if spec.maximum is not None and value > spec.maximum:
        errors.append(f"{spec.name} must be at most {spec.maximum:g}, got {quoted(value)}")
    if spec.choices and value not in spec.choices:
        errors.append(f"{spec.name} must be one of {', '.join(spec.choices)}, got {quoted(value)}")
    errors.extend(_special_errors(spec.name, value))
    return errors


def _special_errors(name: str, value: Any) -> List[str]:
    if name == "ollama_host" and not _HOST_URL.match(value):
        return [f"ollama_host must look like http://host:port, got {quoted(value)}"]
    if name == "container.name" and not _CONTAINER_NAME.match(value):
        return [f"container.name {quoted(value)} is not a valid container name"]
    if name == "benchmark.models":
        return [e for e in (model_name_error(m) for m in non_empty(value)) if e]
    if name == "benchmark.canary_model" and value.strip():
        error = model_name_error(value.strip())
        return [f"benchmark.canary_model: {error}"] if error else []
    if name == "memory.sources":
        try:
            parse_sources_setting(non_empty(value))
        except MemorySourceError as exc:
            return [str(exc)]
        return []
    if name in ("memory.meminfo_path", "memory.nvidia_smi_command",
                "memory.drop_caches_path") and not str(value).strip():
        return [f"{name} must not be empty"]
    if name in ("reserve.include_patterns", "reserve.exclude_patterns"):
        errors = []
        for pattern in non_empty(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(f"{name}: {quoted(pattern)} is not a regular expression ({exc})")
        return errors
    if name == "container.command" and len(value) > 1 and not all(v.strip() for v in value):
        return ["container.command must not hold empty words (use [''] for none)"]
    if name == "benchmark.suite_path_dirs":
        # Relative folders would follow the node's working directory: only absolute ones.
        return [f"{name}: {quoted(folder)} must be an absolute folder (or [''] for none)"
                for folder in non_empty(value) if not folder.startswith(("/", "~"))]
    if name in ("benchmark.suite", "results_dir") and not value.strip():
        return [f"{name} must not be empty"]
    return []


def cross_errors(values: Mapping[str, Any]) -> List[str]:
    """List the reasons that concern several parameters together."""
    errors = []
    if values.get("container.backend") == "process" and not non_empty(
            values.get("container.command") or []):
        errors.append("container.backend process needs container.command (the program that "
                      "serves the Ollama API)")
    rate, period = values.get("publish_rate_hz"), values.get("sample_period_s")
    if isinstance(rate, (int, float)) and isinstance(period, (int, float)) and rate > 0 \
            and period > 1.0 / rate + 1e-9:
        errors.append(f"sample_period_s ({period:g}) must not be longer than one publish period "
                      f"(1/publish_rate_hz = {1.0 / rate:g} s): no message may carry an older "
                      "sample")
    warn = values.get("policy.pressure_warn_percent")
    error = values.get("policy.pressure_error_percent")
    if isinstance(warn, (int, float)) and isinstance(error, (int, float)) and warn > error:
        errors.append(f"policy.pressure_warn_percent ({warn:g}) must not be above "
                      f"policy.pressure_error_percent ({error:g})")
    if not errors:
        try:
            policy_settings_from(values)
            reserve_settings_from(values)
        except (PolicySettingsError, InvalidRosReserveSettings) as exc:
            errors.append(str(exc))
    return errors


def policy_order(order: str) -> str:
    """Translate a goal's model order into the policy's name for it."""
    return "given" if order == "as_given" else order


def policy_settings_from(values: Mapping[str, Any], *, preset: Optional[str] = None,
                         order: Optional[str] = None) -> PolicySettings:
    """Build the memory policy settings from node values and a goal's preset / order."""
    overrides: Dict[str, Any] = dict(
        pressure_alert_percent=float(values["policy.pressure_warn_percent"]),
        pressure_abort_percent=float(values["policy.pressure_error_percent"]),
        keep_alive=validate_keep_alive_setting(values["policy.keep_alive"]),
        dynamic_keep_alive=bool(values["policy.dynamic_keep_alive"]),
        parallel_small_models=bool(values["policy.parallel_small_models"]),
        parallel_max_models=int(values["policy.parallel_max_models"]),
        load_retries=int(values["policy.load_retries"]),
        preempt_on_breach=bool(values["policy.preempt"]),
        preempt_wait_s=float(values["policy.preempt_wait_s"]),
        enforce_container_limit=bool(values["policy.enforce_container_limit"]),
        oom_score_backstop=bool(values["policy.oom_score_backstop"]),
        order=policy_order(order or str(values["benchmark.order"])),
        num_ctx=int(values["benchmark.num_ctx"]),
        restart_deadline_s=float(values["container.restart_timeout_s"]),
        sample_period_s=float(values["sample_period_s"]),
        drop_caches=str(values["policy.drop_caches"]),
    )
    restart_gib = float(values["policy.restart_before_models_over_gib"])
    if restart_gib >= 0:
        overrides["restart_before_models_over_bytes"] = int(round(restart_gib * GIB))
    parallel_gib = float(values["policy.parallel_max_model_gib"])
    if parallel_gib > 0:
        overrides["parallel_max_model_bytes"] = int(round(parallel_gib * GIB))
    buffer_gib = float(values["policy.safety_buffer_gib"])
    if buffer_gib >= 0:
        overrides["safety_buffer_bytes"] = int(round(buffer_gib * GIB))
    return preset_settings(preset or str(values["policy.preset"]),
                           memory_scale=float(values["policy.memory_scale"]), **overrides)


def validate_keep_alive_setting(value: Any) -> Union[int, str]:
    """Check policy.keep_alive; PolicySettingsError when malformed."""
    try:
        return validate_keep_alive(value)
    except OptionsError as exc:
        raise PolicySettingsError(f"policy.keep_alive: {exc}") from exc


def reserve_settings_from(values: Mapping[str, Any]) -> RosReserveSettings:
    """Build the ROS reserve settings from these node values."""
    return RosReserveSettings(
        floor_bytes=int(round(float(values["reserve.floor_gib"]) * GIB)),
        window_s=float(values["reserve.window_s"]),
        growth_factor=float(values["reserve.growth_factor"]),
        margin_bytes=int(round(float(values["reserve.margin_gib"]) * GIB)),
        include_patterns=tuple(non_empty(values["reserve.include_patterns"])),
        exclude_patterns=tuple(non_empty(values["reserve.exclude_patterns"])),
    )


def validate_values(values: Mapping[str, Any]) -> List[str]:
    """List every reason the given values are invalid (unknown names included)."""
    errors = [unknown_parameter_error(name) for name in values if name not in SPECS_BY_NAME]
    for spec in PARAMETER_SPECS:
        if spec.name in values:
            errors.extend(value_errors(spec, values[spec.name]))
    if not errors:
        errors.extend(cross_errors(values))
    return errors


@dataclass(frozen=True)
class NodeSettings:
    """The validated values of every node parameter; GiB settings are kept in bytes."""

    values: Dict[str, Any] = field(default_factory=default_values)

    def __post_init__(self) -> None:
        merged = default_values()
        merged.update(self.values)
        errors = validate_values(merged)
        if errors:
            raise NodeSettingsError(errors)
        for spec in PARAMETER_SPECS:
            if spec.kind is float:
                merged[spec.name] = float(merged[spec.name])
            elif spec.kind is list:
                merged[spec.name] = list(merged[spec.name])
        object.__setattr__(self, "values", merged)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def gib_bytes(self, name: str) -> int:
        """Return a *_gib setting in whole bytes."""
        return int(round(float(self.values[name]) * GIB))

    def with_changes(self, changes: Mapping[str, Any]) -> "NodeSettings":
        """Return a copy with some values changed; NodeSettingsError when it is invalid."""
        merged = dict(self.values)
        merged.update(changes)
        return NodeSettings(values=merged)

    def policy_settings(self, *, preset: Optional[str] = None,
                        order: Optional[str] = None) -> PolicySettings:
        """Build memory policy settings, with a goal's preset and order when given."""
        return policy_settings_from(self.values, preset=preset, order=order)

    def memory_source_settings(self) -> MemorySourceSettings:
        """Where the memory sources are read (memory.* parameters)."""
        return MemorySourceSettings(
            meminfo_path=str(self.values["memory.meminfo_path"]),
            nvidia_smi_command=str(self.values["memory.nvidia_smi_command"]),
            drop_caches_path=str(self.values["memory.drop_caches_path"]),
            sources=parse_sources_setting(non_empty(self.values["memory.sources"])))

    def reserve_settings(self) -> RosReserveSettings:
        return reserve_settings_from(self.values)

    @property
    def default_models(self) -> List[str]:
        return non_empty(self.values["benchmark.models"])

    @property
    def reserve_include_patterns(self) -> List[str]:
        return non_empty(self.values["reserve.include_patterns"])

    @property
    def reserve_exclude_patterns(self) -> List[str]:
        return non_empty(self.values["reserve.exclude_patterns"])
