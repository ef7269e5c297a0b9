"""Model footprint prediction: measured on this machine, else Ollama's metadata, else the name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..ollama.gguf_layout import GgufLayout, layout_from_show
from ..ollama.ollama_footprint import ollama_size_estimate
from ..units import GB, to_gib

SOURCE_MEASURED = "measured"
SOURCE_METADATA = "metadata"
SOURCE_NAME = "name"
SOURCE_UNKNOWN = "unknown"

# The seed's rule of thumb: a Q4 model needs about 0.65 GB per billion parameters.
SEED_BYTES_PER_BILLION_PARAMS = int(0.65 * GB)

_PARAMS_IN_TAG = re.compile(r"(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])\b", re.IGNORECASE)
_PARAMS_STRING = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_PARAM_UNIT = {"k": 1e-6, "m": 1e-3, "b": 1.0, "t": 1e3}


@dataclass(frozen=True)
class FootprintPrediction:
    """Predicted container memory of one loaded model, and where the number came from."""

    model: str
    footprint_bytes: int
    source: str  # measured | metadata | name | unknown
    detail: str = ""

    @property
    def known(self) -> bool:
        """Tell whether any source could say something about the model."""
        return self.source != SOURCE_UNKNOWN


@dataclass(frozen=True)
class ModelMetadata:
    """What Ollama says about a model: its file size (/api/tags) and architecture (/api/show)."""

    size_bytes: int
    model_info: Mapping[str, Any]
    parameter_size: str = ""  # as /api/tags details.parameter_size, e.g. "14.7B"
    layout: Optional[GgufLayout] = None  # hyperparameters and tensor sizes (/api/show)
    server_version: str = ""  # /api/version of the server that will load the model


def parameters_from_name(model: str) -> Optional[float]:
    """Billions of parameters read from a model name such as `llama3.3:70b` or `mixtral:8x7b`."""
    name, _, tag = model.partition(":")
    for text in (tag, name):
        matches = list(_PARAMS_IN_TAG.finditer(text))
        if not matches:
            continue
        experts, count, unit = matches[-1].groups()
        billions = float(count) * (1e-3 if unit.lower() == "m" else 1.0)
        return billions * (int(experts) if experts else 1)
    return None


def parameters_from_string(parameter_size: str) -> Optional[float]:
    """Billions of parameters from Ollama's `parameter_size` string ("14.7B", "494.03M")."""
    match = _PARAMS_STRING.match(parameter_size or "")
    if not match:
        return None
    return float(match.group(1)) * _PARAM_UNIT[match.group(2).lower()]


def kv_cache_bytes(model_info: Mapping[str, Any], num_ctx: int, *,
                   bytes_per_element: int = 2) -> int:
    """
    KV cache at num_ctx the way Ollama estimates it (f16 by default); 0 when unknown.

    KV = 2 (K and V) x block_count x head_count_kv x head_dim x num_ctx x bytes per element,
    with head_dim = embedding_length / head_count unless key_length/value_length are given.
    """
    arch = model_info.get("general.architecture")
    if not arch:
        return 0

    def field(name: str) -> Optional[float]:
        value = model_info.get(f"{arch}.{name}")
        if isinstance(value, list):  # per-layer values in some models: take the largest
            value = max(value) if value else None
        return float(value) if isinstance(value, (int, float)) else None

    blocks = field("block_count")
    heads = field("attention.head_count")
    heads_kv = field("attention.head_count_kv") or heads
    embedding = field("embedding_length")
    if not blocks or not heads or not heads_kv:
        return 0
    key_length = field("attention.key_length")
    value_length = field("attention.value_length")
    if key_length is None or value_length is None:
        if not embedding:
            return 0
        key_length = value_length = embedding / heads
    per_token = blocks * heads_kv * (key_length + value_length) * bytes_per_element
    return int(per_token * num_ctx)


