"""Run folders written record by record as the runner writes them, with chosen measurements."""

import json
import random
from pathlib import Path
from typing import Dict, Optional, Sequence

from shadowhound_llm_bench.core.runs.run_records import record

TASKS = ("status_report", "navigation_plan", "spatial_choice")
OPTIONS = {"num_ctx": 4096, "num_predict": 512, "temperature": 0.0, "seed": 42,
           "repetitions": 5, "warmup": True}
SUITE = {"name": "robot_mission", "tasks": [{"id": t} for t in TASKS]}


def write_run(root: Path, run_id: str, *, decode_tps: Dict[str, float],
              sd_percent: float = 1.0, repetitions: int = 5, options: Optional[dict] = None,
              machine: Optional[dict] = None, tasks: Sequence[str] = TASKS,
              started: str = "", seed: int = 0, finished: bool = True,
              j_per_token: Optional[Dict[str, float]] = None) -> Path:
    """Write <root>/<run_id>/tests.jsonl: decode tok/s per model, spread sd_percent."""
    rng = random.Random(seed)
    folder = root / run_id
    folder.mkdir(parents=True)
    stamp = started or f"2026-11-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:00+00:00"
    start = record("run_start", session=1, run_id=run_id, host="http://localhost:11434",
                   ollama_version="0.12.6", options=dict(options or OPTIONS), suite=SUITE,
                   models=list(decode_tps), guarded=False, note="")
    start["stamp"] = stamp
    if machine:
        start["machine"] = machine
    lines = [start]
    for model, mean in decode_tps.items():
        lines.append(record("model_start", session=1, model=model,
                            metadata={"name": model, "digest": "sha256:" + model.encode().hex(),
                                      "quantization": "Q4_K_M"}))
        lines.append(record("load", session=1, model=model, ok=True, attempt=1,
                            client_s=2.0, load_s=1.9))
        for task in tasks:
            for rep in range(repetitions):
                value = rng.gauss(mean, mean * sd_percent / 100.0)
                metrics = {"decode_tokens_per_s": value, "ttft_ms": rng.gauss(120, 5),
                           "prompt_tokens_per_s": rng.gauss(900, 20), "load_s": 0.01}
                if j_per_token and model in j_per_token:
                    metrics["j_per_token"] = rng.gauss(j_per_token[model], 0.02)
                lines.append(record(
                    "test", session=1, model=model, task=task, repetition=rep, warmup=False,
                    status="ok", score={"percent": 80.0}, metrics=metrics))
        lines.append(record("model_end", session=1, model=model, status="ok"))
    if finished:
        lines.append(record("run_end", session=1, status="ok", message="done"))
    (folder / "tests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder
