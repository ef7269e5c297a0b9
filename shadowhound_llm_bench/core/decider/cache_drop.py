"""When dropping the page cache helps: Ollama's false refusal and a reclaim that stalls."""

from __future__ import annotations

import re
from dataclasses import dataclass

DROP_CACHES_MODES = ("auto", "never")

# Ollama's refusal when its free-memory reading (MemFree on Jetson) is short, e.g.
# "model requires more system memory (59.8 GiB) than is available (59.8 GiB)"
# (ollama/ollama #12283: page cache from reading GGUF blobs, cleared by drop_caches).
_REFUSAL = re.compile(r"requires more system memory", re.IGNORECASE)


def is_memory_refusal(error: str) -> bool:
    """Tell whether a load error is Ollama's "requires more system memory" refusal."""
    return bool(_REFUSAL.search(error or ""))


@dataclass(frozen=True)
class FreeVersusAvailable:
    """Free and available host memory against what a model needs (bytes)."""

    free_bytes: int
    available_bytes: int
    need_bytes: int

    @property
    def cache_in_the_way(self) -> bool:
        """Free memory is short while available memory (free + reclaimable cache) suffices."""
        return self.free_bytes < self.need_bytes <= self.available_bytes


def unified_memory(source_label: str) -> bool:
    """Tell whether the chosen memory sources say the GPU shares host memory outside the cgroup."""
    return any(part in ("gpu_processes", "nvmap", "host_used")
               for part in source_label.split("+"))
