"""Which processes are Ollama's model runners, told from their name and command line."""

from __future__ import annotations

import posixpath
from typing import Sequence

# llama-server: Ollama 0.30 and later; ollama-runner: the simulator's runner.
RUNNER_NAMES = ("llama-server", "ollama-runner")


def is_model_runner(name: str, cmdline: Sequence[str]) -> bool:
    """Tell whether a process is a model runner: `ollama runner ...`, `llama-server`, the sim's."""
    if name in RUNNER_NAMES:
        return True
    if cmdline and posixpath.basename(cmdline[0]) in RUNNER_NAMES:
        return True
    return len(cmdline) > 1 and posixpath.basename(cmdline[0]) == "ollama" \
        and cmdline[1] == "runner"
