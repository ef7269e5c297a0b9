"""Build a guarded BenchmarkRunner over a simulator and read back what it wrote."""

import dataclasses
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.runner import BenchmarkRunner, RunOutcome
from shadowhound_llm_bench.reports.jsonl_log import LOG_NAME, read_records

MIB = 1024 * 1024
# The small scenario's node_parameters (config/scenarios/small.yaml), this machine's bytes.
SMALL_HOST_TOTAL_BYTES = 1024 * MIB
SMALL_SYSTEM_RESERVE_BYTES = 128 * MIB
SMALL_ROS_RESERVE_BYTES = 32 * MIB
SMALL_SAFETY_BUFFER_BYTES = 16 * MIB
RUN_DEADLINE_S = 60.0  # a whole run; every request has its own, shorter deadline


def small_guard(backend: Any, client: OllamaClient, preset: str, **overrides: Any) -> Any:
    """Build the memory guard for the small scenario (1/8 memory), models in the given order."""
    settings = preset_settings(preset, memory_scale=1 / 8, num_ctx=4096, order='given',
                               safety_buffer_bytes=SMALL_SAFETY_BUFFER_BYTES,
                               sample_period_s=0.1, unload_deadline_s=5.0, memory_wait_s=0.3,
                               restart_deadline_s=20.0, **overrides)
    return build_memory_guard(
        settings=settings, memory_scale=1 / 8, client=client, backend=backend,
        host=SimulatedHost(total_bytes=SMALL_HOST_TOTAL_BYTES,
                           system_reserve_bytes=SMALL_SYSTEM_RESERVE_BYTES),
        fixed_ros_reserve_bytes=SMALL_ROS_RESERVE_BYTES)


def run_models(client: OllamaClient, guard: Any, models: List[str], results_root: Any, *,
               tasks: int = 1, during: Optional[Callable[[BenchmarkRunner], None]] = None,
               **options: Any) -> RunOutcome:
    """
    Run a short suite over the models; `during` runs on a thread beside the run.

    The run is canceled at RUN_DEADLINE_S whatever happens, so a test can never hang here.
    """
    values: Dict[str, Any] = dict(num_ctx=4096, num_predict=16, repetitions=1, warmup=False,
                                  pull_missing=False, request_deadline_s=10,
                                  load_deadline_s=20)
    values.update(options)
    suite = load_suite('robot_mission')
    suite = dataclasses.replace(suite, tasks=suite.tasks[:tasks])
    runner = BenchmarkRunner(client=client, guard=guard, options=RunOptions(**values),
                             suite=suite, results_root=results_root,
                             preset=guard.settings.preset if guard is not None else '')
    timer = threading.Timer(RUN_DEADLINE_S, runner.cancel.set)
    timer.daemon = True
    helper = None
    if during is not None:
        helper = threading.Thread(target=during, args=(runner,), daemon=True)
    timer.start()
    try:
        if helper is not None:
            helper.start()
        outcome = runner.run(models)
    finally:
        timer.cancel()
        if helper is not None:
            helper.join(timeout=RUN_DEADLINE_S)
    assert outcome.status != 'canceled', 'the run hit the test deadline'
    return outcome


def log_records(outcome: RunOutcome) -> Tuple[List[Dict[str, Any]], int]:
    """Every record of the run's tests.jsonl and the number of unparsable lines."""
    return read_records(outcome.run_dir / LOG_NAME)


def of_type(records: List[Dict[str, Any]], kind: str, **match: Any) -> List[Dict[str, Any]]:
    """Return the records of one type whose fields equal `match`."""
    return [r for r in records if r.get('type') == kind
            and all(r.get(k) == v for k, v in match.items())]


def by_model(outcome: RunOutcome) -> Dict[str, Any]:
    """Return the summary's model results by model name."""
    return {m.model: m for m in outcome.summary.models}


def wait_for_record(runner: BenchmarkRunner, kind: str, deadline_s: float,
                    **match: Any) -> bool:
    """Wait until the run's log holds a record of that kind (False at the deadline)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        log = runner.results_root / runner.run_id / LOG_NAME
        if log.is_file() and of_type(read_records(log)[0], kind, **match):
            return True
        time.sleep(0.05)
    return False
