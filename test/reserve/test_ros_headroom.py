"""The reserve and the model budget follow real ROS processes that grow and exit."""

import os
import time

from reserve_helpers import MIB, OnlyPids

from shadowhound_llm_bench.adapters.ros_processes import RosProcessScanner
from shadowhound_llm_bench.core.decider.memory_budget import (
    BudgetInputs, model_budget_bytes, simulated_host_available_bytes)
from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings
from shadowhound_llm_bench.core.units import GIB
from shadowhound_llm_bench.engine.ros_headroom import RosHeadroom

ROS_DOMAIN_ID = (52 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232
NAMESPACE = f'/reserve_headroom_{os.getpid()}'
GROWTH = 1.5
SETTINGS = RosReserveSettings(
    floor_bytes=0, window_s=30.0, growth_factor=GROWTH, margin_bytes=64 * MIB)


class SteppedClock:
    """Wall clock of the sampling loop, stepped by the test instead of waited for."""

    def __init__(self) -> None:
        self.now_s = 1_000_000.0

    def __call__(self) -> float:
        return self.now_s


def budget_bytes(reading) -> int:
    """Budget of a simulated 128 GiB robot whose Ollama container holds 20 GiB."""
    working_set = 20 * GIB
    available = simulated_host_available_bytes(
        host_total_bytes=128 * GIB, system_reserve_bytes=10 * GIB,
        ros_live_bytes=reading.live_bytes, container_working_set_bytes=working_set)
    return model_budget_bytes(BudgetInputs(
        host_total_bytes=128 * GIB, host_available_bytes=available,
        container_working_set_bytes=working_set, container_limit_bytes=0,
        ros_live_bytes=reading.live_bytes, ros_reserve_bytes=reading.reserve_bytes,
        safety_buffer_bytes=4 * GIB))


def headroom_over(launcher, settings=SETTINGS, clock=None):
    scanner = OnlyPids(RosProcessScanner(), lambda: [p.pid for p in launcher.processes])
    return RosHeadroom(scanner=scanner, settings=settings, clock=clock or SteppedClock())


def test_reserve_and_budget_move_on_the_next_sample_when_a_node_grows(launcher):
    node = launcher.start(
        alloc_mb=16, grow_mb=96,
        ros_args=['-r', '__node:=controller_server', '-r', f'__ns:={NAMESPACE}'])
    headroom = headroom_over(launcher)
    before = headroom.sample()
    node.grow()
    after = headroom.sample()

    grown_bytes = after.live_bytes - before.live_bytes
    assert abs(grown_bytes - 96 * MIB) <= 0.10 * 96 * MIB
    assert after.reserve_bytes - before.reserve_bytes >= GROWTH * 0.9 * 96 * MIB
    assert budget_bytes(before) - budget_bytes(after) >= GROWTH * 0.9 * 96 * MIB
    assert after.top[0][0] == f'{NAMESPACE}/controller_server'


def test_live_memory_drops_at_once_when_a_node_exits_and_the_reserve_after_the_window(launcher):
    clock = SteppedClock()
    keeper = launcher.start(
        alloc_mb=32, ros_args=['-r', '__node:=map_server', '-r', f'__ns:={NAMESPACE}'])
    leaver = launcher.start(
        alloc_mb=96, ros_args=['-r', '__node:=amcl', '-r', f'__ns:={NAMESPACE}'])
    headroom = headroom_over(launcher, clock=clock)
    both = headroom.sample()
    assert {name for name, _ in both.top} == {f'{NAMESPACE}/map_server', f'{NAMESPACE}/amcl'}

    leaver.stop()
    clock.now_s += 1.0
    alone = headroom.sample()
    assert [p.pid for p in alone.processes] == [keeper.pid]
    assert both.live_bytes - alone.live_bytes >= 96 * MIB
    # Nav2 may bring amcl back: its peak is held for the window...
    assert alone.reserve_bytes == both.reserve_bytes
    assert budget_bytes(alone) == budget_bytes(both)

    clock.now_s += SETTINGS.window_s + 1.0
    later = headroom.sample()
    # ...and released once the window has passed.
    assert later.peak_live_bytes == later.live_bytes
    assert both.reserve_bytes - later.reserve_bytes >= GROWTH * 0.9 * 96 * MIB
    assert budget_bytes(later) - budget_bytes(both) >= GROWTH * 0.9 * 96 * MIB


def test_without_a_window_the_budget_returns_on_the_next_sample_after_an_exit(launcher):
    settings = RosReserveSettings(floor_bytes=0, window_s=0.0, growth_factor=GROWTH,
                                  margin_bytes=0)
    leaver = launcher.start(
        alloc_mb=64, ros_args=['-r', '__node:=waypoint_follower', '-r', f'__ns:={NAMESPACE}'])
    headroom = headroom_over(launcher, settings=settings, clock=time.time)
    before = headroom.sample()
    leaver.stop()
    after = headroom.sample()
    assert after.live_bytes == 0 and after.processes == ()
    assert after.reserve_bytes == 0
    assert budget_bytes(after) - budget_bytes(before) >= GROWTH * 0.9 * 64 * MIB


def test_floor_and_margin_hold_while_no_ros_process_runs(launcher):
    settings = RosReserveSettings(floor_bytes=8 * GIB, margin_bytes=GIB)
    reading = headroom_over(launcher, settings=settings).sample()
    assert reading.live_bytes == 0
    assert reading.reserve_bytes == 9 * GIB
    assert reading.top == []


def test_latest_returns_the_last_sample_without_scanning(launcher):
    headroom = headroom_over(launcher)
    assert headroom.latest() is None
    reading = headroom.sample()
    assert headroom.latest() is reading


def test_from_settings_scans_the_whole_table_with_the_settings_patterns(launcher):
    kept = launcher.start(
        alloc_mb=8, ros_args=['-r', '__node:=smoother_server', '-r', f'__ns:={NAMESPACE}'])
    dropped = launcher.start(
        ros_args=['-r', '__node:=teleop_panel', '-r', f'__ns:={NAMESPACE}'])
    settings = RosReserveSettings(exclude_patterns=(r'__node:=teleop_panel',))
    headroom = RosHeadroom.from_settings(settings, exclude_pids=[os.getpid()])
    reading = headroom.sample()
    pids = {p.pid for p in reading.processes}
    assert kept.pid in pids and dropped.pid not in pids
    assert reading.live_bytes >= sum(
        p.memory_bytes for p in reading.processes if p.pid == kept.pid) > 8 * MIB
    assert reading.reserve_bytes >= settings.floor_bytes + settings.margin_bytes
    assert reading.scan_s > 0
