"""The runner against the simulator: right numbers, classified failures, reports that agree."""

import csv
import json

import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.reports.jsonl_log import read_records
from shadowhound_llm_bench.reports.render import render_reports
from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.scenario import load_scenario

SMALL = load_scenario("small")
CATALOG = builtin_catalog()


def run(url, tmp_path, models, *, events=None, cancel=None, **option_changes):
    options = RunOptions(**{"repetitions": 2, **option_changes})
    with OllamaClient(base_url=url) as client:
        runner = BenchmarkRunner(client=client, guard=None, options=options,
                                 suite=load_suite("robot_mission"), results_root=tmp_path,
                                 run_name="t", on_progress=events.append if events is not None
                                 else None, cancel=cancel)
        return runner.run(models)


def logged_tests(records, model, warmup=False):
    return [r for r in records if r["type"] == "test" and r["model"] == model
            and r["warmup"] == warmup]


def test_measured_speeds_match_the_simulated_model(clean_sim, tmp_path):
    events = []
    outcome = run(clean_sim.url, tmp_path, ["qwen2.5:0.5b"], events=events)
    assert outcome.status == "ok"
    spec = CATALOG["qwen2.5:0.5b"]
    result = outcome.summary.models[0]
    decode = result.metrics["decode_tokens_per_s"]
    assert decode["n"] == 6  # 3 tasks x 2 repetitions, warm-up excluded
    assert decode["median"] == pytest.approx(spec.decode_tokens_per_s, rel=0.05)
    assert result.metrics["prompt_tokens_per_s"]["median"] == pytest.approx(
        spec.prompt_tokens_per_s, rel=0.05)
    # Ollama's load reply has no load_duration: the load time is measured on the client, and
    # it spans the simulator's load model (at least its base time) at its time scale.
    assert result.load["load_source"] == "client"
    assert result.load["load_s"] == result.load["client_s"]
    assert result.load["client_s"] >= SMALL.wall_seconds(SMALL.load_base_s) * 0.95
    records, bad = read_records(outcome.reports.jsonl_log)
    assert bad == 0
    for rec in logged_tests(records, "qwen2.5:0.5b"):
        m = rec["metrics"]
        prompt_wall_s = SMALL.wall_seconds(m["prompt_tokens"] / spec.prompt_tokens_per_s)
        # TTFT is seen on the client: after the prompt was evaluated, before the stream ended
        assert prompt_wall_s * 0.95 <= m["ttft_ms"] / 1000 <= m["e2e_latency_s"]
        assert m["token_chunks"] == m["eval_count"]
    assert [r["repetition"] for r in logged_tests(records, "qwen2.5:0.5b", warmup=True)] == [0]
    phases = [e.phase for e in events]
    for phase in (Phase.PLANNING, Phase.LOADING, Phase.WARMUP, Phase.TESTING,
                  Phase.REPORTING, Phase.DONE):
        assert phase in phases
    progress = [e.progress for e in events]
    assert progress == sorted(progress)
    assert events[-1].phase == Phase.DONE and events[-1].progress == 1.0


def test_metadata_and_options_are_recorded(clean_sim, tmp_path):
    outcome = run(clean_sim.url, tmp_path, ["llama3.2:1b"], repetitions=1, num_predict=300)
    data = json.loads(outcome.reports.results_json.read_text())
    assert data["schema_version"] == 1
    assert data["run"]["ollama_version"] == SMALL.version
    assert data["options"]["num_predict"] == 300 and data["options"]["seed"] == 42
    meta = data["models"][0]["metadata"]
    spec = CATALOG["llama3.2:1b"]
    assert meta["digest"] == spec.digest and meta["size_bytes"] == spec.size_bytes
    assert meta["quantization"] == "Q8_0" and meta["parameter_size"] == "1.2B"


