"""The robot wins in real time: a growing Nav2 stand-in preempts a load, a stream, a cached one."""

import io
import threading
import time

import pytest

from report_renderings import assert_one_truth
from shadowhound_llm_bench.cli import _print_outcome as print_outcome
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient, OllamaError
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard_api import Proceed
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from test_ros_reserve_grows import GrowingRosNode

# Beside the thor simulator (1/64): ~400 MiB of budget before the growth, ~80 MiB after it.
HOST_TOTAL_BYTES = 700 * MIB
SYSTEM_RESERVE_BYTES = 160 * MIB
GROWTH_BYTES = 320 * MIB


@pytest.fixture
def nav2():
    node = GrowingRosNode()
    yield node
    node.stop()


@pytest.fixture
def guarded(thor_sim, docker_client, nav2):
    settings = preset_settings("adaptive", memory_scale=1 / 64, num_ctx=4096,
                               safety_buffer_bytes=64 * MIB, sample_period_s=0.1,
                               unload_deadline_s=5.0, preempt_release_deadline_s=3.0)
    backend = DockerContainer(name=thor_sim.name, ollama_base_url=thor_sim.url,
                              docker_client=docker_client)
    client = OllamaClient(base_url=thor_sim.url, request_timeout_s=30)
    guard = build_memory_guard(
        settings=settings, memory_scale=1 / 64, client=client, backend=backend,
        host=SimulatedHost(total_bytes=HOST_TOTAL_BYTES,
                           system_reserve_bytes=SYSTEM_RESERVE_BYTES),
        headroom=nav2.headroom)
    yield guard, client, thor_sim
    guard.close()
    client.close()
    backend.close()


def _held_bytes(guard):
    reading = guard.monitor.sample_now()
    return reading.container.working_set_bytes - (guard.readings.empty_working_set_bytes or 0)


