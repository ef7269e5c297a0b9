"""Which Ollama server a kept value (calibration, footprint, management cost) was measured on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

UNKNOWN = "unknown"


@dataclass(frozen=True)
class ServerKey:
    """
    One server: how it is reached, which container/unit/address, which release, which machine.

    Values measured on one server are never used for another: a calibration made against the
    simulator on this machine is not the real server's, nor a 0.12.6 footprint a 0.32.15 one.
    """

    backend: str  # api_only | docker | podman | process | systemd (or another backend's kind)
    target: str  # container or unit name; the base URL for API-only and process backends
    ollama_version: str  # /api/version
    machine_id: str  # adapters/machine_identity: hashed /etc/machine-id, else the host name

    def token(self) -> str:
        """Return the key as one string for a state file's dictionary."""
        return "|".join((self.backend, self.target, self.ollama_version or UNKNOWN,
                         self.machine_id or UNKNOWN))

    def describe(self) -> str:
        """Say which server this is, for reports and decisions."""
        return (f"Ollama {self.ollama_version or UNKNOWN} via {self.backend} {self.target} "
                f"on machine {self.machine_id or UNKNOWN}")

    def to_dict(self) -> Dict[str, str]:
        """Return the fields for a state file (kept beside the values, for people reading it)."""
        return {"backend": self.backend, "target": self.target,
                "ollama_version": self.ollama_version, "machine_id": self.machine_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Optional["ServerKey"]:
        """Read a key back; None when a field is missing."""
        try:
            return cls(**{name: str(data[name]) for name in
                          ("backend", "target", "ollama_version", "machine_id")})
        except (KeyError, TypeError):
            return None


# Used where no server is known (stores opened by tests or tools without a server).
NO_SERVER = ServerKey(backend=UNKNOWN, target=UNKNOWN, ollama_version=UNKNOWN,
                      machine_id=UNKNOWN)
