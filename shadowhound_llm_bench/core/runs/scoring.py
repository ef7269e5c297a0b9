"""Quality scoring 0-100: each check of a task earns its points, with the rule written out."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..settings.json_schema import validate
from .suite import Check, Task

_THINK_BLOCK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n(.*?)```", re.DOTALL)
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class ScoreItem:
    """One rule, whether it passed, and what it earned."""

    rule: str
    passed: bool
    points: float
    max_points: float
    detail: str = ""


@dataclass(frozen=True)
class Score:
    """A task's score: percent = earned / possible * 100."""

    percent: float
    points: float
    max_points: float
    items: List[ScoreItem] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def strip_think(text: str) -> str:
    """Remove <think> blocks; an unclosed block (a cut-off thought) removes everything after it."""
    text = _THINK_BLOCK.sub("", text)
    match = _THINK_OPEN.search(text)
    if match:
        text = text[:match.start()]
    # A reply that starts mid-thought (template opened the block) ends it with a bare </think>.
    closing = text.lower().rfind("</think>")
    if closing >= 0:
        text = text[closing + len("</think>"):]
    return text.strip()


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def extract_json(text: str) -> Tuple[Optional[Any], str]:
    """Find the first JSON object or array, fenced or else bare; return (value, where)."""
    for match in _FENCE.finditer(text):
        try:
            value = json.loads(match.group(2))
        except (ValueError, RecursionError):  # deeply nested model output is not JSON to us
            continue
        if isinstance(value, (dict, list)):
            return value, "fenced"
    # Bare JSON: only the outermost value counts, so a fragment inside broken JSON is not "found".
    decoder = json.JSONDecoder()
    brace, bracket = text.find("{"), text.find("[")
    starts = [i for i in (bracket,) if i >= 0 and (brace < 0 or i < brace)]
    starts += [brace] if brace >= 0 else []
    for index in starts:
        try:
            value, _ = decoder.raw_decode(text, index)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, (dict, list)):
            return value, "bare"
    return None, ""


def _json_at(value: Any, path: str) -> Tuple[bool, Any]:
    """Follow a path such as "steps[0].action" or "goal.room"; (found, value)."""
    current = value
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(current, list) or index >= len(current):
                return False, None
            current = current[index]
        else:
            if not isinstance(current, dict) or part not in current:
                return False, None
            current = current[part]
    return True, current


def extract_choice(text: str, letters: List[str]) -> Tuple[Optional[str], str]:
    """Find the one letter a reply picks; (None, why) when it picks none or several."""
    group = "".join(sorted(letters))
    stated = re.findall(
        rf"(?:final\s+answer|answer|choice|option)\s*(?:is|:|=|-)?\s*[:\-]?\s*"
        rf"[\*\(\[\s]*((?-i:[{group}]))\b(?![\w'])", text, re.IGNORECASE)
    stated = [s for s in stated if s in letters]
    if stated:
        return stated[-1], "stated as the answer"
    alone = re.match(rf"^[\s\*\(\[]*([{group}])\s*[\)\]\.:\*]*(?:\s|$)", text)
    if alone:
        return alone.group(1), "given first"
    marked = set(re.findall(rf"(?:\(([{group}])\)|\*\*([{group}])\*\*)", text))
    flat = {a or b for a, b in marked}
    if len(flat) == 1:
        return flat.pop(), "marked in the text"
    if len(flat) > 1:
        return None, f"several letters marked ({', '.join(sorted(flat))})"
    return None, "no answer letter found"


def describe(check: Check, task: Task) -> str:
    """Write the rule in words, as the report prints it."""
    p = check.params
    if check.type == "word_count":
        if "min" in p and "max" in p:
            return f"answer has {p['min']}-{p['max']} words"
        if "min" in p:
            return f"answer has at least {p['min']} words"
        return f"answer has at most {p['max']} words"
    if check.type == "includes_all":
        return "answer mentions " + ", ".join(repr(t) for t in p["terms"])
    if check.type == "includes_none":
        return "answer avoids " + ", ".join(repr(t) for t in p["terms"])
    if check.type == "regex":
        return str(p.get("description") or f"answer matches /{p['pattern']}/")
    if check.type == "json_found":
        return "a JSON object is present (fenced or bare)"
    if check.type == "json_schema":
        return "the JSON is valid against the task's schema"
    if check.type == "json_equals":
        return f"JSON {p['path']} equals {p['value']!r}"
    if check.type == "choice":
        return f"picks the right choice ({task.answer})"
    if check.type == "not_truncated":
        return "answer finished before the num_predict cap"
    return check.type


def _contains(text: str, term: str, case_sensitive: bool) -> bool:
    if case_sensitive:
        return term in text
    return term.lower() in text.lower()


def score_output(task: Task, raw_text: str, *, truncated: bool = False) -> Score:
    """Score a reply against its task's checks (think blocks stripped first)."""
    text = strip_think(raw_text)
    parsed: Optional[Any] = None
    where = ""
    if any(c.type.startswith("json") for c in task.checks):
        parsed, where = extract_json(text)
    items: List[ScoreItem] = []
    for check in task.checks:
        p = check.params
        case_sensitive = bool(p.get("case_sensitive", False))
        passed = False
        detail = ""
        if check.type == "word_count":
            words = count_words(text)
            passed = p.get("min", 0) <= words <= p.get("max", float("inf"))
            detail = f"{words} words"
        elif check.type == "includes_all":
            missing = [t for t in p["terms"] if not _contains(text, t, case_sensitive)]
            passed = not missing
            detail = f"missing {missing}" if missing else ""
        elif check.type == "includes_none":
            found = [t for t in p["terms"] if _contains(text, t, case_sensitive)]
            passed = not found
            detail = f"found {found}" if found else ""
        elif check.type == "regex":
            flags = 0 if case_sensitive else re.IGNORECASE
            if p.get("multiline"):
                flags |= re.MULTILINE
            passed = re.search(p["pattern"], text, flags) is not None
        elif check.type == "json_found":
            passed = parsed is not None
            detail = f"{where} JSON" if passed else "no parsable JSON"
        elif check.type == "json_schema":
            if parsed is None:
                detail = "no parsable JSON"
            else:
                errors = validate(parsed, task.schema or {})
                passed = not errors
                detail = "; ".join(errors[:3]) + (" ..." if len(errors) > 3 else "")
        elif check.type == "json_equals":
            found, value = _json_at(parsed, p["path"]) if parsed is not None else (False, None)
            expected = p["value"]
            if found and isinstance(value, str) and isinstance(expected, str) \
                    and not case_sensitive:
                passed = value.strip().lower() == expected.strip().lower()
            else:
                passed = found and value == expected
            detail = f"got {value!r}" if found else f"{p['path']} not present"
        elif check.type == "choice":
            picked, why = extract_choice(text, list(task.choices))
            passed = picked == task.answer
            detail = f"picked {picked} ({why})" if picked else why
        elif check.type == "not_truncated":
            passed = not truncated
            detail = "cut off by num_predict" if truncated else ""
        items.append(ScoreItem(rule=describe(check, task), passed=passed,
                               points=check.points if passed else 0.0,
                               max_points=check.points, detail=detail))
    earned = sum(i.points for i in items)
    possible = sum(i.max_points for i in items)
    percent = 100.0 * earned / possible if possible > 0 else 0.0
    return Score(percent=round(percent, 2), points=earned, max_points=possible, items=items,
                 truncated=truncated)
