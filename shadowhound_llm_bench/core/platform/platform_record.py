"""
The machine a run measured: module, L4T release, power mode, clocks, and the warnings they raise.

Pure parsing of what the adapters read (device-tree model, /etc/nv_tegra_release, `nvpmodel -q`,
`jetson_clocks --show`) and the module's memory bandwidth from `config/memory_bandwidth.yaml`.
Formats as NVIDIA's tools print them (Jetson Linux Developer Guide, "Power Management for
Jetson ... Devices": nvpmodel prints `NV Power Mode: <NAME>` then the mode id; `jetson_clocks
--show` prints one `MinFreq= MaxFreq= CurrentFreq=` line per CPU, GPU and EMC) and as jetson-stats
reads them (github.com/rbonghi/jetson_stats, jtop/core/jetson_variables.py, nvpmodel.py,
jetson_clocks.py). A field that could not be read is None: reports say "not measured".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

BANDWIDTH_TABLE_NAME = "memory_bandwidth.yaml"
# L4T release -> JetPack release, from NVIDIA's JetPack archive (developer.nvidia.com/embedded/
# jetpack-archive); an unknown L4T release leaves JetPack empty rather than guessing.
JETPACK_OF_L4T = {
    "35.3": "5.1.1", "35.4": "5.1.2", "35.5": "5.1.3", "35.6": "5.1.4",
    "36.2": "6.0 DP", "36.3": "6.0", "36.4": "6.1 / 6.2", "38.2": "7.0", "38.4": "7.1",
}


class BandwidthTableError(ValueError):
    """The bandwidth table file is missing or malformed."""


@dataclass
class MachineRecord:
    """What a run ran on; None where a field could not be read on this machine."""

    machine_id: str = ""  # hashed /etc/machine-id (adapters/machine_identity), for the history
    hostname: str = ""
    kernel: str = ""
    architecture: str = ""
    cpu_model: str = ""
    cpu_count: Optional[int] = None
    total_memory_bytes: Optional[int] = None
    is_jetson: bool = False
    module_model: str = ""  # device-tree model, e.g. "NVIDIA Jetson AGX Thor Developer Kit"
    module_sku: str = ""  # P-number, e.g. "p3834-0008" (AGX Orin 64GB: "p3701-0005")
    l4t_release: str = ""  # e.g. "38.2.0"
    jetpack_release: str = ""
    power_mode: str = ""  # nvpmodel name, e.g. "MAXN"
    power_mode_id: Optional[int] = None
    power_mode_is_max: Optional[bool] = None
    clocks_locked: Optional[bool] = None  # jetson_clocks: every min clock at its max
    gpu_count: Optional[int] = None
    gpu_names: List[str] = field(default_factory=list)
    gpu_load_percent: Optional[float] = None
    gpu_processes: List[str] = field(default_factory=list)  # other processes on the GPU
    ollama_version: str = ""
    container_image: str = ""
    container_digest: str = ""
    memory_bandwidth_bytes_per_s: Optional[float] = None
    memory_bandwidth_source: str = ""
    sensor_source: str = "none"  # jtop | sysfs | none
    notes: List[str] = field(default_factory=list)  # why a field is missing
    # The simulator's platform files this record was read from ("" = the machine itself).
    simulated_root: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MachineRecord":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def parse_device_tree_model(raw: bytes) -> str:
    """Return the model string of /proc/device-tree/model (NUL-terminated in the kernel)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


_SKU_RE = re.compile(r"p?(\d{4})[-:](\d{4})")


def parse_module_sku(boardids: bytes, compatible: bytes) -> str:
    """
    Return the module's P-number ("p3701-0005") from the device tree; "" when absent.

    `/proc/device-tree/nvidia,boardids` holds "3701:0005" (jetson-stats turns it into
    "p3701-0005", jtop/core/jetson_variables.py); otherwise the first "nvidia,p3701-0005"
    entry of the NUL-separated `compatible` list is the module (the carrier board follows it).
    """
    for raw in (boardids, compatible):
        text = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        match = _SKU_RE.search(text)
        if match:
            return f"p{match.group(1)}-{match.group(2)}"
    return ""


_L4T_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


def parse_nv_tegra_release(text: str) -> str:
    """Return "38.2.0" from "# R38 (release), REVISION: 2.0, ..."; "" when it does not parse."""
    match = _L4T_RE.search(text)
    if not match:
        return ""
    return f"{match.group(1)}.{match.group(2)}"


