"""Synthetic llama-architecture models of chosen shapes, made once and kept in the cache."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional

from .dist import REPO_ROOT, FileLock, archive_dirs, cache_root

QUANTIZATIONS = ('f16', 'q8_0', 'q4_k_m')
MAKE_DEADLINE_S = 600.0


@dataclass(frozen=True)
class ModelShape:
    """One model: `make_model.py`'s shape arguments and the quantization of the copy served."""

    base: str
    dim: int = 768
    layers: int = 6
    ff: int = 2048
    heads: int = 12
    kv_heads: int = 4
    ctx: int = 4096
    vocab: int = 32000
    seed: int = 0
    quant: str = 'f16'  # f16 | q8_0 | q4_k_m

    @property
    def name(self) -> str:
        """Return the model's name on the server, e.g. `shb-tiny:q4_k_m`."""
        return f'{self.base}:{self.quant}'

    def with_quant(self, quant: str) -> 'ModelShape':
        """Return the same weights in another quantization."""
        return ModelShape(**{**self.__dict__, 'quant': quant})

    def make_args(self) -> List[str]:
        """Arguments of make_model.py for the F16 file."""
        return ['--name', self.base, '--dim', str(self.dim), '--layers', str(self.layers),
                '--ff', str(self.ff), '--heads', str(self.heads),
                '--kv-heads', str(self.kv_heads), '--ctx', str(self.ctx),
                '--vocab', str(self.vocab), '--seed', str(self.seed)]


TINY = ModelShape('shb-tiny')  # 87M parameters, 175 MB F16 (the shared README's tiny model)
BIG = ModelShape('shb-big', dim=2048, layers=6, ff=5632, heads=16, kv_heads=4, ctx=8192,
                 seed=1)  # 402M parameters, 804 MB F16: loads in about 1.5 s on this CPU
STANDARD_SHAPES = (TINY, TINY.with_quant('q4_k_m'), BIG)


def models_dir() -> Path:
    """Return the OLLAMA_MODELS folder every started server reads (made models live here)."""
    return cache_root() / 'models'


def _manifest(shape: ModelShape) -> Path:
    base, _, tag = shape.name.partition(':')
    return models_dir() / 'manifests' / 'registry.ollama.ai' / 'library' / base / tag


def make_model_script() -> Path:
    """Return the shared folder's make_model.py (needs PyPI gguf and numpy)."""
    for folder in archive_dirs():
        if (folder / 'make_model.py').exists():
            return folder / 'make_model.py'
    raise LookupError(f'make_model.py not found beside the Ollama archives ({REPO_ROOT.parent})')


def _run(argv: List[str], *, env: Optional[dict] = None, cwd: Optional[Path] = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=MAKE_DEADLINE_S,
                          env=env, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f'{" ".join(argv[:3])} ... failed ({done.returncode}):\n'
                           f'{(done.stdout + done.stderr)[-2000:]}')


def ensure_models(server: 'object', shapes: Iterable[ModelShape]) -> List[str]:
    """
    Make every shape that the cache lacks, through `server` (a RealOllama), and return the names.

    The F16 file comes from make_model.py; quantized copies from the server's `ollama create
    --quantize`, as Ollama's users make them. Runs under the cache's lock: parallel runs make
    each model once.
    """
    shapes = list(shapes)
    names = [s.name for s in shapes]
    with FileLock(cache_root() / '.models.lock'):
        missing = [s for s in shapes if not _manifest(s).exists()]
        if not missing:
            return names
        env = {**os.environ, 'OLLAMA_HOST': server.host_port}
        with tempfile.TemporaryDirectory(prefix='shb-gguf-', dir=cache_root()) as work:
            for shape in missing:
                gguf = Path(work) / f'{shape.base}.gguf'
                if not gguf.exists():
                    _run([sys.executable, str(make_model_script()), str(gguf)]
                         + shape.make_args())
                (Path(work) / 'Modelfile').write_text(f'FROM {gguf}\n')
                argv = [str(server.dist.binary), 'create', shape.name, '-f', 'Modelfile']
                if shape.quant != 'f16':
                    argv += ['--quantize', shape.quant.upper()]
                _run(argv, env=env, cwd=Path(work))
    return names
