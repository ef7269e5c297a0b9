"""
The size Ollama reports for a loaded model (/api/ps `size`), per release, from /api/show.

Two formulas, read from Ollama's source and checked against the real servers (CPU builds):
- `llamarunner` (releases before 0.12.11; calibrated on 0.12.6): `llm/memory.go`
  `estimateGPULayers` -> TotalSize = one extra layer (blk.0 + its KV) as a buffer + every
  repeating layer (weights + KV) + the output layer (output_norm + output, else token_embd)
  + the compute graph (`fs/ggml/ggml.go` `GraphSize`, full offload) + the GPU's minimum
  memory (0 on CPU). The token embedding table is not counted when an output tensor exists.
- `llama-server` (releases from 0.30.0; calibrated on 0.32.15): `llm/llama_server.go`
  `MemorySize` sums the buffers llama-server logs (model, KV, output, compute, in MiB with
  two decimals): every tensor, the KV cache of n_ctx cells, the logits of one sequence and
  the compute buffer of a ubatch with flash attention. The batch follows `server/sched.go`
  `generationBatchForContext` (1024 above 4096 tokens of context, else 512).
Releases between 0.12.11 and 0.30.0 (the Ollama engine's own memory accounting) are not
modelled: they get the llama-server formula, marked as not calibrated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, List, Mapping, Optional, Tuple

from .gguf_layout import GgufLayout

MIB = 1024 ** 2
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "f32": 4.0}
DEFAULT_NUM_BATCH = 512


def parse_version(text: str) -> Optional[Tuple[int, int, int]]:
    """`0.12.6` (also `v0.12.6`, `0.12.6-rc1`) -> (0, 12, 6); None for what is not a version."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def default_num_ctx(server_version: str, show_reply: Optional[Mapping[str, Any]] = None, *,
                    gpu_total_bytes: int = 0) -> int:
    """
    Return the context a load without num_ctx gets.

    The model's own `num_ctx` parameter, else the release's default: 4096 up to 0.12.x; from
    0.30 by the GPUs' memory (4k, 32k from 23 GiB, 256k from 47 GiB; `server/routes.go`).
    """
    for line in str((show_reply or {}).get("parameters") or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "num_ctx" and words[1].isdigit():
            return int(words[1])
    version = parse_version(server_version) or NEWEST_CALIBRATED
    if version < (0, 30, 0):
        return 4096
    if gpu_total_bytes >= 47 * 1024 ** 3:
        return 262144
    return 32768 if gpu_total_bytes >= 23 * 1024 ** 3 else 4096


@dataclass(frozen=True)
class SizeEstimate:
    """One model's /api/ps size as a release computes it, with its parts and the formula used."""

    total_bytes: int
    weights_bytes: int
    kv_cache_bytes: int
    graph_bytes: int
    other_bytes: int  # llamarunner: the buffer layer and GPU minimum; llama-server: logits
    formula: str
    calibrated_on: str  # the release the formula was checked against ("" when not)
    num_ctx: int  # the context the server allocates (clamped to the trained context)
    note: str = ""

    def describe(self) -> str:
        """Say what the estimate is made of, in GiB-free words for the report."""
        return (f"Ollama {self.formula} estimate at num_ctx {self.num_ctx}"
                + (f" (formula checked on {self.calibrated_on})" if self.calibrated_on else "")
                + (f"; {self.note}" if self.note else ""))


def _kv_per_layer(layout: GgufLayout, context: int, cache_type: str) -> int:
    per_element = KV_BYTES_PER_ELEMENT.get(cache_type, 2.0)
    return int(context * (layout.key_length + layout.value_length) * layout.head_count_kv
               * per_element)


def _graph_full_offload(layout: GgufLayout, context: int, batch: int, kv_total: int) -> int:
    embedding, heads, vocab = layout.embedding_length, layout.head_count, layout.vocab_size
    if layout.architecture in ("llama", "llama4"):
        return max(4 * batch * (1 + 4 * embedding + context * (1 + heads)),
                   4 * batch * (embedding + vocab))
    if layout.architecture == "qwen2":
        return max(4 * batch * (embedding + vocab),
                   4 * batch * (1 + 2 * embedding + context + context * heads))
    return heads // max(1, layout.head_count_kv) * kv_total // 6  # Ollama's fallback


def llamarunner_size(layout: GgufLayout, *, num_ctx: int, num_parallel: int = 1,
                     kv_cache_type: str = "f16", gpu_minimum_bytes: int = 0,
                     num_batch: int = DEFAULT_NUM_BATCH) -> SizeEstimate:
    """Return `estimateGPULayers` TotalSize when every layer fits (CPU, or one GPU with room)."""
    if layout.context_length and num_ctx > layout.context_length:
        num_ctx = layout.context_length  # llm/server.go: clamped to the trained context
    context = num_ctx * max(1, num_parallel)
    kv_layer = _kv_per_layer(layout, context, kv_cache_type)
    kv_total = kv_layer * layout.block_count
    repeating = sum(layout.group(f"blk.{i}") for i in range(layout.block_count))
    output = layout.group("output_norm") + (layout.group("output") or layout.group("token_embd"))
    buffer_layer = layout.group("blk.0") + kv_layer
    graph = _graph_full_offload(layout, context, min(num_ctx, num_batch), kv_total)
    total = buffer_layer + repeating + kv_total + output + graph + gpu_minimum_bytes
    return SizeEstimate(total, repeating + output, kv_total, graph,
                        buffer_layer + gpu_minimum_bytes, "llamarunner", "0.12.6", num_ctx)


def llama_server_batch(num_ctx: int) -> int:
    """Return the batch Ollama gives llama-server for a completion model (server/sched.go)."""
    if num_ctx > 32768:
        return 2048
    return 1024 if num_ctx > 4096 else 512


def _compute_buffer(layout: GgufLayout, n_ctx: int, ubatch: int) -> int:
    """
    llama-server's CPU compute buffer with flash attention, for one ubatch.

    The graph allocator's peak holds the f16 attention mask over the whole context and one
    layer's activations (four of the embedding width, three of the feed-forward width: gate,
    up and their product), in f32; the logits of the last token live in the output buffer.
    Fitted on 0.32.15's log lines (widths 512-1280, contexts 2k-8k); width 2048 held out matched.
    """
    mask = n_ctx * _pad(ubatch, 64) * 2
    activations = 4 * ubatch * (4 * layout.embedding_length + 3 * layout.feed_forward_length)
    return mask + activations + 20 * ubatch  # positions, ids and row indices


def _pad(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def _mib2(n_bytes: float) -> int:
    """Round a buffer as llama-server logs it (MiB, two decimals) and Ollama parses it back."""
    return int(round(n_bytes / MIB, 2) * MIB)


def llama_server_size(layout: GgufLayout, *, num_ctx: int, num_parallel: int = 1,
                      kv_cache_type: str = "f16") -> SizeEstimate:
    """Return the sum of llama-server's buffers on a CPU (`MemorySize`)."""
    if layout.context_length and num_ctx > layout.context_length:
        num_ctx = layout.context_length
    n_ctx = _pad(num_ctx * max(1, num_parallel), 256)
    weights = _mib2(layout.weights_bytes)
    kv = _mib2(_kv_per_layer(layout, n_ctx, kv_cache_type) * layout.block_count)
    ubatch = min(llama_server_batch(num_ctx), n_ctx)
    graph = _mib2(_compute_buffer(layout, n_ctx, ubatch))
    logits = _mib2(4 * layout.vocab_size * max(1, num_parallel))
    return SizeEstimate(weights + kv + graph + logits, weights, kv, graph, logits,
                        "llama-server", "0.32.15", num_ctx)


@dataclass(frozen=True)
class _Formula:
    first: Tuple[int, int, int]
    function: Callable[..., SizeEstimate]
    calibrated: bool


# Oldest first; a release uses the last formula whose first release it has reached.
FORMULAS: List[_Formula] = [
    _Formula((0, 0, 0), llamarunner_size, True),
    _Formula((0, 12, 11), llama_server_size, False),  # the Ollama engine's accounting
    _Formula((0, 30, 0), llama_server_size, True),
]
NEWEST_CALIBRATED = (0, 32, 15)


def ollama_size_estimate(layout: GgufLayout, *, server_version: str, num_ctx: int,
                         num_parallel: int = 1, kv_cache_type: str = "f16") -> SizeEstimate:
    """
    Return the /api/ps size the given Ollama release will report for this model at num_ctx.

    An unknown or newer release uses the newest formula and says so in the estimate's note.
    """
    version = parse_version(server_version)
    chosen = FORMULAS[-1]
    note = ""
    if version is None:
        note = f"server version {server_version!r} unknown: newest formula used"
    else:
        for formula in FORMULAS:
            if version >= formula.first:
                chosen = formula
        if version > NEWEST_CALIBRATED:
            note = (f"Ollama {server_version} is newer than the newest release checked "
                    f"({'.'.join(map(str, NEWEST_CALIBRATED))}): its formula is assumed")
        elif not chosen.calibrated:
            note = f"Ollama {server_version}'s own accounting is not modelled: nearest formula"
    estimate = chosen.function(layout, num_ctx=num_ctx, num_parallel=num_parallel,
                               kv_cache_type=kv_cache_type)
    if note:
        estimate = replace(estimate, note=note, calibrated_on="" if not chosen.calibrated
                           else estimate.calibrated_on)
    return estimate