def jetpack_for(l4t_release: str) -> str:
    """Return the JetPack release of an L4T release, "" when not in the known list."""
    parts = l4t_release.split(".")
    return JETPACK_OF_L4T.get(".".join(parts[:2]), "") if len(parts) >= 2 else ""


_MODE_RE = re.compile(r"NV Power Mode:\s*(\S+)")


def parse_nvpmodel_query(text: str) -> Tuple[str, Optional[int]]:
    """Return (mode name, mode id) from `nvpmodel -q`; ("", None) when it does not parse."""
    match = _MODE_RE.search(text)
    if not match:
        return "", None
    name = match.group(1)
    mode_id: Optional[int] = None
    for line in text[match.end():].splitlines():
        if line.strip().isdigit():
            mode_id = int(line.strip())
            break
    return name, mode_id


def power_mode_is_max(name: str) -> Optional[bool]:
    """Return True for the unconstrained modes (MAXN, MAXN_SUPER); None when unknown."""
    if not name:
        return None
    return name.upper().startswith("MAXN")


_FREQ_RE = re.compile(r"^(\S+?):?\s.*?MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)")


def parse_jetson_clocks_show(text: str) -> Optional[bool]:
    """
    Return whether `jetson_clocks --show` reports locked clocks; None when it lists none.

    jetson_clocks pins every CPU and the GPU at its maximum by raising MinFreq to MaxFreq, so
    the clocks are locked when every CPU and GPU line has MinFreq == MaxFreq.
    """
    seen = False
    for line in text.splitlines():
        match = _FREQ_RE.match(line.strip())
        if not match:
            continue
        unit = match.group(1).lower()
        if not (unit.startswith("cpu") or unit.startswith("gpu")):
            continue
        seen = True
        if int(match.group(2)) != int(match.group(3)):
            return False
    return True if seen else None


# ------------------------------------------------------------------------------- bandwidth
@dataclass(frozen=True)
class BandwidthEntry:
    name: str
    model_contains: Tuple[str, ...]
    bandwidth_bytes_per_s: float
    source: str
    max_memory_bytes: Optional[int] = None


def load_bandwidth_table(path: Path) -> List[BandwidthEntry]:
    """Read the module bandwidth table; every entry must name its source."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BandwidthTableError(f"cannot read {path}: {exc}") from exc
    entries: List[BandwidthEntry] = []
    for i, item in enumerate((data or {}).get("modules") or []):
        try:
            contains = tuple(str(s).lower() for s in item["model_contains"])
            gbps = float(item["bandwidth_gbps"])
            source = str(item["source"]).strip()
        except (KeyError, TypeError, ValueError) as exc:
            raise BandwidthTableError(f"{path}: entry {i}: {exc}") from exc
        if not contains or gbps <= 0 or not source:
            raise BandwidthTableError(f"{path}: entry {i} needs model_contains, a positive "
                                      "bandwidth_gbps and a source")
        max_gib = item.get("max_memory_gib")
        entries.append(BandwidthEntry(
            name=str(item.get("name") or contains[0]), model_contains=contains,
            bandwidth_bytes_per_s=gbps * 1e9, source=source,
            max_memory_bytes=int(float(max_gib) * 1024 ** 3) if max_gib else None))
    return entries


def bandwidth_for(module_model: str, total_memory_bytes: Optional[int],
                  table: Sequence[BandwidthEntry]) -> Optional[BandwidthEntry]:
    """Return the table entry of a module (first match), None for an unknown machine."""
    model = module_model.lower()
    if not model:
        return None
    for entry in table:
        if not all(part in model for part in entry.model_contains):
            continue
        if entry.max_memory_bytes is not None and (
                total_memory_bytes is None or total_memory_bytes > entry.max_memory_bytes):
            continue
        return entry
    return None


# -------------------------------------------------------------------------------- warnings
def machine_warnings(record: MachineRecord) -> List[str]:
    """Warnings for a benchmark on this machine: speed numbers that would not be comparable."""
    out: List[str] = []
    if record.power_mode_is_max is False:
        out.append(f"power mode is {record.power_mode} (id {record.power_mode_id}), not MAXN: "
                   "speeds and power are capped; `sudo nvpmodel -m 0` for the maximum")
    if record.clocks_locked is False:
        out.append("clocks are not locked: frequency scaling adds variance; "
                   "`sudo jetson_clocks` pins CPU, GPU and EMC at their maximum")
    if record.gpu_processes:
        out.append("another process uses the GPU before the run: "
                   + ", ".join(record.gpu_processes))
    return out
