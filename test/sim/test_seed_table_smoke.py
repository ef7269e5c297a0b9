"""The seed-table benchmark's --smoke run: one machine, one configuration, the table printed."""

import os
import subprocess
import sys

from shadowhound_llm_bench.sim.scenario import REPO_ROOT


def test_smoke_prints_the_unified_table_with_the_physics_failure(docker_client, tmp_path):
    script = os.path.join(REPO_ROOT, 'benchmarks', 'seed_table.py')
    run = subprocess.run(
        [sys.executable, script, '--smoke', '--scenarios', 'thor', '--configs', 'none',
         '--results-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'SEED TABLE: machine `thor` (unified memory, no scripted faults' in run.stdout
    # No management on the unified machine: Ollama refuses llama3.3:70b from MemFree.
    assert 'failed loads: llama3.3:70b' in run.stdout
    assert 'HTTP 500: model requires more system m' in run.stdout  # the note is cut there
    assert (tmp_path / 'thor' / 'seed_table.md').exists()
