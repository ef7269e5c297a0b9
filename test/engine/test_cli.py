"""The command line: a run killed with SIGKILL keeps every finished test; resume skips them."""

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from shadowhound_llm_bench.cli import main
from shadowhound_llm_bench.reports.jsonl_log import read_records

from support.waiting import wait_until

# Not imported from conftest: with several test folders in one run, `conftest` is another's.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _types(records, kind, **match):
    return [r for r in records if r["type"] == kind
            and all(r.get(k) == v for k, v in match.items())]


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
        log = wait_until(lambda: next(results.glob("*/tests.jsonl"), None), 30,
                         "the run's log")

        def second_model_under_way():
            records, _ = read_records(log)
            tests = _types(records, "test", model="smollm2:135m", warmup=False)
            return records if len(tests) >= 2 else None

        seen = wait_until(second_model_under_way, 60, "the second model under way")
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


def test_the_cli_unloads_a_model_left_loaded_and_leaves_nothing_behind(clean_sim, tmp_path):
    # A model another run left loaded (keep_alive forever) is found before the first decision.
    httpx.post(f"{clean_sim.url}/api/generate", timeout=30,
               json={"model": "qwen2.5:0.5b", "prompt": "", "keep_alive": -1,
                     "stream": False}).raise_for_status()
    assert _loaded(clean_sim.url) == ["qwen2.5:0.5b"]
    out = tmp_path / "out.txt"
    with open(out, "w") as stream:
        argv = ["run", "--host", clean_sim.url, "--models", "qwen2.5:0.5b", "--preset", "fast",
                "--repetitions", "1", "--results-dir", str(tmp_path / "results"), "--quiet",
                "--state-dir", str(tmp_path / "state")]
        sys_stdout, sys.stdout = sys.stdout, stream
        try:
            code = main(argv)
        finally:
            sys.stdout = sys_stdout
    text = out.read_text()
    assert code == 0, text
    assert _loaded(clean_sim.url) == []  # fast keeps models loaded; the end of the run may not
    assert "still loaded" not in text
    (results,) = (tmp_path / "results").glob("*/results.json")
    residency = json.loads(results.read_text())["residency"]
    assert residency["start"]["found_loaded"] == ["qwen2.5:0.5b"]
    assert residency["start"]["action"] == "unloaded"
    assert residency["end"]["unloaded"] == ["qwen2.5:0.5b"] and residency["end"]["verified"]
    # The run's state is in the given folder; through the API alone no footprint is measured,
    # so none is cached (an unverified number must never beat the metadata later).
    state = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert "management_costs.json" in state and "footprints.json" not in state


def _loaded(url):
    return [m["name"] for m in httpx.get(f"{url}/api/ps", timeout=5).json()["models"]]


def _cli(argv, out_path):
    with open(out_path, "w") as stream:
        sys_stdout, sys.stdout = sys.stdout, stream
        try:
            return main(argv)
        finally:
            sys.stdout = sys_stdout


def test_another_clients_model_is_kept_and_counted_or_unloaded_as_asked(clean_sim, tmp_path):
    other = "smollm2:135m"  # fits beside qwen2.5:0.5b in the small scenario's container
    httpx.post(f"{clean_sim.url}/api/pull", json={"model": other, "stream": False},
               timeout=60).raise_for_status()
    httpx.post(f"{clean_sim.url}/api/generate", timeout=30,
               json={"model": other, "prompt": "", "keep_alive": -1,
                     "stream": False}).raise_for_status()
    common = ["run", "--host", clean_sim.url, "--models", "qwen2.5:0.5b", "--repetitions", "1",
              "--quiet", "--state-dir", str(tmp_path / "state")]
    code = _cli(common + ["--keep-loaded", "--results-dir", str(tmp_path / "kept")],
                tmp_path / "kept.txt")
    text = (tmp_path / "kept.txt").read_text()
    assert code == 0, text
    (results,) = (tmp_path / "kept").glob("*/results.json")
    report = json.loads(results.read_text())
    assert report["residency"]["start"]["action"] == "kept and counted"
    # Kept at the start, and never unloaded by the run (Ollama itself may evict it to load the
    # run's model when both do not fit: the simulator's scheduler does, as Ollama's does).
    assert other not in report["residency"]["end"]["unloaded"]
    assert not any(d["action"] in ("unload", "unload_others") and other in d["reason"]
                   for d in report["memory"]["decisions"])
    if _loaded(clean_sim.url) == [other]:
        assert f"still loaded: {other} — loaded before the run by another client: kept" in text

    httpx.post(f"{clean_sim.url}/api/generate", timeout=30,
               json={"model": other, "prompt": "", "keep_alive": -1,
                     "stream": False}).raise_for_status()
    code = _cli(common + ["--results-dir", str(tmp_path / "cleared")], tmp_path / "cleared.txt")
    assert code == 0, (tmp_path / "cleared.txt").read_text()
    assert _loaded(clean_sim.url) == []  # by default the run starts from an empty container
    (results,) = (tmp_path / "cleared").glob("*/results.json")
    assert json.loads(results.read_text())["residency"]["start"]["action"] == "unloaded"


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
    # No --container: API only, so the sizes /api/ps reports; no source is claimed.
    (line,) = [part for part in out.splitlines() if "memory: " in part and "ollama_ps" in part]
    assert "API only" in line and "cgroup" not in line and "calibrated" not in line
    assert httpx.get(f"{clean_sim.url}/api/ps", timeout=5).json()["models"] == []


def test_a_bad_memory_source_is_a_usage_error(clean_sim, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["run", "--host", clean_sim.url, "--models", "x", "--memory-sources", "vram",
                 "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "unknown source(s) vram" in err
