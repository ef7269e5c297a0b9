"""Task suites as data: YAML files of prompts, each with the scoring rules it is judged by."""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ...common.bounded_yaml import BoundedYamlError, read_yaml_file
from ..settings.json_schema import SchemaError, check_schema
from ..settings.path_rules import (PathRefused, allowed_suite_path, looks_like_path,
                                   suite_name_error)

TASK_KINDS = ("instruction", "json", "multiple_choice")
CHECK_TYPES = (
    "word_count", "includes_all", "includes_none", "regex", "json_found", "json_schema",
    "json_equals", "choice", "not_truncated",
)
SUITE_KEYS = ("name", "description", "tasks", "source")
TASK_KEYS = ("id", "kind", "prompt", "checks", "system", "schema", "choices", "answer",
             "description")
# The settings each check type reads besides 'type' and 'points' (see core/runs/scoring.py).
CHECK_KEYS: Dict[str, tuple] = {
    "word_count": ("min", "max"),
    "includes_all": ("terms", "case_sensitive"),
    "includes_none": ("terms", "case_sensitive"),
    "regex": ("pattern", "multiline", "case_sensitive", "description"),
    "json_found": (),
    "json_schema": (),
    "json_equals": ("path", "value", "case_sensitive"),
    "choice": (),
    "not_truncated": (),
}
SUITES_ENV = "SHADOWHOUND_LLM_BENCH_SUITES"
DEFAULT_SUITE = "robot_mission"
# Bounds of a suite (a file is at most bounded_yaml.MAX_YAML_FILE_BYTES): what a run may be asked
# to send and score. Error messages name the place and the rule, never a value from the file.
MAX_TASKS = 200
MAX_CHECKS_PER_TASK = 50
MAX_TEXT_CHARS = 65536
MAX_ID_CHARS = 64


class SuiteError(ValueError):
    """A suite file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Check:
    """One scoring rule of a task and the points it is worth."""

    type: str
    points: float
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One prompt of a suite with its scoring."""

    id: str
    kind: str
    prompt: str
    checks: List[Check]
    system: str = ""
    schema: Optional[Dict[str, Any]] = None
    choices: Dict[str, str] = field(default_factory=dict)
    answer: str = ""
    description: str = ""

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)

    def render_prompt(self) -> str:
        """Return the text sent: the prompt, plus lettered choices for a choice task."""
        if not self.choices:
            return self.prompt
        lines = [self.prompt.rstrip(), ""]
        lines += [f"{letter}) {text}" for letter, text in self.choices.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Suite:
    """A named list of tasks."""

    name: str
    tasks: List[Task]
    description: str = ""
    source: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "source": self.source,
            "tasks": [task_to_dict(t) for t in self.tasks],
        }


def task_to_dict(task: Task) -> Dict[str, Any]:
    data: Dict[str, Any] = {"id": task.id, "kind": task.kind, "prompt": task.prompt,
                            "checks": [dict(type=c.type, points=c.points, **c.params)
                                       for c in task.checks]}
    if task.system:
        data["system"] = task.system
    if task.description:
        data["description"] = task.description
    if task.schema is not None:
        data["schema"] = task.schema
    if task.choices:
        data["choices"] = dict(task.choices)
        data["answer"] = task.answer
    return data


def _type_name(value: Any) -> str:
    return type(value).__name__


def _refuse_unknown_keys(raw: Mapping, known: Sequence[str], where: str) -> None:
    for position, key in enumerate(raw, start=1):
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuiteError(f"{where}: unknown key #{position}{hint}; known: "
                             f"{', '.join(known)}")


def _check_text(value: Any, name: str, where: str) -> None:
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise SuiteError(f"{where}: '{name}' is longer than {MAX_TEXT_CHARS} characters")


