"""The node under container.backend auto: its choice and the reasons in its log at start-up."""

import uuid

from reliab_node import NodeProcess, dead_url, needs_ros

pytestmark = needs_ros


def test_auto_without_container_or_unit_warns_that_only_the_api_is_measured(tmp_path):
    name = f'reliab-nothing-{uuid.uuid4().hex[:8]}'
    url = dead_url()
    node = NodeProcess.start(log_path=tmp_path / 'node.log', params={
        'container.backend': 'auto', 'container.name': name, 'ollama_host': url,
        'container.systemctl': ['/nonexistent/systemctl'],
        'results_dir': str(tmp_path / 'results')})
    try:
        node.wait_ready()
        log = node.log()
    finally:
        node.stop()
    (line,) = [entry for entry in log.splitlines() if 'backend auto chose' in entry]
    assert '[WARN]' in line  # nothing can be measured: a warning, not an info line
    assert f'only the Ollama API at {url}' in line
    assert f"no container named '{name}'" in line or 'no engine answers' in line
    assert 'systemd cannot be asked' in line
