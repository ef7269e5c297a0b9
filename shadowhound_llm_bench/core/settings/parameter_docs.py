"""The parameters page (docs/parameters.md), rendered from the one parameter table."""

from __future__ import annotations

from typing import Iterable, List

from .parameter_specs import PARAMETER_SPECS, ParamSpec
from .simulation_parameters import GROUP, GROUP_NOTE, RENAMED

TITLE = "# Node parameters"
LEAD = (
    "What this page answers: every parameter of the `llm_bench` node, its default, its allowed "
    "values, what it does, and whether it can change while the node runs. The page is generated "
    "from the node's parameter table (`shadowhound_llm_bench/core/settings/parameter_specs.py`) "
    "by "
    "`python scripts/generate_parameter_docs.py`; a test fails when the two differ. The same "
    "table gives `ros2 param describe /llm_bench NAME` its text and "
    "[config/llm_bench.yaml](../config/llm_bench.yaml) its defaults.")
USAGE = (
    "Pass your own copy of the file with `ros2 launch shadowhound_llm_bench llm_bench.launch.py "
    "params_file:=/path/to/my_llm_bench.yaml`. An invalid value stops the node at start-up with "
    "every reason listed (exit code 2); at run time `ros2 param set` refuses it with the reason. "
    "Parameters marked *restart* are read at start-up only.")


_KIND_WORDS = {bool: "true, false", str: "text", list: "list of text"}


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f"'{item}'" for item in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _allowed_text(spec: ParamSpec) -> str:
    if spec.choices:
        return ", ".join(f"`{choice}`" for choice in spec.choices)
    if spec.minimum is not None or spec.maximum is not None:
        low = "" if spec.minimum is None else f"{spec.minimum:g}"
        high = "" if spec.maximum is None else f"{spec.maximum:g}"
        return f"{low} … {high}"
    return _KIND_WORDS.get(spec.kind, spec.kind.__name__)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _group(name: str) -> str:
    return name.split(".", 1)[0] if "." in name else "general"


def render_parameter_docs(specs: Iterable[ParamSpec] = PARAMETER_SPECS) -> str:
    """Return the whole page: title, lead paragraph, one table per parameter group."""
    lines: List[str] = [TITLE, "", LEAD, "", USAGE]
    current = None
    for spec in specs:
        group = _group(spec.name)
        if group != current:
            current = group
            lines += ["", f"## {group}", ""]
            if group == GROUP:
                lines += [f"{GROUP_NOTE}", ""]
            lines += ["| Parameter | Default | Allowed | Changes | What it does |",
                      "| --- | --- | --- | --- | --- |"]
        changes = "restart" if spec.read_only else "live"
        lines.append(f"| `{spec.name}` | `{_cell(_value_text(spec.default))}` | "
                     f"{_cell(_allowed_text(spec))} | {changes} | {_cell(spec.description)} |")
    lines += ["", "## Former names", "",
              "Still accepted for one release, with a warning naming the new name: change them in "
              "your params files.", "",
              "| Former name | Use instead |", "| --- | --- |"]
    lines += [f"| `{old}` | `{new}` |" for old, new in RENAMED.items()]
    return "\n".join(lines) + "\n"
