"""What the policy container tests share: the binds of a container running the tiny Ollama."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def tiny_binds():
    """Mount the host's system and this folder read-only (the tiny Ollama needs nothing else)."""
    binds = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/bin", "/etc")
             if os.path.exists(p)}
    binds[HERE] = {"bind": "/policy", "mode": "ro"}
    return binds
