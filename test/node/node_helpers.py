"""The node tests' llm_bench node: the small scenario's simulator started by the node itself."""

from pathlib import Path
from typing import Any, Dict, Optional

from support.ros_nodes import (  # noqa: F401 - the node tests import these from here
    BUILD_HINT, READY_TEXT, REPO, SMALL_SCENARIO_MEMORY, RosTestClient, child_env,
    interfaces_available, needs_ros, wait_future)
from support.ros_nodes import NodeProcess as _NodeProcess
from support.simulators import sim_process_backend
from support.waiting import wait_until  # noqa: F401 - the node tests import it from here

SMALL_SCENARIO_PARAMS = {
    **SMALL_SCENARIO_MEMORY,
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
        params: Dict[str, Any] = dict(SMALL_SCENARIO_PARAMS)
        params.update(sim_process_backend('small'))
        params['results_dir'] = str(results_dir)
        port = params['ollama_host'].rsplit(':', 1)[1]
        params.update(extra or {})
        node = cls.launch(params=params, log_path=log_dir / f'node-{port}.log',
                          lifecycle=lifecycle)
        node.results_dir = results_dir
        node.ollama_host = params['ollama_host']
        if wait_ready and not lifecycle:
            node.wait_for_text(READY_TEXT, timeout_s)
        return node


def send_until_testing(ros_client: RosTestClient, timeout_s: float) -> Any:
    """Send a two-model goal (3 repetitions); return its handle once feedback says testing."""
    feedback: list = []
    handle = ros_client.send(feedback=feedback, models=['qwen2.5:0.5b', 'llama3.2:1b'],
                             repetitions=3)
    assert handle.accepted
    wait_until(lambda: any(f.phase == 'testing' for f in feedback), timeout_s,
               'testing feedback')
    return handle
