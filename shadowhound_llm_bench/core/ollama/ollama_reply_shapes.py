"""The shapes of Ollama's replies the product relies on: types and sane ranges of every number."""

# docs/ollama_conformance.md lists each field with the Ollama source it was checked against.

from __future__ import annotations

from typing import Any, List, Mapping, Optional

# Durations are Go time.Duration in nanoseconds; a week is far beyond any request.
MAX_DURATION_NS = 7 * 24 * 3600 * 10 ** 9
MAX_TOKEN_COUNT = 10 ** 9
# Model sizes in bytes: 1 PiB is beyond any model that fits a machine.
MAX_SIZE_BYTES = 2 ** 50
MAX_MODELS_LISTED = 10000
MAX_NAME_CHARS = 512
DURATION_FIELDS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
COUNT_FIELDS = ("prompt_eval_count", "eval_count")
SIZE_FIELDS = ("size", "size_vram")
DONE_REASONS = ("stop", "length", "load", "unload")


class ReplyShapeError(ValueError):
    """A reply carries a field of the wrong type or out of any sane range."""


def _whole_number(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_final_chunk(final: Mapping[str, Any]) -> None:
    """Check the counters of a final (`done`) chunk; ReplyShapeError names the field."""
    for name in DURATION_FIELDS:
        if name in final and not _whole_number(final[name], 0, MAX_DURATION_NS):
            raise ReplyShapeError(f"final chunk: {name} must be whole nanoseconds within "
                                  f"0..{MAX_DURATION_NS}")
    for name in COUNT_FIELDS:
        if name in final and not _whole_number(final[name], 0, MAX_TOKEN_COUNT):
            raise ReplyShapeError(f"final chunk: {name} must be a whole number within "
                                  f"0..{MAX_TOKEN_COUNT}")
    reason = final.get("done_reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 64):
        raise ReplyShapeError("final chunk: done_reason must be a short string")


def check_model_list(reply: Any, what: str) -> List[Mapping[str, Any]]:
    """Return the `models` of /api/tags or /api/ps after checking names and sizes."""
    if not isinstance(reply, Mapping):
        raise ReplyShapeError(f"{what}: reply must be a JSON object")
    models = reply.get("models") or []
    if not isinstance(models, list):
        raise ReplyShapeError(f"{what}: 'models' must be a list")
    if len(models) > MAX_MODELS_LISTED:
        raise ReplyShapeError(f"{what}: more than {MAX_MODELS_LISTED} models listed")
    for position, model in enumerate(models, start=1):
        if not isinstance(model, Mapping):
            raise ReplyShapeError(f"{what}: model #{position} must be a JSON object")
        name = model.get("name", model.get("model"))
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
            raise ReplyShapeError(f"{what}: model #{position} has no usable name")
        if model.get("details") is not None and not isinstance(model["details"], Mapping):
            raise ReplyShapeError(f"{what}: model #{position} details must be a JSON object")
        for field in SIZE_FIELDS:
            if field in model and not _whole_number(model[field], 0, MAX_SIZE_BYTES):
                raise ReplyShapeError(f"{what}: model #{position} {field} must be whole bytes "
                                      f"within 0..{MAX_SIZE_BYTES}")
    return list(models)


MAX_INFO_NUMBER = 2 ** 53  # GGUF counts and lengths: far below; beyond, a float loses them
MAX_INFO_LIST_ITEMS = 100000


def _sane_scalar(value: Any) -> bool:
    if isinstance(value, (str, bool)) or value is None:
        return True
    return isinstance(value, (int, float)) and abs(value) <= MAX_INFO_NUMBER


def check_show_reply(reply: Any) -> Mapping[str, Any]:
    """Return /api/show after checking `details` and the numbers of `model_info`."""
    if not isinstance(reply, Mapping):
        raise ReplyShapeError("/api/show: reply must be a JSON object")
    for name in ("details", "model_info"):
        if reply.get(name) is not None and not isinstance(reply[name], Mapping):
            raise ReplyShapeError(f"/api/show: '{name}' must be a JSON object")
    for key, value in dict(reply.get("model_info") or {}).items():
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_INFO_LIST_ITEMS or not all(_sane_scalar(v) for v in items):
            raise ReplyShapeError(f"/api/show: model_info entry {str(key)[:80]!r} holds a value "
                                  f"of the wrong type or beyond {MAX_INFO_NUMBER}")
        if isinstance(value, list) and len({type(v) for v in items}) > 1:
            raise ReplyShapeError(f"/api/show: model_info entry {str(key)[:80]!r} mixes types")
    return reply


def version_text(reply: Any) -> str:
    """Return the version of /api/version, checked to be a short string."""
    version = reply.get("version", "") if isinstance(reply, Mapping) else None
    if not isinstance(version, str) or len(version) > 64:
        raise ReplyShapeError("/api/version: 'version' must be a short string")
    return version


def reply_object(reply: Any, what: str) -> Optional[Mapping[str, Any]]:
    """Return a reply that must be a JSON object, or raise."""
    if not isinstance(reply, Mapping):
        raise ReplyShapeError(f"{what}: reply must be a JSON object")
    return reply
