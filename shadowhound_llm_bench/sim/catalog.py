"""The models the simulator knows: published sizes, GGUF metadata, speed and behaviour."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Mapping


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry. Sizes are the real machine's bytes (the scenario scales residency)."""

    name: str
    size_bytes: int  # GGUF file size as `ollama list` shows it
    architecture: str
    family: str
    parameter_count: int
    parameter_size: str  # as Ollama prints it, e.g. "14.7B"
    quantization_level: str
    block_count: int
    context_length: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    decode_tokens_per_s: float  # on the real machine (Jetson AGX Thor)
    prompt_tokens_per_s: float
    json_style: str = 'valid'  # valid | fenced | broken | invalid_schema | prose
    mcq_correct: bool = True
    instruction_style: str = 'good'  # good | chatty
    thinking: bool = False
    think_words: int = 120
    pulled: bool = True
    vocab_size: int = 152064  # tokenizer.ggml.tokens length (the compute graph needs it)
    capabilities: tuple = ('completion',)
    tied_embeddings: bool = False  # no output matrix: the embedding table is used for both
    extra_info: Mapping[str, object] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Return a stable sha256 hex digest of this model."""
        return hashlib.sha256(f'{self.name}:{self.size_bytes}'.encode()).hexdigest()

    def model_info(self) -> Dict[str, object]:
        """Return the /api/show model_info block (GGUF keys)."""
        arch = self.architecture
        info: Dict[str, object] = {
            'general.architecture': arch,
            'general.parameter_count': self.parameter_count,
            'general.file_type': 15 if self.quantization_level == 'Q4_K_M' else 7,
            'general.quantization_version': 2,
            f'{arch}.block_count': self.block_count,
            f'{arch}.context_length': self.context_length,
            f'{arch}.embedding_length': self.embedding_length,
            f'{arch}.attention.head_count': self.head_count,
            f'{arch}.attention.head_count_kv': self.head_count_kv,
        }
        info.update(self.extra_info)
        return info


def _spec(name: str, size: int, arch: str, family: str, params: int, psize: str, quant: str,
          blocks: int, ctx: int, emb: int, heads: int, kv: int, decode: float, prompt: float,
          **behaviour: object) -> ModelSpec:
    caps = ['completion']
    if behaviour.get('thinking'):
        caps.append('thinking')
    if behaviour.pop('tools', False):
        caps.append('tools')
    return ModelSpec(
        name=name, size_bytes=size, architecture=arch, family=family, parameter_count=params,
        parameter_size=psize, quantization_level=quant, block_count=blocks, context_length=ctx,
        embedding_length=emb, head_count=heads, head_count_kv=kv, decode_tokens_per_s=decode,
        prompt_tokens_per_s=prompt, capabilities=tuple(caps), **behaviour)


# Sizes as the Ollama library publishes them; architecture numbers from the GGUF headers;
# decode speeds as seen on a Jetson AGX Thor (memory-bandwidth bound, Q4).
BUILTIN_MODELS: List[ModelSpec] = [
    _spec('phi4:14b', 9053116391, 'phi3', 'phi3', 14659507200, '14.7B', 'Q4_K_M',
          40, 16384, 5120, 40, 10, 18.0, 420.0, tools=False, vocab_size=100352),
    _spec('qwen2.5-coder:32b', 19851349856, 'qwen2', 'qwen2', 32763876352, '32.8B', 'Q4_K_M',
          64, 32768, 5120, 40, 8, 8.5, 190.0, json_style='fenced', tools=True,
          vocab_size=152064),
    _spec('qwq:32b', 19851336256, 'qwen2', 'qwen2', 32763876352, '32.8B', 'Q4_K_M',
          64, 40960, 5120, 40, 8, 8.5, 190.0, thinking=True, think_words=160, tools=True,
          vocab_size=152064),
    _spec('llama3.3:70b', 42520413916, 'llama', 'llama', 70553706560, '70.6B', 'Q4_K_M',
          80, 131072, 8192, 64, 8, 4.2, 95.0, tools=True, vocab_size=128256),
    _spec('deepseek-r1:7b', 4683075271, 'qwen2', 'qwen2', 7615616512, '7.6B', 'Q4_K_M',
          28, 131072, 3584, 28, 4, 38.0, 900.0, thinking=True, think_words=140,
          json_style='broken', mcq_correct=False, vocab_size=152064),
    _spec('deepseek-r1:1.5b', 1117322599, 'qwen2', 'qwen2', 1777088000, '1.8B', 'Q4_K_M',
          28, 131072, 1536, 12, 2, 95.0, 2500.0, thinking=True, think_words=80,
          json_style='broken', mcq_correct=False, vocab_size=151936),
    _spec('llama3.1:8b', 4920753328, 'llama', 'llama', 8030261248, '8.0B', 'Q4_K_M',
          32, 131072, 4096, 32, 8, 34.0, 850.0, json_style='invalid_schema',
          mcq_correct=False, tools=True, vocab_size=128256),
    _spec('llama3.1:70b', 42520397704, 'llama', 'llama', 70553706560, '70.6B', 'Q4_K_M',
          80, 131072, 8192, 64, 8, 4.2, 95.0, tools=True, pulled=False, vocab_size=128256),
    _spec('gpt-oss:20b', 13780173734, 'gptoss', 'gptoss', 20914757184, '20.9B', 'MXFP4',
          24, 131072, 2880, 64, 8, 42.0, 1100.0, thinking=True, think_words=60, tools=True,
          pulled=False, extra_info={'gptoss.attention.key_length': 64,
                                    'gptoss.expert_count': 32, 'gptoss.expert_used_count': 4},
          vocab_size=201088),
    _spec('qwen2.5:0.5b', 397821319, 'qwen2', 'qwen2', 494032768, '494.03M', 'Q4_K_M',
          24, 32768, 896, 14, 2, 160.0, 4000.0, json_style='broken', mcq_correct=False,
          instruction_style='chatty', tools=True, vocab_size=151936, tied_embeddings=True),
    _spec('llama3.2:1b', 1321098329, 'llama', 'llama', 1235814432, '1.2B', 'Q8_0',
          16, 131072, 2048, 32, 8, 110.0, 3000.0, json_style='fenced', mcq_correct=False,
          tools=True, vocab_size=128256, tied_embeddings=True),
    _spec('smollm2:135m', 270898672, 'llama', 'llama', 134515008, '134.52M', 'F16',
          30, 8192, 576, 9, 3, 220.0, 6000.0, json_style='prose', mcq_correct=False,
          instruction_style='chatty', pulled=False, vocab_size=49152,
          tied_embeddings=True),
]


def builtin_catalog() -> Dict[str, ModelSpec]:
    """Return the built-in catalog by name."""
    return {spec.name: spec for spec in BUILTIN_MODELS}


def apply_overrides(catalog: Dict[str, ModelSpec], *, pulled: Iterable[str] = (),
                    not_pulled: Iterable[str] = (),
                    overrides: Mapping[str, Mapping[str, object]] | None = None
                    ) -> Dict[str, ModelSpec]:
    """Return a catalog with pulled flags and per-model field overrides from a scenario."""
    result = dict(catalog)
    for name, fields in (overrides or {}).items():
        if name in result:
            result[name] = replace(result[name], **dict(fields))
        else:
            result[name] = _spec(name=name, **dict(fields))  # type: ignore[arg-type]
    for name in pulled:
        result[name] = replace(result[name], pulled=True)
    for name in not_pulled:
        result[name] = replace(result[name], pulled=False)
    return result


def normalise_name(name: str) -> str:
    """Ollama's name rule: no tag means ':latest'."""
    return name if ':' in name else name + ':latest'


