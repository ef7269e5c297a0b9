"""
What the memory guard reads: fresh memory samples, the models Ollama holds, their footprints.

Predictions come from a measurement of this run, the footprint cache or Ollama's metadata
(core/memory/footprint.py); the empty container's working set is the baseline every model's
memory is read against.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..adapters.ollama_client import PS_DEADLINE_S, OllamaClient, OllamaError
from ..core.decider.decision import LoadedModel
from ..core.decider.policy_settings import PolicySettings
from ..core.memory.footprint import FootprintPrediction, FootprintPredictor, metadata_from_ollama
from ..core.memory.memory_reading import MemoryReading
from ..core.ollama.model_metadata import find_tag
from .footprint_cache import FootprintCache
from .memory_monitor import MemoryMonitor
from .server_identity import cached_version

_LOG = logging.getLogger("shadowhound_llm_bench.engine.memory_guard")


class GuardReadings:
    """Memory readings, /api/ps and footprints as the guard and its helpers read them."""

    def __init__(self, *, client: OllamaClient, monitor: MemoryMonitor,
                 settings: PolicySettings,
                 footprint_cache: Optional[FootprintCache] = None,
                 memory_scale: float = 1.0) -> None:
        self.client = client
        self.monitor = monitor
        self.settings = settings
        self.footprint_cache = footprint_cache
        self.predictor = FootprintPredictor(
            num_ctx=settings.num_ctx, bytes_per_billion_params=settings.bytes_per_billion_params,
            memory_scale=memory_scale)  # Ollama's sizes: < 1 on a simulated machine only
        self._lock = threading.RLock()
        self._predictions: Dict[str, FootprintPrediction] = {}
        self._digests: Dict[str, str] = {}
        self._measured: Dict[str, int] = {}
        # model -> its footprint from Ollama's metadata (a cached measurement may be wrong)
        self.metadata_estimates: Dict[str, int] = {}
        # Working set of the container with no model loaded; None until known.
        self.empty_working_set_bytes: Optional[int] = None

    # ------------------------------------------------------------------ Ollama
    def tags(self) -> List[Dict[str, Any]]:
        """Return the models Ollama has (/api/tags); [] when it does not answer."""
        try:
            return self.client.tags()
        except OllamaError as exc:
            _LOG.warning("cannot list models for footprint prediction: %s", exc)
            return []

    def loaded(self, deadline_s: Optional[float] = None) -> Optional[List[LoadedModel]]:
        """Models Ollama holds now with their best known footprints; None if it does not answer."""
        try:
            entries = self.client.ps() if deadline_s is None else \
                self.client.ps(deadline_s=min(deadline_s, PS_DEADLINE_S))
        except OllamaError as exc:
            _LOG.warning("cannot list loaded models: %s", exc)
            return None
        loaded = []
        for entry in entries:
            name = str(entry.get("name") or entry.get("model") or "")
            size = self._measured.get(name) or self.predictor.scaled(int(entry.get("size") or 0))
            loaded.append(LoadedModel(name, size))
        self.monitor.set_loaded_models(len(loaded))
        return loaded

    # ------------------------------------------------------------------ footprints
    def predict(self, model: str, *, tags: Optional[Sequence[Mapping[str, Any]]] = None,
                refresh: bool = False) -> FootprintPrediction:
        """Best prediction of a model's footprint on this machine (cached for the run)."""
        with self._lock:
            cached = self._predictions.get(model)
        if cached is not None and not refresh:
            return cached
        if model in self._measured:
            prediction = self.predictor.predict(model, measured_bytes=self._measured[model])
        else:
            tag = find_tag(tags if tags is not None else self.tags(), model)
            show = None
            if tag is not None:
                try:
                    show = self.client.show(model)
                except OllamaError as exc:
                    _LOG.warning("cannot read %s's details: %s", model, exc)
            digest = str((tag or {}).get("digest") or "")
            self._digests[model] = digest
            cache = self.footprint_cache
            measured = (cache.get(model, digest=digest, num_ctx=self.settings.num_ctx)
                        if cache is not None and tag is not None else None)
            metadata = metadata_from_ollama(tag, show, cached_version(self.client))
            if metadata is not None:
                self.metadata_estimates[model] = self.predictor.predict(
                    model, metadata=metadata).footprint_bytes
            prediction = self.predictor.predict(model, measured_bytes=measured, metadata=metadata,
                                                measured_on=cache.measured_on() if cache else "")
        with self._lock:
            self._predictions[model] = prediction
        return prediction

    def known_prediction(self, model: str) -> Optional[FootprintPrediction]:
        """Return the prediction made for model in this run, if any (no I/O)."""
        with self._lock:
            return self._predictions.get(model)

    def footprint_of(self, model: str) -> int:
        """Return the best known footprint of model: measured in this run, else predicted."""
        if model in self._measured:
            return self._measured[model]
        prediction = self._predictions.get(model)
        return prediction.footprint_bytes if prediction is not None else 0

    def keep_measurement(self, model: str, footprint_bytes: int) -> None:
        """Use a measured footprint from now on and keep it in the footprint cache."""
        self._measured[model] = footprint_bytes
        if self.footprint_cache is not None:
            self.footprint_cache.put(model, digest=self._digests.get(model, ""),
                                     num_ctx=self.settings.num_ctx,
                                     footprint_bytes=footprint_bytes)

    # ------------------------------------------------------------------ memory
    def fresh_deadline_s(self) -> float:
        """Return how long a fresh reading may take."""
        return min(5.0, self.settings.unload_deadline_s)

    def fresh_reading(self) -> MemoryReading:
        """Sample now with every chosen source read anew (for measurements and verdicts)."""
        gauge = self.monitor.model_memory
        if gauge is not None:
            gauge.invalidate()
        # A container read through the stats API hands out its last reading: wait for one
        # taken after now.
        return self.monitor.sample_after(time.time(), deadline_s=self.fresh_deadline_s())

    def empty_working_set(self, reading: MemoryReading, loaded: Sequence[LoadedModel]) -> int:
        """Working set of the container with no model: measured when nothing is loaded."""
        if not loaded:
            # Memory a model leaked (or cache it left) is not the empty container's: the
            # lowest reading with nothing loaded is (a restart measures it anew).
            now = reading.memory_in_use_bytes
            self.empty_working_set_bytes = now if self.empty_working_set_bytes is None \
                else min(now, self.empty_working_set_bytes)
        elif self.empty_working_set_bytes is None:
            held = sum(m.footprint_bytes for m in loaded)
            self.empty_working_set_bytes = max(0, reading.memory_in_use_bytes - held)
        return self.empty_working_set_bytes
