"""Which command lines are ROS 2 / Nav2 processes, and under which node name they count."""

import pytest

from shadowhound_llm_bench.core.memory.ros_process_match import (
    ProcessPatterns, RosProcessKind, classify_process, parse_ros_arguments, split_program)


def classify(cmdline, patterns=ProcessPatterns(), name=None):
    if name is None:
        name = cmdline[0].rsplit('/', 1)[-1][:15] if cmdline else ''
    return classify_process(name, cmdline, patterns)


def test_nav2_server_started_by_launch_is_named_by_its_remap_and_namespace():
    identity = classify([
        '/opt/ros/jazzy/lib/nav2_controller/controller_server', '--ros-args',
        '--log-level', 'info', '--ros-args', '-r', '__node:=controller_server',
        '-r', '__ns:=/robot1', '--params-file', '/tmp/launch_params_x', '-r', '/tf:=tf'])
    assert identity.kind is RosProcessKind.NAV2
    assert identity.fully_qualified_name == '/robot1/controller_server'
    assert identity.group_name == '/robot1/controller_server'


@pytest.mark.parametrize('executable', [
    'controller_server', 'planner_server', 'bt_navigator', 'behavior_server', 'smoother_server',
    'velocity_smoother', 'waypoint_follower', 'collision_monitor', 'amcl', 'map_server',
    'lifecycle_manager', 'opennav_docking', 'route_server', 'docking_server'])
def test_nav2_executables_count_even_without_ros_arguments(executable):
    identity = classify([f'/opt/ros/jazzy/lib/pkg/{executable}'])
    assert identity.kind is RosProcessKind.NAV2
    # Without a remap a Nav2 server keeps its compiled-in name, which is the executable's.
    assert identity.group_name == '/' + executable


def test_python_node_is_found_through_the_interpreter():
    identity = classify([
        '/usr/bin/python3', '-u', '/opt/ros/jazzy/lib/demo_nodes_py/talker',
        '--ros-args', '-r', '__node:=chatter_source', '-r', '__ns:=fleet'])
    assert identity.kind is RosProcessKind.NODE
    assert identity.executable == 'talker'
    assert identity.fully_qualified_name == '/fleet/chatter_source'


def test_python_module_node_takes_the_module_as_executable():
    identity = classify(['python3', '-m', 'my_robot.driver', '--ros-args'])
    assert identity.executable == 'my_robot.driver'
    assert identity.group_name == '/my_robot.driver'


def test_node_without_name_remap_is_grouped_under_its_executable():
    identity = classify(['/ws/install/lib/cam/camera_driver', '--ros-args', '-p', 'fps:=30'])
    assert identity.kind is RosProcessKind.NODE
    assert identity.group_name == '/camera_driver'


def test_ros_args_block_ends_at_double_dash():
    arguments = parse_ros_arguments(
        ['--ros-args', '-r', '__node:=a', '--', '-r', '__node:=not_ros'])
    assert arguments.node_name == 'a'


def test_legacy_remap_outside_ros_args_still_names_the_node():
    identity = classify(['/ws/lib/pkg/old_node', '__node:=legacy', '__ns:=/old'])
    assert identity.kind is RosProcessKind.NODE
    assert identity.fully_qualified_name == '/old/legacy'


def test_component_container_lists_nodes_named_by_node_scoped_rules():
    identity = classify([
        '/opt/ros/jazzy/lib/rclcpp_components/component_container_isolated', '--ros-args',
        '-r', '__node:=nav2_container', '-r', 'controller_server:cmd_vel:=cmd_vel_nav',
        '-r', 'velocity_smoother:cmd_vel:=cmd_vel_smoothed',
        '-r', 'controller_server:__ns:=/robot1'])
    assert identity.kind is RosProcessKind.CONTAINER
    assert identity.group_name == '/nav2_container'
    assert identity.loaded_nodes == ('controller_server', 'velocity_smoother')


@pytest.mark.parametrize('executable', [
    'component_container', 'component_container_mt', 'component_container_isolated'])