def _check_params(kind: str, params: Mapping[str, Any], where: str) -> None:
    """Refuse settings of the wrong type, naming the key."""
    for key in ("min", "max"):
        value = params.get(key)
        if key in params and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
            raise SuiteError(f"{where}: {kind} '{key}' must be a whole number >= 0, "
                             f"got a {_type_name(value)}")
    if "min" in params and "max" in params and params["min"] > params["max"]:
        raise SuiteError(f"{where}: {kind} 'min' is above 'max'")
    for key in ("case_sensitive", "multiline"):
        if key in params and not isinstance(params[key], bool):
            raise SuiteError(f"{where}: {kind} '{key}' must be true or false, "
                             f"got a {_type_name(params[key])}")
    for key in ("description", "path"):
        if key in params and not isinstance(params[key], str):
            raise SuiteError(f"{where}: {kind} '{key}' must be a string, "
                             f"got a {_type_name(params[key])}")
        _check_text(params.get(key), key, where)
    if kind == "regex" and isinstance(params.get("pattern"), str):
        _check_text(params["pattern"], "pattern", where)
        try:
            re.compile(params["pattern"])
        except (re.error, RecursionError, OverflowError) as exc:
            # re.error says the rule and the position, never the pattern itself.
            reason = getattr(exc, "msg", None) or "too complex"
            position = getattr(exc, "pos", None)
            at = f" at position {position}" if position is not None else ""
            raise SuiteError(f"{where}: regex 'pattern' does not compile: {reason}{at}") \
                from None
    terms = params.get("terms")
    if isinstance(terms, list):
        if len(terms) > MAX_CHECKS_PER_TASK * 20:
            raise SuiteError(f"{where}: {kind} has more than {MAX_CHECKS_PER_TASK * 20} terms")
        for term in terms:
            _check_text(term, "terms", where)


def _parse_check(raw: Any, where: str) -> Check:
    if not isinstance(raw, Mapping):
        raise SuiteError(f"{where}: a check must be a mapping with 'type' and 'points'")
    params = dict(raw)
    kind = params.pop("type", None)
    if kind not in CHECK_TYPES:
        raise SuiteError(f"{where}: unknown check type (known: {', '.join(CHECK_TYPES)})")
    _refuse_unknown_keys(raw, ("type", "points") + CHECK_KEYS[kind], f"{where} ({kind})")
    points = params.pop("points", None)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise SuiteError(f"{where}: check {kind!r} needs positive 'points'")
    if kind == "word_count" and "min" not in params and "max" not in params:
        raise SuiteError(f"{where}: word_count needs 'min' and/or 'max'")
    if kind in ("includes_all", "includes_none"):
        terms = params.get("terms")
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
            raise SuiteError(f"{where}: {kind} needs a non-empty list of 'terms'")
    if kind == "regex" and not isinstance(params.get("pattern"), str):
        raise SuiteError(f"{where}: regex needs a 'pattern'")
    if kind == "json_equals" and ("path" not in params or "value" not in params):
        raise SuiteError(f"{where}: json_equals needs 'path' and 'value'")
    _check_params(kind, params, where)
    return Check(type=kind, points=float(points), params=params)


