"""Memory held back for ROS 2 / Nav2: peak of live use over a window, grown, plus a margin."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Iterable, List, Tuple

from .ros_process_match import ProcessPatterns, RosProcessIdentity
from ..units import GIB


class InvalidRosReserveSettings(ValueError):
    """A ROS reserve setting is out of range; the message names the setting and the value."""


@dataclass(frozen=True)
class RosReserveSettings:
    """How the ROS reserve is derived from live readings (bytes and seconds)."""

    # Held back even when no ROS process runs yet: Nav2 may start after the benchmark.
    floor_bytes: int = 15 * GIB
    # Costmaps and planners grow and shrink; the reserve follows the highest recent use.
    window_s: float = 300.0
    growth_factor: float = 1.2
    margin_bytes: int = 1 * GIB
    # Regular expressions searched in the command line, executable and node name.
    include_patterns: Tuple[str, ...] = ()
    exclude_patterns: Tuple[str, ...] = ()
    top_count: int = 10  # consumers listed in a reading's `top`

    def __post_init__(self) -> None:
        _require_int('floor_bytes', self.floor_bytes, minimum=0)
        _require_int('margin_bytes', self.margin_bytes, minimum=0)
        _require_int('top_count', self.top_count, minimum=0)
        _require_number('window_s', self.window_s, minimum=0.0)
        _require_number('growth_factor', self.growth_factor, minimum=1.0)
        try:
            patterns = ProcessPatterns(
                include=tuple(_pattern_list('include_patterns', self.include_patterns)),
                exclude=tuple(_pattern_list('exclude_patterns', self.exclude_patterns)))
        except ValueError as error:
            raise InvalidRosReserveSettings(str(error)) from None
        object.__setattr__(self, 'include_patterns', patterns.include)
        object.__setattr__(self, 'exclude_patterns', patterns.exclude)

    @property
    def patterns(self) -> ProcessPatterns:
        """Include and exclude patterns for process discovery."""
        return ProcessPatterns(include=self.include_patterns, exclude=self.exclude_patterns)


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRosReserveSettings(f'{name} must be a whole number, got {value!r}')
    if value < minimum:
        raise InvalidRosReserveSettings(f'{name} must be at least {minimum}, got {value}')


def _require_number(name: str, value: object, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRosReserveSettings(f'{name} must be a number, got {value!r}')
    if not math.isfinite(value) or value < minimum:
        raise InvalidRosReserveSettings(
            f'{name} must be a finite number of at least {minimum}, got {value}')


def _pattern_list(name: str, value: object) -> Iterable[str]:
    if isinstance(value, str):
        raise InvalidRosReserveSettings(
            f'{name} must be a list of patterns, not the string {value!r}')
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidRosReserveSettings(
            f'{name} must be a list of patterns, got {value!r}') from None


def ros_reserve_bytes(peak_live_bytes: int, settings: RosReserveSettings) -> int:
    """Reserve = max(floor, peak live × growth) + margin."""
    grown = int(math.ceil(max(0, peak_live_bytes) * settings.growth_factor))
    return max(settings.floor_bytes, grown) + settings.margin_bytes


class PeakWindow:
    """Highest value seen over the last `window_s` seconds (the newest value always counts)."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        # Kept decreasing in value, so the front is the peak (monotonic queue).
        self._entries: Deque[Tuple[float, int]] = deque()

    def add(self, stamp_s: float, value: int) -> int:
        """Record a value and return the peak over the window ending at `stamp_s`."""
        if self._entries and stamp_s < self._entries[-1][0]:
            # The clock stepped back: keep what was seen, for one full window from now.
            self._entries = deque((stamp_s, value_seen) for _, value_seen in self._entries)
        while self._entries and self._entries[-1][1] <= value:
            self._entries.pop()
        self._entries.append((stamp_s, value))
        while self._entries[0][0] < stamp_s - self._window_s:
            self._entries.popleft()
        return self._entries[0][1]

    def peak(self) -> int:
        """Peak over the window ending at the newest value; 0 before any value."""
        return self._entries[0][1] if self._entries else 0


@dataclass(frozen=True)
class RosProcessMemory:
    """One ROS process and the memory it holds."""

    pid: int
    identity: RosProcessIdentity
    memory_bytes: int
    proportional: bool  # True: PSS (shared pages split between sharers); False: RSS

    @property
    def group_name(self) -> str:
        """Node (or launch, daemon, ...) the memory is reported under."""
        return self.identity.group_name


def top_consumers(
    processes: Iterable[RosProcessMemory], count: int
) -> List[Tuple[str, int]]:
    """Memory summed per node (containers under their own name), largest first."""
    totals: Dict[str, int] = {}
    for process in processes:
        name = process.group_name
        if process.identity.loaded_nodes:
            name += ' [' + ', '.join(process.identity.loaded_nodes) + ']'
        totals[name] = totals.get(name, 0) + process.memory_bytes
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:count]