class FootprintPredictor:
    """
    Best source first: measured on this machine, Ollama's metadata, the model's name.

    memory_scale maps the sizes Ollama reports to bytes on this machine: 1 on a robot, 1/64 on
    the thor simulator (simulation.memory_scale), whose API reports the real machine's sizes;
    measurements are already local.
    """

    def __init__(self, *, num_ctx: int,
                 bytes_per_billion_params: int = SEED_BYTES_PER_BILLION_PARAMS,
                 memory_scale: float = 1.0) -> None:
        if num_ctx <= 0:
            raise ValueError(f"num_ctx must be positive, got {num_ctx}")
        if bytes_per_billion_params <= 0:
            raise ValueError("bytes_per_billion_params must be positive")
        if not 0 < memory_scale <= 1.0:
            raise ValueError(f"memory_scale must be in (0, 1], got {memory_scale}")
        self.num_ctx = num_ctx
        self.bytes_per_billion_params = bytes_per_billion_params
        self.memory_scale = memory_scale

    def predict(self, model: str, *, measured_bytes: Optional[int] = None,
                metadata: Optional[ModelMetadata] = None,
                measured_on: str = "") -> FootprintPrediction:
        """Predict from the best source given; the source is recorded with the number."""
        if measured_bytes is not None and measured_bytes > 0:
            return FootprintPrediction(
                model, int(measured_bytes), SOURCE_MEASURED,
                f"measured earlier on {measured_on or 'this machine'}: "
                f"{to_gib(measured_bytes):.2f} GiB")
        if metadata is not None and metadata.layout is not None and metadata.server_version:
            estimate = ollama_size_estimate(metadata.layout, num_ctx=self.num_ctx,
                                            server_version=metadata.server_version)
            return FootprintPrediction(
                model, int(estimate.total_bytes * self.memory_scale), SOURCE_METADATA,
                f"{estimate.describe()}: weights {to_gib(estimate.weights_bytes):.2f} GiB + "
                f"KV cache {to_gib(estimate.kv_cache_bytes):.2f} GiB + compute graph "
                f"{to_gib(estimate.graph_bytes):.2f} GiB + other "
                f"{to_gib(estimate.other_bytes):.2f} GiB, for Ollama {metadata.server_version}"
                + self._scale_note())
        if metadata is not None and metadata.size_bytes > 0:
            kv = kv_cache_bytes(metadata.model_info, self.num_ctx)
            return FootprintPrediction(
                model, int((metadata.size_bytes + kv) * self.memory_scale), SOURCE_METADATA,
                f"weights {to_gib(metadata.size_bytes):.2f} GiB + KV cache at num_ctx "
                f"{self.num_ctx} {to_gib(kv):.2f} GiB" + self._scale_note())
        billions = parameters_from_name(model)
        name_source = "name"
        if billions is None and metadata is not None:
            billions = parameters_from_string(metadata.parameter_size)
            name_source = "parameter_size"
        if billions is not None:
            footprint = int(billions * self.bytes_per_billion_params * self.memory_scale)
            return FootprintPrediction(
                model, footprint, SOURCE_NAME,
                f"{billions:g}B parameters (from {name_source}) x "
                f"{self.bytes_per_billion_params / GB:.2f} GB/B" + self._scale_note())
        return FootprintPrediction(model, 0, SOURCE_UNKNOWN,
                                   "no measurement, no metadata, no size in the name")

    def scaled(self, real_bytes: int) -> int:
        """Bytes Ollama reports (sizes of the real machine) as bytes on this machine."""
        return int(real_bytes * self.memory_scale)

    def _scale_note(self) -> str:
        return f" x memory scale {self.memory_scale:g}" if self.memory_scale != 1.0 else ""


def metadata_from_ollama(tag_entry: Optional[Mapping[str, Any]],
                         show_reply: Optional[Mapping[str, Any]],
                         server_version: str = "") -> Optional[ModelMetadata]:
    """
    Build metadata from an /api/tags entry and an /api/show reply (either may be absent).

    With the server's version and the tensors /api/show lists, the prediction follows that
    release's own estimate (core/ollama/ollama_footprint.py); without them, weights + KV cache.
    """
    if not tag_entry:
        return None
    size = tag_entry.get("size")
    if not isinstance(size, int) or size <= 0:
        return None
    details = tag_entry.get("details") or {}
    model_info = (show_reply or {}).get("model_info") or {}
    return ModelMetadata(size_bytes=size, model_info=dict(model_info),
                         parameter_size=str(details.get("parameter_size") or ""),
                         layout=layout_from_show(show_reply), server_version=server_version)


def prediction_error(predicted_bytes: int, measured_bytes: int) -> Optional[float]:
    """Relative error of a prediction against the measured footprint (0.1 = 10 %)."""
    if measured_bytes <= 0:
        return None
    return (predicted_bytes - measured_bytes) / measured_bytes
