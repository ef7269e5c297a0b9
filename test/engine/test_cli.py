"""The command line: a run killed with SIGKILL keeps every finished test; resume skips them."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from shadowhound_llm_bench.cli import main
from shadowhound_llm_bench.reports.jsonl_log import read_records

# Not imported from conftest: with several test folders in one run, `conftest` is another's.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _types(records, kind, **match):
    return [r for r in records if r["type"] == kind
            and all(r.get(k) == v for k, v in match.items())]


def _wait_for(predicate, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not reached")


def test_sigkill_mid_run_keeps_finished_tests_and_resume_skips_them(clean_sim, tmp_path):
    clean_sim.set_faults({"slow_s": {"*": 0.1}})  # slow enough to kill in the middle
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "shadowhound_llm_bench.cli", "run", "--host", clean_sim.url,
            "--models", "qwen2.5:0.5b", "smollm2:135m", "--repetitions", "2", "--unguarded",
            "--results-dir", str(results), "--name", "killed", "--quiet"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        log = _wait_for(lambda: next(results.glob("*/tests.jsonl"), None), 30)

        def second_model_under_way():
            records, _ = read_records(log)
            tests = _types(records, "test", model="smollm2:135m", warmup=False)
            return records if len(tests) >= 2 else None

        seen = _wait_for(second_model_under_way, 60)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    records, bad = read_records(log)
    assert bad <= 1  # at most the line being written when the kill came
    finished = _types(records, "test")
    assert len(finished) >= len(_types(seen, "test"))  # nothing seen before the kill was lost
    assert _types(records, "model_end", model="qwen2.5:0.5b")[0]["status"] == "ok"
    assert not _types(records, "run_end")
    run_dir = log.parent

    assert main(["report", str(run_dir)]) == 0
    data = json.loads((run_dir / "results.json").read_text())
    assert data["run"]["status"] == "incomplete"
    by_model = {m["model"]: m for m in data["models"]}
    assert by_model["qwen2.5:0.5b"]["tests_ok"] == 6
    assert by_model["smollm2:135m"]["status"] == "failed"
    assert "before this model finished" in by_model["smollm2:135m"]["reason"]

    clean_sim.set_faults({"reset": True})
    code = main(["run", "--host", clean_sim.url, "--resume", run_dir.name, "--repetitions", "2",
                 "--unguarded", "--results-dir", str(results), "--quiet"])
    assert code == 0
    records, _ = read_records(log)
    assert not _types(records, "model_start", model="qwen2.5:0.5b", session=2)
    assert _types(records, "model_start", model="smollm2:135m", session=2)
    data = json.loads((run_dir / "results.json").read_text())
    assert data["run"]["status"] == "ok" and data["run"]["sessions"] == 2
    by_model = {m["model"]: m for m in data["models"]}
    assert by_model["qwen2.5:0.5b"]["session"] == 1 and by_model["qwen2.5:0.5b"]["tests_ok"] == 6
    assert by_model["smollm2:135m"]["session"] == 2 and by_model["smollm2:135m"]["tests_ok"] == 6


def test_dry_run_prints_the_plan_and_loads_nothing(clean_sim, tmp_path, capsys):
    code = main(["run", "--host", clean_sim.url, "--models", "qwen2.5:0.5b", "nosuch:1b",
                 "--dry-run", "--unguarded", "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "qwen2.5:0.5b" in out and "SKIP: not on the server" in out
    assert list(tmp_path.iterdir()) == []
    assert httpx.get(f"{clean_sim.url}/api/ps", timeout=5).json()["models"] == []


def test_progress_lines_and_exit_codes(clean_sim, tmp_path, capsys):
    code = main(["run", "--host", clean_sim.url, "--models", "qwen2.5:0.5b", "--repetitions",
                 "1", "--unguarded", "--results-dir", str(tmp_path), "--no-warmup"])
    out = capsys.readouterr().out
    assert code == 0
    assert "[  0.0%] planning" in out and "done" in out and "reports:" in out
    assert main(["run", "--host", clean_sim.url, "--models", "x", "--name", "../up",
                 "--unguarded", "--results-dir", str(tmp_path)]) == 2
    assert main(["run", "--host", clean_sim.url, "--models", "x", "--repetitions", "0",
                 "--unguarded", "--results-dir", str(tmp_path)]) == 2
    assert main(["run", "--host", clean_sim.url, "--models", "x", "--suite", "nope",
                 "--unguarded", "--results-dir", str(tmp_path)]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("argv", [["run", "--host", "http://127.0.0.1:9", "--models", "m",
                                   "--unguarded", "--quiet"]])
def test_unreachable_server_fails_with_reports(tmp_path, argv):
    assert main(argv + ["--results-dir", str(tmp_path)]) == 1
    run_dir = next(tmp_path.iterdir())
    data = json.loads((run_dir / "results.json").read_text())
    assert data["run"]["status"] == "failed" and "not usable" in data["run"]["message"]


def test_a_guarded_dry_run_shows_where_memory_is_read(clean_sim, tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 8388608 kB\nMemFree: 4194304 kB\nMemAvailable: 6291456 kB\n"
                       "Cached: 1048576 kB\n")
    code = main(["run", "--host", clean_sim.url, "--models", "qwen2.5:0.5b", "--dry-run",
                 "--meminfo-path", str(meminfo), "--nvidia-smi-command", str(tmp_path / "none"),
                 "--results-dir", str(tmp_path / "results")])
    out = capsys.readouterr().out
    assert code == 0
    assert "memory: not calibrated on this machine yet" in out
    assert httpx.get(f"{clean_sim.url}/api/ps", timeout=5).json()["models"] == []


def test_a_bad_memory_source_is_a_usage_error(clean_sim, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["run", "--host", clean_sim.url, "--models", "x", "--memory-sources", "vram",
                 "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "unknown source(s) vram" in err
