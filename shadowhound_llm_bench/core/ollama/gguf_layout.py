"""A model's GGUF layout as Ollama's /api/show describes it: hyperparameters and tensor sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

# ggml type -> (bytes per block, elements per block), as ggml's type traits define them.
GGML_TYPE_BLOCKS: Dict[str, Tuple[int, int]] = {
    "F32": (4, 1), "F16": (2, 1), "BF16": (2, 1), "F64": (8, 1),
    "I8": (1, 1), "I16": (2, 1), "I32": (4, 1), "I64": (8, 1),
    "Q4_0": (18, 32), "Q4_1": (20, 32), "Q5_0": (22, 32), "Q5_1": (24, 32),
    "Q8_0": (34, 32), "Q8_1": (36, 32), "IQ4_NL": (18, 32), "MXFP4": (17, 32),
    "Q2_K": (84, 256), "Q3_K": (110, 256), "Q4_K": (144, 256), "Q5_K": (176, 256),
    "Q6_K": (210, 256), "Q8_K": (292, 256), "IQ2_XXS": (66, 256), "IQ2_XS": (74, 256),
    "IQ3_XXS": (98, 256), "IQ1_S": (50, 256), "IQ3_S": (110, 256), "IQ2_S": (82, 256),
    "IQ4_XS": (136, 256), "IQ1_M": (56, 256), "TQ1_0": (54, 256), "TQ2_0": (66, 256),
}


def tensor_bytes(ggml_type: str, shape: Tuple[int, ...]) -> Optional[int]:
    """Bytes of one tensor (elements x block bytes / block elements); None for an unknown type."""
    blocks = GGML_TYPE_BLOCKS.get(ggml_type.upper())
    if blocks is None:
        return None
    elements = 1
    for dim in shape:
        elements *= int(dim)
    return elements * blocks[0] // blocks[1]


@dataclass(frozen=True)
class GgufLayout:
    """What the footprint estimates need of one model, read from /api/show."""

    architecture: str
    block_count: int
    head_count: int
    head_count_kv: int
    embedding_length: int
    feed_forward_length: int
    key_length: int
    value_length: int
    context_length: int  # trained context (0: not given)
    vocab_size: int
    group_bytes: Mapping[str, int]  # "blk.0", "output", "token_embd", ... -> bytes
    tensor_count: int

    def group(self, name: str) -> int:
        """Return the bytes of one layer's tensors; 0 when the model has no such layer."""
        return int(self.group_bytes.get(name, 0))

    @property
    def weights_bytes(self) -> int:
        """Every tensor's bytes."""
        return sum(self.group_bytes.values())


def _group_of(tensor_name: str) -> str:
    """Return the layer of a tensor as Ollama groups them (`blk.3.attn_q.weight`: `blk.3`)."""
    parts = tensor_name.split(".")
    if parts[0] == "blk" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def layout_from_show(show_reply: Optional[Mapping[str, Any]]) -> Optional[GgufLayout]:
    """
    Read a model's layout from an /api/show reply; None when it lacks what an estimate needs.

    Tensors are listed by /api/show (name, ggml type, shape). The vocabulary size comes from
    `<arch>.vocab_size`, else the embedding table's second dimension.
    """
    if not show_reply:
        return None
    info = show_reply.get("model_info") or {}
    arch = str(info.get("general.architecture") or "")
    tensors = show_reply.get("tensors") or []
    if not arch or not isinstance(tensors, list) or not tensors:
        return None

    def number(name: str, default: int = 0) -> int:
        value = info.get(f"{arch}.{name}")
        if isinstance(value, list):  # per-layer values in some models: take the largest
            value = max((v for v in value if isinstance(v, (int, float))), default=None)
        return int(value) if isinstance(value, (int, float)) else default

    groups: Dict[str, int] = {}
    vocab = number("vocab_size")
    for tensor in tensors:
        if not isinstance(tensor, Mapping):
            return None
        try:
            shape = tuple(int(d) for d in tensor.get("shape") or ())
        except (TypeError, ValueError):
            return None
        size = tensor_bytes(str(tensor.get("type") or ""), shape)
        if size is None or any(d < 0 for d in shape):
            return None
        name = str(tensor.get("name") or "")
        groups[_group_of(name)] = groups.get(_group_of(name), 0) + size
        if name == "token_embd.weight" and not vocab and len(shape) == 2:
            vocab = shape[1]
    blocks, heads = number("block_count"), number("attention.head_count")
    embedding = number("embedding_length")
    if blocks <= 0 or heads <= 0 or embedding <= 0:
        return None
    head_dim = embedding // heads
    return GgufLayout(
        architecture=arch, block_count=blocks, head_count=heads,
        head_count_kv=number("attention.head_count_kv", heads), embedding_length=embedding,
        feed_forward_length=number("feed_forward_length", 4 * embedding),
        key_length=number("attention.key_length", head_dim),
        value_length=number("attention.value_length", head_dim),
        context_length=number("context_length"), vocab_size=vocab, group_bytes=groups,
        tensor_count=len(tensors))
