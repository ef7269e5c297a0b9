"""~/container_memory arrives at its rate during a run and follows the model's load and unload."""

import time

from action_msgs.msg import GoalStatus

from node_helpers import needs_ros
from node_helpers import SMALL_SCENARIO_PARAMS

pytestmark = needs_ros

MIB = 1024 ** 2


def test_memory_topic_keeps_its_rate_and_rises_on_load_and_falls_on_unload(ros_client,
                                                                           bench_node):
    messages = []
    subscription = ros_client.subscribe_memory(messages)
    try:
        deadline = time.monotonic() + 10.0
        while not messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert messages, 'no ContainerMemory message within 10 s'
        idle_bytes = messages[-1][1].working_set_bytes
        handle = ros_client.send(models=['llama3.2:1b'], repetitions=3)
        assert handle.accepted
        started = time.monotonic()
        response = ros_client.result(handle)
        ended = time.monotonic()
        time.sleep(1.0)  # a few samples after the unload
    finally:
        ros_client.node.destroy_subscription(subscription)
    assert response.status == GoalStatus.STATUS_SUCCEEDED

    during = [m for t, m in messages if started <= t <= ended]
    rate_hz = len(during) / (ended - started)
    expected_hz = SMALL_SCENARIO_PARAMS['publish_rate_hz']
    # The run keeps the executor busy; the timer's own callback group keeps the rate anyway.
    assert 0.6 * expected_hz <= rate_hz <= 1.4 * expected_hz, (len(during), ended - started)

    peak_bytes = max(m.working_set_bytes for m in during)
    after_bytes = messages[-1][1].working_set_bytes
    # llama3.2:1b holds ~180 MB in the small scenario; it comes and goes with load and unload.
    assert peak_bytes - idle_bytes > 100 * MIB, (idle_bytes, peak_bytes)
    assert peak_bytes - after_bytes > 100 * MIB, (peak_bytes, after_bytes)

    last = messages[-1][1]
    assert last.working_set_gib * 1024 ** 3 == last.working_set_bytes
    assert last.model_budget_bytes > 0 and last.container_state == last.STATE_RUNNING
    assert last.header.frame_id == '' and last.container_name == 'ollama'
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in messages]
    assert stamps == sorted(stamps)


def test_diagnostics_report_pressure_ros_consumers_and_the_container(ros_client, bench_node):
    from diagnostic_msgs.msg import DiagnosticArray
    arrays = []
    subscription = ros_client.node.create_subscription(
        DiagnosticArray, '/diagnostics', arrays.append, 10)
    try:
        deadline = time.monotonic() + 10.0
        while not any(a.status and a.status[0].hardware_id == 'ollama' for a in arrays) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ros_client.node.destroy_subscription(subscription)
    ours = [a for a in arrays if a.status and a.status[0].name.startswith('llm_bench:')]
    assert ours, 'no llm_bench diagnostics within 10 s'
    by_name = {s.name: s for s in ours[-1].status}
    pressure = by_name['llm_bench: memory pressure']
    assert pressure.level == b'\x00'  # idle container: OK
    values = {kv.key: kv.value for kv in pressure.values}
    assert float(values['model_budget_gib']) > 0 and 'pressure_percent' in values
    assert 'GiB budget' in pressure.message
    assert 'llm_bench: ROS consumers' in by_name
    container = by_name['llm_bench: Ollama container']
    assert container.level == b'\x00' and container.message.startswith('ollama running')
