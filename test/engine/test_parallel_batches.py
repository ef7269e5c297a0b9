"""Parallel small-model testing on the simulator: batches resident together, tests overlapping."""

import csv
import datetime as dt
import json
import threading
import time
from dataclasses import replace

import httpx
import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.memory.footprint import FootprintPrediction
from shadowhound_llm_bench.core.memory.memory_reading import (
    ContainerSample, ContainerState, MemoryReading)
from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard_api import Proceed, Skip
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.reports.jsonl_log import read_records

from support.ollama_ps import unload_all
from support.simulators import sim_process_container

SMALL_PAIR = ["smollm2:135m", "qwen2.5:0.5b"]  # ~57 + ~92 MB here: fit together
LARGE = "llama3.2:1b"  # ~217 MB here: fits alone, not beside the others
# Holds the large model alone (224 MiB does not: measured), never all three at once.
CONTAINER_LIMIT_BYTES = 256 * MIB
REPETITIONS = 2


@pytest.fixture(scope="module")
def sim_container():
    """Start the simulator (small scenario) as a local process container for this module."""
    with sim_process_container("parallel-sim") as (backend, url):
        backend.set_memory_limit(CONTAINER_LIMIT_BYTES)
        yield backend, url


@pytest.fixture
def bench(sim_container, tmp_path):
    """Build (client, guard) over the shared simulator with policy overrides; closed after."""
    backend, url = sim_container
    made = []

    def build(preset="default", **overrides):
        client = OllamaClient(base_url=url)
        # Batch scheduling is checked here; llama3.2:1b runs this 224 MiB container over its
        # budget during a stream, which the preemption watchdog would stop (tested elsewhere).
        overrides.setdefault("preempt_on_breach", False)
        settings = preset_settings(preset, memory_scale=1 / 8, num_ctx=4096,
                                   sample_period_s=0.1, safety_buffer_bytes=16 * MIB,
                                   **overrides)
        guard = build_memory_guard(settings=settings, client=client, backend=backend,
                                   memory_scale=1 / 8,
                                   footprint_cache_path=str(tmp_path / "footprints.json"))
        made.append((client, guard))
        return client, guard

    yield build
    for client, guard in made:
        guard.close()
        client.close()
    unload_all(url, timeout_s=5)


class ResidentWatcher:
    """Polls /api/ps in a thread and keeps every distinct set of models seen loaded together."""

    def __init__(self, url):
        self.url = url
        self.seen = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        with httpx.Client(timeout=2) as http:
            while not self._stop.wait(0.02):
                try:
                    models = http.get(f"{self.url}/api/ps").json().get("models", [])
                except httpx.HTTPError:
                    continue
                names = frozenset(m["name"] for m in models)
                if names and names not in self.seen:
                    self.seen.append(names)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _runner(client, guard, tmp_path, events=None, **options):
    return BenchmarkRunner(
        client=client, guard=guard, options=RunOptions(**{"repetitions": REPETITIONS, **options}),
        suite=load_suite("robot_mission"), results_root=tmp_path / "results", run_name="par",
        on_progress=events.append if events is not None else None)


def _epoch(iso):
    return dt.datetime.fromisoformat(iso).timestamp()


def _intervals(records, model):
    return [(_epoch(r["started"]), _epoch(r["stamp"])) for r in records
            if r["type"] == "test" and r["model"] == model]


