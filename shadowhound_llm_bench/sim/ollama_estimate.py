"""
The simulator's ground truth for a loaded model's memory: what Ollama reports in /api/ps `size`.

Calibrated on the real servers (CPU builds of v0.12.6 and v0.32.15; benchmarks/footprint_real.py):
within 2 % of their `/api/ps` size on 11 synthetic llama models (F16, Q8_0, Q4_K_M; widths
512-1280, 4-16 layers, GQA 1-8, contexts 2k-8k given and default), computed from the same GGUF
metadata (`/api/tags` size, `/api/show` hyperparameters). Two releases, two accountings:
- v0.12.x (`llm/memory.go` `estimateGPULayers`, read from the source): the GPU's minimum memory
  (CUDA: 457 MiB, `discover/gpu.go`; none on CPU) + one repeating layer held as a buffer + every
  repeating layer (weights + its KV cache) + the output layer (output_norm + output, the token
  embedding table not counted) + the compute graph (`fs/ggml/ggml.go` `GraphSize`, full
  offload; batch = min(num_ctx, 512)); the context is clamped to the trained one.
- v0.30 and later (`llm/llama_server.go` `MemorySize`): the sum of the buffers llama-server logs,
  each rounded to 0.01 MiB: every tensor, the KV cache of the context rounded up to 256 cells,
  the last token's logits and the compute buffer (the f16 attention mask over the context for
  one ubatch beside one layer's f32 activations); the batch is 1024 above 4096 tokens.
The weights are split from the file size: the embedding table and the output matrix by the
quantization's types (Q4_K_M: Q4_K and Q6_K), the rest shared evenly by the layers. Nothing here
comes from the product's footprint model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import ModelSpec

MIB = 1024 ** 2
CUDA_MINIMUM_MEMORY_BYTES = 457 * MIB  # discover/gpu.go, CUDA devices
DEFAULT_NUM_BATCH = 512
KV_BYTES_PER_ELEMENT = {'f16': 2.0, 'q8_0': 1.0, 'q4_0': 0.5, 'f32': 4.0}
# Bytes per weight of the embedding table and of the output matrix, by quantization level.
_TABLE_BYTES_PER_WEIGHT = {'F16': (2.0, 2.0), 'BF16': (2.0, 2.0), 'F32': (4.0, 4.0),
                           'Q8_0': (34 / 32, 34 / 32), 'Q4_K_M': (144 / 256, 210 / 256),
                           'Q4_K_S': (144 / 256, 210 / 256), 'Q5_K_M': (176 / 256, 210 / 256),
                           'Q6_K': (210 / 256, 210 / 256), 'Q4_0': (18 / 32, 210 / 256)}
# The GGUF header: metadata and the vocabulary's strings (about 20 bytes a token).
_HEADER_BYTES_PER_TOKEN = 20


def first_llama_server_release(version: str) -> bool:
    """Tell whether a release serves models through llama-server (0.30 and later)."""
    numbers = []
    for part in version.lstrip('v').split('-')[0].split('+')[0].split('.')[:2]:
        numbers.append(int(part) if part.isdigit() else 0)
    return tuple(numbers) >= (0, 30)


@dataclass(frozen=True)
class OllamaEstimate:
    """One model's memory as Ollama reports it (real machine's bytes)."""

    weights_bytes: int
    kv_cache_bytes: int
    graph_bytes: int
    minimum_bytes: int
    on_gpu: bool
    buffer_layer_bytes: int = 0  # v0.12.x: one more repeating layer (weights + KV) held spare

    @property
    def total_bytes(self) -> int:
        """Ollama's TotalSize: what /api/ps reports as `size`."""
        return (self.weights_bytes + self.kv_cache_bytes + self.graph_bytes + self.minimum_bytes
                + self.buffer_layer_bytes)

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


@dataclass(frozen=True)
class _Split:
    """The file's weights as the estimate needs them."""

    embedding_table: int
    output_matrix: int  # 0 when the embedding table is tied to the output
    per_layer: int
    feed_forward: int
    layers: int

    @property
    def all_tensors(self) -> int:
        return self.embedding_table + self.output_matrix + self.per_layer * self.layers

    @property
    def output_layer(self) -> int:
        """Return what estimateGPULayers counts as the output layer (the table when tied)."""
        return self.output_matrix or self.embedding_table