def _parse_task(raw: Any, index: int, source: str = "") -> Task:
    prefix = f"{source}: " if source else ""
    where = f"{prefix}task #{index + 1}"
    if not isinstance(raw, Mapping):
        raise SuiteError(f"{where}: a task must be a mapping")
    task_id = raw.get("id")
    if not isinstance(task_id, str) or not task_id.strip():
        raise SuiteError(f"{where}: needs a string 'id'")
    if len(task_id) > MAX_ID_CHARS:
        raise SuiteError(f"{where}: 'id' is longer than {MAX_ID_CHARS} characters")
    _refuse_unknown_keys(raw, TASK_KEYS, where)
    kind = raw.get("kind")
    if kind not in TASK_KINDS:
        raise SuiteError(f"{where}: 'kind' must be one of {', '.join(TASK_KINDS)}")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise SuiteError(f"{where}: needs a non-empty 'prompt'")
    _check_text(prompt, "prompt", where)
    for key in ("system", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise SuiteError(f"{where}: '{key}' must be a string, got a {_type_name(raw[key])}")
        _check_text(raw.get(key), key, where)
    raw_checks = raw.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise SuiteError(f"{where}: needs a non-empty list of 'checks'")
    if len(raw_checks) > MAX_CHECKS_PER_TASK:
        raise SuiteError(f"{where}: more than {MAX_CHECKS_PER_TASK} checks")
    checks = [_parse_check(c, f"{where} check #{i + 1}") for i, c in enumerate(raw_checks)]
    types = {c.type for c in checks}
    schema = raw.get("schema")
    if "json_schema" in types and schema is None:
        raise SuiteError(f"{where}: a json_schema check needs the task's 'schema'")
    if schema is not None:
        try:
            check_schema(schema)
        except SchemaError as exc:
            raise SuiteError(f"{where}: {exc}") from exc
    choices = raw.get("choices") or {}
    answer = str(raw.get("answer") or "")
    if kind == "multiple_choice" or "choice" in types:
        if not isinstance(choices, Mapping) or len(choices) < 2:
            raise SuiteError(f"{where}: needs at least two 'choices' (letter: text)")
        if not all(isinstance(k, str) and len(k) == 1 and k.isalpha() and k.isupper()
                   for k in choices):
            raise SuiteError(f"{where}: choice keys must be single capital letters")
        if answer not in choices:
            raise SuiteError(f"{where}: 'answer' is not one of the choice letters")
        for text in choices.values():
            _check_text(text, "choices", where)
    elif not isinstance(choices, Mapping):
        raise SuiteError(f"{where}: 'choices' must be a mapping (letter: text)")
    return Task(
        id=task_id, kind=kind, prompt=prompt, checks=checks,
        system=str(raw.get("system") or ""), schema=schema,
        choices={str(k): str(v) for k, v in dict(choices).items()}, answer=answer,
        description=str(raw.get("description") or ""),
    )


def parse_suite(data: Any, *, source: str = "") -> Suite:
    """Build a suite from parsed YAML/JSON data; raises SuiteError with the reason."""
    if not isinstance(data, Mapping):
        raise SuiteError(f"{source or 'suite'}: top level must be a mapping")
    _refuse_unknown_keys(data, SUITE_KEYS, source or "suite")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{source or 'suite'}: needs a 'name'")
    if data.get("description") is not None and not isinstance(data["description"], str):
        raise SuiteError(f"{source or 'suite'}: 'description' must be a string")
    where = source or "suite"
    if len(name) > MAX_ID_CHARS:
        raise SuiteError(f"{where}: 'name' is longer than {MAX_ID_CHARS} characters")
    _check_text(data.get("description"), "description", where)
    raw_tasks = data.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise SuiteError(f"{where}: needs a non-empty list of 'tasks'")
    if len(raw_tasks) > MAX_TASKS:
        raise SuiteError(f"{where}: more than {MAX_TASKS} tasks")
    tasks = [_parse_task(t, i, source) for i, t in enumerate(raw_tasks)]
    seen: Dict[str, int] = {}
    for position, task in enumerate(tasks, start=1):
        if task.id in seen:
            raise SuiteError(f"{where}: tasks #{seen[task.id]} and #{position} have the same id")
        seen[task.id] = position
    return Suite(name=name, tasks=tasks, description=str(data.get("description") or ""),
                 source=source)


def suite_dirs() -> List[Path]:
    """Where suite names are looked up: $SHADOWHOUND_LLM_BENCH_SUITES, the source tree, share/."""
    dirs: List[Path] = []
    env = os.environ.get(SUITES_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    package = Path(__file__).resolve().parents[2]  # <pkg>/core/runs/suite.py
    dirs.append(package.parent / "config" / "suites")  # source tree
    share = Path("share") / "shadowhound_llm_bench" / "config" / "suites"
    if len(package.parents) > 3:
        dirs.append(package.parents[3] / share)  # <prefix>/lib/pythonX.Y/site-packages/<pkg>
    dirs.append(Path(sys.prefix) / share)
    return dirs


def load_suite(name_or_path: str = DEFAULT_SUITE, *,
               search_dirs: Optional[Sequence[Path]] = None,
               allowed_path_dirs: Optional[Sequence[object]] = None) -> Suite:
    """
    Load a suite by name (looked up in the suite directories) or by a path to a YAML file.

    allowed_path_dirs None accepts any path (the operator's own CLI); a list, even an empty
    one, accepts a path only inside those folders (what a goal or a node parameter names).
    """
    paths: List[Path] = []
    if looks_like_path(name_or_path):
        if allowed_path_dirs is not None:
            try:
                paths.append(allowed_suite_path(name_or_path, allowed_path_dirs))
            except PathRefused as exc:
                raise SuiteError(str(exc)) from None
        else:
            paths.append(Path(name_or_path))
    else:
        error = suite_name_error(name_or_path)
        if error:
            raise SuiteError(error)
        for folder in (search_dirs if search_dirs is not None else suite_dirs()):
            paths += [Path(folder) / f"{name_or_path}.yaml", Path(folder) / f"{name_or_path}.yml"]
    for path in paths:
        if path.is_file():
            try:
                data = read_yaml_file(path)
            except BoundedYamlError as exc:
                raise SuiteError(f"{path}: {exc}") from None
            return parse_suite(data, source=str(path))
    looked = ", ".join(str(p) for p in paths) or name_or_path
    raise SuiteError(f"suite {name_or_path!r} not found (looked at {looked})")
