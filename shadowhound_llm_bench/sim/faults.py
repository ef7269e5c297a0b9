"""
Switchable faults of the simulator and the counters that drive them.

Settings (scenario `faults:` block, `--faults JSON`, or POST /sim/faults at run time):
  crash_on_load: {model or "*": N}   runner exits halfway through loading, N times (-1 = always)
  leak: {model or "*": fraction}     on unload, that fraction of the model's memory stays resident
                                      in the server process until it exits (container restart)
  slow_s: {model or "*": seconds}    wall seconds added before a generate/chat answer
  hang_s: {model or "*": seconds}    no answer for that long (at most 120 s), then the connection
                                      is closed without a reply: a client deadline sees a timeout
  http_500_on_request: [N, ...]      the N-th generate/chat request (1-based) answers HTTP 500
  decode_slowdown: {after_cycles: K, fraction: f}
                                      after K completed unloads decode runs (1 - f) as fast
  cascade_after_oom: N               after an OOM kill during a load, the next N loads die too
  cascade_needs_cached_models: bool  only when other models were still loaded at the OOM
                                      (default true: the seed's "cached state corrupt")
  repeat_limit: {model or "*": N}    the answer stops after N tokens without a final chunk and
                                      without an error, as the real server ends a looping model
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Dict, Mapping, Optional

MAX_HANG_S = 120.0

_KNOWN = {
    'crash_on_load': dict, 'leak': dict, 'slow_s': dict, 'hang_s': dict,
    'http_500_on_request': list, 'decode_slowdown': dict, 'cascade_after_oom': int,
    'cascade_needs_cached_models': bool, 'repeat_limit': dict,
}


class FaultError(ValueError):
    """A fault setting with an unknown name or a wrong type."""


def _per_model(table: Mapping[str, Any], model: str) -> Optional[Any]:
    if model in table:
        return table[model]
    return table.get('*')


class Faults:
    """Thread-safe fault settings plus the counters (requests, cycles, cascades) they use."""

    def __init__(self, settings: Optional[Mapping[str, Any]] = None) -> None:
        self._lock = threading.Lock()
        self._settings: Dict[str, Any] = {'cascade_needs_cached_models': True}
        self._crashes_done: Dict[str, int] = {}
        self.request_count = 0
        self.unload_cycles = 0
        self.cascade_remaining = 0
        self.oom_kills = 0
        if settings:
            self.update(settings)

    def update(self, settings: Mapping[str, Any]) -> None:
        """Merge settings in; {"reset": true} clears every fault first."""
        if not isinstance(settings, Mapping):
            raise FaultError('faults must be a JSON object')
        checked: Dict[str, Any] = {}
        for key, value in settings.items():
            if key == 'reset':
                continue
            if key not in _KNOWN:
                raise FaultError(f'unknown fault {key!r} (known: {", ".join(sorted(_KNOWN))})')
            kind = _KNOWN[key]
            if kind is int and isinstance(value, bool) or not isinstance(value, kind):
                raise FaultError(f'fault {key!r} must be a {kind.__name__}')
            checked[key] = copy.deepcopy(value)
        with self._lock:
            if settings.get('reset'):
                self._settings = {'cascade_needs_cached_models': True}
                self._crashes_done.clear()
                self.cascade_remaining = 0
            self._settings.update(checked)

    def snapshot(self) -> Dict[str, Any]:
        """Return settings and counters, for /sim/state."""
        with self._lock:
            return {
                'settings': copy.deepcopy(self._settings),
                'request_count': self.request_count,
                'unload_cycles': self.unload_cycles,
                'cascade_remaining': self.cascade_remaining,
                'oom_kills': self.oom_kills,
                'crashes_done': dict(self._crashes_done),
            }

    def count_request(self) -> bool:
        """Count one generate/chat request; True when it must answer HTTP 500."""
        with self._lock:
            self.request_count += 1
            return self.request_count in self._settings.get('http_500_on_request', [])

    def take_crash(self, model: str) -> bool:
        """Return True when this load of model must crash (and count it)."""
        with self._lock:
            table = self._settings.get('crash_on_load', {})
            times = _per_model(table, model)
            if times is None:
                return False
            done = self._crashes_done.get(model, 0)
            if times >= 0 and done >= times:
                return False
            self._crashes_done[model] = done + 1
            return True

    def take_cascade(self) -> bool:
        """Return True when this load dies because the server is unstable after an OOM kill."""
        with self._lock:
            if self.cascade_remaining > 0:
                self.cascade_remaining -= 1
                return True
            return False

    def on_oom_kill(self, *, other_models_loaded: bool) -> None:
        """Record an OOM kill during a load and arm the cascade."""
        with self._lock:
            self.oom_kills += 1
            needs_cached = self._settings.get('cascade_needs_cached_models', True)
            if other_models_loaded or not needs_cached:
                self.cascade_remaining = int(self._settings.get('cascade_after_oom', 0))

    def on_unload(self) -> None:
        """Count one completed load/unload cycle."""
        with self._lock:
            self.unload_cycles += 1

    def leak_fraction(self, model: str) -> float:
        """Fraction of the model's memory kept after unload."""
        with self._lock:
            value = _per_model(self._settings.get('leak', {}), model)
        return min(1.0, max(0.0, float(value or 0.0)))

    def slow_s(self, model: str) -> float:
        """Wall seconds of added delay for a request to model."""
        with self._lock:
            return max(0.0, float(_per_model(self._settings.get('slow_s', {}), model) or 0.0))

    def repeat_limit(self, model: str) -> Optional[int]:
        """Tokens after which the answer ends silently (the real repeat limit); None = never."""
        with self._lock:
            limit = _per_model(self._settings.get('repeat_limit', {}), model)
        return int(limit) if limit is not None else None

    def hang_s(self, model: str) -> float:
        """Wall seconds of no answer (bounded) for a request to model; 0 = none."""
        with self._lock:
            value = float(_per_model(self._settings.get('hang_s', {}), model) or 0.0)
        return min(MAX_HANG_S, max(0.0, value))

    def decode_factor(self) -> float:
        """Multiplier of decode speed after repeated load/unload cycles."""
        with self._lock:
            slowdown = self._settings.get('decode_slowdown') or {}
            after = int(slowdown.get('after_cycles', 0) or 0)
            fraction = float(slowdown.get('fraction', 0.0) or 0.0)
            if slowdown and self.unload_cycles >= after:
                return max(0.01, 1.0 - fraction)
            return 1.0