def test_http_errors_and_timeouts_are_failures_not_successes(clean_sim, tmp_path):
    # requests: the load, 1 warm-up, then 3 tasks x 2 repetitions; 2 of the tests get HTTP 500
    first = clean_sim.request_count() + 1
    clean_sim.set_faults({"http_500_on_request": [first + 3, first + 5]})
    outcome = run(clean_sim.url, tmp_path, ["qwen2.5:0.5b"])
    result = outcome.summary.models[0]
    assert (result.tests_ok, result.tests_failed) == (4, 2)
    assert {f["kind"] for f in result.failures} == {"http_error"}
    assert result.metrics["decode_tokens_per_s"]["n"] == 4
    clean_sim.unload_all()
    clean_sim.set_faults({"reset": True, "hang_s": {"qwen2.5:0.5b": 2}})
    outcome = run(clean_sim.url, tmp_path, ["qwen2.5:0.5b"], repetitions=1, warmup=False,
                  load_deadline_s=0.5)
    result = outcome.summary.models[0]
    assert result.status == "failed" and result.tests_ok == 0
    assert result.load["error_kind"] == "timeout" and result.load["attempt"] == 2
    assert "load failed after 2 attempt(s)" in result.reason
    assert "decode_tokens_per_s" not in result.metrics


def test_stream_errors_and_empty_answers_are_classified(scripted, tmp_path):
    outcome = run(scripted.url, tmp_path, ["stream_error", "empty", "stall", "good"],
                  repetitions=1, request_deadline_s=0.5)
    by_model = {m.model: m for m in outcome.summary.models}
    assert {f["kind"] for f in by_model["stall"].failures} == {"timeout"}
    assert {f["kind"] for f in by_model["stream_error"].failures} == {"stream_error"}
    assert {f["kind"] for f in by_model["empty"].failures} == {"empty_output"}
    assert by_model["stream_error"].status == by_model["empty"].status == "failed"
    assert by_model["good"].tests_ok == 3 and by_model["good"].status == "ok"
    md = outcome.reports.markdown.read_text()
    assert "stream_error" in md and "empty_output" in md


def test_missing_models_are_pulled_and_unknown_ones_skipped(clean_sim, tmp_path):
    events = []
    outcome = run(clean_sim.url, tmp_path, ["smollm2:135m", "nosuch:1b"], events=events,
                  repetitions=1, warmup=False)
    by_model = {m.model: m for m in outcome.summary.models}
    assert by_model["smollm2:135m"].status == "ok"
    assert by_model["smollm2:135m"].metadata["size_bytes"] == CATALOG["smollm2:135m"].size_bytes
    assert any(e.phase == Phase.PULLING and e.model == "smollm2:135m" for e in events)
    assert by_model["nosuch:1b"].status == "skipped"
    assert "unknown model nosuch:1b" in by_model["nosuch:1b"].reason
    outcome = run(clean_sim.url, tmp_path, ["phi4:14b"], pull_missing=False, repetitions=1)
    assert outcome.summary.models[0].status == "skipped"
    assert "pulling is turned off" in outcome.summary.models[0].reason


def test_unguarded_models_pile_up_until_a_load_fails(clean_sim, tmp_path):
    # Without memory management the first model stays cached and the second does not fit the
    # small scenario's container: the seed's failure, reported as a failed load, not a success.
    outcome = run(clean_sim.url, tmp_path, ["qwen2.5:0.5b", "llama3.2:1b"], repetitions=1)
    by_model = {m.model: m for m in outcome.summary.models}
    assert by_model["qwen2.5:0.5b"].status == "ok"
    assert by_model["llama3.2:1b"].status == "failed"
    assert "do load request" in by_model["llama3.2:1b"].reason
    assert by_model["llama3.2:1b"].memory is None


