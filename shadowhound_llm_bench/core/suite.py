"""Task suites as data: YAML files of prompts, each with the scoring rules it is judged by."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from .json_schema import SchemaError, check_schema

TASK_KINDS = ("instruction", "json", "multiple_choice")
CHECK_TYPES = (
    "word_count", "includes_all", "includes_none", "regex", "json_found", "json_schema",
    "json_equals", "choice", "not_truncated",
)
SUITES_ENV = "SHADOWHOUND_LLM_BENCH_SUITES"
DEFAULT_SUITE = "robot_mission"


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


def _parse_check(raw: Any, where: str) -> Check:
    if not isinstance(raw, Mapping):
        raise SuiteError(f"{where}: a check must be a mapping with 'type' and 'points'")
    params = dict(raw)
    kind = params.pop("type", None)
    if kind not in CHECK_TYPES:
        raise SuiteError(f"{where}: unknown check type {kind!r} (known: {', '.join(CHECK_TYPES)})")
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
    return Check(type=kind, points=float(points), params=params)


def _parse_task(raw: Any, index: int) -> Task:
    where = f"task #{index + 1}"
    if not isinstance(raw, Mapping):
        raise SuiteError(f"{where}: a task must be a mapping")
    task_id = raw.get("id")
    if not isinstance(task_id, str) or not task_id.strip():
        raise SuiteError(f"{where}: needs a string 'id'")
    where = f"task {task_id!r}"
    kind = raw.get("kind")
    if kind not in TASK_KINDS:
        raise SuiteError(f"{where}: 'kind' must be one of {', '.join(TASK_KINDS)}")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise SuiteError(f"{where}: needs a non-empty 'prompt'")
    raw_checks = raw.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise SuiteError(f"{where}: needs a non-empty list of 'checks'")
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
            raise SuiteError(f"{where}: 'answer' {answer!r} is not one of the choices")
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
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{source or 'suite'}: needs a 'name'")
    raw_tasks = data.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise SuiteError(f"{source or name}: needs a non-empty list of 'tasks'")
    tasks = [_parse_task(t, i) for i, t in enumerate(raw_tasks)]
    ids = [t.id for t in tasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SuiteError(f"{source or name}: duplicate task ids {duplicates}")
    return Suite(name=name, tasks=tasks, description=str(data.get("description") or ""),
                 source=source)


def suite_dirs() -> List[Path]:
    """Where suite names are looked up: $SHADOWHOUND_LLM_BENCH_SUITES, the source tree, share/."""
    dirs: List[Path] = []
    env = os.environ.get(SUITES_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    here = Path(__file__).resolve()
    dirs.append(here.parents[2] / "config" / "suites")  # source tree
    share = Path("share") / "shadowhound_llm_bench" / "config" / "suites"
    if len(here.parents) > 5:
        dirs.append(here.parents[5] / share)  # <prefix>/lib/pythonX.Y/site-packages/<pkg>/core
    dirs.append(Path(sys.prefix) / share)
    return dirs


def load_suite(name_or_path: str = DEFAULT_SUITE, *,
               search_dirs: Optional[Sequence[Path]] = None) -> Suite:
    """Load a suite by name (looked up in the suite directories) or by a path to a YAML file."""
    candidate = Path(name_or_path)
    paths: List[Path] = []
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        paths.append(candidate)
    else:
        if not name_or_path.replace("_", "").replace("-", "").isalnum():
            raise SuiteError(f"suite name {name_or_path!r} may hold letters, digits, '-', '_'")
        for folder in (search_dirs if search_dirs is not None else suite_dirs()):
            paths += [folder / f"{name_or_path}.yaml", folder / f"{name_or_path}.yml"]
    for path in paths:
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise SuiteError(f"{path}: not valid YAML: {exc}") from exc
            return parse_suite(data, source=str(path))
    looked = ", ".join(str(p) for p in paths) or name_or_path
    raise SuiteError(f"suite {name_or_path!r} not found (looked at {looked})")
