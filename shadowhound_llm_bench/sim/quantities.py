"""Parsing of byte sizes ("9.1GB", "56GiB") and Go durations ("5m", "1h30m", "0")."""

from __future__ import annotations

import re
from typing import Union

_BYTE_UNITS = {
    '': 1, 'b': 1,
    'kb': 1000, 'mb': 1000 ** 2, 'gb': 1000 ** 3, 'tb': 1000 ** 4,
    'kib': 1024, 'mib': 1024 ** 2, 'gib': 1024 ** 3, 'tib': 1024 ** 4,
}
_SIZE_RE = re.compile(r'^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$')

_GO_UNITS = {
    'ns': 1e-9, 'us': 1e-6, 'µs': 1e-6, 'μs': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0,
}
_GO_PART_RE = re.compile(r'([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)')


class QuantityError(ValueError):
    """A size or duration that cannot be parsed."""


def parse_bytes(value: Union[int, float, str]) -> int:
    """Bytes from an int or a string with a unit (GB = 10^9, GiB = 2^30)."""
    if isinstance(value, bool):
        raise QuantityError(f'not a size: {value!r}')
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE_RE.match(str(value))
    if not match or match.group(2).lower() not in _BYTE_UNITS:
        raise QuantityError(f'not a size: {value!r}')
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])


def parse_go_duration(text: str) -> float:
    """Seconds from a Go duration string, with Go's error wording on failure."""
    original = text
    if text in ('0', '+0', '-0'):
        return 0.0
    sign = 1.0
    if text[:1] in '+-' and text:
        sign = -1.0 if text[0] == '-' else 1.0
        text = text[1:]
    if not text:
        raise QuantityError(f'time: invalid duration "{original}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _GO_PART_RE.match(text, pos)
        if not match:
            if re.match(r'[0-9]*\.?[0-9]+$', text[pos:]):
                raise QuantityError(f'time: missing unit in duration "{original}"')
            raise QuantityError(f'time: invalid duration "{original}"')
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Return a Go-style duration string (used in log lines)."""
    if seconds < 0:
        return '-' + format_go_duration(-seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    parts = ''
    if hours:
        parts += f'{hours}h'
    if hours or minutes:
        parts += f'{minutes}m'
    return parts + f'{secs:g}s'