def test_small_models_run_side_by_side_and_are_marked(bench, sim_container, tmp_path):
    _, url = sim_container
    client, guard = bench(parallel_small_models=True)
    events = []
    runner = _runner(client, guard, tmp_path, events)
    plan = runner.plan(SMALL_PAIR + [LARGE])
    # The pair fits in the budget together; the large model does not fit beside them.
    assert plan.batches == [SMALL_PAIR, [LARGE]]
    with ResidentWatcher(url) as watcher:
        outcome = runner.run(SMALL_PAIR + [LARGE])
    assert outcome.status == "ok", outcome.message

    # Resident together while the run went, and the large model never beside another.
    assert frozenset(SMALL_PAIR) in watcher.seen, watcher.seen
    assert all(names == {LARGE} for names in watcher.seen if LARGE in names), watcher.seen

    records, bad = read_records(outcome.reports.jsonl_log)
    assert bad == 0
    # The pair's tests overlap in time (from the log's timestamps: not a speed assertion).
    a, b = (_intervals(records, m) for m in SMALL_PAIR)
    assert any(max(sa, sb) < min(ea, eb) for sa, ea in a for sb, eb in b)
    assert max(e for _, e in a + b) > min(s for s, _ in a + b)
    for model, mate in (SMALL_PAIR, SMALL_PAIR[::-1]):
        tests = [r for r in records if r["type"] == "test" and r["model"] == model]
        assert tests and all(r["concurrent_with"] == [mate] for r in tests)
    assert all("concurrent_with" not in r for r in records
               if r["type"] == "test" and r["model"] == LARGE)

    # Guard calls: every model of the batch admitted before the first load of the batch.
    decisions = [d for r in records if r["type"] == "memory" for d in r["decisions"]]
    admitted = {d["model"]: d["stamp_s"] for d in decisions
                if d["action"] == "load" and d["model"] in SMALL_PAIR}
    first_load = min(_epoch(r["stamp"]) for r in records
                     if r["type"] == "load" and r["model"] in SMALL_PAIR)
    assert set(admitted) == set(SMALL_PAIR) and max(admitted.values()) < first_load
    assert any("held for" in d["reason"] for d in decisions if d["model"] in SMALL_PAIR)

    # Complete results per model, marked as concurrent where they were.
    by_model = {m.model: m for m in outcome.summary.models}
    for model in SMALL_PAIR + [LARGE]:
        result = by_model[model]
        assert result.status == "ok" and result.tests_ok == 3 * REPETITIONS
        assert result.tests_failed == 0 and result.warmup_ok
        assert result.memory["unloads"] >= 1 and result.memory["cleanup_successful"]
    assert by_model[SMALL_PAIR[0]].concurrent_with == [SMALL_PAIR[1]]
    assert by_model[SMALL_PAIR[1]].concurrent_with == [SMALL_PAIR[0]]
    assert by_model[LARGE].concurrent_with == []
    # A footprint is measured only for a model that had the container to itself.
    assert all(by_model[m].memory["measured_footprint_bytes"] is None for m in SMALL_PAIR)
    assert by_model[LARGE].memory["measured_footprint_bytes"] > 100 * MIB

    data = json.loads(outcome.reports.results_json.read_text())
    assert {m["model"]: m["concurrent_with"] for m in data["models"]} == {
        SMALL_PAIR[0]: [SMALL_PAIR[1]], SMALL_PAIR[1]: [SMALL_PAIR[0]], LARGE: []}
    assert data["plan"]["batches"] == [SMALL_PAIR, [LARGE]]
    rows = list(csv.DictReader(outcome.reports.csv.open()))
    assert {r["model"]: r["concurrent_with"] for r in rows}[SMALL_PAIR[0]] == SMALL_PAIR[1]
    markdown = outcome.reports.markdown.read_text()
    assert f"Tested side by side (parallel small-model testing): {SMALL_PAIR[0]} with " \
        f"{SMALL_PAIR[1]}" in markdown and "not comparable with models tested alone" in markdown

    # Progress says which models run together and never goes back.
    assert any(e.status == f"testing side by side: {', '.join(SMALL_PAIR)}" for e in events)
    assert any("(side by side with" in e.status for e in events)
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_a_model_the_guard_will_not_admit_beside_its_batch_is_tested_alone(
        bench, tmp_path):
    client, guard = bench(parallel_small_models=True)
    honest_plan = guard.plan
    # A plan that (wrongly) batches a pair that does not fit together: the guard must refuse.
    guard.plan = lambda models: replace(honest_plan(models), batches=[list(models)])
    pair = ["qwen2.5:0.5b", LARGE]
    outcome = _runner(client, guard, tmp_path, repetitions=1).run(pair)
    assert outcome.status == "ok", outcome.message
    records, _ = read_records(outcome.reports.jsonl_log)
    refusals = [d for r in records if r["type"] == "memory" for d in r["decisions"]
                if d["action"] == "skip"]
    assert len(refusals) == 1 and "cannot run beside" in refusals[0]["reason"]
    refused = refusals[0]["model"]
    by_model = {m.model: m for m in outcome.summary.models}
    for model in pair:
        assert by_model[model].status == "ok" and by_model[model].tests_ok == 3
        assert by_model[model].concurrent_with == []
        assert by_model[model].memory["skip_reason"] == ""
    loads = [r["model"] for r in records if r["type"] == "load"]
    ends = [r["model"] for r in records if r["type"] == "model_end"]
    # One at a time, the refused model on its own after the other one.
    assert loads == ends and sorted(loads) == sorted(pair) and loads[-1] == refused


def test_the_guard_holds_room_for_batch_mates(bench):
    client, guard = bench(parallel_small_models=True)
    assert isinstance(guard.before_model(LARGE), Proceed)
    beside = guard.before_model(LARGE, together_with=["qwen2.5:0.5b"])
    assert isinstance(beside, Skip) and "held for qwen2.5:0.5b" in beside.reason
    assert isinstance(guard.before_model("qwen2.5:0.5b", together_with=["smollm2:135m"]),
                      Proceed)
    assert client.ps() == []  # admission loads nothing


def test_dynamic_keep_alive_reaches_the_requests(bench, sim_container, tmp_path):
    _, url = sim_container
    client, guard = bench("adaptive", dynamic_keep_alive=True, dynamic_keep_alive_min_s=60,
                          dynamic_keep_alive_max_s=3600)
    before = time.time()
    outcome = _runner(client, guard, tmp_path, repetitions=1, warmup=False).run(
        ["qwen2.5:0.5b"])
    assert outcome.status == "ok", outcome.message
    records, _ = read_records(outcome.reports.jsonl_log)
    keep_alive = [r["keep_alive"] for r in records if r["type"] == "load"][0]
    # More than half of the budget is free with this model: longer than the 5m default.
    assert isinstance(keep_alive, int) and 1800 <= keep_alive <= 3600
    # The adaptive preset keeps the model cached; the server holds it for that long.
    loaded = httpx.get(f"{url}/api/ps", timeout=5).json()["models"]
    expires = _epoch(loaded[0]["expires_at"])
    assert before + keep_alive - 5 <= expires <= time.time() + keep_alive + 5


