"""
Text from outside made inert, one layer per output kind: messages, Markdown, CSV, TTYs, charts.

Outside means whatever someone else wrote: a model's answer, a server's reply, a goal, a history
database, an imported run folder (results.json, tests.jsonl), a suite or a params file.
"""

from __future__ import annotations

import re
from typing import Iterable, List

# ANSI / VT escape sequences (CSI, OSC, and two-byte ESC sequences) and every control character
# except the ones a caller keeps on purpose: a terminal or a table must never act on them.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
# A spreadsheet evaluates a cell that starts with one of these as a formula (OWASP CSV injection).
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE_LIMIT_CHARS = 80
CELL_LIMIT_CHARS = 2000
TERMINAL_LIMIT_CHARS = 4000
LABEL_LIMIT_CHARS = 60
# A whole table line (many runs side by side): only an absurd one is cut.
TEXT_LINE_LIMIT_CHARS = 100_000


def printable(text: object) -> str:
    """Drop escape sequences and every non-printable character; tabs and breaks become spaces."""
    value = _ANSI_ESCAPE.sub("", str(text))
    value = _LINE_BREAKS.sub(" ", value)
    value = _CONTROL.sub("", value)
    if value.isprintable():
        return value
    # Format, private-use, surrogate and unassigned code points: nothing a reader needs.
    return "".join(ch for ch in value if ch.isprintable())


def shortened(text: str, limit_chars: int) -> str:
    """Cut a text to at most limit_chars, saying how much was left out."""
    if len(text) <= limit_chars:
        return text
    rest = len(text) - limit_chars
    return f"{text[:limit_chars]}... ({rest} more characters)"


def quoted(value: object, limit_chars: int = QUOTE_LIMIT_CHARS) -> str:
    """Quote an input value inside an error message: repr-escaped, bounded, one line."""
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit_chars]
    more = f"... ({len(text) - limit_chars} more characters)" if len(text) > limit_chars else ""
    return (repr(cut) if isinstance(value, str) else printable(cut)) + more


def markdown_cell(text: object, limit_chars: int = CELL_LIMIT_CHARS) -> str:
    """Text for a Markdown table cell or list item: one line, no HTML, no table breaks."""
    value = shortened(printable(text), limit_chars)
    value = value.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return value.replace("<", "&lt;").replace(">", "&gt;")


def csv_cell(text: object, limit_chars: int = CELL_LIMIT_CHARS) -> str:
    """Text for a CSV cell that no spreadsheet runs as a formula."""
    raw = str(text)
    if raw.startswith(CSV_FORMULA_STARTS):
        raw = "'" + raw
    value = shortened(printable(raw), limit_chars)
    return "'" + value if value.startswith(CSV_FORMULA_STARTS) else value


def terminal_line(text: object, limit_chars: int = TERMINAL_LIMIT_CHARS) -> str:
    """One line that a terminal prints as text: no escapes, no control characters."""
    return shortened(printable(text), limit_chars)


def csv_value(value: object, limit_chars: int = CELL_LIMIT_CHARS) -> object:
    """Return a CSV cell: text made inert by csv_cell; numbers, booleans, None kept as is."""
    return csv_cell(value, limit_chars) if isinstance(value, str) else value


def csv_row(values: Iterable[object]) -> List[object]:
    """Return a CSV row with every text cell inert (no formula, no control byte, bounded)."""
    return [csv_value(value) for value in values]


def terminal_text(text: object, limit_chars: int = TEXT_LINE_LIMIT_CHARS) -> str:
    """Return lines a terminal prints as text: each inert and bounded, the breaks kept."""
    return "\n".join(terminal_line(part, limit_chars) for part in str(text).split("\n"))


def plot_label(text: object, limit_chars: int = LABEL_LIMIT_CHARS) -> str:
    """Return a chart label: one bounded line, no mathtext (a `$` is drawn as a `$`)."""
    return shortened(printable(text), limit_chars).replace("$", r"\$")
