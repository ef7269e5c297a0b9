"""Memory policy settings with validation, and the presets that reproduce the seed's matrix."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

from .cache_drop import DROP_CACHES_MODES
from ..memory.footprint import SEED_BYTES_PER_BILLION_PARAMS
from ..units import GB, GIB

KeepAlive = Union[int, str]

ORDERS = ("small_to_large", "large_to_small", "given")
PRESETS = ("default", "fast", "conservative", "adaptive")

# The seed restarted the container before every model over 40 GB.
SEED_RESTART_THRESHOLD_BYTES = 40 * GB

_GO_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^-?\d+$")


class PolicySettingsError(ValueError):
    """A memory policy setting is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class PolicySettings:
    """Everything the memory policy decides by. Byte sizes are this machine's bytes."""

    preset: str = "default"
    # After a model: unload it (keep_alive 0) and verify that the memory came back.
    unload_after_each_model: bool = True
    # Before a model predicted larger than this: restart the container. None = never, 0 = always.
    restart_before_models_over_bytes: Optional[int] = SEED_RESTART_THRESHOLD_BYTES
    # Before a model that the prediction says will not fit: unload others, then restart, then skip.
    make_room_when_needed: bool = True
    # A model predicted larger than the whole budget is skipped instead of risking the robot.
    skip_models_that_never_fit: bool = True
    # Cleanup is successful when the model left /api/ps and at least this share of its measured
    # footprint came back; otherwise the memory "stays up" and the container is restarted.
    cleanup_min_release_fraction: float = 0.5
    restart_when_cleanup_fails: bool = True
    # Load failures (HTTP 500 / EOF, runner died, timeout): restart, then retry this many times.
    restart_on_load_failure: bool = True
    load_retries: int = 1
    # Ollama stopped answering mid-run (container stopped, server crashed): restart the
    # container and retry the model once. A removed container cannot be restarted.
    restart_when_unreachable: bool = True
    # Making room (adaptive): restart instead of unloading when the measured restart is cheaper
    # than the unloads needed, or when the unloads would free at least this share of what is
    # cached and the restart costs at most restart_cost_tolerance x the unloads (a restart also
    # returns memory an unload leaks and leaves a clean state).
    cost_aware_room: bool = False
    restart_when_freeing_share: float = 0.5
    restart_cost_tolerance: float = 2.0
    # Cleanup verification: once /api/ps no longer lists the model, judge the released memory
    # from at least this many fresh samples taken over at least this grace.
    cleanup_grace_s: float = 0.2
    cleanup_samples: int = 2
    order: str = "small_to_large"
    pressure_alert_percent: float = 80.0  # of the model budget: log an alert
    pressure_abort_percent: float = 100.0  # of the model budget: stop the model, the robot wins
    safety_buffer_bytes: int = 2 * GIB
    keep_alive: KeepAlive = "5m"
    # Seed's idea: more free memory -> longer cache; seconds = max x free budget share.
    dynamic_keep_alive: bool = False
    dynamic_keep_alive_min_s: int = 30
    dynamic_keep_alive_max_s: int = 600
    # Test several small models side by side when all of a batch fit together.
    parallel_small_models: bool = False
    parallel_max_models: int = 3  # Ollama's default OLLAMA_MAX_LOADED_MODELS (per GPU)
    # Only models predicted at most this large join a batch; None: any that fit together.
    parallel_max_model_bytes: Optional[int] = None
    num_ctx: int = 4096
    bytes_per_billion_params: int = SEED_BYTES_PER_BILLION_PARAMS
    memory_wait_s: float = 5.0  # before skipping: wait this long for memory to come back
    unload_deadline_s: float = 30.0
    restart_deadline_s: float = 60.0
    sample_period_s: float = 0.5
    # Preemption (checked on every memory sample): cut the load or stream and unload when the
    # ROS headroom falls under the reserve or pressure crosses pressure_abort_percent; restart
    # when the models' memory rises by this share of the budget after the unload (a load Ollama
    # goes on with) or is not released in time; afterwards wait this long for headroom before
    # the run ends.
    preempt_on_breach: bool = True
    preempt_rise_fraction: float = 0.02
    preempt_release_deadline_s: float = 10.0
    preempt_wait_s: float = 30.0
    # Keep the container's memory limit at the model budget through the Docker API.
    enforce_container_limit: bool = False
    # Where model memory is not charged to the container (unified memory): Ollama's runners get
    # oom_score_adj 1000 and the ROS processes the node measures a negative one (needs root).
    oom_score_backstop: bool = False
    # Drop the page cache (drop_caches) when reclaim after an unload stalls or when free memory
    # is short while available memory suffices (Ollama's false refusal on unified memory):
    # auto | never. Needs the privilege to write drop_caches; without it the next option runs.
    drop_caches: str = "auto"
    # A model predicted (not measured here) must fit with this share of its prediction to spare.
    prediction_margin_fraction: float = 0.05

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> "PolicySettings":
        """Return a validated copy with some settings changed."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise PolicySettingsError(f"unknown policy setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> Dict[str, Any]:
        """Plain values for reports and logs."""
        return dataclasses.asdict(self)


def preset_settings(name: str, *, memory_scale: float = 1.0, **overrides: Any) -> PolicySettings:
    """
    Build the named preset with byte sizes scaled to the machine, then apply overrides.

    memory_scale is 1 on a robot; a simulated machine holding that share of the real bytes
    (the simulation parameter group, core/settings/simulation_parameters.py) scales the preset's
    byte sizes with it. The policy itself never sees the scale.

    default: unload after each model, restart before models over 40 GB (scaled).
    fast: neither (error recovery only). conservative: unload, and restart before every model.
    adaptive: unload or restart only when the prediction says the next model would not fit.
    """
    if name not in PRESETS:
        raise PolicySettingsError(
            f"unknown memory policy preset {name!r}; choose one of {', '.join(PRESETS)}")
    if not isinstance(memory_scale, (int, float)) or not 0 < memory_scale <= 1.0:
        raise PolicySettingsError(f"memory_scale must be in (0, 1], got {memory_scale!r}")
    scaled = dict(
        preset=name,
        safety_buffer_bytes=int(2 * GIB * memory_scale),
        restart_before_models_over_bytes=int(SEED_RESTART_THRESHOLD_BYTES * memory_scale),
    )
    if name == "fast":
        scaled.update(unload_after_each_model=False, restart_before_models_over_bytes=None,
                      make_room_when_needed=False, restart_when_cleanup_fails=False)
    elif name == "conservative":
        scaled.update(restart_before_models_over_bytes=0)
    elif name == "adaptive":
        scaled.update(unload_after_each_model=False, restart_before_models_over_bytes=None,
                      cost_aware_room=True)
    base = PolicySettings(**scaled)
    return base.replace(**overrides) if overrides else base


def settings_from_mapping(values: Mapping[str, Any]) -> PolicySettings:
    """
    Build settings from a mapping: `preset` and `memory_scale` pick the base, others override.

    Unknown keys and wrong types are rejected with the key's name in the message.
    """
    if not isinstance(values, Mapping):
        raise PolicySettingsError(f"memory policy settings must be a mapping, got {values!r}")
    values = dict(values)
    name = values.pop("preset", "default")
    scale = values.pop("memory_scale", 1.0)
    return preset_settings(str(name), memory_scale=scale, **values)


def _check_type(settings: PolicySettings, name: str, kinds: tuple) -> None:
    value = getattr(settings, name)
    # bool is an int in Python; a flag given as a number (or a number as a flag) is a mistake.
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise PolicySettingsError(f"{name} must be {wanted}, got {value!r}")


def _validate(s: PolicySettings) -> None:
    if s.preset not in PRESETS + ("custom",):
        raise PolicySettingsError(f"preset must be one of {', '.join(PRESETS)} or custom")
    for flag in ("unload_after_each_model", "make_room_when_needed", "skip_models_that_never_fit",
                 "restart_when_cleanup_fails", "restart_on_load_failure", "dynamic_keep_alive",
                 "parallel_small_models", "restart_when_unreachable", "cost_aware_room",
                 "preempt_on_breach", "enforce_container_limit", "oom_score_backstop"):
        _check_type(s, flag, (bool,))
    for name in ("load_retries", "safety_buffer_bytes", "dynamic_keep_alive_min_s",
                 "dynamic_keep_alive_max_s", "parallel_max_models", "num_ctx",
                 "bytes_per_billion_params", "cleanup_samples"):
        _check_type(s, name, (int,))
    for name in ("cleanup_min_release_fraction", "pressure_alert_percent",
                 "pressure_abort_percent", "memory_wait_s", "unload_deadline_s",
                 "restart_deadline_s", "sample_period_s", "restart_when_freeing_share",
                 "restart_cost_tolerance", "cleanup_grace_s", "preempt_rise_fraction",
                 "preempt_release_deadline_s", "preempt_wait_s", "prediction_margin_fraction"):
        _check_type(s, name, (int, float))
    threshold = s.restart_before_models_over_bytes
    if threshold is not None:
        _check_type(s, "restart_before_models_over_bytes", (int,))
        if threshold < 0:
            raise PolicySettingsError("restart_before_models_over_bytes must be >= 0 or None")
    if not 0.0 <= s.prediction_margin_fraction <= 1.0:
        raise PolicySettingsError("prediction_margin_fraction must be within 0..1")
    if s.drop_caches not in DROP_CACHES_MODES:
        raise PolicySettingsError(f"drop_caches must be one of {', '.join(DROP_CACHES_MODES)}, "
                                  f"got {s.drop_caches!r}")
    if s.order not in ORDERS:
        raise PolicySettingsError(f"order must be one of {', '.join(ORDERS)}, got {s.order!r}")
    if not 0.0 <= s.cleanup_min_release_fraction <= 1.0:
        raise PolicySettingsError("cleanup_min_release_fraction must be within 0..1")
    if not 0 <= s.load_retries <= 5:
        raise PolicySettingsError("load_retries must be within 0..5")
    if not 0 < s.pressure_alert_percent <= s.pressure_abort_percent <= 200:
        raise PolicySettingsError(
            "need 0 < pressure_alert_percent <= pressure_abort_percent <= 200, got "
            f"{s.pressure_alert_percent} and {s.pressure_abort_percent}")
    if s.safety_buffer_bytes < 0:
        raise PolicySettingsError("safety_buffer_bytes must be >= 0")
    _validate_keep_alive(s.keep_alive)
    if not 0 <= s.dynamic_keep_alive_min_s <= s.dynamic_keep_alive_max_s:
        raise PolicySettingsError("need 0 <= dynamic_keep_alive_min_s <= dynamic_keep_alive_max_s")
    if not 1 <= s.parallel_max_models <= 16:
        raise PolicySettingsError("parallel_max_models must be within 1..16")
    if s.parallel_max_model_bytes is not None:
        _check_type(s, "parallel_max_model_bytes", (int,))
        if s.parallel_max_model_bytes <= 0:
            raise PolicySettingsError("parallel_max_model_bytes must be positive or None")
    if not 128 <= s.num_ctx <= 1_048_576:
        raise PolicySettingsError(f"num_ctx must be within 128..1048576, got {s.num_ctx}")
    if s.bytes_per_billion_params <= 0:
        raise PolicySettingsError("bytes_per_billion_params must be positive")
    if not 0 <= s.memory_wait_s <= 3600:
        raise PolicySettingsError("memory_wait_s must be within 0..3600")
    for name in ("unload_deadline_s", "restart_deadline_s"):
        if not 0 < getattr(s, name) <= 3600:
            raise PolicySettingsError(f"{name} must be within (0, 3600]")
    if not 0.0 < s.restart_when_freeing_share <= 1.0:
        raise PolicySettingsError("restart_when_freeing_share must be within (0, 1]")
    if not 0.0 <= s.restart_cost_tolerance <= 100.0:
        raise PolicySettingsError("restart_cost_tolerance must be within 0..100")
    if not 0.0 <= s.cleanup_grace_s <= 60.0:
        raise PolicySettingsError("cleanup_grace_s must be within 0..60")
    if not 1 <= s.cleanup_samples <= 100:
        raise PolicySettingsError("cleanup_samples must be within 1..100")
    if not 0.0 < s.preempt_rise_fraction <= 1.0:
        raise PolicySettingsError("preempt_rise_fraction must be within (0, 1]")
    for name in ("preempt_release_deadline_s", "preempt_wait_s"):
        if not 0 <= getattr(s, name) <= 3600:
            raise PolicySettingsError(f"{name} must be within 0..3600")
    if not 0.01 <= s.sample_period_s <= 60:
        raise PolicySettingsError("sample_period_s must be within 0.01..60")


def _validate_keep_alive(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PolicySettingsError(
            f"keep_alive must be seconds or a duration string, got {value!r}")
    if isinstance(value, str) and not _GO_DURATION.match(value.strip()):
        raise PolicySettingsError(
            f"keep_alive {value!r} is not a duration such as '5m', '30s', '1h30m', '0' or '-1'")