def _reading(budget, working_set):
    sample = ContainerSample(stamp_s=1.0, working_set_bytes=working_set, usage_bytes=working_set,
                             limit_bytes=0, state=ContainerState.RUNNING)
    return MemoryReading(stamp_s=1.0, container=sample, host_total_bytes=budget * 2,
                         host_available_bytes=budget * 2, ros_live_bytes=0,
                         ros_reserve_bytes=0, model_budget_bytes=budget, loaded_models=0)


def _prediction(model, size_mib, known=True):
    return FootprintPrediction(model=model, footprint_bytes=size_mib * MIB,
                               source="metadata" if known else "unknown")


@pytest.mark.parametrize("overrides, expected", [
    ({}, [["a", "b", "c"], ["big"]]),
    ({"parallel_max_models": 2}, [["a", "b"], ["c"], ["big"]]),
    ({"parallel_max_model_bytes": 40 * MIB}, [["a", "b"], ["c"], ["big"]]),
    ({"parallel_small_models": False}, [["a"], ["b"], ["c"], ["big"]]),
])
def test_batches_form_only_when_all_fit_together(overrides, expected):
    settings = preset_settings("default", **{"parallel_small_models": True, **overrides})
    predictions = {m: _prediction(m, s) for m, s in
                   (("a", 20), ("b", 30), ("c", 50), ("big", 90))}
    ordered = ["a", "b", "c", "big"]
    # Budget 128 MiB, 16 MiB of it the empty container: a+b+c = 100 fit, big beside c not.
    batches = MemoryPolicy(settings).batches(ordered, predictions, _reading(128 * MIB, 16 * MIB),
                                             16 * MIB)
    assert batches == expected


def test_unknown_sizes_never_join_a_batch_and_the_plan_counts_batches():
    policy = MemoryPolicy(preset_settings("default", parallel_small_models=True))
    predictions = {"a": _prediction("a", 10), "x": _prediction("x", 0, known=False),
                   "b": _prediction("b", 10)}
    reading = _reading(128 * MIB, 16 * MIB)
    assert policy.batches(["a", "x", "b"], predictions, reading, 16 * MIB) == [
        ["a"], ["x"], ["b"]]
    pair = {"a": predictions["a"], "b": predictions["b"]}
    steps = policy.simulate(["a", "b"], pair, reading, [], 16 * MIB, batches=[["a", "b"]])
    # Loaded together: both see the same predicted peak, base plus both footprints.
    assert [s.predicted_peak_bytes for s in steps] == [36 * MIB, 36 * MIB]
    assert [s.unloads for s in steps] == [1, 1] and not any(s.skip_reason for s in steps)


def test_dry_run_shows_the_batches(sim_container, tmp_path, capsys):
    from shadowhound_llm_bench.cli import main
    _, url = sim_container
    # No --container: sizes from the API against this machine's memory, where all three fit.
    code = main(["run", "--host", url, "--models", *SMALL_PAIR, LARGE, "--dry-run",
                 "--parallel-small-models", "--parallel-max-models", "2",
                 "--results-dir", str(tmp_path / "results")])
    out = capsys.readouterr().out
    assert code == 0
    # Either order: a footprint measured earlier on this machine (its state folder) reorders.
    pairs = (SMALL_PAIR, SMALL_PAIR[::-1])
    assert any(f"side by side: {' + '.join(pair)}" in out for pair in pairs), out
    assert LARGE in out and f"+ {LARGE}" not in out  # at most two per batch
    assert main(["run", "--host", url, "--models", LARGE, "--dry-run",
                 "--parallel-small-models", "--parallel-max-models", "0",
                 "--results-dir", str(tmp_path / "results")]) == 2


def test_the_node_result_of_a_dry_run_lists_the_batches():
    messages = pytest.importorskip("shadowhound_llm_bench.ros.messages")
    action = pytest.importorskip("shadowhound_llm_bench_interfaces.action")
    from shadowhound_llm_bench.engine.memory_guard_api import PlannedModel, RunPlan
    plan = RunPlan(preset="default", models=[
        PlannedModel(m, 50 * MIB, "metadata", [], 116 * MIB) for m in SMALL_PAIR],
        batches=[SMALL_PAIR], predicted_peak_bytes=116 * MIB, predicted_unloads=2,
        predicted_restarts=0, model_budget_bytes=208 * MIB)
    msg = messages.plan_result_msg(action.RunBenchmark.Result, plan)
    assert f"side by side: {' + '.join(SMALL_PAIR)}" in msg.summary
