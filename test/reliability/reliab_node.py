"""The reliability tests' llm_bench node: small-scenario settings, API-only container backend."""

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from shadowhound_llm_bench.common.net import free_port

from support.ros_nodes import (  # noqa: F401 - the reliability tests import these from here
    READY_TEXT, SMALL_SCENARIO_MEMORY, RosTestClient, child_env, interfaces_available,
    needs_ros, ros_arg)
from support.ros_nodes import NodeProcess as _NodeProcess
from support.waiting import wait_until  # noqa: F401 - the reliability tests import it from here

# The small scenario's node_parameters (config/scenarios/small.yaml) in GiB.
SMALL_PARAMS: Dict[str, Any] = {
    'container.backend': 'api_only',
    **SMALL_SCENARIO_MEMORY,
    'benchmark.repetitions': 1,
    'benchmark.num_predict': 16,
    'benchmark.pull_missing': False,
    'publish_rate_hz': 4.0,
    'sample_period_s': 0.1,
    'feedback_period_s': 0.5,
}


def dead_url() -> str:
    """Return a URL on which nothing listens (a port just freed)."""
    return f'http://127.0.0.1:{free_port()}'


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

    def __init__(self, name: str = 'reliab_client') -> None:
        super().__init__(name=name)

    def result(self, handle: Any, timeout_s: float = 60.0) -> Any:
        """Wait for a goal's result message."""
        return super().result(handle, timeout_s).result
