"""Run the product's CLI against a real server and read back what it wrote."""

import json
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = 'shb-tiny:f16'
TINY_Q4 = 'shb-tiny:q4_k_m'
BIG = 'shb-big:f16'
# One runner thread: two threads that busy-wait for each other on a shared 2-core machine
# decode ~20 times slower (0.27 against 5 tokens/s for shb-tiny:f16 on v0.12.6, measured here).
ONE_THREAD = {'num_thread': 1}


def run_cli(results: Path, *args: str, timeout_s: float = 1200.0) -> subprocess.CompletedProcess:
    """Run `shadowhound-llm-bench run` with a short suite setting and its own folders."""
    argv = [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'run', '--repetitions', '1',
            '--no-warmup', '--no-platform', '--no-history', '--no-pull',
            '--results-dir', str(results), '--state-dir', str(results / 'state'),
            '--request-timeout', '600', '--load-deadline', '300', '--num-thread', '1', *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)


def run_output(results: Path):
    """Return results.json and the tests.jsonl records of the one run in `results`."""
    (run_dir,) = [p for p in results.iterdir() if (p / 'results.json').exists()]
    summary = json.loads((run_dir / 'results.json').read_text())
    records = [json.loads(line) for line in (run_dir / 'tests.jsonl').read_text().splitlines()]
    return run_dir, summary, records


def by_model(summary):
    """Return the models of results.json by name."""
    return {m['model']: m for m in summary['models']}


def run_canceled_during_load(client, guard, results: Path, model: str, run_name: str):
    """Run model between bookends, canceled 0.3 s into its load; (outcome, bookends)."""
    from shadowhound_llm_bench.core.runs.progress import Phase
    from shadowhound_llm_bench.core.runs.suite import load_suite
    from shadowhound_llm_bench.core.settings.run_options import RunOptions
    from shadowhound_llm_bench.engine.cancellation import CancelToken
    from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
    from shadowhound_llm_bench.engine.runner import BenchmarkRunner

    cancel = CancelToken()

    def progress(event):
        if event.phase == Phase.LOADING and 'attempt' in event.status:
            threading.Timer(0.3, cancel.cancel, args=('test cancel',)).start()

    runner = BenchmarkRunner(client=client, guard=guard, options=RunOptions(repetitions=1),
                             suite=load_suite('robot_mission'), results_root=results,
                             run_name=run_name, on_progress=progress, cancel=cancel)
    return run_between_bookends(guard, client, lambda: runner.run([model]), [model])
