"""Without the built interfaces, node and client stop with a one-line build hint, no traceback."""

import os
import subprocess
import sys

import pytest

from node_helpers import interfaces_available
from node_helpers import REPO, node_env


def _env_without_interfaces():
    import shadowhound_llm_bench_interfaces
    site = os.path.dirname(os.path.dirname(shadowhound_llm_bench_interfaces.__file__))
    env = node_env()
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in env['PYTHONPATH'].split(os.pathsep) if p and os.path.abspath(p) != site)
    return env, site


@pytest.mark.skipif(not interfaces_available(), reason='needs rclpy to show the interfaces hint')
@pytest.mark.parametrize('module', ['shadowhound_llm_bench.ros.node',
                                    'shadowhound_llm_bench.ros.client'])
def test_missing_interfaces_give_a_one_line_hint(module):
    env, site = _env_without_interfaces()
    if site in sys.path and site not in os.environ.get('PYTHONPATH', ''):
        pytest.skip(f'the interfaces are installed in the interpreter itself ({site})')
    proc = subprocess.run([sys.executable, '-m', module], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert 'colcon build --base-paths . interfaces' in lines[0]
    assert 'Traceback' not in proc.stderr
