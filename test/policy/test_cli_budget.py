"""The CLI on an ordinary machine: a budget holding no model stops at once; options fix it."""

import subprocess
import sys
import time

import httpx
import pytest

from policy_sim_container import start_sim_container
from shadowhound_llm_bench.core.decider.budget_check import PlannedFit, nothing_fits

MODELS = ["qwen2.5:0.5b", "llama3.2:1b"]


def _cli(url, name, tmp_path, *extra):
    command = [sys.executable, "-m", "shadowhound_llm_bench.cli", "run", "--host", url,
               "--container", name, "--models", *MODELS, "--results-dir", str(tmp_path / "res"),
               "--state-dir", str(tmp_path / "state"), "--no-history", "--repetitions", "1",
               "--no-platform", "--quiet", *extra]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    return done, time.monotonic() - started


@pytest.fixture
def small_container(docker_client):
    sim = start_sim_container(docker_client, scenario="small", mem_limit_bytes=None)
    yield sim
    sim.remove()


def test_a_budget_that_holds_no_model_stops_before_loading_with_the_numbers_and_the_fix(
        small_container, docker_client, tmp_path):
    started_at = docker_client.containers.get(small_container.name).attrs["State"]["StartedAt"]
    done, took_s = _cli(small_container.url, small_container.name, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nothing can be tested: the model budget is 0.00 GiB" in done.stderr
    assert "the container's memory limit 0.28 GiB - safety buffer 2.00 GiB" in done.stderr
    assert "--safety-buffer-gib" in done.stderr and "Nothing was loaded" in done.stderr
    # No wait for memory (30 s), no restart, nothing loaded, no run folder.
    assert took_s < 25.0, took_s
    assert docker_client.containers.get(small_container.name).attrs["State"]["StartedAt"] \
        == started_at
    assert httpx.get(f"{small_container.url}/api/ps", timeout=5).json()["models"] == []
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())
    assert "ROS reserve" in done.stdout and "margin" in done.stdout


def test_with_the_budget_options_both_models_are_tested(small_container, tmp_path):
    done, _ = _cli(small_container.url, small_container.name, tmp_path,
                   "--memory-scale", "1/8", "--safety-buffer-gib", "0.02")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    statuses = {words[0]: words[1] for words in lines if words and words[0] in MODELS}
    assert statuses == {"qwen2.5:0.5b": "ok", "llama3.2:1b": "ok"}, done.stdout


def test_nothing_fits_only_when_every_model_is_skipped_and_the_smallest_exceeds_the_budget():
    skipped = [PlannedFit("big", 900, "cannot fit"), PlannedFit("small", 300, "cannot fit")]
    assert nothing_fits(skipped, budget_bytes=200) == ("small", 300)
    assert nothing_fits(skipped, budget_bytes=400) is None  # skipped for another reason
    assert nothing_fits([PlannedFit("a", 300, ""), skipped[0]], budget_bytes=0) is None
    assert nothing_fits([], budget_bytes=0) is None
