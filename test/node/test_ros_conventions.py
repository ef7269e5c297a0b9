"""ROS conventions: use_sim_time at run time, node-clock stamps, the container in its own field."""

import time

import pytest

from node_helpers import NodeProcess, needs_ros, wait_future, wait_until

pytestmark = needs_ros


@pytest.fixture
def own_node(tmp_path):
    """Start a node of this test only (its clock is switched to sim time)."""
    node = NodeProcess.start(results_dir=tmp_path / 'results', log_dir=tmp_path)
    yield node
    node.stop()


def _set(ros_client, name, value):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    client = ros_client.node.create_client(SetParameters, '/llm_bench/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        value_msg = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value_msg)])
        return wait_future(client.call_async(request), 10.0).results[0]
    finally:
        ros_client.node.destroy_client(client)


def test_use_sim_time_set_at_run_time_stamps_the_topic_with_sim_time(ros_client, own_node):
    from rosgraph_msgs.msg import Clock
    messages = []
    sub = ros_client.subscribe_memory(messages)
    clock_pub = ros_client.node.create_publisher(Clock, '/clock', 10)
    try:
        wait_until(lambda: messages, 20.0, 'a memory message')
        _, first = messages[-1]
        assert first.header.stamp.sec > 1_000_000_000  # wall time before the switch
        assert first.header.frame_id == ''
        assert first.container_name == 'ollama'
        assert abs(first.reading_wall_time_s - time.time()) < 30.0

        outcome = _set(ros_client, 'use_sim_time', True)
        assert outcome.successful, outcome.reason

        from builtin_interfaces.msg import Time
        ticks = [0]

        def sim_stamped():
            ticks[0] += 1  # a simulator's clock: 1234 s and on, 0.05 s a step
            clock_pub.publish(Clock(clock=Time(sec=1234 + ticks[0] // 20,
                                               nanosec=(ticks[0] % 20) * 50_000_000)))
            return any(1234 <= m.header.stamp.sec < 1300 for _, m in messages[-4:])
        wait_until(sim_stamped, 20.0, 'a message stamped with the sim clock')
    finally:
        ros_client.node.destroy_publisher(clock_pub)
        ros_client.node.destroy_subscription(sub)


def test_unknown_parameters_are_still_refused(ros_client, own_node):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    client = ros_client.node.create_client(SetParameters, '/llm_bench/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
        request = SetParameters.Request(parameters=[Parameter(name='use_sim_tim', value=value)])
        result = wait_future(client.call_async(request), 10.0).results[0]
        assert not result.successful
    finally:
        ros_client.node.destroy_client(client)
