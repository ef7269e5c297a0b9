"""Model shapes spanning what the footprint estimates depend on, each quick to load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .models import BIG, TINY, ModelShape

# Widths and feed-forward sizes are multiples of 256 so that the K-quants apply to every matrix.
NARROW_MHA = ModelShape('shb-fp-mha', dim=512, layers=8, ff=1536, heads=8, kv_heads=8,
                        ctx=8192, vocab=16384, seed=11)           # no GQA, 8k trained context
WIDE_SHALLOW = ModelShape('shb-fp-wide', dim=1024, layers=4, ff=2816, heads=16, kv_heads=2,
                          ctx=2048, vocab=32000, seed=12)         # GQA 8, 2k trained context
DEEP_NARROW = ModelShape('shb-fp-deep', dim=512, layers=16, ff=1536, heads=8, kv_heads=2,
                         ctx=8192, vocab=24000, seed=13)          # GQA 4, many layers
HEAD128_MHA = ModelShape('shb-fp-h128', dim=1280, layers=6, ff=3584, heads=10, kv_heads=10,
                         ctx=4096, vocab=32000, seed=14)          # no GQA, head_dim 128


@dataclass(frozen=True)
class FootprintCase:
    """One load: a model shape and the num_ctx of the request (None: the server's default)."""

    shape: ModelShape
    num_ctx: Optional[int]

    @property
    def label(self) -> str:
        """Return a short name for tables, e.g. `shb-tiny:q8_0 ctx=2048`."""
        return f'{self.shape.name} ctx={self.num_ctx or "default"}'


FOOTPRINT_CASES: Tuple[FootprintCase, ...] = (
    FootprintCase(TINY, None),
    FootprintCase(TINY.with_quant('q8_0'), 2048),
    FootprintCase(TINY.with_quant('q4_k_m'), 4096),
    FootprintCase(NARROW_MHA, 8192),
    FootprintCase(NARROW_MHA.with_quant('q4_k_m'), None),
    FootprintCase(WIDE_SHALLOW.with_quant('q8_0'), None),       # default 4096 > trained 2048
    FootprintCase(WIDE_SHALLOW, 2048),
    FootprintCase(DEEP_NARROW.with_quant('q4_k_m'), 8192),
    FootprintCase(DEEP_NARROW.with_quant('q8_0'), 3072),
    FootprintCase(HEAD128_MHA.with_quant('q8_0'), 6144),
    FootprintCase(HEAD128_MHA.with_quant('q4_k_m'), 2048),
    # Not used to fit the llama-server compute buffer (width 2048, 804 MB): a held-out check.
    FootprintCase(BIG, None),
)
# A few seconds a release: F16 and Q4_K_M, GQA and not, a context given and the default.
SMOKE_CASES: Tuple[FootprintCase, ...] = (
    FootprintCase(TINY.with_quant('q4_k_m'), 4096),
    FootprintCase(NARROW_MHA, 8192),
    FootprintCase(WIDE_SHALLOW.with_quant('q8_0'), None),
)
