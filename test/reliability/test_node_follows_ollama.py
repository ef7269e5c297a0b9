"""A node started before its Ollama container keeps looking, WARNs with the fix, then measures."""

import time
import uuid

from reliab_node import NodeProcess, dead_url, needs_ros, wait_until

pytestmark = needs_ros


def _container_status(statuses):
    """Return the latest 'llm_bench: Ollama container' status on /diagnostics, or None."""
    for array in reversed(statuses):
        for status in array.status:
            if status.name.endswith('Ollama container'):
                return status
    return None


def test_a_container_created_after_the_node_is_measured_without_a_relaunch(
        ros_client, docker_client, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from shadowhound_llm_bench.sim.launcher import start_container_simulator

    name = f'reliab-follow-{uuid.uuid4().hex[:8]}'
    url = dead_url()  # nothing answers there until the container starts
    port = int(url.rsplit(':', 1)[1])
    statuses = []
    ros_client.node.create_subscription(DiagnosticArray, '/diagnostics', statuses.append, 10)
    node = NodeProcess.start(log_path=tmp_path / 'node.log', params={
        'container.backend': 'auto', 'container.name': name,
        'ollama_host': url,
        'container.systemctl': ['/nonexistent/systemctl'],
        'results_dir': str(tmp_path / 'results')})
    sim = None
    try:
        node.wait_ready()
        pid = node.process.pid
        waiting = wait_until(
            lambda: (s := _container_status(statuses)) is not None and 'Fix:' in s.message
            and s, 20.0, 'a WARN with the fix on /diagnostics')
        assert waiting.level == DiagnosticStatus.WARN
        assert f"no container or active systemd unit named '{name}' yet" in waiting.message
        assert f'docker run --name {name}' in waiting.message
        time.sleep(10.0)  # the operator starts Ollama a while after the node
        sim = start_container_simulator(docker_client=docker_client, name=name,
                                        scenario='small', port=port)
        found = wait_until(
            lambda: (s := _container_status(statuses)) is not None
            and 'after the start' in dict((v.key, v.value) for v in s.values).get('backend', '')
            and s, 20.0, 'the container found on /diagnostics')
        assert found.level == DiagnosticStatus.OK, found.message
        handle = ros_client.send(models=['qwen2.5:0.5b'])
        assert handle.accepted
        result = ros_client.result(handle, timeout_s=180.0)
        assert result.status == 'ok', result.summary
        (model,) = result.models
        assert model.cleanup_successful
        assert 'unverified' not in result.summary
        assert node.process.pid == pid and node.process.poll() is None  # no relaunch
    finally:
        node.stop()
        if sim is not None:
            sim.remove()
