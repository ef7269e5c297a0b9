"""YAML from files a request may name: size, nesting and aliases bounded; errors never quote it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MAX_YAML_FILE_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 32
_QUOTED_PART = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")


class BoundedYamlError(ValueError):
    """A file is too large, unreadable, not text, not YAML or built beyond the bounds."""


def _limited_loader(*, allow_aliases: bool, max_depth: int) -> type:
    class LimitedLoader(yaml.SafeLoader):
        """SafeLoader that refuses aliases (no billion laughs) and deep nesting (no recursion)."""

        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if not allow_aliases and self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                                  mark)
            self._depth += 1
            try:
                if self._depth > max_depth:
                    raise yaml.composer.ComposerError(
                        None, None, f"nested deeper than {max_depth} levels",
                        self.peek_event().start_mark)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return LimitedLoader


def yaml_error_reason(exc: yaml.YAMLError) -> str:
    """Say where and why YAML failed, without the file's text (PyYAML quotes the line)."""
    mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", "") or "").strip()
    # PyYAML quotes characters and alias names from the file inside `problem`: leave them out.
    problem = " ".join(_QUOTED_PART.sub("", problem).split()) or "invalid syntax"
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return problem


def parse_yaml_text(text: str, *, allow_aliases: bool = False,
                    max_depth: int = MAX_YAML_DEPTH) -> Any:
    """Parse YAML text within the bounds; BoundedYamlError names the rule, never the content."""
    loader = _limited_loader(allow_aliases=allow_aliases, max_depth=max_depth)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise BoundedYamlError(f"not valid YAML at {yaml_error_reason(exc)}") from None
    except RecursionError:
        raise BoundedYamlError(f"nested deeper than {max_depth} levels") from None


def read_yaml_file(path: Path, *, max_bytes: int = MAX_YAML_FILE_BYTES,
                   allow_aliases: bool = False, max_depth: int = MAX_YAML_DEPTH) -> Any:
    """Read and parse a YAML file of at most max_bytes (BoundedYamlError with the rule broken)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise BoundedYamlError(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > max_bytes:
        raise BoundedYamlError(f"is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BoundedYamlError(f"is not UTF-8 text (byte {exc.start})") from None
    return parse_yaml_text(text, allow_aliases=allow_aliases, max_depth=max_depth)
