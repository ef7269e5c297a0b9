"""Conversions to messages: GiB made at this edge, NaN where nothing was measured, plans."""

import math

import pytest

from node_helpers import interfaces_available
from shadowhound_llm_bench.core.memory.memory_reading import (
    ContainerSample, ContainerState, MemoryReading)
from shadowhound_llm_bench.core.runs.progress import Phase, ProgressEvent
from shadowhound_llm_bench.core.runs.run_records import ModelResult
from shadowhound_llm_bench.core.units import GIB
from shadowhound_llm_bench.engine.memory_guard_api import PlannedModel, RunPlan

pytestmark = pytest.mark.skipif(not interfaces_available(),
                                reason='shadowhound_llm_bench_interfaces not built')


def reading():
    sample = ContainerSample(stamp_s=1700000000.25, working_set_bytes=3 * GIB,
                             usage_bytes=4 * GIB, limit_bytes=56 * GIB,
                             state=ContainerState.RESTARTING)
    return MemoryReading(stamp_s=1700000000.25, container=sample, host_total_bytes=128 * GIB,
                         host_available_bytes=80 * GIB, ros_live_bytes=12 * GIB,
                         ros_reserve_bytes=15 * GIB, model_budget_bytes=6 * GIB,
                         loaded_models=2)


def test_container_memory_carries_bytes_and_gib():
    from shadowhound_llm_bench.ros.messages import container_memory_msg
    from shadowhound_llm_bench_interfaces.msg import ContainerMemory
    msg = container_memory_msg(ContainerMemory, reading(), container_name='ollama')
    assert msg.working_set_bytes == 3 * GIB and msg.working_set_gib == 3.0
    assert msg.usage_gib == 4.0 and msg.limit_gib == 56.0 and msg.host_available_gib == 80.0
    assert msg.ros_reserve_gib == 15.0 and msg.model_budget_gib == 6.0
    assert msg.budget_headroom_gib == 3.0 and msg.pressure_percent == pytest.approx(50.0)
    assert msg.container_state == ContainerMemory.STATE_RESTARTING and msg.loaded_models == 2
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1700000000, 250000000)
    # Memory has no coordinate frame: the container has its own field.
    assert msg.header.frame_id == '' and msg.container_name == 'ollama'
    assert msg.reading_wall_time_s == pytest.approx(1700000000.25)


def test_container_memory_takes_the_node_clock_stamp_and_a_fresher_model_count():
    from builtin_interfaces.msg import Time
    from shadowhound_llm_bench.ros.messages import container_memory_msg
    from shadowhound_llm_bench_interfaces.msg import ContainerMemory
    msg = container_memory_msg(ContainerMemory, reading(), container_name='ollama',
                               stamp=Time(sec=42, nanosec=7), loaded_models=1)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (42, 7)
    assert msg.loaded_models == 1


def test_feedback_clamps_progress_and_takes_the_memory():
    from shadowhound_llm_bench.ros.messages import feedback_msg
    from shadowhound_llm_bench_interfaces.action import RunBenchmark
    event = ProgressEvent(phase=Phase.TESTING, model='phi4:14b', model_index=1, model_count=3,
                          progress=1.7, status='task 2/3', memory=reading())
    msg = feedback_msg(RunBenchmark.Feedback, event)
    assert msg.phase == 'testing' and msg.progress == 1.0 and msg.model_index == 1
    assert msg.container_working_set_gib == 3.0 and msg.model_budget_gib == 6.0


def test_model_result_has_nan_where_nothing_was_measured():
    from shadowhound_llm_bench.ros.messages import model_result_msg
    from shadowhound_llm_bench_interfaces.msg import ModelResult as ModelResultMsg
    skipped = ModelResult(model='llama3.3:70b', status='skipped', reason='does not fit',
                          memory={'predicted_footprint_bytes': 42 * GIB,
                                  'prediction_source': 'metadata', 'restarts': 1})
    msg = model_result_msg(ModelResultMsg, skipped)
    assert msg.status == 'skipped' and msg.reason == 'does not fit'
    assert math.isnan(msg.decode_tokens_per_s) and math.isnan(msg.quality_score)
    assert msg.predicted_footprint_gib == 42.0 and msg.prediction_source == 'metadata'
    assert math.isnan(msg.measured_footprint_gib) and msg.restarts == 1


def test_a_plan_becomes_a_readable_planned_result():
    from shadowhound_llm_bench.ros.messages import plan_result_msg
    from shadowhound_llm_bench_interfaces.action import RunBenchmark
    models = [PlannedModel('phi4:14b', 9 * GIB, 'metadata', [], 9 * GIB),
              PlannedModel('llama3.3:70b', 43 * GIB, 'name', ['restart'], 43 * GIB,
                           skip_reason='43 GiB > 40 GiB budget')]
    plan = RunPlan(
        preset='default', models=models,
        batches=[['phi4:14b'], ['llama3.3:70b']], predicted_peak_bytes=43 * GIB,
        predicted_unloads=1, predicted_restarts=1, model_budget_bytes=40 * GIB)
    msg = plan_result_msg(RunBenchmark.Result, plan)
    assert msg.status == 'planned' and msg.success and msg.peak_container_gib == 43.0
    assert msg.skipped_models == ['llama3.3:70b']
    assert 'llama3.3:70b: 43.00 GiB (name), before: restart' in msg.summary
