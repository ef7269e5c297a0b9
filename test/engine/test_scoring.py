"""Scoring of the shipped suite: expected points for good, bad and truncated answers."""

import pytest

from shadowhound_llm_bench.core.runs.scoring import (
    count_words, extract_choice, extract_json, score_output, strip_think,
)
from shadowhound_llm_bench.core.runs.suite import load_suite

GOOD_PLAN = ('{"goal": "kitchen", "steps": [{"action": "navigate", "target": "hallway"}, '
             '{"action": "navigate", "target": "kitchen"}, {"action": "report", '
             '"target": "operator"}], "max_speed_mps": 0.8}')


@pytest.fixture(scope="module")
def tasks():
    suite = load_suite("robot_mission")
    return {t.id: t for t in suite.tasks}


def test_status_report_good_answer_earns_every_point(tasks):
    text = ("I have reached the kitchen and I am standing by the table. My battery is at 64 "
            "percent, which is enough for several more tasks. I am now waiting for your next "
            "order.")
    score = score_output(tasks["status_report"], text)
    assert score.percent == 100.0
    assert all(item.passed for item in score.items)


def test_status_report_bullets_and_missing_facts_lose_points(tasks):
    text = "- Reached the kitchen.\n- Waiting."
    score = score_output(tasks["status_report"], text)
    # too few words (40), battery missing (40), starts with a bullet (20)
    assert score.points == 0.0
    details = {i.rule: i.detail for i in score.items}
    assert "missing ['64']" in details["answer mentions 'kitchen', '64'"]


def test_status_report_long_answer_keeps_content_points(tasks):
    text = "I reached the kitchen; battery 64 percent. " + "waiting " * 60
    score = score_output(tasks["status_report"], text)
    assert score.points == 60.0  # facts + no bullet, word count fails
    assert score.percent == 60.0


@pytest.mark.parametrize("text", [
    GOOD_PLAN,
    f"Here is the plan:\n```json\n{GOOD_PLAN}\n```\nSafe travels!",
    f"<think>The dock is next to the hallway {{not json}}</think>\n{GOOD_PLAN}",
])
def test_navigation_plan_valid_json_fenced_or_bare_earns_every_point(tasks, text):
    assert score_output(tasks["navigation_plan"], text).percent == 100.0


def test_navigation_plan_schema_violations_keep_only_found_points(tasks):
    text = '{"goal": "garage", "steps": [{"action": "fly", "target": "roof"}]}'
    score = score_output(tasks["navigation_plan"], text)
    assert score.points == 30.0  # found; schema fails; goal is not the kitchen
    schema_item = score.items[1]
    assert not schema_item.passed
    assert "missing required property 'max_speed_mps'" in schema_item.detail
    assert "'fly' is not one of" in schema_item.detail


def test_navigation_plan_truncated_json_earns_nothing_and_is_flagged(tasks):
    text = GOOD_PLAN[:60]
    score = score_output(tasks["navigation_plan"], text, truncated=True)
    assert score.points == 0.0
    assert score.truncated is True


def test_spatial_choice_right_answer(tasks):
    assert score_output(tasks["spatial_choice"], "Answer: D").percent == 100.0
    assert score_output(tasks["spatial_choice"],
                        "<think>Right of north is east; turning around gives west. "
                        "Answer: B?</think>\nThe answer is D.").percent == 100.0


def test_spatial_choice_wrong_or_ambiguous_answer(tasks):
    assert score_output(tasks["spatial_choice"], "Answer: B").percent == 0.0
    item = score_output(tasks["spatial_choice"], "Maybe (B) or (D).").items[0]
    assert not item.passed and "several letters" in item.detail


def test_spatial_choice_truncated_inside_thinking_scores_zero(tasks):
    score = score_output(tasks["spatial_choice"], "<think>Facing north, turn right: east. Then",
                         truncated=True)
    assert score.percent == 0.0 and score.truncated
    assert score.items[0].detail == "no answer letter found"


def test_strip_think_variants():
    assert strip_think("<think>a</think>b") == "b"
    assert strip_think("x<think>unfinished") == "x"
    assert strip_think("reasoning without opening tag</think>answer") == "answer"


def test_extract_json_prefers_fenced_and_skips_broken_candidates():
    value, where = extract_json('{broken\n```json\n{"a": 1}\n```')
    assert (value, where) == ({"a": 1}, "fenced")
    value, where = extract_json('The plan: {"a": [1, 2]} as asked.')
    assert (value, where) == ({"a": [1, 2]}, "bare")
    # a fragment inside broken JSON is not taken for the answer
    assert extract_json('{"goal": "kitchen", "steps": [{"action": "wait"}],,') == (None, "")
    assert extract_json("no json here") == (None, "")


def test_extract_choice_does_not_mistake_an_article_for_a_letter():
    assert extract_choice("The answer is a tricky one; answer: C", list("ABCD"))[0] == "C"
    assert extract_choice("I cannot tell.", list("ABCD"))[0] is None


def test_count_words_counts_numbers_and_contractions():
    assert count_words("I'm at 64 percent, well-charged.") == 5
