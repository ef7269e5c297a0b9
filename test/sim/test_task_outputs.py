"""Answers differ by model and task in ways the suite's scoring can see."""

import json
import os

import pytest
import yaml

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.scenario import REPO_ROOT
from shadowhound_llm_bench.sim.tasks import (NAV_PLAN_JSON, SPATIAL_MCQ, SuiteKnowledge,
                                             recognise_task)
from shadowhound_llm_bench.sim.textgen import answer

CATALOG = builtin_catalog()


def _suite_prompts():
    path = os.path.join(REPO_ROOT, 'config', 'suites', 'robot_mission.yaml')
    if not os.path.exists(path):
        pytest.skip('no robot_mission suite')
    with open(path, encoding='utf-8') as handle:
        tasks = yaml.safe_load(handle)['tasks']
    return {t['kind']: t for t in tasks}


def test_keyword_rules_without_a_suite():
    assert recognise_task('Give the plan as JSON').kind == NAV_PLAN_JSON
    guess = recognise_task('Where is it?\nA) left\nB) right\nC) ahead')
    assert guess.kind == SPATIAL_MCQ and guess.choices == ('A', 'B', 'C')
    assert recognise_task('Reply with exactly the word READY').answer == 'READY'


def test_json_plan_is_valid_for_good_models_and_broken_for_weak_ones():
    task = _suite_prompts()['json']
    guess = recognise_task(task['prompt'], SuiteKnowledge())
    good = json.loads(answer(CATALOG['phi4:14b'], guess, task['prompt'], 0).content)
    assert good['goal'] == 'kitchen' and 0.1 <= good['max_speed_mps'] <= 1.5
    with pytest.raises(ValueError):
        json.loads(answer(CATALOG['deepseek-r1:7b'], guess, task['prompt'], 0).content)
    fenced = answer(CATALOG['qwen2.5-coder:32b'], guess, task['prompt'], 0).content
    assert fenced.count('```') == 2


def test_multiple_choice_is_right_for_some_models_and_wrong_for_others():
    task = _suite_prompts()['multiple_choice']
    prompt = task['prompt'] + '\n' + '\n'.join(f'{k}) {v}' for k, v in task['choices'].items())
    guess = recognise_task(prompt, SuiteKnowledge())
    right = 'Answer: ' + task['answer']
    assert answer(CATALOG['llama3.3:70b'], guess, prompt, 0).content == right
    assert answer(CATALOG['llama3.1:8b'], guess, prompt, 0).content != right


def test_instruction_answer_follows_the_format_rules_for_good_models():
    task = _suite_prompts()['instruction']
    guess = recognise_task(task['prompt'], SuiteKnowledge())
    text = answer(CATALOG['phi4:14b'], guess, task['prompt'], 0).content
    assert 20 <= len(text.split()) <= 50 and 'kitchen' in text and '64' in text
    chatty = answer(CATALOG['qwen2.5:0.5b'], guess, task['prompt'], 0).content
    assert chatty.startswith('- ')
