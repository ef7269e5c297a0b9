"""Example: Nav2 bringup (when nav2_bringup is installed) with the llm_bench node beside it."""

# ros2 launch shadowhound_llm_bench nav2_with_llm_bench.launch.py map:=/path/map.yaml
# The llm_bench node measures Nav2's live memory and keeps a reserve for it, so a benchmark can
# run while the robot navigates. Without nav2_bringup only llm_bench starts (a log line says so).

import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, LogInfo
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def _nav2_bringup():
    try:
        share = get_package_share_directory('nav2_bringup')
    except PackageNotFoundError:
        return LogInfo(msg='nav2_bringup is not installed: starting llm_bench alone')
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'bringup_launch.py')),
        launch_arguments={
            'namespace': LaunchConfiguration('namespace'),
            'map': LaunchConfiguration('map'),
            'use_sim_time': LaunchConfiguration('use_sim_time'),
            'params_file': LaunchConfiguration('nav2_params_file'),
        }.items())


def generate_launch_description():
    here = get_package_share_directory('shadowhound_llm_bench')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='', description='Robot namespace'),
        DeclareLaunchArgument('map', default_value='', description='Map YAML for Nav2'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use simulation time in Nav2'),
        DeclareLaunchArgument('nav2_params_file', default_value=_nav2_default_params(),
                              description='Nav2 parameters file'),
        DeclareLaunchArgument('llm_bench_params_file',
                              default_value=os.path.join(here, 'config', 'llm_bench.yaml'),
                              description='llm_bench parameters file'),
        DeclareLaunchArgument('ollama_host', default_value='', description='Ollama URL'),
        DeclareLaunchArgument('container_name', default_value='',
                              description='Ollama container name'),
    ]
    llm_bench = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(here, 'launch', 'llm_bench.launch.py')),
        launch_arguments={
            'namespace': LaunchConfiguration('namespace'),
            'params_file': LaunchConfiguration('llm_bench_params_file'),
            'ollama_host': LaunchConfiguration('ollama_host'),
            'container_name': LaunchConfiguration('container_name'),
        }.items())
    return LaunchDescription(arguments + [_nav2_bringup(), llm_bench])


def _nav2_default_params():
    try:
        return os.path.join(get_package_share_directory('nav2_bringup'), 'params',
                            'nav2_params.yaml')
    except PackageNotFoundError:
        return ''
