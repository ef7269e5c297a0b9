"""One truth: console, results.json, summary.md and CSV agree after a resume and a cancel."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from report_renderings import assert_one_truth
from shadowhound_llm_bench.cli import main

FIRST, SECOND = "qwen2.5:0.5b", "llama3.2:1b"
_COMMON = ["--repetitions", "1", "--num-predict", "16", "--no-platform", "--no-history"]


def _run_dir(console: str, results: Path) -> Path:
    return results / re.search(r"^run (\S+):", console, re.M).group(1)


def test_after_a_resume_every_rendering_counts_the_same_models(clean_sim, tmp_path, capsys):
    results = tmp_path / "results"
    base = ["run", "--host", clean_sim.url, "--results-dir", str(results), *_COMMON]
    assert main(base + ["--models", FIRST]) == 0
    first = capsys.readouterr().out
    run_dir = _run_dir(first, results)
    assert main(base + ["--models", FIRST, SECOND, "--resume", run_dir.name]) == 0
    console = capsys.readouterr().out
    models = assert_one_truth(run_dir, console)
    assert models == {FIRST: "ok", SECOND: "ok"}
    assert "2 ok (1 ok before the resume)" in console


def test_after_a_cancel_every_rendering_says_the_same(clean_sim, tmp_path):
    clean_sim.set_faults({"slow_s": {SECOND: 3.0}})
    results = tmp_path / "results"
    command = [sys.executable, "-m", "shadowhound_llm_bench.cli", "run", "--host", clean_sim.url,
               "--results-dir", str(results), "--models", FIRST, SECOND, *_COMMON]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    lines = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line)
        if f"{SECOND}: warm-up" in line or (SECOND in line and "testing" in line):
            process.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "".join(lines)
    lines += process.stdout.readlines()
    assert process.wait(timeout=60) == 130, "".join(lines)
    console = "".join(lines)
    models = assert_one_truth(_run_dir(console, results), console)
    assert models[FIRST] == "ok" and models.get(SECOND) != "ok"
