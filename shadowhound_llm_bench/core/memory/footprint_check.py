"""Sanity rule for a measured footprint before it is cached and beats the metadata forever."""

from __future__ import annotations

from typing import Optional, Sequence

from ..units import to_gib

MIN_RATIO = 0.5
MAX_RATIO = 2.0


def rejected_measurement(*, model: str, measured_bytes: int, metadata_estimate_bytes: int,
                         evicted_models: Sequence[str] = ()) -> Optional[str]:
    """
    Why a measured footprint must not be cached, or None when it may be.

    Rejected: taken while Ollama evicted another model (the delta holds that model's release),
    or outside 0.5-2x the estimate from Ollama's metadata (a source that did not see the
    model, or saw something else). Without a metadata estimate only the eviction rule applies.
    """
    if evicted_models:
        return (f"measured footprint of {model} ({to_gib(measured_bytes):.2f} GiB) not kept: "
                f"Ollama evicted {', '.join(evicted_models)} while it loaded")
    if metadata_estimate_bytes <= 0:
        return None
    ratio = measured_bytes / metadata_estimate_bytes
    if MIN_RATIO <= ratio <= MAX_RATIO:
        return None
    return (f"measured footprint of {model} ({to_gib(measured_bytes):.2f} GiB) not kept: "
            f"{ratio:.2f}x the metadata estimate {to_gib(metadata_estimate_bytes):.2f} GiB, "
            f"outside {MIN_RATIO:g}-{MAX_RATIO:g}x")