def _split(spec: ModelSpec) -> _Split:
    table = spec.vocab_size * spec.embedding_length
    embed_bpw, output_bpw = _TABLE_BYTES_PER_WEIGHT.get(spec.quantization_level.upper(),
                                                        (0.5625, 0.8203))
    if spec.tied_embeddings:  # quantizers give the shared table the output's type
        embedding_table, output_matrix = int(table * output_bpw), 0
    else:
        embedding_table, output_matrix = int(table * embed_bpw), int(table * output_bpw)
    header = _HEADER_BYTES_PER_TOKEN * spec.vocab_size
    layers_bytes = max(0, spec.size_bytes - header - embedding_table - output_matrix)
    blocks = max(1, spec.block_count)
    feed_forward = int(spec.extra_info.get(f'{spec.architecture}.feed_forward_length', 0) or 0)
    if not feed_forward:  # from the parameter count: q, o, k, v and three feed-forward matrices
        embedding = spec.embedding_length
        kv_width = embedding // spec.head_count * spec.head_count_kv
        per_layer_params = (spec.parameter_count - 2 * table) / blocks
        feed_forward = max(embedding, int((per_layer_params - 2 * embedding * embedding
                                           - 2 * embedding * kv_width) / (3 * embedding)))
    return _Split(embedding_table, output_matrix, layers_bytes // blocks, feed_forward, blocks)


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


def _head_width(spec: ModelSpec) -> int:
    head_dim = spec.embedding_length // spec.head_count
    return int(spec.extra_info.get(f'{spec.architecture}.attention.key_length', head_dim))


def _estimate_llamarunner(spec: ModelSpec, *, num_ctx: int, num_parallel: int,
                          kv_cache_type: str, on_gpu: bool, num_batch: int) -> OllamaEstimate:
    context = num_ctx * max(1, num_parallel)
    kv_layer = int(context * 2 * _head_width(spec) * spec.head_count_kv
                   * kv_bytes_per_element(kv_cache_type))
    kv_total = spec.block_count * kv_layer
    split = _split(spec)
    weights = spec.block_count * split.per_layer + split.output_layer
    graph = _graph_full_offload(spec, context, min(num_ctx, num_batch), kv_total)
    return OllamaEstimate(weights_bytes=weights, kv_cache_bytes=kv_total,
                          graph_bytes=int(graph),
                          minimum_bytes=CUDA_MINIMUM_MEMORY_BYTES if on_gpu else 0,
                          on_gpu=on_gpu, buffer_layer_bytes=split.per_layer + kv_layer)


def _logged_mib(n_bytes: float) -> int:
    """One llama-server buffer as logged (%.2f MiB) and parsed back by Ollama."""
    return int(float(f'{n_bytes / MIB:.2f}') * MIB)


def _estimate_llama_server(spec: ModelSpec, *, num_ctx: int, num_parallel: int,
                           kv_cache_type: str, on_gpu: bool) -> OllamaEstimate:
    cells = -(-num_ctx * max(1, num_parallel) // 256) * 256
    kv = cells * 2 * _head_width(spec) * spec.head_count_kv * spec.block_count \
        * kv_bytes_per_element(kv_cache_type)
    ubatch = min(cells, 2048 if num_ctx > 32768 else 1024 if num_ctx > 4096 else 512)
    split = _split(spec)
    compute = (cells * ubatch * 2
               + 4 * ubatch * (4 * spec.embedding_length + 3 * split.feed_forward) + 20 * ubatch)
    logits = 4 * spec.vocab_size * max(1, num_parallel)
    return OllamaEstimate(weights_bytes=_logged_mib(split.all_tensors),
                          kv_cache_bytes=_logged_mib(kv),
                          graph_bytes=_logged_mib(compute) + _logged_mib(logits),
                          minimum_bytes=0, on_gpu=on_gpu)


def estimate_model_memory(spec: ModelSpec, *, num_ctx: int, num_parallel: int = 1,
                          kv_cache_type: str = 'f16', on_gpu: bool = True,
                          num_batch: int = DEFAULT_NUM_BATCH,
                          version: str = '0.12.6') -> OllamaEstimate:
    """Ollama's /api/ps size of one loaded model, as the given release accounts for it."""
    if spec.context_length and num_ctx > spec.context_length:
        num_ctx = spec.context_length  # llm/server.go: clamped to the trained context
    if first_llama_server_release(version):
        return _estimate_llama_server(spec, num_ctx=num_ctx, num_parallel=num_parallel,
                                      kv_cache_type=kv_cache_type, on_gpu=on_gpu)
    return _estimate_llamarunner(spec, num_ctx=num_ctx, num_parallel=num_parallel,
                                 kv_cache_type=kv_cache_type, on_gpu=on_gpu,
                                 num_batch=num_batch)
