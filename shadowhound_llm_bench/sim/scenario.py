"""A simulated machine: memory/time scale, limits, catalog, faults, ROS load, node parameters."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import yaml

from .catalog import ModelSpec, apply_overrides, builtin_catalog
from .quantities import parse_bytes, parse_go_duration

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ScenarioError(ValueError):
    """A scenario file that is missing or malformed."""


@dataclass(frozen=True)
class RosNodeLoad:
    """One ROS 2 / Nav2 process to stand up beside the container (real-machine bytes)."""

    name: str
    bytes: int


@dataclass
class Scenario:
    """What a simulated machine needs; byte fields are the real machine's unless *_physical."""

    name: str
    description: str = ''
    memory_scale: float = 1.0
    time_scale: float = 1.0
    host_total_bytes: int = 0
    system_reserve_bytes: int = 0
    believed_total_bytes: int = 0  # what the server thinks it may fill (Thor: unified memory)
    container_limit_bytes: int = 0  # 0 = no limit
    max_loaded_models: int = 3
    default_keep_alive_s: float = 300.0
    default_num_ctx: int = 4096
    load_bytes_per_s: float = 2e9
    load_base_s: float = 0.5
    pull_bytes_per_s: float = 2e8
    unload_delay_s: float = 0.5
    version: str = '0.12.6'
    catalog: Dict[str, ModelSpec] = field(default_factory=builtin_catalog)
    faults: Dict[str, Any] = field(default_factory=dict)
    ros_nodes: List[RosNodeLoad] = field(default_factory=list)
    node_parameters: Dict[str, Any] = field(default_factory=dict)
    source_path: str = ''

    def physical_bytes(self, real_bytes: int) -> int:
        """Bytes really allocated on this machine for real_bytes of the simulated one."""
        return int(real_bytes * self.memory_scale)

    def wall_seconds(self, simulated_s: float) -> float:
        """Wall-clock seconds spent here for simulated_s seconds of the simulated machine."""
        return simulated_s * self.time_scale

    @property
    def container_limit_physical_bytes(self) -> int:
        """Return the container's memory limit on this machine (0 = none)."""
        return self.physical_bytes(self.container_limit_bytes)

    @property
    def ros_load_physical_bytes(self) -> int:
        """Total ROS / Nav2 memory to stand up on this machine."""
        return sum(self.physical_bytes(node.bytes) for node in self.ros_nodes)


def scenario_path(name_or_path: str) -> str:
    """Return the YAML file for a scenario name (config/scenarios/<name>.yaml) or a path."""
    if os.path.isfile(name_or_path):
        return os.path.abspath(name_or_path)
    candidates = [os.path.join(REPO_ROOT, 'config', 'scenarios', name_or_path + '.yaml')]
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: F401
        share = get_package_share_directory('shadowhound_llm_bench')
        candidates.append(os.path.join(share, 'config', 'scenarios', name_or_path + '.yaml'))
    except Exception:  # no ament index: source tree only
        pass
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise ScenarioError(f'no scenario {name_or_path!r} (looked in {", ".join(candidates)})')


def _scale(value: Any) -> float:
    if isinstance(value, str) and '/' in value:
        num, den = value.split('/', 1)
        return float(num) / float(den)
    return float(value)


def _duration_s(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_go_duration(str(value))


def scenario_from_dict(data: Mapping[str, Any], *, name: str = 'custom',
                       source_path: str = '') -> Scenario:
    """Build a Scenario from parsed YAML."""
    if not isinstance(data, Mapping):
        raise ScenarioError('a scenario must be a mapping')
    machine = data.get('machine', {}) or {}
    server = data.get('server', {}) or {}
    catalog_cfg = data.get('catalog', {}) or {}
    try:
        catalog = apply_overrides(
            builtin_catalog(),
            pulled=catalog_cfg.get('pulled', ()),
            not_pulled=catalog_cfg.get('not_pulled', ()),
            overrides=catalog_cfg.get('models', {}) or {})
        host_total = parse_bytes(machine.get('host_total', 0))
        ros_nodes = [RosNodeLoad(name=str(k), bytes=parse_bytes(v))
                     for k, v in (data.get('ros_load', {}) or {}).items()]
        return Scenario(
            name=str(data.get('name', name)),
            description=str(data.get('description', '')),
            memory_scale=_scale(data.get('memory_scale', 1.0)),
            time_scale=_scale(data.get('time_scale', 1.0)),
            host_total_bytes=host_total,
            system_reserve_bytes=parse_bytes(machine.get('system_reserve', 0)),
            believed_total_bytes=parse_bytes(machine.get('believed_total', host_total)),
            container_limit_bytes=parse_bytes(machine.get('container_limit', 0)),
            max_loaded_models=int(server.get('max_loaded_models', 3)),
            default_keep_alive_s=_duration_s(server.get('default_keep_alive', '5m')),
            default_num_ctx=int(server.get('default_num_ctx', 4096)),
            load_bytes_per_s=float(parse_bytes(server.get('load_bytes_per_s', '2GB'))),
            load_base_s=float(server.get('load_base_s', 0.5)),
            pull_bytes_per_s=float(parse_bytes(server.get('pull_bytes_per_s', '200MB'))),
            unload_delay_s=float(server.get('unload_delay_s', 0.5)),
            version=str(server.get('version', '0.12.6')),
            catalog=catalog,
            faults=dict(data.get('faults', {}) or {}),
            ros_nodes=ros_nodes,
            node_parameters=dict(data.get('node_parameters', {}) or {}),
            source_path=source_path,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f'scenario {name!r}: {exc}') from exc


def load_scenario(name_or_path: str) -> Scenario:
    """Load config/scenarios/<name>.yaml (or a path) into a Scenario."""
    path = scenario_path(name_or_path)
    try:
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f'cannot read scenario {path}: {exc}') from exc
    name = os.path.splitext(os.path.basename(path))[0]
    return scenario_from_dict(data or {}, name=name, source_path=path)


def scenario_summary(scenario: Scenario, num_ctx: Optional[int] = None) -> Dict[str, Any]:
    """Scaled numbers of a scenario, for /sim/state and for people."""
    ctx = num_ctx or scenario.default_num_ctx
    return {
        'name': scenario.name,
        'memory_scale': scenario.memory_scale,
        'time_scale': scenario.time_scale,
        'host_total_physical_bytes': scenario.physical_bytes(scenario.host_total_bytes),
        'container_limit_physical_bytes': scenario.container_limit_physical_bytes,
        'ros_load_physical_bytes': scenario.ros_load_physical_bytes,
        'max_loaded_models': scenario.max_loaded_models,
        'models': {
            spec.name: {
                'pulled': spec.pulled,
                'footprint_bytes': spec.footprint_bytes(ctx),
                'footprint_physical_bytes': scenario.physical_bytes(spec.footprint_bytes(ctx)),
            } for spec in scenario.catalog.values()
        },
    }
