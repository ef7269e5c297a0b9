"""The node tests' llm_bench node: the small scenario's simulator started by the node itself."""

import sys
from pathlib import Path
from typing import Any, Dict, Optional

from shadowhound_llm_bench.common.net import free_port

from ros_node_support import (  # noqa: F401 - the node tests import these from here
    BUILD_HINT, READY_TEXT, REPO, RosTestClient, child_env, interfaces_available, needs_ros,
    wait_future, wait_until)
from ros_node_support import NodeProcess as _NodeProcess

SMALL_SCENARIO_PARAMS = {
    # config/scenarios/small.yaml node_parameters, in GiB (1/8 of a small 8 GiB machine).
    'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0,
    'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
    'benchmark.models': ['qwen2.5:0.5b', 'llama3.2:1b'],
    'benchmark.repetitions': 1,
    'publish_rate_hz': 4.0,
    'sample_period_s': 0.1,
    'feedback_period_s': 0.5,
}


def node_env() -> Dict[str, str]:
    """Environment of a node child."""
    return child_env()


class NodeProcess(_NodeProcess):
    """A node whose process backend starts the small scenario's simulator on a free port."""

    results_dir: Path
    ollama_host: str

    @classmethod
    def start(cls, *, results_dir: Path, log_dir: Path, extra: Optional[Dict[str, Any]] = None,
              wait_ready: bool = True, timeout_s: float = 30.0,
              lifecycle: bool = False) -> 'NodeProcess':
        """Start the node (and, through it, the simulator); wait until it serves its action."""
        port = free_port()
        params: Dict[str, Any] = dict(SMALL_SCENARIO_PARAMS)
        params.update({
            'container.backend': 'process',
            'container.command': [sys.executable, '-m', 'shadowhound_llm_bench.sim',
                                  '--scenario', 'small', '--port', str(port), '--quiet'],
            'ollama_host': f'http://127.0.0.1:{port}',
            'results_dir': str(results_dir),
        })
        params.update(extra or {})
        node = cls.launch(params=params, log_path=log_dir / f'node-{port}.log',
                          lifecycle=lifecycle)
        node.results_dir = results_dir
        node.ollama_host = params['ollama_host']
        if wait_ready and not lifecycle:
            node.wait_for_text(READY_TEXT, timeout_s)
        return node
