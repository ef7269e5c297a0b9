"""Start the llm_bench node: benchmark action server, container memory topic and diagnostics."""

# ros2 launch shadowhound_llm_bench llm_bench.launch.py
# ros2 launch shadowhound_llm_bench llm_bench.launch.py params_file:=/path/my.yaml \
#     namespace:=/robot1 ollama_host:=http://localhost:11434 container_name:=ollama \
#     use_sim_time:=true log_level:=debug lifecycle:=true
# Empty ollama_host / container_name keep the values from the parameters file. With
# lifecycle:=true the node starts unconfigured, for nav2_lifecycle_manager (or
# `ros2 lifecycle set /llm_bench configure` then `activate`) to bring it up.

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

TRUE_WORDS = ('true', '1', 'yes', 'on')


def _flag(context, name):
    return LaunchConfiguration(name).perform(context).strip().lower() in TRUE_WORDS


def _node(context, *args, **kwargs):
    params_file = LaunchConfiguration('params_file').perform(context)
    overrides = {'use_sim_time': _flag(context, 'use_sim_time')}
    ollama_host = LaunchConfiguration('ollama_host').perform(context)
    container_name = LaunchConfiguration('container_name').perform(context)
    if ollama_host:
        overrides['ollama_host'] = ollama_host
    if container_name:
        overrides['container.name'] = container_name
    parameters = [params_file] if params_file else []
    parameters.append(overrides)
    lifecycle = _flag(context, 'lifecycle')
    return [Node(
        package='shadowhound_llm_bench',
        executable='llm_bench_lifecycle_node' if lifecycle else 'llm_bench_node',
        name='llm_bench',
        namespace=LaunchConfiguration('namespace').perform(context),
        parameters=parameters,
        arguments=['--ros-args', '--log-level',
                   LaunchConfiguration('log_level').perform(context)],
        output='screen',
        emulate_tty=True,
    )]


def generate_launch_description():
    default_params = os.path.join(
        get_package_share_directory('shadowhound_llm_bench'), 'config', 'llm_bench.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters file of the llm_bench node'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node (empty: /)'),
        DeclareLaunchArgument('ollama_host', default_value='',
                              description='Ollama URL, e.g. http://localhost:11434 '
                                          '(empty: from the parameters file)'),
        DeclareLaunchArgument('container_name', default_value='',
                              description='Name of the Ollama container '
                                          '(empty: from the parameters file)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use the simulation clock (/clock) for stamps'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Log level: debug, info, warn, error or fatal'),
        DeclareLaunchArgument('lifecycle', default_value='false',
                              description='Start as a managed lifecycle node (unconfigured)'),
        OpaqueFunction(function=_node),
    ])
