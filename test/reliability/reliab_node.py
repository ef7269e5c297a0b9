"""The reliability tests' llm_bench node: small-scenario settings, API-only container backend."""

import socket
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ros_node_support import (  # noqa: F401 - the reliability tests import these from here
    READY_TEXT, RosTestClient, child_env, interfaces_available, needs_ros, ros_arg, wait_until)
from ros_node_support import NodeProcess as _NodeProcess

# The small scenario's node_parameters (config/scenarios/small.yaml) in GiB.
SMALL_PARAMS: Dict[str, Any] = {
    'container.backend': 'api_only',
    'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0,
    'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
    'benchmark.repetitions': 1,
    'benchmark.num_predict': 16,
    'benchmark.pull_missing': False,
    'publish_rate_hz': 4.0,
    'sample_period_s': 0.1,
    'feedback_period_s': 0.5,
}


def dead_url() -> str:
    """Return a URL on which nothing listens (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}'


class NodeProcess(_NodeProcess):
    """A node started with SMALL_PARAMS overridden by the test's own."""

    @classmethod
    def start(cls, *, log_path: Path, params: Dict[str, Any],
              env: Optional[Dict[str, str]] = None,
              extra_args: Sequence[str] = ()) -> 'NodeProcess':
        """Start the node with SMALL_PARAMS overridden by `params` (then `extra_args`)."""
        return cls.launch(params={**SMALL_PARAMS, **params}, log_path=log_path, env=env,
                          extra_args=extra_args)


class RosClient(RosTestClient):
    """The test client under its own node name; result() gives the result message itself."""

    def __init__(self) -> None:
        super().__init__(name='reliab_client')

    def result(self, handle: Any, timeout_s: float = 60.0) -> Any:
        """Wait for a goal's result message."""
        return super().result(handle, timeout_s).result
