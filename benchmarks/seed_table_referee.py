"""
The independent referee beside one seed-table configuration: failures and cleanup verdicts.

The referee (benchmarks/referee, a separate process sampling the machine cgroup and the GPU
driver's state at 20 Hz) judges each lost model (physics: refusal, OOM kill, EOF; or a product
decision: pressure stop, skip, preemption) and each cleanup verdict of the product against the
model memory really held (device pages, the driver's pool, runner processes) when the next model
starts versus when this one started: memory the machine did not get back, whatever its cause.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from referee import Referee, Sample, Watch, classify_failure, read_samples

from shadowhound_llm_bench.reports.jsonl_log import LOG_NAME, read_records

# A model counts as cleaned up when what stays held is under this share of its true footprint.
HELD_TOLERANCE_SHARE = 0.5


def _at(samples: List[Sample], t: float) -> Optional[Sample]:
    """Return the last sample taken at or before t (None before the first)."""
    taken = [s for s in samples if s.t <= t]
    return taken[-1] if taken else None


class ConfigurationReferee:
    """The referee's samples over one configuration, and its judgements afterwards."""

    def __init__(self, machine: Any, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = str(out)
        self.referee = Referee(self.out, Watch(
            machine_cgroup=machine.cgroup_dir,
            driver_state=os.path.join(machine.machine_dir, "state.json")))
        self.offset_s = time.time() - time.monotonic()  # wall clock to the referee's clock

    def stop(self) -> None:
        """End the referee's process (by its pid)."""
        self.referee.stop()

    def _t(self, stamp: str) -> float:
        return _dt.datetime.fromisoformat(stamp).timestamp() - self.offset_s

    def judge(self, outcome: Any, footprints: Dict[str, int]) -> Dict[str, Any]:
        """Lost models split physics / decision, and wrong cleanup verdicts, by the referee."""
        self.stop()
        samples = read_samples(self.out)
        records, _ = read_records(outcome.run_dir / LOG_NAME)
        starts = [(str(r["model"]), self._t(str(r["stamp"]))) for r in records
                  if r.get("type") == "model_start" and r.get("stamp")]
        ends = {str(r["model"]): self._t(str(r["stamp"])) for r in records
                if r.get("type") == "model_end" and r.get("stamp")}
        last_t = samples[-1].t if samples else 0.0
        models = outcome.summary.models if outcome.summary else []
        physics = decisions = verdicts = 0
        wrong: List[str] = []
        for index, (model, start_t) in enumerate(starts):
            after_t = starts[index + 1][1] if index + 1 < len(starts) else last_t
            result = next((m for m in models if m.model == model), None)
            if result is None:
                continue
            if result.status != "ok":
                kind = classify_failure(samples, start_t=start_t,
                                        end_t=ends.get(model, after_t), status=result.status,
                                        error=result.reason)
                physics += kind.physics
                decisions += not kind.physics
            said = (result.memory or {}).get("cleanup_successful")
            before, after = _at(samples, start_t), _at(samples, after_t)
            if said is None or before is None or after is None:
                continue
            # Other models cached throughout are in both samples; those unloaded meanwhile
            # only lower what is held.
            held = after.model_bytes() - before.model_bytes()
            truly_clean = held <= HELD_TOLERANCE_SHARE * footprints.get(model, 0)
            verdicts += 1
            if bool(said) != truly_clean:
                wrong.append(f"{model} judged {'clean' if said else 'held'}, "
                             f"{held / 2**30:+.3f} GiB held")
        return {"physics_failures": physics, "decision_stops": decisions,
                "referee_cleanup_verdicts": verdicts, "referee_wrong_cleanups": len(wrong),
                "referee_cleanup_note": "; ".join(wrong)}
