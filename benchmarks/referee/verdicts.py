"""The referee's judgements over recorded samples: headroom, memory back, leftovers, failures."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from referee.samples import Sample


@dataclass(frozen=True)
class Breach:
    """ROS room under the reserve: from the first sample under to the first back above."""

    start_t: float
    end_t: Optional[float]  # None: still under at the last sample
    min_headroom_bytes: int  # allocatable minus the reserve (negative: under)

    @property
    def duration_s(self) -> Optional[float]:
        """Return the seconds under the reserve (None when it never came back)."""
        return None if self.end_t is None else self.end_t - self.start_t


@dataclass(frozen=True)
class HeadroomVerdict:
    """Every breach of the ROS reserve over a stretch of samples, against the allowed time."""

    reserve_bytes: int
    allowed_s: float
    breaches: List[Breach] = field(default_factory=list)
    min_headroom_bytes: int = 0

    @property
    def kept(self) -> bool:
        """Tell whether every breach ended within the allowed time."""
        return all(b.duration_s is not None and b.duration_s <= self.allowed_s
                   for b in self.breaches)


def ros_headroom_bytes(sample: Sample, reserve_bytes: int) -> int:
    """Return what ROS can still allocate beyond the room it must always have."""
    return sample.allocatable_bytes - reserve_bytes


def judge_headroom(samples: Sequence[Sample], *, reserve_bytes: int, period_s: float,
                   unload_s: float) -> HeadroomVerdict:
    """
    Judge "ROS always has reserve_bytes to grow into" over samples.

    A breach may last at most one sample period plus the unload that ends it.
    """
    breaches: List[Breach] = []
    start: Optional[float] = None
    worst = low = None
    for sample in samples:
        headroom = ros_headroom_bytes(sample, reserve_bytes)
        low = headroom if low is None else min(low, headroom)
        if headroom < 0:
            if start is None:
                start, worst = sample.t, headroom
            worst = min(worst, headroom)
        elif start is not None:
            breaches.append(Breach(start_t=start, end_t=sample.t, min_headroom_bytes=worst))
            start = None
    if start is not None:
        breaches.append(Breach(start_t=start, end_t=None, min_headroom_bytes=worst))
    return HeadroomVerdict(reserve_bytes=reserve_bytes, allowed_s=period_s + unload_s,
                           breaches=breaches, min_headroom_bytes=low or 0)


def memory_back_s(samples: Sequence[Sample], *, from_t: float, model_bytes_at_most: int,
                  container_group: str = '') -> Optional[float]:
    """Seconds from from_t until the memory held for models is down to model_bytes_at_most."""
    for sample in samples:
        if sample.t >= from_t and sample.model_bytes(container_group) <= model_bytes_at_most:
            return sample.t - from_t
    return None


@dataclass(frozen=True)
class Leftovers:
    """What is still held at the end: model processes, device pages, the driver's pool."""

    runners: List[List]
    device_bytes: int
    pool_bytes: int

    @property
    def nothing_loaded(self) -> bool:
        """Tell whether no model process runs and no device page is live."""
        return not self.runners and self.device_bytes == 0


def leftovers(samples: Sequence[Sample]) -> Leftovers:
    """Judge the last sample: is anything left loaded."""
    if not samples:
        raise ValueError('no samples: the referee saw nothing')
    last = samples[-1]
    return Leftovers(runners=list(last.runners), device_bytes=last.device_bytes,
                     pool_bytes=last.pool_bytes)


@dataclass(frozen=True)
class CleanupJudgement:
    """The product's cleanup verdict held against the bytes really still held."""

    product_says_clean: bool
    held_bytes: int  # model memory at the end minus before the run
    truly_clean: bool

    @property
    def correct(self) -> bool:
        """Tell whether the product's verdict matches the truth."""
        return self.product_says_clean == self.truly_clean


def judge_cleanup(samples: Sequence[Sample], *, before_t: float, after_t: float,
                  product_says_clean: bool, tolerance_bytes: int,
                  container_group: str = '') -> CleanupJudgement:
    """Compare the product's "nothing left" with the model memory held after vs before."""
    before = [s for s in samples if s.t <= before_t]
    after = [s for s in samples if s.t >= after_t]
    if not before or not after:
        raise ValueError('need samples before the run and after it')
    held = after[-1].model_bytes(container_group) + after[-1].server_tree_bytes \
        - before[-1].model_bytes(container_group) - before[-1].server_tree_bytes
    clean = held <= tolerance_bytes and not after[-1].runners
    return CleanupJudgement(product_says_clean=product_says_clean, held_bytes=held,
                            truly_clean=clean)


class FailureKind(str, enum.Enum):
    """Who ended a model's run: the machine's physics or the product's own decision."""

    REFUSAL = 'refusal'  # the server said the model does not fit
    OOM_KILL = 'oom_kill'  # the kernel killed a process (its counter moved)
    EOF = 'eof'  # the runner or the connection died under the request
    PRESSURE_STOP = 'pressure_stop'
    SKIP = 'skip'
    PREEMPTION = 'preemption'
    UNKNOWN = 'unknown'

    @property
    def physics(self) -> bool:
        """Tell whether the machine caused the failure."""
        return self in (FailureKind.REFUSAL, FailureKind.OOM_KILL, FailureKind.EOF)


DECISIONS = {'pressure': FailureKind.PRESSURE_STOP, 'skip': FailureKind.SKIP,
             'preempt': FailureKind.PREEMPTION}
REFUSALS = ('requires more system memory', 'does not fit', 'insufficient memory',
            'out of memory', 'model requires more')
# The kernel's counter is read a sample or two after the failure it caused.
KILL_SLACK_S = 0.2
EOFS = ('eof', 'connection', 'runner process has terminated', 'exit status', 'closed',
        'disconnected', 'broken pipe')


def classify_failure(samples: Sequence[Sample], *, start_t: float, end_t: float,
                     status: str, error: str = '') -> FailureKind:
    """
    Split a failed model run into physics or decision.

    A kernel OOM kill is believed only when the machine's oom_kill counter moved between
    start_t and end_t; the product's status names its own decisions (pressure, skip, preempt).
    """
    words = f'{status} {error}'.lower()
    for key, kind in DECISIONS.items():
        if key in words:
            return kind
    window = [s for s in samples if start_t <= s.t <= end_t + KILL_SLACK_S]
    if len(window) >= 2 and window[-1].oom_kills > window[0].oom_kills:
        return FailureKind.OOM_KILL
    before = [s for s in samples if s.t < start_t]
    if window and before and window[-1].oom_kills > before[-1].oom_kills:
        return FailureKind.OOM_KILL
    if any(key in words for key in REFUSALS):
        return FailureKind.REFUSAL
    if any(key in words for key in EOFS):
        return FailureKind.EOF
    return FailureKind.UNKNOWN