def spec_from_ollama(name: str, tag: Mapping[str, object],
                     show: Mapping[str, object]) -> ModelSpec:
    """Make a catalog entry of a model a real server lists (/api/tags entry, /api/show reply)."""
    info = dict(show.get('model_info') or {})  # type: ignore[call-overload]
    details = dict(show.get('details') or {})  # type: ignore[call-overload]
    arch = str(info.get('general.architecture') or 'llama')

    def number(key: str, default: int = 0) -> int:
        value = info.get(f'{arch}.{key}', default)
        return int(value) if isinstance(value, (int, float)) else default

    heads = number('attention.head_count', 1)
    extra = {f'{arch}.feed_forward_length': number('feed_forward_length')}
    return ModelSpec(
        name=name, size_bytes=int(tag.get('size') or 0),  # type: ignore[call-overload]
        architecture=arch, family=str(details.get('family') or arch),
        parameter_count=int(info.get('general.parameter_count') or 0),
        parameter_size=str(details.get('parameter_size') or ''),
        quantization_level=str(details.get('quantization_level') or ''),
        block_count=number('block_count'), context_length=number('context_length'),
        embedding_length=number('embedding_length'), head_count=heads,
        head_count_kv=number('attention.head_count_kv', heads), decode_tokens_per_s=1.0,
        prompt_tokens_per_s=1.0, vocab_size=number('vocab_size', 32000), extra_info=extra)
