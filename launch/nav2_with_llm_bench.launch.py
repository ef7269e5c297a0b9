"""Example: Nav2 bringup (when nav2_bringup is installed) with the llm_bench node beside it."""

# ros2 launch shadowhound_llm_bench nav2_with_llm_bench.launch.py map:=/path/map.yaml \
#     namespace:=robot1 use_sim_time:=true
# The llm_bench node measures Nav2's live memory and keeps a reserve for it, so a benchmark can
# run while the robot navigates. Without nav2_bringup only llm_bench starts (a log line says so).
# Nav2 and llm_bench get the same namespace on Humble (whose bringup namespaces only with
# use_namespace:=true) and on Jazzy and later (namespaced whenever namespace is set): the
# namespace is forwarded with use_namespace set from it, and bringups without that argument
# ignore it. use_sim_time and log_level reach both.

import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, LogInfo,
                            OpaqueFunction)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def nav2_launch_arguments(context):
    """Return the arguments for nav2_bringup's bringup_launch.py (Humble and Jazzy alike)."""
    namespace = LaunchConfiguration('namespace').perform(context).strip()
    return {
        'namespace': namespace,
        'use_namespace': 'true' if namespace else 'false',
        'map': LaunchConfiguration('map').perform(context),
        'use_sim_time': LaunchConfiguration('use_sim_time').perform(context),
        'params_file': LaunchConfiguration('nav2_params_file').perform(context),
        'log_level': LaunchConfiguration('log_level').perform(context),
    }


def _nav2_bringup(context, *args, **kwargs):
    try:
        share = get_package_share_directory('nav2_bringup')
    except PackageNotFoundError:
        return [LogInfo(msg='nav2_bringup is not installed: starting llm_bench alone')]
    return [IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'bringup_launch.py')),
        launch_arguments=nav2_launch_arguments(context).items())]


def generate_launch_description():
    here = get_package_share_directory('shadowhound_llm_bench')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='',
                              description='Robot namespace (Nav2 and llm_bench)'),
        DeclareLaunchArgument('map', default_value='', description='Map YAML for Nav2'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use simulation time in Nav2 and llm_bench'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Log level of Nav2 and llm_bench'),
        DeclareLaunchArgument('nav2_params_file', default_value=_nav2_default_params(),
                              description='Nav2 parameters file'),
        DeclareLaunchArgument('llm_bench_params_file',
                              default_value=os.path.join(here, 'config', 'llm_bench.yaml'),
                              description='llm_bench parameters file'),
        DeclareLaunchArgument('ollama_host', default_value='', description='Ollama URL'),
        DeclareLaunchArgument('container_name', default_value='',
                              description='Ollama container name'),
        DeclareLaunchArgument('lifecycle', default_value='false',
                              description='Start llm_bench as a managed lifecycle node'),
    ]
    llm_bench = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(here, 'launch', 'llm_bench.launch.py')),
        launch_arguments={
            'namespace': LaunchConfiguration('namespace'),
            'params_file': LaunchConfiguration('llm_bench_params_file'),
            'ollama_host': LaunchConfiguration('ollama_host'),
            'container_name': LaunchConfiguration('container_name'),
            'use_sim_time': LaunchConfiguration('use_sim_time'),
            'log_level': LaunchConfiguration('log_level'),
            'lifecycle': LaunchConfiguration('lifecycle'),
        }.items())
    return LaunchDescription(arguments + [OpaqueFunction(function=_nav2_bringup), llm_bench])


def _nav2_default_params():
    try:
        return os.path.join(get_package_share_directory('nav2_bringup'), 'params',
                            'nav2_params.yaml')
    except PackageNotFoundError:
        return ''