def test_container_without_remap_is_grouped_under_the_executable(executable):
    identity = classify([f'/opt/ros/jazzy/lib/rclcpp_components/{executable}'])
    assert identity.kind is RosProcessKind.CONTAINER
    assert identity.group_name == executable


def test_ros2_launch_is_labelled_with_package_and_file():
    identity = classify([
        '/usr/bin/python3', '/opt/ros/jazzy/bin/ros2', 'launch', 'nav2_bringup',
        'bringup_launch.py', 'use_sim_time:=True', '--debug'])
    assert identity.kind is RosProcessKind.LAUNCH
    assert identity.group_name == 'ros2 launch nav2_bringup bringup_launch.py'


def test_ros2_daemon_is_found_by_its_script_name():
    identity = classify([
        '/usr/bin/python3', '/opt/ros/jazzy/bin/_ros2_daemon', '--rmw-implementation',
        'rmw_fastrtps_cpp', '--ros-domain-id', '0'])
    assert identity.kind is RosProcessKind.DAEMON
    assert identity.group_name == 'ros2 daemon'


def test_other_ros2_verbs_count_as_cli():
    identity = classify(['/usr/bin/python3', '/opt/ros/jazzy/bin/ros2', 'topic', 'echo', '/odom'])
    assert identity.kind is RosProcessKind.CLI
    assert identity.group_name.startswith('ros2 topic echo')


def test_rviz_counts():
    identity = classify(['/opt/ros/jazzy/lib/rviz2/rviz2', '-d', 'nav2.rviz'])
    assert identity.kind is RosProcessKind.RVIZ
    assert identity.group_name == '/rviz2'


@pytest.mark.parametrize('cmdline', [
    ['/usr/bin/ollama', 'serve'],
    ['/usr/bin/python3', '-c', 'print(1)'],
    ['/usr/bin/python3', 'train.py', '--epochs', '3'],
    ['bash'],
    ['/usr/bin/python3', '/usr/bin/ros_looking_name.py'],
    [],
])
def test_ordinary_processes_are_not_ros(cmdline):
    assert classify(cmdline, name='worker') is None


def test_kernel_thread_without_command_line_is_not_ros():
    assert classify_process('kworker/0:1', [], ProcessPatterns()) is None


def test_include_pattern_adds_a_process_the_rules_do_not_know():
    patterns = ProcessPatterns(include=(r'(^|/)lidar_daemon\b',))
    identity = classify(['/opt/vendor/bin/lidar_daemon', '--port', '2368'], patterns)
    assert identity.kind is RosProcessKind.INCLUDED
    assert identity.group_name == 'lidar_daemon'


def test_exclude_pattern_wins_over_built_in_rules_and_include():
    patterns = ProcessPatterns(include=('rviz2',), exclude=(r'^rviz2$',))
    assert classify(['/opt/ros/jazzy/lib/rviz2/rviz2'], patterns) is None


def test_exclude_pattern_can_match_the_fully_qualified_node_name():
    patterns = ProcessPatterns(exclude=(r'^/bench/',))
    kept = classify(['/ws/lib/x/node', '--ros-args', '-r', '__ns:=/robot'], patterns)
    dropped = classify(['/ws/lib/x/node', '--ros-args', '-r', '__ns:=/bench'], patterns)
    assert kept is not None and dropped is None


def test_bad_patterns_are_rejected_with_the_pattern_named():
    with pytest.raises(ValueError, match=r"'\(unclosed'"):
        ProcessPatterns(include=('(unclosed',))
    with pytest.raises(ValueError, match='non-empty'):
        ProcessPatterns(exclude=('  ',))
    with pytest.raises(ValueError, match='not the string'):
        ProcessPatterns(exclude='rviz2')


def test_split_program_skips_interpreter_options_with_values():
    assert split_program('python3', ['python3', '-X', 'dev', '-W', 'ignore', 'n.py', 'a']) == (
        'n.py', ['a'])
