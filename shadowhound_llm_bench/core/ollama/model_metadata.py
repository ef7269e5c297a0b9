"""What identifies a model for comparable results: digest, size, quantization, parameter size."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, Mapping, Optional


@dataclass(frozen=True)
class ModelMetadata:
    """Recorded with every model's results; sizes from /api/tags, details from /api/show."""

    name: str
    digest: str = ""
    size_bytes: int = 0
    quantization: str = ""
    parameter_size: str = ""
    family: str = ""
    format: str = ""
    context_length: Optional[int] = None  # the model's trained context, from model_info

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelMetadata":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def same_model(a: str, b: str) -> bool:
    """Ollama names: "phi4" means "phi4:latest"."""
    def norm(name: str) -> str:
        return name if ":" in name else f"{name}:latest"
    return norm(a) == norm(b)


def find_tag(tags: Iterable[Mapping[str, Any]], model: str) -> Optional[Mapping[str, Any]]:
    """Return the /api/tags entry of a model, or None when it is not present."""
    for entry in tags:
        if same_model(str(entry.get("name") or entry.get("model") or ""), model):
            return entry
    return None


def metadata_from(model: str, tag: Optional[Mapping[str, Any]],
                  show: Optional[Mapping[str, Any]] = None) -> ModelMetadata:
    """Combine a /api/tags entry and a /api/show reply (either may be missing)."""
    tag = tag or {}
    show = show or {}
    details: Dict[str, Any] = dict(tag.get("details") or {})
    details.update({k: v for k, v in dict(show.get("details") or {}).items() if v})
    context_length = None
    for key, value in dict(show.get("model_info") or {}).items():
        if key.endswith(".context_length") and isinstance(value, int):
            context_length = value
    size = tag.get("size")
    return ModelMetadata(
        name=model,
        digest=str(tag.get("digest") or ""),
        size_bytes=int(size) if isinstance(size, (int, float)) else 0,
        quantization=str(details.get("quantization_level") or ""),
        parameter_size=str(details.get("parameter_size") or ""),
        family=str(details.get("family") or ""),
        format=str(details.get("format") or ""),
        context_length=context_length,
    )
