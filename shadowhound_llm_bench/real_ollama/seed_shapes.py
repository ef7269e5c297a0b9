"""
The seed's five models as synthetic real models: the same file-size proportions, 1/28.6 of them.

The seed (OLLAMA_BENCHMARK_MEMORY_MANAGEMENT.md) benchmarked phi4:14b (9 GB), qwen2.5-coder:32b
and qwq:32b (20 GB each), llama3.3:70b (42 GB) and deepseek-r1:7b (5 GB), in that order. Here
each is an F16 llama model of random weights whose file is 0.035 of the seed's size (the
deepseek stand-in is the 175 MB shape of the shared README), so the largest loads in a few
seconds on a CPU.
"""

from __future__ import annotations

from typing import Dict, Tuple

from .models import ModelShape

# File bytes here per file byte of the seed's models (5 GB -> 175 MB).
SEED_FILE_SCALE = 0.035

SEED_SHAPES: Tuple[ModelShape, ...] = (
    # phi4:14b, 9 GB -> 156M parameters, 311 MB
    ModelShape('shb-seed-phi4-14b', dim=1024, layers=8, ff=2816, heads=16, kv_heads=4,
               ctx=4096, seed=11),
    # qwen2.5-coder:32b, 20 GB -> 357M parameters, 713 MB
    ModelShape('shb-seed-qwen2.5-coder-32b', dim=2048, layers=5, ff=5632, heads=16,
               kv_heads=4, ctx=4096, seed=12),
    # qwq:32b, 20 GB -> the same shape, other weights
    ModelShape('shb-seed-qwq-32b', dim=2048, layers=5, ff=5632, heads=16, kv_heads=4,
               ctx=4096, seed=13),
    # llama3.3:70b, 42 GB -> 730M parameters, 1.46 GB
    ModelShape('shb-seed-llama3.3-70b', dim=2560, layers=8, ff=7168, heads=20, kv_heads=4,
               ctx=4096, seed=14),
    # deepseek-r1:7b, 5 GB -> 87M parameters, 175 MB
    ModelShape('shb-seed-deepseek-r1-7b', dim=768, layers=6, ff=2048, heads=12, kv_heads=4,
               ctx=4096, seed=15),
)

# Which seed model each stands for (the table's words).
SEED_NAMES: Dict[str, str] = {
    'shb-seed-phi4-14b:f16': 'phi4:14b',
    'shb-seed-qwen2.5-coder-32b:f16': 'qwen2.5-coder:32b',
    'shb-seed-qwq-32b:f16': 'qwq:32b',
    'shb-seed-llama3.3-70b:f16': 'llama3.3:70b',
    'shb-seed-deepseek-r1-7b:f16': 'deepseek-r1:7b',
}


def parameter_count(shape: ModelShape) -> int:
    """Return the parameters make_model.py writes for a shape (embeddings, output, layers)."""
    kv_dim = shape.dim // shape.heads * shape.kv_heads
    per_layer = (2 * shape.dim * shape.dim + 2 * shape.dim * kv_dim + 3 * shape.dim * shape.ff
                 + 2 * shape.dim)
    return 2 * shape.vocab * shape.dim + shape.layers * per_layer + shape.dim
