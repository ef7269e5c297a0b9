"""This machine's stable identity for the run history, when a run does not carry its own."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

MACHINE_ID_FILE = Path("/etc/machine-id")
# systemd asks applications not to expose /etc/machine-id itself but a hash keyed for the app
# (machine-id(5), sd_id128_get_machine_app_specific).
_APP_KEY = b"shadowhound_llm_bench history"


def _hashed(raw: str) -> str:
    return hashlib.sha256(_APP_KEY + b"\0" + raw.encode("utf-8")).hexdigest()[:16]


def local_machine_record(machine_id_file: Path = MACHINE_ID_FILE) -> Dict[str, Any]:
    """Return {machine_id, hostname, id_source}: hashed /etc/machine-id, else the hostname."""
    hostname = socket.gethostname()
    try:
        raw = machine_id_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raw = ""
    if raw:
        return {"machine_id": _hashed(raw), "hostname": hostname,
                "id_source": str(machine_id_file)}
    return {"machine_id": _hashed("hostname:" + hostname), "hostname": hostname,
            "id_source": "hostname"}


def machine_id_of(record: Optional[Mapping[str, Any]]) -> str:
    """Return the id a run's own machine record gives, or "" when it has none."""
    if not record:
        return ""
    for key in ("machine_id", "id"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
