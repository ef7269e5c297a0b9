"""Deterministic answers that differ by model and task, so quality scoring has work to do."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import List

from .catalog import ModelSpec
from .tasks import INSTRUCTION, NAV_PLAN_JSON, SPATIAL_MCQ, TaskGuess

_PLACES = ['hallway', 'living_room', 'door', 'corridor']
_THOUGHTS = [
    'Let me restate what is asked.', 'The robot starts at a known pose.',
    'I should keep the answer in the requested format.', 'Check each constraint in turn.',
    'Turning right from north gives east; turning around from east gives west.',
    'The plan needs a goal, ordered steps and a safe speed.', 'Wait, let me verify that.',
    'A short answer is better for an operator.', 'Consider the hallway as a waypoint.',
    'Numbers must be reported exactly.', 'That seems consistent.', 'Okay, so the answer is clear.',
]
_TOKEN_RE = re.compile(r'\S+\s*|\s+')


@dataclass(frozen=True)
class Answer:
    """A model's output: optional reasoning (for <think>) and the answer proper."""

    thinking: str
    content: str


def tokens(text: str) -> List[str]:
    """Return the pieces the simulator streams and counts as tokens."""
    return _TOKEN_RE.findall(text)


def _rng(spec: ModelSpec, prompt: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f'{spec.name}\0{seed}\0{prompt}'.encode()).digest()
    return random.Random(int.from_bytes(digest[:8], 'big'))


def _nav_plan(spec: ModelSpec, guess: TaskGuess, rng: random.Random) -> str:
    goal = guess.goal or 'kitchen'
    via = rng.choice(_PLACES)
    plan = {
        'goal': goal,
        'steps': [{'action': 'navigate', 'target': via},
                  {'action': 'navigate', 'target': goal},
                  {'action': 'report', 'target': 'operator'}],
        'max_speed_mps': rng.choice([0.5, 0.6, 0.8]),
    }
    style = spec.json_style
    if style == 'fenced':
        return 'Here is the plan:\n```json\n' + json.dumps(plan, indent=2) + '\n```'
    if style == 'broken':
        text = json.dumps(plan, indent=2)
        return text.replace('"operator"}', '"operator"},', 1).rstrip('}') + ','
    if style == 'invalid_schema':
        plan.pop('max_speed_mps')
        plan['steps'] = [{'move': step['target']} for step in plan['steps']]
        return json.dumps(plan)
    if style == 'prose':
        return f'First go to the {via}, then to the {goal}, and tell the operator you arrived.'
    return json.dumps(plan)


def _mcq(spec: ModelSpec, guess: TaskGuess, rng: random.Random) -> str:
    choices = list(guess.choices) or ['A', 'B', 'C', 'D']
    right = guess.answer if guess.answer in choices else choices[0]
    if spec.mcq_correct:
        letter = right
    else:
        letter = rng.choice([c for c in choices if c != right] or choices)
    return f'Answer: {letter}'


def _instruction(spec: ModelSpec, guess: TaskGuess, rng: random.Random) -> str:
    if guess.answer and not guess.terms and guess.source == 'keywords':
        return guess.answer if spec.instruction_style == 'good' else f'Sure! {guess.answer}.'
    terms = list(guess.terms)
    if spec.instruction_style == 'chatty':
        listed = '\n'.join(f'- {t}' for t in terms[:1]) or '- done'
        return ('- Status update\n' + listed + '\n- I am a helpful assistant and I will always do '
                'my best to answer every question you ask in as much detail as possible. '
                'Let me know if there is anything else!')
    if not terms:
        words = (rng.choice(['Understood.', 'Okay.', 'Done.']) + ' I have noted the request and '
                 'will carry it out now, then report back to the operator when it is done.'
                 ).split()
    else:
        opener = rng.choice(['Operator, I have', 'I have', 'Update: I have'])
        rest = terms[1] if len(terms) > 1 else 'a safe level of'
        words = (f'{opener} reached the {terms[0]}. The battery is at {rest} percent, and I am '
                 'now waiting here for your next order.').split()
    low = guess.min_words or 0
    while low and len(words) < low:
        words.append('standing by.')
    if guess.max_words and len(words) > guess.max_words:
        words = words[:guess.max_words]
    return ' '.join(words)


def _reasoning(spec: ModelSpec, rng: random.Random) -> str:
    words: List[str] = []
    while len(words) < spec.think_words:
        words.extend(rng.choice(_THOUGHTS).split())
    return ' '.join(words[:spec.think_words])


def answer(spec: ModelSpec, guess: TaskGuess, prompt: str, seed: int) -> Answer:
    """Return the deterministic answer of spec to prompt (same seed, same text)."""
    rng = _rng(spec, prompt, seed)
    if guess.kind == NAV_PLAN_JSON:
        content = _nav_plan(spec, guess, rng)
    elif guess.kind == SPATIAL_MCQ:
        content = _mcq(spec, guess, rng)
    elif guess.kind == INSTRUCTION:
        content = _instruction(spec, guess, rng)
    else:
        content = 'OK.'
    thinking = _reasoning(spec, rng) if spec.thinking else ''
    return Answer(thinking=thinking, content=content)


def inline_text(result: Answer) -> str:
    """Return the text a thinking model writes without the think option (<think> first)."""
    if not result.thinking:
        return result.content
    return f'<think>\n{result.thinking}\n</think>\n\n{result.content}'