def test_guarded_run_merges_memory_records_and_reports_agree(guarded_sim, tmp_path):
    client, guard = guarded_sim
    runner = BenchmarkRunner(client=client, guard=guard, options=RunOptions(repetitions=2),
                             suite=load_suite("robot_mission"), results_root=tmp_path)
    outcome = runner.run(["qwen2.5:0.5b", "llama3.2:1b"])
    assert outcome.status == "ok", outcome.message
    paths = outcome.reports
    paths = outcome.reports
    records, _ = read_records(paths.jsonl_log)
    data = json.loads(paths.results_json.read_text())
    rows = list(csv.DictReader(paths.csv.open()))
    md = paths.markdown.read_text()
    assert paths.memory_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for model in data["models"]:
        logged = logged_tests(records, model["model"])
        assert model["tests_ok"] == sum(1 for r in logged if r["status"] == "ok") == 6
        decode = [r["metrics"]["decode_tokens_per_s"] for r in logged]
        assert model["metrics"]["decode_tokens_per_s"]["max"] == pytest.approx(max(decode))
        for task in model["tasks"]:
            row = next(r for r in rows if r["model"] == model["model"]
                       and r["task"] == task["task"])
            scores = [r["score"]["percent"] for r in logged if r["task"] == task["task"]]
            assert float(row["score_mean"]) == pytest.approx(sum(scores) / len(scores))
        assert model["model"] in md
    for model in data["models"]:
        memory = model["memory"]
        assert memory["predicted_footprint_bytes"] > 0
        assert memory["memory_peak_bytes"] >= memory["memory_before_bytes"]
        assert memory["decisions"] and memory["decisions"][0]["action"] == "load"
    assert data["memory"]["readings"] > 0 and data["memory"]["peak_working_set_bytes"] > 0
    assert "No memory records" not in md and "| qwen2.5:0.5b |" in md.split("## Memory")[1]
    rec = data["recommendation"]
    assert rec["fastest"]["model"] == "qwen2.5:0.5b"  # 160 vs 110 tokens/s in the catalog
    assert "Rule:" in md and "highest median decode tokens/s" in md
    before = paths.results_json.read_text()
    paths.results_json.unlink()
    render_reports(paths.run_dir)  # rebuilt from the JSONL alone: the same results
    assert json.loads(paths.results_json.read_text()) == json.loads(before)


def test_cancel_stops_before_the_next_request_and_writes_partial_reports(
        clean_sim, tmp_path):
    cancel = CancelToken()
    events = []

    def on_event(event):
        events.append(event)
        if event.phase == Phase.TESTING and "repetition 1/2" in event.status and \
                "navigation_plan" in event.status:
            cancel.set()

    events_sink = type("Sink", (list,), {"append": lambda self, e: on_event(e)})()
    outcome = run(clean_sim.url, tmp_path, ["qwen2.5:0.5b", "llama3.2:1b"],
                  events=events_sink, cancel=cancel)
    assert outcome.status == "canceled"
    models = {m.model: m for m in outcome.summary.models}
    assert list(models) == ["qwen2.5:0.5b"]
    assert models["qwen2.5:0.5b"].status == "canceled"
    assert models["qwen2.5:0.5b"].tests_ok == 1  # status_report; the next one never started
    data = json.loads(outcome.reports.results_json.read_text())
    assert data["run"]["status"] == "canceled"


def test_resume_of_an_unknown_run_is_refused(tmp_path, clean_sim):
    from shadowhound_llm_bench.reports.run_dir import RunDirError
    with OllamaClient(base_url=clean_sim.url) as client:
        with pytest.raises(RunDirError):
            BenchmarkRunner(client=client, guard=None, options=RunOptions(),
                            suite=load_suite("robot_mission"), results_root=tmp_path,
                            run_id="../../etc", resume=True)
        runner = BenchmarkRunner(client=client, guard=None, options=RunOptions(),
                                 suite=load_suite("robot_mission"), results_root=tmp_path,
                                 run_id="20260101T000000Z", resume=True)
        with pytest.raises(RunDirError, match="not found"):
            runner.run(["qwen2.5:0.5b"])
