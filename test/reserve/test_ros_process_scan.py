"""The psutil scanner against real rclpy processes with Nav2 names that hold known memory."""

import os
import subprocess
import sys
import time

import pytest
from reserve_helpers import MIB, NODE_SCRIPT, RosMemoryLauncher, RosMemoryProcess, by_pid

from shadowhound_llm_bench.adapters.ros_processes import (
    RosProcessScanner, make_ros_process_scanner)
from shadowhound_llm_bench.core.memory.ros_process_match import ProcessPatterns, RosProcessKind
from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings, top_consumers

ROS_DOMAIN_ID = (51 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232
NAMESPACE = f'/reserve_test_{os.getpid()}'
CONTAINER_NODES = ('behavior_server', 'smoother_server', 'velocity_smoother')
# Allocations are several times the ~45 MiB an idle rclpy process holds, and that idle memory is
# measured on an identical process in the same scan, so the 10 % bound tests the allocation.
ALLOC_MB = {'controller_server': 96, 'planner_server': 64, 'bt_navigator': 80}
PER_COMPONENT_MB = 32


def within_ten_percent(measured, expected):
    return abs(measured - expected) <= 0.10 * expected


@pytest.fixture(scope='module')
def stack(module_launcher):
    """Nav2-named nodes, a component container and idle twins to measure baselines on."""
    start = module_launcher.start
    scoped = []
    for name in CONTAINER_NODES:
        scoped += ['-r', f'{name}:cmd_vel:=cmd_vel_{name}']
    procs = {
        'controller_server': start(
            alloc_mb=ALLOC_MB['controller_server'], wait=False,
            ros_args=['-r', '__node:=controller_server', '-r', f'__ns:={NAMESPACE}']),
        # Named by its executable only, as a Nav2 server started without a remap.
        'planner_server': start(
            alloc_mb=ALLOC_MB['planner_server'], executable_name='planner_server',
            wait=False, ros_args=['-r', f'__ns:={NAMESPACE}']),
        'bt_navigator': start(
            alloc_mb=ALLOC_MB['bt_navigator'], wait=False,
            ros_args=['-r', '__node:=bt_navigator', '-r', f'__ns:={NAMESPACE}']),
        'idle_node': start(
            wait=False, ros_args=['-r', '__node:=idle_twin', '-r', f'__ns:={NAMESPACE}']),
        'container': start(
            alloc_mb=PER_COMPONENT_MB, nodes=CONTAINER_NODES, wait=False,
            executable_name='component_container_isolated',
            ros_args=['-r', '__node:=nav2_container', '-r', f'__ns:={NAMESPACE}', *scoped]),
        'idle_container': start(
            nodes=CONTAINER_NODES, wait=False, executable_name='component_container_isolated',
            ros_args=['-r', '__node:=idle_container', '-r', f'__ns:={NAMESPACE}', *scoped]),
    }
    for proc in procs.values():
        proc.wait_for('ready', 60.0)
    return procs


def test_finds_nav2_nodes_by_remap_and_by_executable_name(stack):
    found = by_pid(RosProcessScanner().scan())
    controller = found[stack['controller_server'].pid]
    planner = found[stack['planner_server'].pid]
    assert controller.group_name == f'{NAMESPACE}/controller_server'
    assert controller.identity.kind is RosProcessKind.NODE
    assert planner.group_name == f'{NAMESPACE}/planner_server'
    assert planner.identity.kind is RosProcessKind.NAV2
    assert found[stack['bt_navigator'].pid].group_name == f'{NAMESPACE}/bt_navigator'


def test_container_memory_is_attributed_to_the_container_with_its_nodes(stack):
    found = by_pid(RosProcessScanner().scan())
    container = found[stack['container'].pid]
    assert container.identity.kind is RosProcessKind.CONTAINER
    assert container.group_name == f'{NAMESPACE}/nav2_container'
    assert container.identity.loaded_nodes == CONTAINER_NODES
    top = dict(top_consumers([container], 5))
    assert top == {
        f'{NAMESPACE}/nav2_container [{", ".join(CONTAINER_NODES)}]': container.memory_bytes}


def test_pss_of_each_process_is_its_allocation_plus_an_idle_twin_within_ten_percent(stack):
    found = by_pid(RosProcessScanner().scan())
    assert all(process.proportional for process in found.values() if process.pid in {
        p.pid for p in stack.values()})
    idle_bytes = found[stack['idle_node'].pid].memory_bytes
    for name, alloc_mb in ALLOC_MB.items():
        measured = found[stack[name].pid].memory_bytes
        expected = alloc_mb * MIB + idle_bytes
        assert within_ten_percent(measured, expected), (name, measured / MIB, expected / MIB)

    idle_container_bytes = found[stack['idle_container'].pid].memory_bytes
    measured = found[stack['container'].pid].memory_bytes
    expected = len(CONTAINER_NODES) * PER_COMPONENT_MB * MIB + idle_container_bytes
    assert within_ten_percent(measured, expected), (measured / MIB, expected / MIB)


def test_sum_over_the_stack_matches_what_it_allocated(stack):
    found = by_pid(RosProcessScanner().scan())
    total = sum(found[p.pid].memory_bytes for p in stack.values())
    idle = found[stack['idle_node'].pid].memory_bytes
    idle_container = found[stack['idle_container'].pid].memory_bytes
    allocated = (sum(ALLOC_MB.values()) + len(CONTAINER_NODES) * PER_COMPONENT_MB) * MIB
    expected = allocated + 4 * idle + 2 * idle_container
    assert within_ten_percent(total, expected), (total / MIB, expected / MIB)


def test_names_match_what_the_ros_graph_shows(stack, monkeypatch):
    rclpy = pytest.importorskip('rclpy')
    from rclpy.context import Context
    from rclpy.node import Node

    found = by_pid(RosProcessScanner().scan())
    process_names = {found[p.pid].group_name for p in stack.values()}
    # Components ignore global arguments, so they sit in the root namespace inside the container.
    component_names = {'/' + name for name in CONTAINER_NODES}
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    context = Context()
    rclpy.init(context=context, domain_id=ROS_DOMAIN_ID)
    try:
        node = Node('reserve_graph_probe', context=context)
        deadline = time.monotonic() + 20.0
        seen = set()
        while time.monotonic() < deadline and not (process_names | component_names) <= seen:
            seen = {
                ns.rstrip('/') + '/' + name for name, ns in node.get_node_names_and_namespaces()}
            time.sleep(0.2)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert process_names <= seen
    assert component_names <= seen


def test_excluded_pids_and_patterns_are_left_out(stack):
    scanner = RosProcessScanner(
        patterns=ProcessPatterns(exclude=(r'/bt_navigator$',)),
        exclude_pids=[stack['controller_server'].pid])
    found = by_pid(scanner.scan())
    assert stack['controller_server'].pid not in found
    assert stack['bt_navigator'].pid not in found
    assert stack['planner_server'].pid in found
    scanner.set_exclusions()
    assert stack['controller_server'].pid in by_pid(scanner.scan())


def test_factory_takes_patterns_from_settings(stack):
    settings = RosReserveSettings(exclude_patterns=(r'__node:=idle_',))
    found = by_pid(make_ros_process_scanner(settings).scan())
    assert stack['idle_node'].pid not in found
    assert stack['idle_container'].pid not in found
    assert stack['container'].pid in found


def test_include_pattern_adds_a_plain_process(tmp_path):
    marker = f'reserve_sensor_{os.getpid()}'
    sensor = subprocess.Popen(
        ['sh', '-c', 'while :; do sleep 1; done', marker], start_new_session=True)
    try:
        plain = by_pid(RosProcessScanner().scan())
        included = by_pid(RosProcessScanner(
            patterns=ProcessPatterns(include=(marker,))).scan())
    finally:
        os.killpg(sensor.pid, 9)
        sensor.wait(timeout=10)
    assert sensor.pid not in plain
    assert included[sensor.pid].identity.kind is RosProcessKind.INCLUDED
    assert included[sensor.pid].memory_bytes > 0


def test_a_process_that_exits_is_dropped_without_error(launcher):
    node = launcher.start(ros_args=['-r', '__node:=short_lived', '-r', f'__ns:={NAMESPACE}'])
    scanner = RosProcessScanner()
    assert node.pid in by_pid(scanner.scan())
    node.stop()
    assert node.pid not in by_pid(scanner.scan())


def test_the_scanning_process_never_counts_itself():
    # A process that carries --ros-args scans the table: it must not find itself.
    code = (
        'import os, sys\n'
        'from shadowhound_llm_bench.adapters.ros_processes import RosProcessScanner\n'
        'own = os.getpid()\n'
        'with_self = RosProcessScanner(exclude_self=False).scan()\n'
        'without = RosProcessScanner().scan()\n'
        'print(any(p.pid == own for p in with_self.processes),'
        ' any(p.pid == own for p in without.processes))\n')
    out = subprocess.run(
        [sys.executable, '-c', code, '--ros-args', '-r', '__node:=llm_bench'],
        capture_output=True, text=True, timeout=60, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.split() == ['True', 'False']


def test_rss_is_reported_where_the_kernel_has_no_smaps_rollup(stack, tmp_path):
    # Kernels before 4.14 have no smaps_rollup; this one does, so a /proc view without the file
    # stands in for such a kernel. Process discovery still reads the real table.
    for proc in stack.values():
        (tmp_path / str(proc.pid)).mkdir()
    found = by_pid(RosProcessScanner(proc_root=str(tmp_path)).scan())
    pss = by_pid(RosProcessScanner().scan())
    controller = found[stack['controller_server'].pid]
    assert not controller.proportional
    # RSS counts shared libraries in full, so it is never below PSS.
    assert controller.memory_bytes >= pss[stack['controller_server'].pid].memory_bytes
    assert controller.memory_bytes >= ALLOC_MB['controller_server'] * MIB


def test_a_wrapper_that_execs_into_a_node_is_found_once_it_has(tmp_path):
    launcher = RosMemoryLauncher(tmp_path, ROS_DOMAIN_ID)
    command = (f'sleep 1; exec {sys.executable} {NODE_SCRIPT} --ros-args '
               f'-r __node:=exec_wrapped -r __ns:={NAMESPACE}')
    popen = subprocess.Popen(
        ['sh', '-c', command], env=launcher.env, stdout=subprocess.PIPE, text=True,
        stderr=subprocess.DEVNULL, start_new_session=True)
    wrapped = RosMemoryProcess(popen, 'exec wrapper', tmp_path / 'none.log')
    try:
        scanner = RosProcessScanner()
        assert popen.pid not in by_pid(scanner.scan())  # still the shell
        wrapped.wait_for('ready', 60.0)
        found = by_pid(scanner.scan())
        assert found[popen.pid].group_name == f'{NAMESPACE}/exec_wrapped'
    finally:
        wrapped.stop()
