"""
Keep MemFree above the next allocation the policy knows of, on unified memory.

On a unified-memory machine (Jetson Thor) the GPU's allocations, and Ollama's own fit check,
see MemFree, not MemAvailable: page cache and the GPU driver's pool of freed pages count as used
(ollama/ollama #12283, #12528). Before a load whose footprint is predicted, MemFree short of it
is answered by the least drop that returns what is in the way: `1` (page cache) when
MemAvailable already counts enough, then `3` (the shrinkers, the driver's pool among them);
a drop's effect may show in MemFree a moment later, so the policy gives each drop a moment
(SETTLE_S, within memory_wait_s) before the next, and loads anyway when memory_wait_s is spent.
"""

from __future__ import annotations

from typing import Optional

from .cache_drop import unified_memory
from .decision import Action, Decision, Preparation
from ..memory.memory_reading import MemoryReading
from .policy_settings import PolicySettings
from ..units import to_gib


# How long a drop's effect is given to show in MemFree before the next level (seconds).
SETTLE_S = 0.5


def _gib(n_bytes: int) -> str:
    return f"{to_gib(n_bytes):.3f} GiB"


def memfree_short(reading: MemoryReading, need_bytes: int) -> bool:
    """Tell whether the machine's MemFree (when read) is short of the next allocation."""
    return 0 <= reading.host_free_bytes < need_bytes


def before_load(settings: PolicySettings, model: str, need_bytes: int,
                reading: MemoryReading, done: Preparation) -> Optional[Decision]:
    """
    DROP_CACHES (level 1, then 3) or WAIT while MemFree is short of the model's footprint.

    None: MemFree suffices, is not read, the machine is not unified, or every drop and the
    wait for it are spent (the load goes on; a refusal is answered by on_load_failure).
    """
    if settings.drop_caches != "auto" or not unified_memory(reading.source) or \
            not memfree_short(reading, need_bytes):
        return None
    numbers = (f"MemFree {_gib(reading.host_free_bytes)} < next allocation {_gib(need_bytes)} "
               f"({model}), MemAvailable {_gib(reading.host_available_bytes)}")
    levels = done.drop_levels
    if done.can_drop_caches and not levels and need_bytes <= reading.host_available_bytes:
        return Decision(Action.DROP_CACHES,
                        f"drop the page cache before {model}: {numbers}; the GPU allocates from "
                        "MemFree on unified memory and Ollama would refuse; the page cache is "
                        "in the way: drop_caches 1", drop_level=1)
    settle_s = min(SETTLE_S, settings.memory_wait_s)
    if levels == (1,) and done.waited_s < settle_s:
        return Decision(Action.WAIT, f"wait up to {settle_s - done.waited_s:.1f} s before "
                        f"{model} for drop_caches 1 to show in MemFree: {numbers}")
    if done.can_drop_caches and 3 not in levels:
        after = f"after drop_caches {levels[-1]}" if levels else "MemAvailable short too"
        return Decision(Action.DROP_CACHES,
                        f"drop the caches before {model}: {numbers} ({after}); the GPU "
                        "driver's pool of freed pages is in the way: drop_caches 3",
                        drop_level=3)
    if levels and done.waited_s < settings.memory_wait_s:
        return Decision(Action.WAIT,
                        f"wait up to {settings.memory_wait_s - done.waited_s:.1f} s before "
                        f"{model} for drop_caches {levels[-1]} to show in MemFree: {numbers}")
    return None
