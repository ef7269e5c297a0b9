"""
Which task a prompt asks for, and what the suites under config/suites say about it.

Recognition, in this order:
  1. a prompt that contains the prompt text of a task in config/suites/*.yaml takes that task's
     kind, choices, answer and checks (so good models can be right and weak ones wrong);
  2. "(A)" / "A)" / "A:" / "A." option lines -> spatial_mcq (letter answer);
  3. the word "JSON" (any case) -> nav_plan_json;
  4. anything else -> instruction (a short answer).
"""

from __future__ import annotations

import glob
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .scenario import REPO_ROOT

INSTRUCTION = 'instruction'
NAV_PLAN_JSON = 'nav_plan_json'
SPATIAL_MCQ = 'spatial_mcq'

_KIND_ALIASES = {
    'instruction': INSTRUCTION, 'json': NAV_PLAN_JSON, 'nav_plan_json': NAV_PLAN_JSON,
    'multiple_choice': SPATIAL_MCQ, 'spatial_mcq': SPATIAL_MCQ, 'mcq': SPATIAL_MCQ,
}
_OPTION_RE = re.compile(r'(?m)\(([A-F])\)|^\s*([A-F])[\):.]\s+\S')


@dataclass(frozen=True)
class TaskGuess:
    """What the simulator believes the prompt asks for."""

    kind: str
    choices: Tuple[str, ...] = ()
    answer: Optional[str] = None
    terms: Tuple[str, ...] = ()
    min_words: int = 0
    max_words: int = 0
    goal: Optional[str] = None
    source: str = 'keywords'
    extra: Dict[str, Any] = field(default_factory=dict)


def _normalise(text: str) -> str:
    return ' '.join(text.split()).lower()


def _task_from_suite(task: Dict[str, Any]) -> Optional[Tuple[str, TaskGuess]]:
    prompt = task.get('prompt')
    kind = _KIND_ALIASES.get(str(task.get('kind', '')).lower())
    if not isinstance(prompt, str) or not kind:
        return None
    terms: List[str] = []
    min_words = max_words = 0
    goal = None
    for check in task.get('checks', []) or []:
        if not isinstance(check, dict):
            continue
        if check.get('type') in ('includes_all', 'includes_any'):
            terms.extend(str(t) for t in check.get('terms', []) or [])
        if check.get('type') == 'word_count':
            min_words = int(check.get('min', 0) or 0)
            max_words = int(check.get('max', 0) or 0)
        if check.get('type') == 'json_equals' and check.get('path') == 'goal':
            goal = str(check.get('value'))
    choices = tuple(sorted((task.get('choices') or {}).keys()))
    answer = task.get('answer', task.get('expected'))
    guess = TaskGuess(kind=kind, choices=choices, answer=str(answer) if answer else None,
                      terms=tuple(terms), min_words=min_words, max_words=max_words, goal=goal,
                      source='suite:' + str(task.get('id', '?')))
    return _normalise(prompt), guess


class SuiteKnowledge:
    """Tasks read from config/suites/*.yaml, matched by their prompt text."""

    def __init__(self, folder: Optional[str] = None) -> None:
        self._folder = folder or os.path.join(REPO_ROOT, 'config', 'suites')
        self._lock = threading.Lock()
        self._tasks: List[Tuple[str, TaskGuess]] = []
        self._stamp: Tuple[Tuple[str, float], ...] = ()

    def _refresh(self) -> None:
        paths = sorted(glob.glob(os.path.join(self._folder, '*.yaml')))
        stamp = tuple((p, os.path.getmtime(p)) for p in paths if os.path.exists(p))
        if stamp == self._stamp:
            return
        tasks: List[Tuple[str, TaskGuess]] = []
        for path in paths:
            try:
                with open(path, encoding='utf-8') as handle:
                    data = yaml.safe_load(handle) or {}
            except (OSError, yaml.YAMLError):
                continue
            for task in data.get('tasks', []) if isinstance(data, dict) else []:
                entry = _task_from_suite(task) if isinstance(task, dict) else None
                if entry:
                    tasks.append(entry)
        self._tasks, self._stamp = tasks, stamp

    def lookup(self, prompt: str) -> Optional[TaskGuess]:
        """Return the suite task whose prompt the given prompt contains, if any."""
        with self._lock:
            self._refresh()
            tasks = list(self._tasks)
        text = _normalise(prompt)
        for task_prompt, guess in tasks:
            if task_prompt and task_prompt in text:
                return guess
        return None


def recognise_task(prompt: str, knowledge: Optional[SuiteKnowledge] = None) -> TaskGuess:
    """Return the task a prompt asks for (see the module docstring for the rules)."""
    if knowledge is not None:
        known = knowledge.lookup(prompt)
        if known is not None:
            return known
    options = tuple(dict.fromkeys(a or b for a, b in _OPTION_RE.findall(prompt)))
    if len(options) >= 2:
        return TaskGuess(kind=SPATIAL_MCQ, choices=options)
    if 'json' in prompt.lower():
        goal = re.search(r'\bto the ([a-z_]+)', prompt.lower())
        return TaskGuess(kind=NAV_PLAN_JSON, goal=goal.group(1) if goal else None)
    exact = re.search(r'(?i)\b(?:reply|answer|respond) with (?:only |exactly |just )*'
                      r'(?:the word )?["\']?([A-Za-z0-9_-]+)["\']?', prompt)
    terms = tuple(re.findall(r'\b\d+(?:\.\d+)?\b', prompt))
    return TaskGuess(kind=INSTRUCTION, answer=exact.group(1) if exact else None, terms=terms)
