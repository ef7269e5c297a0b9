"""GPU memory of a ROS node on unified memory counts in the ROS reserve (nvidia-smi, per pid)."""

import pytest

from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings
from shadowhound_llm_bench.engine.ros_gpu_memory import RosGpuMemory
from shadowhound_llm_bench.engine.ros_headroom import RosHeadroom
from shadowhound_llm_bench.sim.machine import can_create_cgroups, start_machine
from shadowhound_llm_bench.sim.runner import RunnerProcess
from shadowhound_llm_bench.sim.scenario import load_scenario

MIB = 1 << 20


@pytest.mark.skipif(not can_create_cgroups(), reason='needs root and a memory cgroup v1')
def test_a_nodes_device_memory_is_ros_memory():
    with start_machine(load_scenario('thor')) as machine:
        # A perception node on the robot: 8 MiB of its own pages, 48 MiB of CUDA memory.
        node = RunnerProcess(model='perception', name='controller_server', load_wall_s=0.0,
                             resident_bytes=8 * MIB, device_bytes=48 * MIB,
                             gpu_socket=machine.gpu_socket_path, oom_score_adj=None)
        try:
            assert node.wait_ready(timeout_s=30.0) is None
            settings = RosReserveSettings(floor_bytes=0, margin_bytes=0, window_s=1.0,
                                          include_patterns=(r'\bcontroller_server\b',))
            blind = RosHeadroom.from_settings(settings).sample()
            gpu = RosGpuMemory.open(machine.nvidia_smi_path, period_s=0.0)
            seeing = RosHeadroom.from_settings(settings, gpu=gpu).sample()
            assert any(p.pid == node.pid for p in seeing.processes)
            assert seeing.gpu_bytes == 48 * MIB
            assert seeing.live_bytes - blind.live_bytes >= 40 * MIB
            assert seeing.reserve_bytes > blind.reserve_bytes
        finally:
            node.stop(timeout_s=5.0)
