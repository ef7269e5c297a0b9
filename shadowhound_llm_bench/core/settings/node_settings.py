"""Validation of the node's settings and the typed settings built from them (no rclpy here)."""

# The parameter table is core/settings/parameter_specs.py; the simulation group and the former
# names still accepted are core/settings/simulation_parameters.py.

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..memory.memory_sources import (MemorySourceError, MemorySourceSettings,
                                     parse_sources_setting)
from ..decider.policy_settings import PolicySettings, PolicySettingsError, preset_settings
from ..memory.ros_reserve import InvalidRosReserveSettings, RosReserveSettings
from .parameter_specs import PARAMETER_SPECS, SPECS_BY_NAME, ParamSpec, ParamValue
from .run_options import OptionsError, validate_keep_alive
from .simulation_parameters import (RENAMED, SimulatedMachine, simulated_machine_from,
                                    with_current_names)
from ..runs.inert_text import quoted
from ..units import GIB

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
                           memory_scale=float(values["simulation.memory_scale"]), **overrides)


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
    # One warning per former parameter name given (simulation_parameters.RENAMED).
    deprecation_notes: Tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        given, notes, errors = with_current_names(self.values)
        merged = default_values()
        merged.update(given)
        errors = errors + validate_values(merged)
        if errors:
            raise NodeSettingsError(errors)
        for spec in PARAMETER_SPECS:
            if spec.kind is float:
                merged[spec.name] = float(merged[spec.name])
            elif spec.kind is list:
                merged[spec.name] = list(merged[spec.name])
        object.__setattr__(self, "values", merged)
        object.__setattr__(self, "deprecation_notes", tuple(notes))

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def gib_bytes(self, name: str) -> int:
        """Return a *_gib setting in whole bytes."""
        return int(round(float(self.values[name]) * GIB))

    def with_changes(self, changes: Mapping[str, Any]) -> "NodeSettings":
        """Return a copy with some values changed; NodeSettingsError when it is invalid."""
        merged = dict(self.values)
        for old, new in RENAMED.items():  # a change under a former name replaces the value
            if old in changes and new not in changes:
                merged.pop(new, None)
        merged.update(changes)
        return NodeSettings(values=merged)

    def policy_settings(self, *, preset: Optional[str] = None,
                        order: Optional[str] = None) -> PolicySettings:
        """Build memory policy settings, with a goal's preset and order when given."""
        return policy_settings_from(self.values, preset=preset, order=order)

    def simulated_machine(self) -> SimulatedMachine:
        """Return the simulation.* values (a robot: its own readings, Ollama's sizes as is)."""
        return simulated_machine_from(self.values)

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
