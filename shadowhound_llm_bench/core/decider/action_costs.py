"""What an unload and a restart cost on this machine: measured, or the seed's defaults."""

from __future__ import annotations

from dataclasses import dataclass

# The seed's Thor: unloading a model took about 2 s, restarting the Ollama container about 15 s.
SEED_UNLOAD_S = 2.0
SEED_RESTART_S = 15.0


@dataclass(frozen=True)
class ActionCosts:
    """Typical seconds of one unload (sent, confirmed) and one restart (until Ollama answers)."""

    unload_s: float = SEED_UNLOAD_S
    restart_s: float = SEED_RESTART_S
    unload_source: str = "seed default"  # measured | seed default
    restart_source: str = "seed default"

    def describe(self) -> str:
        """Both costs with where they come from, for decision reasons."""
        return (f"unload {self.unload_s:.2f} s ({self.unload_source}), restart "
                f"{self.restart_s:.2f} s ({self.restart_source})")


SEED_COSTS = ActionCosts()
