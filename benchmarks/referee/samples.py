"""One sample of the truth, as the referee writes it (one JSON object per line)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterator, List, Optional


@dataclass(frozen=True)
class Sample:
    """
    What the machine really holds at one moment (CLOCK_MONOTONIC seconds, bytes).

    `machine_*` are the machine cgroup's kernel accounting (0 when no machine is watched);
    `groups` its children (`ros`, `driver`, `system`, the Ollama container...) by usage;
    `pool_bytes`/`device_bytes` the simulated driver's pooled and live device pages;
    `ros_*` the ROS processes (the `ros` group and the pids named), `runners` the processes
    holding a model (pid, name, resident bytes) in the server's tree or the machine.
    """

    t: float
    machine_limit_bytes: int = 0
    machine_usage_bytes: int = 0
    machine_file_bytes: int = 0
    oom_kills: int = 0
    groups: Dict[str, int] = field(default_factory=dict)
    group_anon: Dict[str, int] = field(default_factory=dict)
    pool_bytes: int = 0
    device_bytes: int = 0
    drops: int = 0
    ros_bytes: int = 0
    ros_device_bytes: int = 0
    runners: List[List] = field(default_factory=list)  # [pid, name, rss_bytes]
    server_tree_bytes: int = 0

    @property
    def free_bytes(self) -> int:
        """Return the memory no page holds (what a GPU allocation on unified memory can take)."""
        return self.machine_limit_bytes - self.machine_usage_bytes

    @property
    def allocatable_bytes(self) -> int:
        """Return what a CPU allocation can take: free memory plus reclaimable page cache."""
        return self.free_bytes + self.machine_file_bytes

    @property
    def runner_bytes(self) -> int:
        """Return the resident bytes of every model-holding process."""
        return sum(int(entry[2]) for entry in self.runners)

    def model_bytes(self, container_group: str = '') -> int:
        """Return the memory held for models: device pages, the pool, runners or container."""
        held = self.device_bytes + self.pool_bytes
        if container_group:
            return held + self.group_anon.get(container_group, 0)
        return held + self.runner_bytes

    def to_json(self) -> str:
        """Return the sample as one JSON line (no newline)."""
        return json.dumps(asdict(self), separators=(',', ':'))

    @classmethod
    def from_dict(cls, data: Dict) -> 'Sample':
        """Rebuild a sample from its JSON object."""
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Mark:
    """A moment the benchmark names in the sample file (a phase starts, growth begins)."""

    t: float
    label: str


def read_samples(path: str) -> List[Sample]:
    """Return every sample of a referee file in order (marks are skipped)."""
    return [item for item in _items(path) if isinstance(item, Sample)]


def read_marks(path: str) -> List[Mark]:
    """Return the marks a benchmark wrote into a referee file."""
    return [item for item in _items(path) if isinstance(item, Mark)]


def _items(path: str) -> Iterator[object]:
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill mid-write
            if 'mark' in data:
                yield Mark(t=float(data['t']), label=str(data['mark']))
            else:
                yield Sample.from_dict(data)


def between(samples: List[Sample], start_t: float, end_t: Optional[float] = None
            ) -> List[Sample]:
    """Return the samples taken from start_t up to end_t (both included)."""
    return [s for s in samples if s.t >= start_t and (end_t is None or s.t <= end_t)]
