"""
The node's parameter table: every parameter's name, default, range and description.

One table (PARAMETER_SPECS) drives the ROS parameter declarations, config/llm_bench.yaml,
docs/parameters.md and the checks made at start-up and on every `set_parameters`. The robot's
parameters come first; the simulation group (core/settings/simulation_parameters.py) follows,
apart from them.
"""

from __future__ import annotations

from typing import Dict, Tuple

from ..decider.cache_drop import DROP_CACHES_MODES
from ..memory.ros_reserve import RosReserveSettings
from ..units import GIB
from .param_spec import ParamSpec, ParamValue, spec
from .simulation_parameters import SIMULATION_SPECS

__all__ = ["CONTAINER_BACKENDS", "ORDERS", "PARAMETER_SPECS", "PRESETS", "ParamSpec",
           "ParamValue", "ROBOT_SPECS", "SPECS_BY_NAME"]

PRESETS = ("default", "fast", "conservative", "adaptive")
ORDERS = ("small_to_large", "large_to_small", "as_given")
CONTAINER_BACKENDS = ("auto", "docker", "podman", "systemd", "process", "api_only")

# One set of ROS reserve defaults for the node and the library (core/memory/ros_reserve.py).
_RESERVE_DEFAULTS = RosReserveSettings()

ROBOT_SPECS: Tuple[ParamSpec, ...] = (
    spec("ollama_host", "http://localhost:11434",
         "Base URL of the Ollama server (http://host:port).", read_only=True),
    spec("request_timeout_s", 300.0,
         "Deadline of one benchmark request (whole stream), seconds.", minimum=1.0,
         maximum=7200.0),
    spec("container.backend", "auto",
         "How Ollama is measured and restarted: auto (a Docker or Podman container of "
         "container.name, else an active systemd unit of that name, else api_only), docker, "
         "podman, systemd (a service such as ollama.service), process (a local process tree) "
         "or api_only (sizes from /api/ps, unverified, no restart).",
         choices=CONTAINER_BACKENDS, read_only=True),
    spec("container.name", "ollama",
         "Name of the Ollama container, or of its systemd unit (ollama = ollama.service).",
         read_only=True),
    spec("container.systemctl", ["systemctl"],
         "systemd backend: the systemctl command (e.g. ['sudo', '-n', 'systemctl'] when the "
         "node may restart the unit only through sudo).", read_only=True),
    spec("container.command", [""],
         "process backend: the command the node starts as Ollama (e.g. ['ollama', 'serve'] "
         "or the simulator); [''] means none.", read_only=True),
    spec("container.restart_timeout_s", 60.0,
         "Deadline for a container restart until Ollama answers again, seconds.",
         minimum=1.0, maximum=600.0),
    spec("policy.preset", "default",
         "Memory policy preset: default (unload after each model, restart before large "
         "ones), fast (neither), conservative (restart before every model), adaptive (only "
         "when the next model would not fit).", choices=PRESETS),
    spec("policy.restart_before_models_over_gib", -1.0,
         "Restart the container before models predicted larger than this, GiB; -1 keeps the "
         "preset's value (the seed's 40 GB rule in the default preset), 0 restarts always.",
         minimum=-1.0, maximum=4096.0),
    spec("policy.safety_buffer_gib", -1.0,
         "Memory always kept free on top of the ROS reserve, GiB; -1 keeps the preset's "
         "value.", minimum=-1.0, maximum=4096.0),
    spec("policy.pressure_warn_percent", 80.0,
         "Container working set, in percent of the model budget, that raises a warning.",
         minimum=1.0, maximum=200.0),
    spec("policy.pressure_error_percent", 100.0,
         "Percent of the model budget at which a running model is stopped (the robot wins).",
         minimum=1.0, maximum=200.0),
    spec("policy.keep_alive", "5m",
         "keep_alive of test requests when the policy does not decide (seconds or a Go "
         "duration such as 5m)."),
    spec("policy.dynamic_keep_alive", False,
         "Longer keep_alive when more memory is free (the seed's idea)."),
    spec("policy.parallel_small_models", False,
         "Test several small models side by side when they all fit together."),
    spec("policy.parallel_max_models", 3,
         "Most models tested side by side in one batch (Ollama's OLLAMA_MAX_LOADED_MODELS "
         "must allow as many).", minimum=1, maximum=16),
    spec("policy.parallel_max_model_gib", 0.0,
         "Only models predicted at most this large are tested side by side, GiB; 0 means any "
         "models that fit in the budget together.", minimum=0.0, maximum=4096.0),
    spec("policy.load_retries", 1, "Retries of a failed load, each after a restart.",
         minimum=0, maximum=5),
    spec("policy.load_deadline_s", 600.0,
         "Deadline of one model load, seconds (a 43 GB 70B model read cold at ~130 MB/s "
         "takes ~330 s; Ollama itself gives up on a stuck runner after 5 min).",
         minimum=1.0, maximum=7200.0),
    spec("policy.stream_stall_s", 60.0,
         "A streamed answer with no token for this long is stalled (its own error), seconds.",
         minimum=0.5, maximum=3600.0),
    spec("policy.preempt", True,
         "On every memory sample: cut the load or stream in flight and unload when the ROS "
         "headroom falls under the reserve or pressure crosses policy.pressure_error_percent."),
    spec("policy.preempt_wait_s", 30.0,
         "After a preemption, wait this long for headroom before the run ends, seconds.",
         minimum=0.0, maximum=3600.0),
    spec("policy.enforce_container_limit", False,
         "Keep the container's memory limit at the model budget through the Docker API "
         "(where model memory is charged to the container)."),
    spec("policy.oom_score_backstop", False,
         "Make Ollama's runners the kernel's first OOM victims and the measured ROS processes "
         "its last (oom_score_adj; lowering needs root with CAP_SYS_RESOURCE)."),
    spec("policy.keep_models_found_loaded", False,
         "Models another client had loaded when a run starts stay loaded and their memory is "
         "counted (false: unloaded, the run starts from an empty container); those the run "
         "tests are unloaded either way."),
    spec("policy.drop_caches", "auto",
         "Drop the page cache when memory does not come back after an unload or when Ollama "
         "would refuse a load for free memory while available memory suffices: auto or never "
         "(needs the privilege to write memory.drop_caches_path).", choices=DROP_CACHES_MODES),
    spec("memory.meminfo_path", "/proc/meminfo",
         "Linux-format meminfo file of the machine Ollama and ROS share (MemAvailable, "
         "MemFree, Cached, NvMapMemUsed).", read_only=True),
    spec("memory.nvidia_smi_command", "nvidia-smi",
         "Command answering nvidia-smi --query-compute-apps (per-process GPU memory; NVML is "
         "used when it is missing).", read_only=True),
    spec("memory.drop_caches_path", "/proc/sys/vm/drop_caches",
         "File the policy writes 3 to when it drops the page cache.", read_only=True),
    spec("memory.sources", ["auto"],
         "Where model memory is read: ['auto'] (calibration with the smallest model on the "
         "machine's first run chooses) or any of cgroup_working_set, cgroup_anon, "
         "gpu_processes, host_used, nvmap (summed).", read_only=True),
    spec("reserve.fixed_gib", -1.0,
         "-1 measures ROS 2 / Nav2 processes live; otherwise a fixed ROS reserve, GiB.",
         minimum=-1.0, maximum=4096.0, read_only=True),
    spec("reserve.floor_gib", _RESERVE_DEFAULTS.floor_bytes / GIB,
         "Smallest memory reserve held back for ROS 2 / Nav2 processes, GiB.",
         minimum=0.0, maximum=4096.0, read_only=True),
    spec("reserve.window_s", float(_RESERVE_DEFAULTS.window_s),
         "Sliding window over which the peak of live ROS memory is taken, seconds.",
         minimum=1.0, maximum=86400.0, read_only=True),
    spec("reserve.growth_factor", float(_RESERVE_DEFAULTS.growth_factor),
         "Factor applied to the live ROS peak to allow for growth.", minimum=1.0,
         maximum=10.0, read_only=True),
    spec("reserve.margin_gib", _RESERVE_DEFAULTS.margin_bytes / GIB,
         "Margin added to the ROS reserve, GiB.", minimum=0.0,
         maximum=1024.0, read_only=True),
    spec("reserve.scan_period_s", 5.0,
         "Period of the scan of ROS 2 / Nav2 processes for the live reserve, seconds (the "
         "container is sampled every sample_period_s).", minimum=0.05, maximum=60.0,
         read_only=True),
    spec("reserve.include_patterns", [""],
         "Extra command-line patterns (regular expressions) counted as ROS processes; "
         "[''] means none.", read_only=True),
    spec("reserve.exclude_patterns", [""],
         "Command-line patterns (regular expressions) never counted as ROS processes; "
         "[''] means none.", read_only=True),
    spec("benchmark.models", ["phi4:14b", "qwen2.5-coder:32b", "llama3.3:70b"],
         "Models tested when a goal names none."),
    spec("benchmark.suite", "robot_mission",
         "Task suite: a name from config/suites, or a path to a suite YAML file inside one of "
         "benchmark.suite_path_dirs."),
    spec("benchmark.suite_path_dirs", [""],
         "Folders under which a goal or benchmark.suite may name a suite file by path; [''] "
         "means none (suites by name only).", read_only=True),
    spec("benchmark.repetitions", 3, "Measured repetitions per task (warm-up not counted).",
         minimum=1, maximum=100),
    spec("benchmark.order", "small_to_large",
         "Model order: small_to_large, large_to_small or as_given.", choices=ORDERS),
    spec("benchmark.num_ctx", 4096, "Context length pinned for every request (tokens).",
         minimum=256, maximum=1048576),
    spec("benchmark.num_predict", 512, "Maximum tokens generated per request.",
         minimum=1, maximum=131072),
    spec("benchmark.temperature", 0.0, "Sampling temperature pinned for every request.",
         minimum=0.0, maximum=2.0),
    spec("benchmark.seed", 42, "Sampling seed pinned for every request.", minimum=0,
         maximum=2 ** 31 - 1),
    spec("benchmark.pull_missing", True, "Pull models that are not present yet."),
    spec("benchmark.warmup", True,
         "Send one unmeasured request per model before the measured repetitions."),
    spec("benchmark.memory_bandwidth_gbps", 0.0,
         "Memory bandwidth for the roofline efficiency column, GB/s (Jetson AGX Thor: 273); "
         "0 leaves it out.", minimum=0.0, maximum=100000.0),
    spec("benchmark.canary_model", "",
         "Small model timed before and after every run to tell when the machine slowed down "
         "(as Thor does after many reloads); empty: no canary."),
    spec("benchmark.canary_min_tokens_per_s", 0.0,
         "Canary decode tokens/s below which the machine counts as slowed down.",
         minimum=0.0, maximum=100000.0),
    spec("results_dir", "~/ollama_benchmarks",
         "Folder under which each run writes <run_id>/ with its reports.", read_only=True),
    spec("state_dir", "",
         "Folder of the state kept between runs (measured footprints, unload and restart "
         "durations), shared with the llm_bench CLI; empty means "
         "$XDG_CACHE_HOME/shadowhound_llm_bench (~/.cache/shadowhound_llm_bench).",
         read_only=True),
    spec("history_db", "",
         "SQLite database every finished run is recorded in and compared against (the "
         "regression flag in the result summary); empty: history.sqlite3 in state_dir "
         "(~/.cache/shadowhound_llm_bench/history.sqlite3 by default).", read_only=True),
    spec("publish_rate_hz", 2.0, "Rate of ~/container_memory messages, Hz.", minimum=0.1,
         maximum=50.0, read_only=True),
    spec("sample_period_s", 0.5, "Period of the background memory sampler, seconds.",
         minimum=0.05, maximum=10.0, read_only=True),
    spec("diagnostics_period_s", 1.0, "Period of /diagnostics messages, seconds.",
         minimum=0.1, maximum=60.0, read_only=True),
    spec("feedback_period_s", 2.0,
         "Longest time between two feedback messages during a long phase, seconds.",
         minimum=0.1, maximum=60.0),
    spec("platform.enabled", True,
         "Record the machine (module, L4T, power mode, clocks) and sample power, temperature "
         "and clocks; publish ~/platform_status.", read_only=True),
    spec("platform.sysfs_root", "/",
         "Root of the machine's /sys, /proc, /etc and tools for the platform readings (a "
         "simulator's fake Thor tree in tests).", read_only=True),
    spec("platform.sample_hz", 20.0, "Power / temperature samples per second.",
         minimum=0.5, maximum=200.0, read_only=True),
    spec("platform.hot_c", 85.0,
         "Temperature at or above which a GPU clock below its maximum counts as throttled, "
         "degrees Celsius.", minimum=30.0, maximum=120.0, read_only=True),
    spec("platform.use_jtop", True,
         "Read through the jetson-stats (jtop) service when it runs; sysfs otherwise.",
         read_only=True),
)

PARAMETER_SPECS: Tuple[ParamSpec, ...] = ROBOT_SPECS + SIMULATION_SPECS

SPECS_BY_NAME: Dict[str, ParamSpec] = {item.name: item for item in PARAMETER_SPECS}
