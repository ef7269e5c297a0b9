"""Options pinned for a run so results are comparable, with their defaults and validation."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Optional, Union

KeepAlive = Union[int, str]

_GO_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^-?\d+$")


class OptionsError(ValueError):
    """A run option is out of range or malformed."""


def validate_keep_alive(value: Any) -> KeepAlive:
    """Seconds as an int, or a Go duration string such as "5m" or "0"; anything else raises."""
    if isinstance(value, bool):
        raise OptionsError(f"keep_alive must be seconds or a duration like '5m', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if _GO_DURATION.match(text):
            return text
    raise OptionsError(f"keep_alive must be seconds or a duration like '5m', got {value!r}")


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides what a run measures; recorded verbatim in every report."""

    num_ctx: int = 4096
    num_predict: int = 512  # reasoning models need room; a cut answer is flagged as truncated
    temperature: float = 0.0
    seed: int = 42
    keep_alive: KeepAlive = "5m"  # for test requests; a guard's Proceed overrides it
    repetitions: int = 3
    warmup: bool = True  # one unmeasured request per model before the repetitions
    pull_missing: bool = True
    request_deadline_s: float = 300.0  # one measured request, whole stream
    # llama3.3:70b is 43 GB; a cold read at the ~130 MB/s of ollama/ollama#4098 (a 70B load
    # that took 5.5 min) takes ~330 s, and Ollama gives a stuck runner 5 min
    # (OLLAMA_LOAD_TIMEOUT) before it reports an error of its own: 600 s covers both.
    load_deadline_s: float = 600.0
    # A stream with no chunk for this long is stalled (its own error, not a slow answer).
    stream_stall_s: float = 60.0
    pull_deadline_s: float = 7200.0
    load_attempts: int = 2
    # Roofline: decode speed as a percentage of memory bandwidth / bytes read per token.
    memory_bandwidth_bytes_per_s: Optional[float] = None
    canary_model: str = ""  # empty: no canary check
    canary_prompt: str = "Count from one to twenty in words, separated by commas."
    canary_min_decode_tokens_per_s: float = 0.0
    canary_slowdown_percent: float = 15.0  # after slower than before by more than this -> flag
    extra_options: Dict[str, Any] = field(default_factory=dict)
    # Choose the memory sources again with the smallest model (else only on a first run).
    calibrate_memory_sources: bool = False

    def __post_init__(self) -> None:
        if self.num_ctx < 256:
            raise OptionsError(f"num_ctx must be at least 256, got {self.num_ctx}")
        if self.num_predict < 1 and self.num_predict not in (-1, -2):
            raise OptionsError(f"num_predict must be positive (or -1/-2), got {self.num_predict}")
        if not 0.0 <= self.temperature <= 2.0:
            raise OptionsError(f"temperature must be within 0..2, got {self.temperature}")
        if self.repetitions < 1:
            raise OptionsError(f"repetitions must be at least 1, got {self.repetitions}")
        if self.load_attempts < 1:
            raise OptionsError(f"load_attempts must be at least 1, got {self.load_attempts}")
        for name in ("request_deadline_s", "load_deadline_s", "pull_deadline_s",
                     "stream_stall_s"):
            if getattr(self, name) <= 0:
                raise OptionsError(f"{name} must be positive")
        bandwidth = self.memory_bandwidth_bytes_per_s
        if bandwidth is not None and bandwidth <= 0:
            raise OptionsError("memory bandwidth must be positive")
        object.__setattr__(self, "keep_alive", validate_keep_alive(self.keep_alive))

    def ollama_options(self) -> Dict[str, Any]:
        """Return the `options` object sent with every request."""
        opts: Dict[str, Any] = dict(self.extra_options)
        opts.update(num_ctx=self.num_ctx, num_predict=self.num_predict,
                    temperature=self.temperature, seed=self.seed)
        return opts

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunOptions":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def with_changes(self, **changes: Any) -> "RunOptions":
        return replace(self, **changes)
