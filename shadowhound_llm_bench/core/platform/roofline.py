"""Decode speed against the memory-bandwidth roofline: each token reads the whole model once."""

from __future__ import annotations

from typing import Optional

THOR_BANDWIDTH_BYTES_PER_S = 273e9  # Jetson AGX Thor LPDDR5X


def roofline_tokens_per_s(*, bandwidth_bytes_per_s: float,
                          model_size_bytes: int) -> Optional[float]:
    """Upper bound on decode tokens/s when every token streams the model's weights once."""
    if bandwidth_bytes_per_s <= 0 or model_size_bytes <= 0:
        return None
    return bandwidth_bytes_per_s / model_size_bytes


def roofline_efficiency_percent(*, decode_tokens_per_s: Optional[float],
                                bandwidth_bytes_per_s: Optional[float],
                                model_size_bytes: int) -> Optional[float]:
    """Measured decode speed as a percentage of the roofline; None when anything is unknown."""
    if decode_tokens_per_s is None or bandwidth_bytes_per_s is None:
        return None
    bound = roofline_tokens_per_s(bandwidth_bytes_per_s=bandwidth_bytes_per_s,
                                  model_size_bytes=model_size_bytes)
    if bound is None:
        return None
    return 100.0 * decode_tokens_per_s / bound
