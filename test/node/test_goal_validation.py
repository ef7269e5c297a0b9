"""Goal validation: defaults filled from the settings, bad goals rejected with a reason."""

from pathlib import Path

import pytest

from shadowhound_llm_bench.core.settings.goal_validation import (GoalRejected, GoalRequest,
                                                                 resolve_goal)
from shadowhound_llm_bench.core.settings.node_settings import NodeSettings, NodeSettingsError

SUITES = Path(__file__).resolve().parents[2] / "config" / "suites"


@pytest.fixture
def suite_dir(tmp_path):
    (tmp_path / "robot_mission.yaml").write_text("name: robot_mission\n")
    (tmp_path / "tiny.yaml").write_text("name: tiny\n")
    return tmp_path


def test_empty_goal_takes_every_default(suite_dir):
    goal = resolve_goal(GoalRequest(), NodeSettings(), suite_dirs=[suite_dir])
    assert goal.models == ["phi4:14b", "qwen2.5-coder:32b", "llama3.3:70b"]
    assert goal.preset == "default" and goal.order == "small_to_large"
    assert goal.suite == "robot_mission"
    assert goal.options.repetitions == 3 and goal.options.num_ctx == 4096
    assert goal.options.temperature == 0.0 and goal.options.seed == 42
    assert goal.keep_alive_override is None and goal.options.pull_missing


def test_goal_fields_override_the_settings(suite_dir):
    goal = resolve_goal(GoalRequest(models=["qwen2.5:0.5b"], suite="tiny", repetitions=1,
                                    preset="adaptive", order="as_given", num_ctx=2048,
                                    num_predict=64, temperature=0.5, seed=7, keep_alive="0",
                                    no_pull=True, run_name="night_1", dry_run=True),
                        NodeSettings(), suite_dirs=[suite_dir])
    assert goal.models == ["qwen2.5:0.5b"] and goal.suite == "tiny" and goal.dry_run
    assert (goal.options.repetitions, goal.options.num_ctx, goal.options.num_predict) == \
        (1, 2048, 64)
    assert goal.options.temperature == 0.5 and goal.options.seed == 7
    assert goal.keep_alive_override == 0 and not goal.options.pull_missing
    assert goal.preset == "adaptive" and goal.order == "as_given" and goal.run_name == "night_1"


def test_run_settings_of_the_node_reach_the_run_options(suite_dir):
    settings = NodeSettings(values={"benchmark.canary_model": "qwen2.5:0.5b",
                                    "benchmark.canary_min_tokens_per_s": 20.0,
                                    "benchmark.memory_bandwidth_gbps": 273.0,
                                    "benchmark.warmup": False, "policy.keep_alive": "10m"})
    options = resolve_goal(GoalRequest(), settings, suite_dirs=[suite_dir]).options
    assert options.canary_model == "qwen2.5:0.5b"
    assert options.canary_min_decode_tokens_per_s == 20.0
    assert options.memory_bandwidth_bytes_per_s == 273e9
    assert not options.warmup and options.keep_alive == "10m"
    defaults = resolve_goal(GoalRequest(), NodeSettings(), suite_dirs=[suite_dir]).options
    assert defaults.canary_model == "" and defaults.memory_bandwidth_bytes_per_s is None


def test_a_malformed_canary_model_is_refused():
    with pytest.raises(NodeSettingsError, match="canary_model"):
        NodeSettings(values={"benchmark.canary_model": "bad model name!"})


def test_suite_file_path_is_accepted_inside_an_allowed_folder(suite_dir):
    path = suite_dir / "tiny.yaml"
    settings = NodeSettings(values={"benchmark.suite_path_dirs": [str(suite_dir)]})
    goal = resolve_goal(GoalRequest(suite=str(path)), settings, suite_dirs=[suite_dir])
    assert goal.suite == str(path.resolve())


def test_suite_file_path_is_refused_when_no_folder_is_allowed(suite_dir):
    path = suite_dir / "tiny.yaml"
    with pytest.raises(GoalRejected) as info:
        resolve_goal(GoalRequest(suite=str(path)), NodeSettings(), suite_dirs=[suite_dir])
    assert "accepted only by name unless benchmark.suite_path_dirs names folders" \
        in str(info.value)


@pytest.mark.parametrize("request_fields, fragment", [
    (dict(preset="reckless"), "unknown preset 'reckless'"),
    (dict(order="random"), "unknown order 'random'"),
    (dict(repetitions=1000), "repetitions must be within 0..100"),
    (dict(num_ctx=100), "num_ctx must be within 256..1048576"),
    (dict(num_ctx=10 ** 8), "num_ctx must be within"),
    (dict(num_predict=10 ** 7), "num_predict must be within"),
    (dict(temperature=3.0), "temperature must be within 0..2"),
    (dict(temperature=float("nan")), "temperature must be a number"),
    (dict(models=["phi4:14b", "bad model"]), "model name 'bad model' is malformed"),
    (dict(models=["phi4:14b", ""]), "models contains an empty name"),
    (dict(models=["phi4:14b", "phi4:14b"]), "models listed twice: phi4:14b"),
    (dict(keep_alive="forever"), "keep_alive must be seconds or a duration"),
    (dict(run_name="../../etc"), "run_name '../../etc' may hold only"),
    (dict(resume_run_id="a/b"), "is not a run id"),
    (dict(suite="nonexistent"), "unknown suite 'nonexistent'; known suites: robot_mission, tiny"),
    (dict(suite="/no/such/suite.yaml"), "suite path '/no/such/suite.yaml' refused"),
    (dict(suite="/etc/shadow"), "must end in .yaml or .yml"),
    (dict(preset="x" * 5000), "preset is longer than 32 characters (5000)"),
    (dict(models=["m" * 201]), "models #1 is longer than 200 characters"),
    (dict(models=[f"m{i}" for i in range(65)]), "at most 64 models per run, got 65"),
    (dict(suite="s" * 5000), "suite is longer than 4096 characters"),
])
def test_bad_goals_are_rejected_with_the_reason(suite_dir, request_fields, fragment):
    with pytest.raises(GoalRejected) as info:
        resolve_goal(GoalRequest(**request_fields), NodeSettings(), suite_dirs=[suite_dir])
    assert fragment in str(info.value)


def test_empty_model_list_after_defaults_is_rejected(suite_dir):
    settings = NodeSettings(values={"benchmark.models": [""]})
    with pytest.raises(GoalRejected) as info:
        resolve_goal(GoalRequest(), settings, suite_dirs=[suite_dir])
    assert "no models to test" in str(info.value)


@pytest.mark.skipif(not SUITES.is_dir(), reason="config/suites not present yet")
def test_the_shipped_default_suite_is_known():
    goal = resolve_goal(GoalRequest(), NodeSettings(), suite_dirs=[SUITES])
    assert goal.suite == "robot_mission"
