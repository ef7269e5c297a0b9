"""A RunBenchmark goal checked and completed from the node settings, or rejected with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Union

from ..runs.inert_text import quoted
from .node_settings import NodeSettings, model_name_error, non_empty
from .parameter_specs import ORDERS, PRESETS
from .path_rules import MAX_PATH_CHARS, PathRefused, allowed_suite_path, looks_like_path
from .run_options import OptionsError, RunOptions, validate_keep_alive

_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SUITE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_MODELS = 64
MAX_REPETITIONS = 100
MAX_NUM_CTX = 1048576
MAX_NUM_PREDICT = 131072
# Longest text each string field of a goal may hold: checked before anything is parsed or quoted.
MAX_FIELD_CHARS = {"suite": MAX_PATH_CHARS, "preset": 32, "order": 32, "keep_alive": 32,
                   "run_name": 64, "resume_run_id": 128}
MAX_MODEL_NAME_CHARS = 200


class GoalRejected(ValueError):
    """The goal cannot run; the message says why in words an operator understands."""


@dataclass(frozen=True)
class GoalRequest:
    """The fields of a RunBenchmark goal, free of ROS types (zero / empty = use the setting)."""

    models: List[str] = field(default_factory=list)
    suite: str = ""
    repetitions: int = 0
    preset: str = ""
    dry_run: bool = False
    order: str = ""
    num_ctx: int = 0
    num_predict: int = 0
    temperature: float = -1.0
    seed: int = -1
    keep_alive: str = ""
    no_pull: bool = False
    run_name: str = ""
    resume_run_id: str = ""
    calibrate: bool = False


@dataclass(frozen=True)
class ResolvedGoal:
    """A goal with every default filled in: what the run will actually do."""

    models: List[str]
    suite: str
    preset: str
    order: str
    dry_run: bool
    options: RunOptions
    keep_alive_override: Optional[Union[int, str]]  # None: the policy decides
    run_name: str
    resume_run_id: str


def _number(value: Union[int, float]) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_range(name: str, value: Union[int, float], low: float, high: float) -> None:
    if not low <= value <= high:
        raise GoalRejected(
            f"{name} must be within {_number(low)}..{_number(high)}, got {_number(value)}")


def _check_sizes(request: GoalRequest) -> None:
    """Refuse oversized fields first, so that no later step parses or echoes them."""
    for name, limit in MAX_FIELD_CHARS.items():
        value = getattr(request, name)
        if not isinstance(value, str):
            raise GoalRejected(f"{name} must be text")
        if len(value) > limit:
            raise GoalRejected(f"{name} is longer than {limit} characters ({len(value)})")
    if len(request.models) > MAX_MODELS:
        raise GoalRejected(f"at most {MAX_MODELS} models per run, got {len(request.models)}")
    for position, model in enumerate(request.models, start=1):
        if not isinstance(model, str):
            raise GoalRejected(f"models #{position} must be text")
        if len(model) > MAX_MODEL_NAME_CHARS:
            raise GoalRejected(f"models #{position} is longer than {MAX_MODEL_NAME_CHARS} "
                               f"characters ({len(model)})")


def _models(request: GoalRequest, settings: NodeSettings) -> List[str]:
    given = [m.strip() for m in request.models]
    if any(not m for m in given):
        raise GoalRejected("models contains an empty name")
    models = given or settings.default_models
    if not models:
        raise GoalRejected("no models to test: the goal names none and the node parameter "
                           "benchmark.models is empty")
    if len(models) > MAX_MODELS:
        raise GoalRejected(f"at most {MAX_MODELS} models per run, got {len(models)}")
    for model in models:
        error = model_name_error(model)
        if error:
            raise GoalRejected(error)
    duplicates = sorted({m for m in models if models.count(m) > 1})
    if duplicates:
        raise GoalRejected(f"models listed twice: {', '.join(duplicates)}")
    return models


def suite_path_dirs(settings: NodeSettings) -> List[str]:
    """Return the folders under which a goal (or benchmark.suite) may name a suite file."""
    return non_empty(settings["benchmark.suite_path_dirs"])


def _suite(request: GoalRequest, settings: NodeSettings,
           suite_dirs: Iterable[Path]) -> str:
    # A suite is a NAME from the configured suite folders; a path only under the folders the
    # node parameter benchmark.suite_path_dirs allows (none by default), checked before the
    # file is looked at, so a refusal tells nothing about what exists elsewhere.
    suite = request.suite.strip() or str(settings["benchmark.suite"])
    if looks_like_path(suite):
        try:
            return str(allowed_suite_path(suite, suite_path_dirs(settings)))
        except PathRefused as exc:
            raise GoalRejected(str(exc)) from None
    if not _SUITE_NAME.match(suite):
        raise GoalRejected(f"suite name {quoted(suite)} is malformed (letters, digits, '-', "
                           "'_'; at most 64)")
    dirs = [Path(d) for d in suite_dirs]
    if dirs and not any((d / f"{suite}.yaml").is_file() for d in dirs):
        known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
        raise GoalRejected(f"unknown suite {suite!r}; known suites: {', '.join(known) or 'none'}")
    return suite


def resolve_goal(request: GoalRequest, settings: NodeSettings, *,
                 suite_dirs: Iterable[Path] = ()) -> ResolvedGoal:
    """Fill the goal's empty fields from the settings and check every value (GoalRejected)."""
    # suite_dirs are the folders holding <name>.yaml suites; when given, a suite name must exist.
    _check_sizes(request)
    models = _models(request, settings)
    preset = request.preset.strip() or str(settings["policy.preset"])
    if preset not in PRESETS:
        raise GoalRejected(f"unknown preset {quoted(preset)}; known presets: {', '.join(PRESETS)}")
    order = request.order.strip() or str(settings["benchmark.order"])
    if order not in ORDERS:
        raise GoalRejected(f"unknown order {quoted(order)}; known orders: {', '.join(ORDERS)}")
    _check_range("repetitions", request.repetitions, 0, MAX_REPETITIONS)
    if request.num_ctx > 0:
        _check_range("num_ctx", request.num_ctx, 256, MAX_NUM_CTX)
    if request.num_predict > 0:
        _check_range("num_predict", request.num_predict, 1, MAX_NUM_PREDICT)
    temperature = float(request.temperature)
    if temperature != temperature:  # NaN
        raise GoalRejected("temperature must be a number, got NaN")
    if temperature >= 0:
        _check_range("temperature", temperature, 0.0, 2.0)
    keep_alive: Optional[Union[int, str]] = None
    if request.keep_alive.strip():
        try:
            keep_alive = validate_keep_alive(request.keep_alive.strip())
        except OptionsError as exc:
            raise GoalRejected(str(exc)) from exc
    if request.run_name and not _LABEL.match(request.run_name):
        raise GoalRejected(f"run_name {quoted(request.run_name)} may hold only letters, digits, "
                           "'-' and '_' (at most 64)")
    if request.resume_run_id and not _RUN_ID.match(request.resume_run_id):
        raise GoalRejected(f"resume_run_id {quoted(request.resume_run_id)} is not a run id")
    suite = _suite(request, settings, suite_dirs)
    try:
        options = RunOptions(
            num_ctx=request.num_ctx if request.num_ctx > 0 else int(settings["benchmark.num_ctx"]),
            num_predict=(request.num_predict if request.num_predict > 0
                         else int(settings["benchmark.num_predict"])),
            temperature=temperature if temperature >= 0 else settings["benchmark.temperature"],
            seed=request.seed if request.seed >= 0 else int(settings["benchmark.seed"]),
            keep_alive=keep_alive if keep_alive is not None else settings["policy.keep_alive"],
            repetitions=(request.repetitions if request.repetitions > 0
                         else int(settings["benchmark.repetitions"])),
            warmup=bool(settings["benchmark.warmup"]),
            pull_missing=bool(settings["benchmark.pull_missing"]) and not request.no_pull,
            request_deadline_s=float(settings["request_timeout_s"]),
            load_deadline_s=float(settings["policy.load_deadline_s"]),
            stream_stall_s=float(settings["policy.stream_stall_s"]),
            memory_bandwidth_bytes_per_s=(
                float(settings["benchmark.memory_bandwidth_gbps"]) * 1e9
                if settings["benchmark.memory_bandwidth_gbps"] > 0 else None),
            canary_model=str(settings["benchmark.canary_model"]).strip(),
            canary_min_decode_tokens_per_s=float(settings["benchmark.canary_min_tokens_per_s"]),
            calibrate_memory_sources=bool(request.calibrate),
        )
    except OptionsError as exc:
        raise GoalRejected(str(exc)) from exc
    return ResolvedGoal(models=models, suite=suite, preset=preset, order=order,
                        dry_run=bool(request.dry_run), options=options,
                        keep_alive_override=keep_alive, run_name=request.run_name,
                        resume_run_id=request.resume_run_id)
