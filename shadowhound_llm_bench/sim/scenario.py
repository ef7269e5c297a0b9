"""A simulated machine: memory/time scale, limits, catalog, faults, ROS load, node parameters."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TypeVar

import yaml

from ..common.bounded_yaml import yaml_error_reason
from .catalog import ModelSpec, apply_overrides, builtin_catalog
from .faults import FaultError, Faults
from .quantities import parse_bytes, parse_go_duration

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# The simulator's own /api/version: the release it follows (0.12.6) marked as the simulator, so
# nothing the product keeps per server (calibration, footprints, costs) mixes with a real 0.12.6.
SIMULATOR_VERSION = '0.12.6-shb-sim'


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
    memory_model: str = 'cgroup_charged'  # unified: device memory held by the GPU driver
    runner_cpu_bytes: int = 0  # unified: the runner's CPU-side share, charged to the container
    num_parallel: int = 1  # OLLAMA_NUM_PARALLEL
    kv_cache_type: str = 'f16'  # OLLAMA_KV_CACHE_TYPE
    fit_check: str = 'ollama'  # ollama: free memory read as Ollama does; believed_total: scripted
    max_loaded_models: int = 3
    default_keep_alive_s: float = 300.0
    default_num_ctx: int = 4096
    load_bytes_per_s: float = 2e9
    load_base_s: float = 0.5
    pull_bytes_per_s: float = 2e8
    unload_delay_s: float = 0.5
    version: str = SIMULATOR_VERSION
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


TOP_KEYS = ('name', 'description', 'memory_scale', 'time_scale', 'machine', 'server',
            'catalog', 'faults', 'ros_load', 'node_parameters')
MACHINE_KEYS = ('host_total', 'system_reserve', 'believed_total', 'container_limit',
                'memory_model', 'runner_cpu_share')
SERVER_KEYS = ('max_loaded_models', 'default_keep_alive', 'default_num_ctx', 'load_bytes_per_s',
               'load_base_s', 'pull_bytes_per_s', 'unload_delay_s', 'version', 'num_parallel',
               'kv_cache_type', 'fit_check')
CATALOG_KEYS = ('pulled', 'not_pulled', 'models')

_T = TypeVar('_T')


def _scale(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f'not a number: {value!r}')
    if isinstance(value, str) and '/' in value:
        num, den = value.split('/', 1)
        return float(num) / float(den)
    return float(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'not a number: {value!r}')
    return float(value)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'not a whole number: {value!r}')
    return value


def _duration_s(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_go_duration(str(value))


def _names(value: Any) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'not a list of model names: {value!r}')
    return list(value)


class _Reader:
    """Read a scenario's keys, naming the key (and the file) in every error."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, message: str) -> ScenarioError:
        return ScenarioError(f'scenario {self.label}: {message}')

    def section(self, data: Mapping[str, Any], key: str, known: Sequence[str] = ()
                ) -> Mapping[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(f'{key} must be a mapping, got {value!r}')
        if known:
            self.known(value, known, f'{key}.')
        return value

    def known(self, data: Mapping[str, Any], keys: Sequence[str], prefix: str = '') -> None:
        for key in data:
            if key not in keys:
                close = difflib.get_close_matches(str(key), list(keys), n=1)
                hint = f' (did you mean {prefix}{close[0]}?)' if close else ''
                raise self.fail(f'unknown key {prefix}{key}{hint}; known: {", ".join(keys)}')

    def value(self, data: Mapping[str, Any], key: str, default: Any,
              convert: Callable[[Any], _T], expected: str, *, prefix: str = '',
              low: Optional[float] = None, positive: bool = False) -> _T:
        raw = data.get(key, default)
        try:
            result = convert(raw)
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise self.fail(f'{prefix}{key} must be {expected}, got {raw!r} ({exc})') from exc
        number = result if isinstance(result, (int, float)) else None
        if number is not None and ((positive and not number > 0)
                                   or (low is not None and number < low)):
            raise self.fail(f'{prefix}{key} must be {expected}, got {raw!r}')
        return result


def scenario_from_dict(data: Mapping[str, Any], *, name: str = 'custom',
                       source_path: str = '') -> Scenario:
    """Build a Scenario from parsed YAML; ScenarioError naming the key and what it expects."""
    read = _Reader(source_path or repr(name))
    if not isinstance(data, Mapping):
        raise read.fail('a scenario must be a mapping')
    read.known(data, TOP_KEYS)
    machine = read.section(data, 'machine', MACHINE_KEYS)
    server = read.section(data, 'server', SERVER_KEYS)
    catalog_cfg = read.section(data, 'catalog', CATALOG_KEYS)
    ros_load = read.section(data, 'ros_load')
    faults = dict(read.section(data, 'faults'))
    node_parameters = dict(read.section(data, 'node_parameters'))
    for key in ('name', 'description'):
        if key in data and not isinstance(data[key], str):
            raise read.fail(f'{key} must be a string, got {data[key]!r}')
    scale = 'a positive number or a fraction such as 1/64'
    size = 'a size in bytes (such as 56GiB or 2GB) >= 0'
    rate = 'a size in bytes per second (such as 2GB) > 0'

    def machine_size(key: str, default: Any) -> int:
        return read.value(machine, key, default, parse_bytes, size, prefix='machine.', low=0)

    host_total = machine_size('host_total', 0)
    ros_nodes = [RosNodeLoad(name=str(k), bytes=read.value(ros_load, k, 0, parse_bytes, size,
                                                           prefix='ros_load.', low=0))
                 for k in ros_load]
    for key in ('pulled', 'not_pulled'):
        read.value(catalog_cfg, key, [], _names, 'a list of model names', prefix='catalog.')
    models = read.section(catalog_cfg, 'models')
    for model, fields in models.items():
        if not isinstance(fields, Mapping):
            raise read.fail(f'catalog.models.{model} must be a mapping of model fields, '
                            f'got {fields!r}')
    try:
        catalog = apply_overrides(
            builtin_catalog(), pulled=catalog_cfg.get('pulled', ()),
            not_pulled=catalog_cfg.get('not_pulled', ()), overrides=models)
    except KeyError as exc:
        raise read.fail(f'catalog: unknown model {exc} (add it under catalog.models '
                        'with its fields)') from exc
    except (TypeError, ValueError) as exc:
        raise read.fail(f'catalog.models: {exc}') from exc
    try:
        Faults(faults)
    except FaultError as exc:
        raise read.fail(f'faults: {exc}') from exc
    srv = dict(prefix='server.')
    memory_model = machine.get('memory_model', 'cgroup_charged')
    if memory_model not in ('unified', 'cgroup_charged'):
        raise read.fail(f'machine.memory_model must be unified or cgroup_charged, '
                        f'got {memory_model!r}')
    fit_check = server.get('fit_check', 'ollama')
    if fit_check not in ('ollama', 'believed_total'):
        raise read.fail(f'server.fit_check must be ollama or believed_total, got {fit_check!r}')
    kv_cache_type = server.get('kv_cache_type', 'f16')
    if kv_cache_type not in ('f16', 'q8_0', 'q4_0'):
        raise read.fail(f'server.kv_cache_type must be f16, q8_0 or q4_0, got {kv_cache_type!r}')
    return Scenario(
        name=str(data.get('name', name)),
        description=str(data.get('description', '')),
        memory_scale=read.value(data, 'memory_scale', 1.0, _scale, scale, positive=True),
        time_scale=read.value(data, 'time_scale', 1.0, _scale, scale, positive=True),
        host_total_bytes=host_total,
        system_reserve_bytes=machine_size('system_reserve', 0),
        believed_total_bytes=machine_size('believed_total', host_total),
        container_limit_bytes=machine_size('container_limit', 0),
        memory_model=memory_model,
        runner_cpu_bytes=machine_size('runner_cpu_share', 0),
        num_parallel=read.value(server, 'num_parallel', 1, _whole, 'a whole number >= 1', low=1,
                                **srv),
        kv_cache_type=kv_cache_type,
        fit_check=fit_check,
        max_loaded_models=read.value(server, 'max_loaded_models', 3, _whole,
                                     'a whole number >= 1', low=1, **srv),
        default_keep_alive_s=read.value(server, 'default_keep_alive', '5m', _duration_s,
                                        'a duration such as 5m or 300', **srv),
        default_num_ctx=read.value(server, 'default_num_ctx', 4096, _whole,
                                   'a whole number >= 1', low=1, **srv),
        load_bytes_per_s=float(read.value(server, 'load_bytes_per_s', '2GB', parse_bytes, rate,
                                          positive=True, **srv)),
        load_base_s=read.value(server, 'load_base_s', 0.5, _number, 'seconds >= 0', low=0,
                               **srv),
        pull_bytes_per_s=float(read.value(server, 'pull_bytes_per_s', '200MB', parse_bytes,
                                          rate, positive=True, **srv)),
        unload_delay_s=read.value(server, 'unload_delay_s', 0.5, _number, 'seconds >= 0',
                                  low=0, **srv),
        version=str(server.get('version', SIMULATOR_VERSION)),
        catalog=catalog,
        faults=faults,
        ros_nodes=ros_nodes,
        node_parameters=node_parameters,
        source_path=source_path,
    )


def load_scenario(name_or_path: str) -> Scenario:
    """Load config/scenarios/<name>.yaml (or a path) into a Scenario."""
    path = scenario_path(name_or_path)
    try:
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ScenarioError(f'cannot read scenario {path}: {exc}') from exc
    except yaml.YAMLError as exc:  # PyYAML's text quotes the file: name the place only
        raise ScenarioError(f'cannot read scenario {path}: not valid YAML at '
                            f'{yaml_error_reason(exc)}') from None
    name = os.path.splitext(os.path.basename(path))[0]
    return scenario_from_dict(data or {}, name=name, source_path=path)


def scenario_summary(scenario: Scenario, num_ctx: Optional[int] = None) -> Dict[str, Any]:
    """Scaled numbers of a scenario, for /sim/state and for people."""
    from .ollama_estimate import estimate_model_memory

    ctx = num_ctx or scenario.default_num_ctx

    def size(spec: ModelSpec) -> int:
        return estimate_model_memory(spec, num_ctx=ctx, num_parallel=scenario.num_parallel,
                                     kv_cache_type=scenario.kv_cache_type,
                                     on_gpu=scenario.memory_model == 'unified',
                                     version=scenario.version).total_bytes
    return {
        'name': scenario.name,
        'memory_scale': scenario.memory_scale,
        'time_scale': scenario.time_scale,
        'host_total_physical_bytes': scenario.physical_bytes(scenario.host_total_bytes),
        'container_limit_physical_bytes': scenario.container_limit_physical_bytes,
        'memory_model': scenario.memory_model,
        'ros_load_physical_bytes': scenario.ros_load_physical_bytes,
        'max_loaded_models': scenario.max_loaded_models,
        'models': {
            spec.name: {
                'pulled': spec.pulled,
                'footprint_bytes': size(spec),
                'footprint_physical_bytes': scenario.physical_bytes(size(spec)),
            } for spec in scenario.catalog.values()
        },
    }
