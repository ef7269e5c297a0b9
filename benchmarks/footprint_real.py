"""
The product's footprint prediction and the simulator's estimate against the real Ollama.

Starts each real release found (../shared/ollama or SHB_OLLAMA_DIST), makes the footprint shapes
once (real_ollama/footprint_shapes.py), loads each model at its context (given in the request,
or the server's default), reads `/api/ps` size, and prints per release: real size, the product's
prediction (ollama_footprint through footprint, from /api/version, /api/tags and
/api/show only) and the simulator's estimate (sim/ollama_estimate.py), with their errors.

    python benchmarks/footprint_real.py [--versions 0.12.6 0.32.15] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shadowhound_llm_bench import real_ollama  # noqa: E402
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient  # noqa: E402
from shadowhound_llm_bench.core.memory.footprint import (  # noqa: E402
    FootprintPredictor, metadata_from_ollama)
from shadowhound_llm_bench.core.ollama.model_metadata import find_tag  # noqa: E402
from shadowhound_llm_bench.core.ollama.ollama_footprint import default_num_ctx  # noqa: E402
from shadowhound_llm_bench.real_ollama.footprint_shapes import (  # noqa: E402
    FOOTPRINT_CASES, SMOKE_CASES, FootprintCase)
from shadowhound_llm_bench.sim.catalog import spec_from_ollama  # noqa: E402
from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory  # noqa: E402

LOAD_DEADLINE_S = 120.0
UNLOAD_DEADLINE_S = 30.0
MIB = 1024 ** 2


@dataclass(frozen=True)
class FootprintRow:
    """One model loaded on one release: the real size and both estimates."""

    version: str
    case: FootprintCase
    real_bytes: int
    predicted_bytes: int
    prediction_detail: str
    sim_bytes: int

    @property
    def predicted_error(self) -> float:
        """Relative error of the product's prediction (0.01 = 1 %)."""
        return (self.predicted_bytes - self.real_bytes) / self.real_bytes

    @property
    def sim_error(self) -> float:
        """Relative error of the simulator's estimate."""
        return (self.sim_bytes - self.real_bytes) / self.real_bytes


def _unload(client: OllamaClient, model: str) -> None:
    client.unload(model)
    end = time.monotonic() + UNLOAD_DEADLINE_S
    while time.monotonic() < end and client.ps():
        time.sleep(0.05)


def measure_release(server: real_ollama.RealOllama,
                    cases: Sequence[FootprintCase]) -> List[FootprintRow]:
    """Load every case on one server and compare its /api/ps size with both estimates."""
    real_ollama.ensure_models(server, dict.fromkeys(c.shape for c in cases))
    rows = []
    with OllamaClient(base_url=server.base_url) as client:
        version = client.version()
        tags = client.tags()
        for case in cases:
            name = case.shape.name
            tag, show = find_tag(tags, name), client.show(name)
            client.load(name, keep_alive='10m', deadline_s=LOAD_DEADLINE_S,
                        options={'num_ctx': case.num_ctx} if case.num_ctx else None)
            real = next(int(m['size']) for m in client.ps() if m.get('name') == name)
            _unload(client, name)
            num_ctx = case.num_ctx or default_num_ctx(version, show)
            prediction = FootprintPredictor(num_ctx=num_ctx).predict(
                name, metadata=metadata_from_ollama(tag, show, version))
            sim = estimate_model_memory(spec_from_ollama(name, tag or {}, show), num_ctx=num_ctx,
                                        on_gpu=False, version=version)
            rows.append(FootprintRow(version, case, real, prediction.footprint_bytes,
                                     prediction.detail, sim.total_bytes))
    return rows


def table(rows: Iterable[FootprintRow]) -> str:
    """Markdown table of one release's rows."""
    lines = ['| shape | quant | ctx | GQA | real MiB | product MiB | error | sim MiB | error |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        s = r.case.shape
        gqa = f'{s.heads // s.kv_heads}:1' if s.kv_heads != s.heads else 'no'
        shape = f'{s.base} d{s.dim} L{s.layers} ff{s.ff} h{s.heads}/{s.kv_heads} v{s.vocab}'
        lines.append(f'| {shape} | {s.quant} | {r.case.num_ctx or "default"} | {gqa} | '
                     f'{r.real_bytes / MIB:.1f} | {r.predicted_bytes / MIB:.1f} | '
                     f'{r.predicted_error:+.2%} | {r.sim_bytes / MIB:.1f} | {r.sim_error:+.2%} |')
    return '\n'.join(lines)


def run(versions: Optional[Sequence[str]], cases: Sequence[FootprintCase]) -> List[FootprintRow]:
    """Measure every release asked for (default: every one found) and print its table."""
    dists = [d for d in real_ollama.available_dists() if not versions or d.version in versions]
    if not dists:
        raise SystemExit('no real Ollama release found (../shared/ollama, SHB_OLLAMA_DIST, PATH)')
    every: List[FootprintRow] = []
    for dist in dists:
        with real_ollama.start_local_server(dist) as server:
            rows = measure_release(server, cases)
        every += rows
        print(f'\nOllama {dist.version} (CPU build, local process): /api/ps size vs predictions')
        print(table(rows))
        print(f'max |error|: product {max(abs(r.predicted_error) for r in rows):.2%}, '
              f'simulator {max(abs(r.sim_error) for r in rows):.2%}; formula: '
              f'{rows[0].prediction_detail.split(":")[0]}')
    return every


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--versions', nargs='*', help='releases to measure (default: all found)')
    parser.add_argument('--smoke', action='store_true', help='three shapes only')
    args = parser.parse_args(argv)
    rows = run(args.versions, SMOKE_CASES if args.smoke else FOOTPRINT_CASES)
    return 0 if all(abs(r.predicted_error) <= 0.05 for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
