"""Suites as data and the pinned run options: bad input gets a clear error."""

import pytest

from shadowhound_llm_bench.core.settings.run_options import OptionsError, RunOptions
from shadowhound_llm_bench.core.runs.suite import SuiteError, load_suite, parse_suite


def test_shipped_suite_has_the_three_mission_tasks():
    suite = load_suite("robot_mission")
    assert [t.kind for t in suite.tasks] == ["instruction", "json", "multiple_choice"]
    choice = suite.tasks[2]
    assert "D) West" in choice.render_prompt()
    assert all(t.max_points == 100 for t in suite.tasks)


def test_suite_loads_from_a_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntasks:\n  - id: t\n    kind: instruction\n    prompt: hi\n"
                    "    checks: [{type: word_count, max: 5, points: 1}]\n")
    assert load_suite(str(path)).tasks[0].id == "t"


@pytest.mark.parametrize("data, message", [
    ({"tasks": []}, "needs a 'name'"),
    ({"name": "x", "tasks": [{"id": "a", "kind": "poem", "prompt": "p", "checks": []}]},
     "'kind' must be one of"),
    ({"name": "x", "tasks": [{"id": "a", "kind": "instruction", "prompt": "p",
                              "checks": [{"type": "vibes", "points": 1}]}]},
     "check #1: unknown check type \\(known: word_count"),
    ({"name": "x", "tasks": [{"id": "a", "kind": "json", "prompt": "p",
                              "checks": [{"type": "json_schema", "points": 1}]}]},
     "needs the task's 'schema'"),
    ({"name": "x", "tasks": [{"id": "a", "kind": "multiple_choice", "prompt": "p",
                              "choices": {"A": "x", "B": "y"}, "answer": "C",
                              "checks": [{"type": "choice", "points": 1}]}]},
     "'answer' is not one of the choice letters"),
    ({"name": "x", "tasks": [{"id": "a", "kind": "instruction", "prompt": "p",
                              "checks": [{"type": "regex", "pattern": "x", "points": 0}]}]},
     "positive 'points'"),
])
def test_bad_suites_are_rejected_with_the_reason(data, message):
    with pytest.raises(SuiteError, match=message):
        parse_suite(data)


def test_unknown_suite_name_and_path_like_names():
    with pytest.raises(SuiteError, match="not found"):
        load_suite("no_such_suite")
    with pytest.raises(SuiteError, match="is malformed"):
        load_suite("..hidden")


def test_options_defaults_are_pinned_and_sent():
    opts = RunOptions()
    assert opts.ollama_options() == {"num_ctx": 4096, "num_predict": 512, "temperature": 0.0,
                                     "seed": 42}
    assert opts.repetitions == 3 and opts.keep_alive == "5m"
    assert RunOptions.from_dict(opts.to_dict()) == opts


@pytest.mark.parametrize("changes", [
    {"repetitions": 0}, {"num_ctx": 10}, {"temperature": 3.0}, {"keep_alive": "soon"},
    {"keep_alive": True}, {"memory_bandwidth_bytes_per_s": -1.0},
])
def test_bad_options_are_rejected(changes):
    with pytest.raises(OptionsError):
        RunOptions(**changes)


def test_keep_alive_accepts_seconds_and_go_durations():
    assert RunOptions(keep_alive="300").keep_alive == 300
    assert RunOptions(keep_alive="1h30m").keep_alive == "1h30m"
    assert RunOptions(keep_alive=-1).keep_alive == -1
