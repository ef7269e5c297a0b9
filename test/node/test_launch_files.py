"""The launch files build their descriptions where launch_ros can be imported."""

import importlib.util
from pathlib import Path

import pytest

LAUNCH_DIR = Path(__file__).resolve().parents[2] / 'launch'

try:
    import launch  # noqa: F401
    import launch_ros  # noqa: F401
    LAUNCH_ROS_ERROR = ''
except ImportError as exc:  # launch / launch_ros have no PyPI wheels (see ENVIRONMENT.md)
    LAUNCH_ROS_ERROR = f'launch_ros cannot be imported here ({exc}); install ROS 2 launch_ros'

pytestmark = pytest.mark.skipif(bool(LAUNCH_ROS_ERROR), reason=LAUNCH_ROS_ERROR or 'ok')


def load(name):
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), LAUNCH_DIR / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def package_share(monkeypatch):
    """Make get_package_share_directory find this package even when it is not installed."""
    import ament_index_python.packages as packages
    real = packages.get_package_share_directory

    def share(name, *args, **kwargs):
        if name == 'shadowhound_llm_bench':
            return str(LAUNCH_DIR.parent)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(packages, 'get_package_share_directory', share)


def _declared(description):
    from launch.actions import DeclareLaunchArgument
    return {a.name: a for a in description.entities if isinstance(a, DeclareLaunchArgument)}


def _text(value, context):
    """Perform a launch value (text, substitution or a tuple of them) to a plain value."""
    if isinstance(value, (tuple, list)):
        return ''.join(_text(v, context) for v in value)
    perform = getattr(value, 'perform', None)
    return perform(context) if perform else value


def _parameter_dicts(node, context):
    """Return the node's inline parameter dictionaries with their substitutions performed."""
    return [{_text(k, context): _text(v, context) if not isinstance(v, bool) else v
             for k, v in p.items()} for p in node._Node__parameters if isinstance(p, dict)]


def test_llm_bench_launch_declares_its_arguments_and_starts_the_node(package_share):
    from launch import LaunchContext
    from launch.actions import OpaqueFunction
    from launch_ros.actions import Node
    description = load('llm_bench.launch.py').generate_launch_description()
    arguments = _declared(description)
    assert set(arguments) == {'params_file', 'namespace', 'ollama_host', 'container_name',
                              'use_sim_time', 'log_level', 'lifecycle'}
    assert arguments['params_file'].default_value[0].text.endswith('config/llm_bench.yaml')

    context = LaunchContext()
    for name, value in (('params_file', str(LAUNCH_DIR.parent / 'config/llm_bench.yaml')),
                        ('namespace', 'robot1'), ('ollama_host', 'http://10.0.0.2:11434'),
                        ('container_name', ''), ('use_sim_time', 'true'),
                        ('log_level', 'debug'), ('lifecycle', 'false')):
        context.launch_configurations[name] = value
    opaque = [e for e in description.entities if isinstance(e, OpaqueFunction)][0]
    (node,) = opaque.execute(context)
    assert isinstance(node, Node)
    assert node.node_executable == 'llm_bench_node' and node.node_package == \
        'shadowhound_llm_bench'
    node._perform_substitutions(context)  # what `ros2 launch` does before starting it
    assert node.node_name == '/robot1/llm_bench'
    assert node.expanded_node_namespace == '/robot1'
    overrides = _parameter_dicts(node, context)
    (given,) = overrides  # launch_ros keeps string values as YAML text ('...\n...\n')
    assert given['use_sim_time'] is True
    assert given['ollama_host'].startswith('http://10.0.0.2:11434')
    arguments = [_text(a, context) for a in node._Node__arguments]
    assert arguments[-2:] == ['--log-level', 'debug']

    context.launch_configurations['lifecycle'] = 'true'
    (managed,) = opaque.execute(context)
    assert managed.node_executable == 'llm_bench_lifecycle_node'


def test_nav2_example_namespaces_nav2_like_llm_bench_on_humble_and_jazzy(package_share):
    from launch import LaunchContext
    module = load('nav2_with_llm_bench.launch.py')
    context = LaunchContext()
    for name, value in (('namespace', 'robot1'), ('map', '/m.yaml'), ('use_sim_time', 'true'),
                        ('nav2_params_file', '/p.yaml'), ('log_level', 'warn')):
        context.launch_configurations[name] = value
    arguments = module.nav2_launch_arguments(context)
    # Humble's bringup namespaces only with use_namespace true; Jazzy's whenever it is set.
    assert arguments['namespace'] == 'robot1' and arguments['use_namespace'] == 'true'
    assert arguments['use_sim_time'] == 'true' and arguments['log_level'] == 'warn'
    context.launch_configurations['namespace'] = ''
    assert module.nav2_launch_arguments(context)['use_namespace'] == 'false'


def test_nav2_example_includes_llm_bench_with_or_without_nav2(package_share):
    from launch.actions import IncludeLaunchDescription, LogInfo
    description = load('nav2_with_llm_bench.launch.py').generate_launch_description()
    from launch import LaunchContext
    from launch.actions import OpaqueFunction
    assert {'namespace', 'map', 'llm_bench_params_file', 'ollama_host', 'use_sim_time',
            'log_level', 'lifecycle'} <= set(_declared(description))
    includes = [e for e in description.entities if isinstance(e, IncludeLaunchDescription)]
    assert len(includes) == 1  # llm_bench itself; nav2_bringup comes from the function
    context = LaunchContext()
    for name, value in (('namespace', ''), ('map', ''), ('use_sim_time', 'false'),
                        ('nav2_params_file', ''), ('log_level', 'info')):
        context.launch_configurations[name] = value
    opaque = [e for e in description.entities if isinstance(e, OpaqueFunction)][0]
    (nav2,) = opaque.execute(context)
    assert isinstance(nav2, (IncludeLaunchDescription, LogInfo))