def _wait_for_record(guard, deadline_s=20.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        records = guard.preemptor.records()
        if records:
            return records[-1]
        time.sleep(0.05)
    raise AssertionError("no preemption was recorded")


def _listed(client, deadline_s=3.0):
    """Models /api/ps still lists once the memory is back (it drops them moments later)."""
    end = time.monotonic() + deadline_s
    while client.ps() and time.monotonic() < end:
        time.sleep(0.05)
    return client.ps()


def _in_background(call):
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except OllamaError as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_load_ollama_goes_on_with_is_stopped_by_a_restart(guarded, nav2):
    guard, client, _ = guarded
    model = "qwen2.5-coder:32b"
    assert isinstance(guard.before_model(model), Proceed)
    thread, outcome = _in_background(
        lambda: client.load(model, keep_alive="5m", deadline_s=60))
    end = time.monotonic() + 20
    while _held_bytes(guard) < 60 * MIB and time.monotonic() < end:
        time.sleep(0.02)
    nav2.grow(GROWTH_BYTES)  # Nav2's costmaps grow while the model loads
    record = _wait_for_record(guard)
    thread.join(10)
    assert outcome["error"].kind == "preempted"
    assert record.during == "load" and record.cut_requests == 1
    # Ollama goes on loading after the client left, so only a restart gets the memory back.
    assert record.restarted and "keeps rising" in record.restart_reason
    assert record.released_after_s is not None
    assert record.ros_headroom_bytes < 0 or record.pressure_percent >= 100
    assert _listed(client) == []
    assert nav2.process.poll() is None
    actions = [d.action for d in guard.decisions()]
    assert "preempt" in actions and "restart" in actions
    assert guard.record(model).preemptions[0]["during"] == "load"


def test_a_long_streamed_answer_is_cut_and_unloaded_without_a_restart(guarded, nav2):
    guard, client, sim = guarded
    model = "phi4:14b"
    assert isinstance(guard.before_model(model), Proceed)
    client.load(model, keep_alive="5m", deadline_s=60)
    sim.set_faults({"decode_slowdown": {"after_cycles": 0, "fraction": 0.99}})
    thread, outcome = _in_background(lambda: client.generate_stream(
        model, "Write a long status report about the robot.", deadline_s=60,
        options={"num_predict": 400}, stall_s=30))
    end = time.monotonic() + 10
    while not any(r.kind == "stream" for r in client.in_flight()) and time.monotonic() < end:
        time.sleep(0.02)
    time.sleep(0.3)  # the answer is under way
    nav2.grow(GROWTH_BYTES)
    record = _wait_for_record(guard)
    thread.join(10)
    assert outcome["error"].kind == "preempted"
    assert record.during == "stream" and record.models == [model]
    assert not record.restarted and record.outcome == "released"
    assert record.released_after_s is not None
    assert _listed(client) == []
    assert guard.check_pressure(model).startswith("preempted: ")


def test_a_cached_model_is_unloaded_when_nav2_grows_between_models(guarded, nav2):
    guard, client, _ = guarded
    model = "phi4:14b"
    assert isinstance(guard.before_model(model), Proceed)
    client.load(model, keep_alive="5m", deadline_s=60)
    assert guard.preemptor.records() == []
    nav2.grow(GROWTH_BYTES)  # between two models: nothing in flight, the model is cached
    record = _wait_for_record(guard)
    assert record.during == "idle" and record.cut_requests == 0
    assert record.models == [model] and record.outcome == "released"
    assert _listed(client) == []
    # What comes next is the policy's: with the memory back, go on with the next model...
    assert guard.after_preemption() == ""
    # ...and when Nav2 needs even what the empty container holds, wait, then end the run.
    nav2.grow(150 * MIB)
    time.sleep(0.5)  # the ROS memory is measured on the sampler's period
    guard.settings = guard.policy.settings = guard.settings.replace(preempt_wait_s=0.3)
    assert "end the run" in guard.after_preemption()
    actions = [d.action for d in guard.decisions()]
    ended = max(i for i, action in enumerate(actions) if action == "end_run")
    assert "wait" in actions[:ended]  # it waited first


def test_a_run_records_the_preemption_and_goes_on_with_the_next_model(guarded, nav2, tmp_path):
    guard, client, sim = guarded
    sim.set_faults({"decode_slowdown": {"after_cycles": 0, "fraction": 0.9}})
    grown = []

    def on_progress(event):
        if event.phase == Phase.WARMUP and event.model == "phi4:14b" and not grown:
            grown.append(threading.Timer(0.5, nav2.grow, args=(GROWTH_BYTES,)))
            grown[0].start()
    runner = BenchmarkRunner(client=client, guard=guard,
                             options=RunOptions(repetitions=1, num_predict=400),
                             suite=load_suite("robot_mission"), results_root=tmp_path,
                             run_name="preempted", on_progress=on_progress)
    guard.settings = guard.policy.settings = guard.settings.replace(preempt_wait_s=1.0)
    outcome = runner.run(["phi4:14b", "deepseek-r1:7b"])
    phi4 = {m.model: m for m in outcome.summary.models}["phi4:14b"]
    assert phi4.status == "aborted" and "preempted during the stream" in phi4.reason
    episode = phi4.memory["preemptions"][0]
    assert episode["during"] == "stream" and episode["released_after_s"] is not None
    summary_md = outcome.reports.markdown.read_text()
    assert "## Preemptions (the robot took its memory back)" in summary_md
    # The robot has its memory back: the policy goes on, the next model is decided as usual;
    # with one model preempted the run is partial, not ok.
    deepseek = {m.model: m for m in outcome.summary.models}["deepseek-r1:7b"]
    assert deepseek.status == "ok" and outcome.status == "partial"
    actions = [d.action for d in guard.decisions()]
    assert "preempt" in actions and "end_run" not in actions
    # One truth: the console, results.json, summary.md and the CSV say the same.
    console = io.StringIO()
    print_outcome(outcome, console)
    assert assert_one_truth(outcome.run_dir, console.getvalue()) == {
        "phi4:14b": "aborted", "deepseek-r1:7b": "ok"}
