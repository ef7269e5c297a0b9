"""Declare every node parameter with a description and range, and refuse invalid values."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                              ParameterException)
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..core.settings.node_settings import (PARAMETER_SPECS, SPECS_BY_NAME, NodeSettings,
                                           NodeSettingsError, ParamSpec, unknown_parameter_error)
from ..core.settings.simulation_parameters import RENAMED, with_current_names

# Parameters ROS itself gives a node (use_sim_time, ...) are declared before ours; QoS overrides
# are declared by the publishers that allow them. rclpy validates and applies them itself
# (use_sim_time switches the node clock at run time), so ours lets them through.
_ROS_PARAMETER_PREFIXES = ("qos_overrides.",)
_ROS_PARAMETER_NAMES = ("use_sim_time", "start_type_description_service")


def is_ros_parameter(name: str) -> bool:
    """Tell whether ROS owns this parameter (not one of the benchmark's settings)."""
    return name in _ROS_PARAMETER_NAMES or name.startswith(_ROS_PARAMETER_PREFIXES)


_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
          list: ParameterType.PARAMETER_STRING_ARRAY}


def descriptor_for(spec: ParamSpec) -> ParameterDescriptor:
    """Build the descriptor that shows a parameter's meaning and range in `ros2 param`."""
    limits = ""
    if spec.choices:
        limits = f" One of: {', '.join(spec.choices)}."
    descriptor = ParameterDescriptor(name=spec.name, type=_TYPES[spec.kind],
                                     description=spec.description + limits,
                                     read_only=spec.read_only)
    if spec.kind is int and spec.minimum is not None and spec.maximum is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum),
                                                 to_value=int(spec.maximum), step=0)]
    elif spec.kind is float and spec.minimum is not None and spec.maximum is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    return descriptor


def _given_value(node: Node, name: str) -> Any:
    override = getattr(node, "_parameter_overrides", {}).get(name)
    return "?" if override is None else override.value


def unknown_given_parameters(node: Node) -> List[str]:
    """
    Name each parameter given to this node (files, -p) that it does not have.

    rcl has already matched the parameters files' node sections ('/**', 'llm_bench',
    '/ns/llm_bench', nested namespaces, wildcards) and the -p rules to this node, so other
    nodes' parameters in a shared file are not here. ROS would ignore these silently.
    """
    given = getattr(node, "_parameter_overrides", None) or {}
    return [unknown_parameter_error(name) for name in given
            if name not in SPECS_BY_NAME and name not in RENAMED and not node.has_parameter(name)
            and not is_ros_parameter(name)]


def given_under_former_names(node: Node) -> Tuple[Dict[str, Any], List[str], List[str]]:
    """
    Values given (files, -p) under a parameter's former name, keyed by its name now.

    Former names are not declared: the value is declared under the name now, with a warning.
    Return (values by the name now, a note per former name, an error per name given twice),
    as core/settings/simulation_parameters.with_current_names decides for NodeSettings.
    """
    overrides = getattr(node, "_parameter_overrides", None) or {}
    given = {name: _plain(overrides[name].value)
             for name in (*RENAMED, *RENAMED.values()) if name in overrides}
    current, notes, errors = with_current_names(given)
    moved = {new: current[new] for old, new in RENAMED.items()
             if old in given and new not in given}
    return moved, notes, errors


def _declare(node: Node, spec: ParamSpec, former_value: Any = None) -> Optional[str]:
    """Declare one parameter; a value given under its former name (not None) is its value."""
    value = spec.default if former_value is None else former_value
    shown = _given_value(node, spec.name) if former_value is None else former_value
    try:
        node.declare_parameter(spec.name, value, descriptor_for(spec))
    except InvalidParameterTypeException:
        wanted = {bool: "true or false", int: "a whole number", float: "a number with a "
                  "decimal point (e.g. 2.0)", str: "a string",
                  list: "a list of strings"}[spec.kind]
        return f"{spec.name} must be {wanted}, got {shown!r}"
    except InvalidParameterValueException:
        return f"{spec.name} must be within {spec.minimum:g}..{spec.maximum:g}, got {shown!r}"
    except ParameterException as exc:
        return f"{spec.name}: {exc}"
    return None


class NodeParameters:
    """Declares the parameters on a node, holds the validated settings and guards changes."""

    def __init__(self, node: Node, *,
                 on_change: Optional[Callable[[NodeSettings], None]] = None) -> None:
        """Declare everything; raises NodeSettingsError listing every invalid value."""
        self._node = node
        self._on_change = on_change
        self._lock = threading.Lock()
        errors: List[str] = unknown_given_parameters(node)
        # A value given under a former name is declared under the name now.
        by_new, notes, twice = given_under_former_names(node)
        for note in notes:
            node.get_logger().warning(note)
        errors += twice
        errors += [e for e in (_declare(node, s, by_new.get(s.name)) for s in PARAMETER_SPECS)
                   if e]
        values = {spec.name: _plain(node.get_parameter(spec.name).value)
                  for spec in PARAMETER_SPECS if node.has_parameter(spec.name)}
        try:
            self._settings = NodeSettings(values=values)
        except NodeSettingsError as exc:
            errors.extend(exc.errors)
        if errors:
            raise NodeSettingsError(errors)
        self._pending: Optional[NodeSettings] = None
        node.add_on_set_parameters_callback(self._validate_change)
        if hasattr(node, "add_post_set_parameters_callback"):
            node.add_post_set_parameters_callback(self._commit_change)

    @property
    def settings(self) -> NodeSettings:
        """Return the current validated values (a running benchmark keeps its own copy)."""
        with self._lock:
            return self._settings

    def _validate_change(self, parameters: List[Parameter]) -> SetParametersResult:
        changes: dict = {}
        for parameter in parameters:
            if is_ros_parameter(parameter.name):
                continue
            if parameter.name not in SPECS_BY_NAME:
                return SetParametersResult(successful=False,
                                           reason=f"unknown parameter {parameter.name!r}")
            changes[parameter.name] = _plain(parameter.value)
        if not changes:
            return SetParametersResult(successful=True, reason="")
        try:
            with self._lock:
                candidate = self._settings.with_changes(changes)
        except NodeSettingsError as exc:
            self._node.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        if not hasattr(self._node, "add_post_set_parameters_callback"):
            self._store(candidate)  # Humble: no post-set hook, the change is accepted here
        else:
            self._pending = candidate
        return SetParametersResult(successful=True, reason="")

    def _commit_change(self, parameters: List[Parameter]) -> None:
        if self._pending is not None:
            self._store(self._pending)
            self._pending = None

    def _store(self, settings: NodeSettings) -> None:
        with self._lock:
            self._settings = settings
        if self._on_change is not None:
            self._on_change(settings)


def _plain(value: Any) -> Any:
    """Parameter values as plain Python (arrays come back as lists of str)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value
