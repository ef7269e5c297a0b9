"""
The simulator's ground truth for a loaded model's memory: Ollama's own estimate, on a Thor iGPU.

Follows Ollama v0.12.6 (the version the scenarios report), read from its source:
- `llm/memory.go` `estimateGPULayers`: per-GPU allocation = the GPU's minimum memory (CUDA:
  457 MiB, `discover/gpu.go`) + every repeating layer (weights + that layer's KV cache) + the
  output layer (output + output_norm tensors) + the compute graph (`graphFullOffload` when every
  layer fits, as on a 128 GB unified-memory Thor);
- `fs/ggml/ggml.go` `GraphSize`: context = num_ctx x num_parallel; KV per attention layer =
  context x (key length + value length) x head_count_kv x bytes per element of the cache type
  (`kvCacheBytesPerElement`: f16 2, q8_0 1, q4_0 0.5); graph by architecture (llama, qwen2,
  gptoss; others fall back to gqa x kv / 6), batch = min(num_ctx, num_batch 512);
- `envconfig`: OLLAMA_NUM_PARALLEL defaults to 1.
The GGUF tensor data is taken as the file size (the header is a few MB); the catalog carries the
vocabulary size the graph needs. Nothing here comes from the product's footprint model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import ModelSpec

MIB = 1024 ** 2
CUDA_MINIMUM_MEMORY_BYTES = 457 * MIB  # discover/gpu.go, CUDA devices
DEFAULT_NUM_BATCH = 512
KV_BYTES_PER_ELEMENT = {'f16': 2.0, 'q8_0': 1.0, 'q4_0': 0.5, 'f32': 4.0}


@dataclass(frozen=True)
class OllamaEstimate:
    """One model's memory as Ollama estimates it (real machine's bytes)."""

    weights_bytes: int
    kv_cache_bytes: int
    graph_bytes: int
    minimum_bytes: int
    on_gpu: bool

    @property
    def total_bytes(self) -> int:
        """Ollama's TotalSize: what /api/ps reports as `size`."""
        return self.weights_bytes + self.kv_cache_bytes + self.graph_bytes + self.minimum_bytes

    @property
    def vram_bytes(self) -> int:
        """Ollama's VRAMSize: /api/ps `size_vram` (all of it on an iGPU, none CPU-only)."""
        return self.total_bytes if self.on_gpu else 0


def kv_bytes_per_element(cache_type: str) -> float:
    """Bytes per KV element of an OLLAMA_KV_CACHE_TYPE; ValueError for an unknown type."""
    try:
        return KV_BYTES_PER_ELEMENT[cache_type]
    except KeyError:
        raise ValueError(f'unknown kv cache type {cache_type!r} '
                         f'(known: {", ".join(KV_BYTES_PER_ELEMENT)})') from None


def _graph_full_offload(spec: ModelSpec, context: int, batch: int, kv_total: int) -> int:
    embedding = spec.embedding_length
    heads = spec.head_count
    vocab = spec.vocab_size
    if spec.architecture in ('llama', 'llama4'):
        return max(4 * batch * (1 + 4 * embedding + context * (1 + heads)),
                   4 * batch * (embedding + vocab))
    if spec.architecture == 'qwen2':
        return max(4 * batch * (embedding + vocab),
                   4 * batch * (1 + 2 * embedding + context + context * heads))
    if spec.architecture in ('gptoss', 'gpt-oss'):
        return 2 * heads // max(1, spec.head_count_kv) * kv_total // 6
    return heads // max(1, spec.head_count_kv) * kv_total // 6  # Ollama's fallback


def estimate_model_memory(spec: ModelSpec, *, num_ctx: int, num_parallel: int = 1,
                          kv_cache_type: str = 'f16', on_gpu: bool = True,
                          num_batch: int = DEFAULT_NUM_BATCH) -> OllamaEstimate:
    """Ollama's estimate of one loaded model (weights, KV cache, graph, GPU minimum)."""
    context = num_ctx * max(1, num_parallel)
    head_dim = spec.embedding_length // spec.head_count
    key_length = int(spec.extra_info.get(f'{spec.architecture}.attention.key_length', head_dim))
    per_layer = context * (key_length + key_length) * spec.head_count_kv
    kv_total = int(spec.block_count * per_layer * kv_bytes_per_element(kv_cache_type))
    batch = min(num_ctx, num_batch)
    graph = _graph_full_offload(spec, context, batch, kv_total)
    return OllamaEstimate(weights_bytes=spec.size_bytes, kv_cache_bytes=kv_total,
                          graph_bytes=int(graph),
                          minimum_bytes=CUDA_MINIMUM_MEMORY_BYTES if on_gpu else 0,
                          on_gpu=on_gpu)
