"""The compare and history verbs as a user runs them, over real runs of the simulator."""

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from history_helpers import write_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = ["qwen2.5:0.5b", "smollm2:135m"]
PNG_MAGIC = b"\x89PNG"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "shadowhound_llm_bench.cli", *map(str, args)],
                          cwd=cwd or REPO, capture_output=True, text=True, timeout=120)


def one_error_line(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def runs(history_sim, tmp_path_factory):
    """Three runs on one machine (the third with decode 25 % slower) and one at num_ctx 2048."""
    root = tmp_path_factory.mktemp("history_cli")
    results, db = root / "results", root / "history.sqlite3"

    def run(name, *extra):
        proc = cli("run", "--host", history_sim.url, "--models", *MODELS, "--repetitions", 3,
                   "--unguarded", "--no-warmup", "--results-dir", results, "--name", name,
                   "--quiet", "--history-db", db, *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        folder = next(results.glob(f"*_{name}"))
        return folder, proc.stdout

    history_sim.set_faults({"reset": True})
    first = run("first")
    second = run("second")
    history_sim.set_faults({"decode_slowdown": {"after_cycles": 0, "fraction": 0.25}})
    slow = run("slow")
    history_sim.set_faults({"reset": True})
    other_ctx = run("ctx2048", "--num-ctx", 2048)
    return {"root": root, "results": results, "db": db, "first": first, "second": second,
            "slow": slow, "ctx": other_ctx}


def test_the_run_flags_a_planted_slowdown_and_not_a_repeat(runs):
    assert "history: no earlier comparable run" in runs["first"][1]
    first_id = runs["first"][0].name
    second = json.loads((runs["second"][0] / "results.json").read_text())["history"]
    assert second["compared_with"] == {model: first_id for model in MODELS}
    # The same simulated speed again: decode is within noise (TTFT of a few ms on a shared
    # machine is left out of this assertion: its noise is the machine's, not the product's).
    assert not [r for r in second["regressions"] if r["metric"] == "decode_tps"]
    slow_folder, slow_out = runs["slow"]
    second_id = runs["second"][0].name
    for model in MODELS:
        assert f"{model}: decode tok/s slower than run {second_id} by 25 %" in slow_out
    data = json.loads((slow_folder / "results.json").read_text())
    assert {r["model"] for r in data["history"]["regressions"]} == set(MODELS)
    assert "beyond noise" in (slow_folder / "summary.md").read_text()
    assert "no earlier comparable run" in runs["ctx"][1]  # other num_ctx: not compared


def test_compare_by_run_id_prints_tables_verdicts_and_a_chart(runs, tmp_path):
    ids = [runs[k][0].name for k in ("first", "second", "slow", "ctx")]
    proc = cli("compare", *ids, "--results-dir", runs["results"], "--plot", tmp_path / "c.png")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Welch's t-test" in text
    assert "## decode tok/s" in text and "## TTFT" in text and "## quality" in text
    decode = text.split("## decode tok/s")[1].split("##")[0]
    assert decode.count("**slower**") == 6  # 2 models x 3 tasks of the slow run
    assert "(+0.0 %, within noise" in decode
    assert "**NOT COMPARABLE**: num_ctx 2048 vs 4096" in text
    assert "not comparable" in decode
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_compare_speaks_csv_and_json(runs, tmp_path):
    folders = [runs["first"][0], runs["slow"][0]]
    rows = list(csv.DictReader(io.StringIO(cli("compare", *folders, "--format", "csv",
                                               "--plot", "").stdout)))
    slow_decode = [r for r in rows if r["metric"] == "decode_tps"
                   and r["run_id"] == folders[1].name]
    assert len(slow_decode) == 6 and {r["verdict"] for r in slow_decode} == {"slower"}
    data = json.loads(cli("compare", *folders, "--format", "json", "--metric", "decode_tps",
                          "--plot", "").stdout)
    assert [m["metric"] for m in data["metrics"]] == ["decode_tps"]
    assert data["metrics"][0]["rows"][0]["cells"][1]["change_percent"] == pytest.approx(-25)


def test_history_prints_the_trend_and_draws_it(runs, tmp_path):
    proc = cli("history", "--db", runs["db"], "--model", "qwen2.5:0.5b", "--metric",
               "decode_tps", "--plot", tmp_path / "t.png")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| 2026")
             or line.startswith("| 20")]
    assert len(lines) == 4
    assert "**slower, beyond noise**" in lines[2] and "-25.0 %" in lines[2]
    assert "baseline" in lines[3]  # num_ctx 2048 starts its own line of comparison
    assert (tmp_path / "t.png").read_bytes().startswith(PNG_MAGIC)


def test_history_without_a_model_lists_machines_runs_and_models(runs):
    proc = cli("history", "--db", runs["db"])
    assert proc.returncode == 0, proc.stderr
    row = [line for line in proc.stdout.splitlines() if "| 4 |" in line]
    assert len(row) == 1 and "llama" not in row[0] and "qwen2.5:0.5b, smollm2:135m" in row[0]


def test_import_merges_folders_and_databases_without_duplicates(runs, tmp_path):
    folders = [runs[k][0] for k in ("first", "second", "slow")]
    db = tmp_path / "laptop.sqlite3"
    out = cli("history", "import", *folders, "--db", db)
    assert "imported 3 run(s), 0 already present" in out.stdout, out.stderr
    out = cli("history", "import", *folders, "--db", db)
    assert "imported 0 run(s), 3 already present" in out.stdout
    out = cli("history", "import", runs["db"], "--db", db)  # the robot's own database
    assert "imported 1 run(s), 3 already present" in out.stdout, out.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 4


def test_bad_input_gets_one_line_and_writes_nothing(runs, tmp_path):
    db = tmp_path / "h.sqlite3"
    good = runs["first"][0]
    assert "is not a run folder" in one_error_line(
        cli("history", "import", good, tmp_path, "--db", db))
    assert not db.exists()
    torn = tmp_path / "torn"
    shutil.copytree(good, torn)
    log = torn / "tests.jsonl"
    log.write_bytes(log.read_bytes()[:-25])
    assert "truncated" in one_error_line(cli("history", "import", good, torn, "--db", db))
    assert "truncated" in one_error_line(cli("compare", good, torn, "--plot", ""))
    assert not db.exists()
    other = write_run(tmp_path, "20261101T100000Z", decode_tps={"phi4:14b": 37.0})
    assert "no model in common" in one_error_line(cli("compare", good, other, "--plot", ""))
    assert "no such run folder" in one_error_line(
        cli("compare", "20991231T000000Z", "--results-dir", runs["results"], "--plot", ""))
    future = tmp_path / "future.sqlite3"
    shutil.copy(runs["db"], future)
    with sqlite3.connect(future) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = future.read_bytes()
    assert "newer than this version" in one_error_line(
        cli("history", "--db", future, "--model", "qwen2.5:0.5b"))
    assert "newer than this version" in one_error_line(
        cli("history", "import", future, "--db", db))
    assert future.read_bytes() == before
    assert "newer than this version" in one_error_line(
        cli("history", "import", good, "--db", future))
    assert future.read_bytes() == before
