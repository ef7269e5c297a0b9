"""The reserve formula, its settings, the sliding-window peak and the per-node totals."""

import math

import pytest

from shadowhound_llm_bench.core.memory.ros_process_match import RosProcessIdentity, RosProcessKind
from shadowhound_llm_bench.core.memory.ros_reserve import (
    InvalidRosReserveSettings, PeakWindow, RosProcessMemory, RosReserveSettings,
    ros_reserve_bytes, top_consumers)
from shadowhound_llm_bench.core.units import GIB, MIB


def settings(**overrides):
    values = dict(floor_bytes=4 * GIB, window_s=60.0, growth_factor=1.5, margin_bytes=GIB)
    values.update(overrides)
    return RosReserveSettings(**values)


def test_reserve_is_floor_plus_margin_while_ros_uses_little():
    assert ros_reserve_bytes(1 * GIB, settings()) == 4 * GIB + GIB


def test_reserve_is_grown_peak_plus_margin_once_the_peak_passes_the_floor():
    assert ros_reserve_bytes(6 * GIB, settings()) == 9 * GIB + GIB


def test_reserve_never_rounds_down():
    reserve = ros_reserve_bytes(3, settings(floor_bytes=0, margin_bytes=0, growth_factor=1.2))
    assert reserve == math.ceil(3 * 1.2)


def test_defaults_follow_the_fixed_reserve_the_robot_used_before():
    defaults = RosReserveSettings()
    assert defaults.floor_bytes == 15 * GIB
    assert defaults.growth_factor >= 1.0 and defaults.window_s > 0


@pytest.mark.parametrize('overrides, named', [
    (dict(floor_bytes=-1), 'floor_bytes'),
    (dict(floor_bytes=1.5), 'floor_bytes'),
    (dict(floor_bytes=True), 'floor_bytes'),
    (dict(margin_bytes=-GIB), 'margin_bytes'),
    (dict(window_s=-1.0), 'window_s'),
    (dict(window_s=float('nan')), 'window_s'),
    (dict(window_s='300'), 'window_s'),
    (dict(growth_factor=0.9), 'growth_factor'),
    (dict(growth_factor=float('inf')), 'growth_factor'),
    (dict(top_count=-1), 'top_count'),
    (dict(include_patterns='rviz2'), 'include_patterns'),
    (dict(include_patterns=[3]), 'include'),
    (dict(exclude_patterns=['[bad']), 'exclude'),
    (dict(exclude_patterns=None), 'exclude_patterns'),
])
def test_bad_settings_are_rejected_naming_the_setting(overrides, named):
    with pytest.raises(InvalidRosReserveSettings, match=named):
        settings(**overrides)


def test_pattern_lists_are_kept_as_tuples_and_offered_as_process_patterns():
    chosen = settings(include_patterns=['lidar'], exclude_patterns=['^/bench/'])
    assert chosen.include_patterns == ('lidar',)
    assert chosen.patterns.exclude == ('^/bench/',)


def test_peak_window_keeps_the_highest_value_until_it_leaves_the_window():
    window = PeakWindow(10.0)
    assert window.add(0.0, 5) == 5
    assert window.add(1.0, 9) == 9
    assert window.add(5.0, 2) == 9
    assert window.add(11.5, 3) == 3  # the 9 seen at t=1 is older than 10 s
    assert window.peak() == 3


def test_peak_window_of_zero_seconds_follows_the_newest_value():
    window = PeakWindow(0.0)
    window.add(0.0, 100)
    assert window.add(0.5, 10) == 10


def test_peak_window_keeps_the_peak_for_a_full_window_when_the_clock_steps_back():
    window = PeakWindow(10.0)
    window.add(1000.0, 50)
    assert window.add(500.0, 1) == 50
    assert window.add(509.0, 1) == 50
    assert window.add(511.0, 1) == 1


def test_peak_window_is_zero_before_any_value():
    assert PeakWindow(5.0).peak() == 0


def process(pid, name, memory_bytes, loaded=()):
    kind = RosProcessKind.CONTAINER if loaded else RosProcessKind.NAV2
    identity = RosProcessIdentity(
        kind=kind, executable=name, node_name=name, loaded_nodes=tuple(loaded))
    return RosProcessMemory(
        pid=pid, identity=identity, memory_bytes=memory_bytes, proportional=True)


def test_top_consumers_sum_processes_of_the_same_node_and_rank_largest_first():
    processes = [
        process(1, 'amcl', 100 * MIB),
        process(2, 'map_server', 300 * MIB),
        process(3, 'amcl', 250 * MIB),  # a respawned twin still shutting down
        process(4, 'nav2_container', 900 * MIB, loaded=('controller_server', 'planner_server')),
    ]
    assert top_consumers(processes, 10) == [
        ('/nav2_container [controller_server, planner_server]', 900 * MIB),
        ('/amcl', 350 * MIB),
        ('/map_server', 300 * MIB),
    ]
    assert top_consumers(processes, 1) == [
        ('/nav2_container [controller_server, planner_server]', 900 * MIB)]
