"""shadowhound-llm-bench: run the benchmark engine without ROS, or re-render a run's reports."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence, TextIO, Tuple

from . import cli_budget, cli_history
from .adapters.memory_sources import (DEFAULT_DROP_CACHES_PATH, DEFAULT_MEMINFO_PATH,
                                      DEFAULT_NVIDIA_SMI_COMMAND)
from .adapters.ollama_client import OllamaClient, OllamaError
from .core.memory.memory_sources import (MemorySourceError, MemorySourceSettings,
                                         parse_sources_setting)
from .core.decider.policy_settings import PolicySettingsError
from .core.runs.inert_text import terminal_line
from .core.runs.progress import ProgressEvent
from .core.decider.residency import followed_lines, left_loaded_lines
from .core.settings.run_options import OptionsError, RunOptions
from .core.runs.suite import DEFAULT_SUITE, SuiteError, load_suite
from .core.units import GB, to_gib
from .engine.memory_guard import PolicyMemoryGuard
from .engine.memory_guard_api import MemoryGuard, RunPlan
from .core.platform.platform_record import MachineRecord, machine_warnings
from .engine.platform_monitor import PlatformMonitor, PlatformSettings
from .engine.run_bookends import run_between_bookends
from .engine.state_dir import footprint_cache_path
from .engine.runner import BenchmarkRunner, RunOutcome
from .reports.platform_markdown import machine_lines
from .reports.render import ReportError, render_reports
from .reports.run_dir import RunDirError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELED = 130
DEFAULT_RESULTS_DIR = "llm_bench_results"
# How long the CLI stays after a run to see a load it cut end and unload it (Ctrl-C leaves).
FOLLOW_AT_EXIT_S = 60.0
FOLLOW_STOP_S = 5.0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shadowhound-llm-bench",
        description="Benchmark local LLMs served by Ollama, with crash-proof reports.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="benchmark models (or plan with --dry-run)")
    run.add_argument("--host", default="http://localhost:11434", help="Ollama base URL")
    run.add_argument("--models", nargs="*", default=[], metavar="MODEL",
                     help="models to test (with --resume: defaults to the run's models)")
    run.add_argument("--suite", default=DEFAULT_SUITE, help="suite name or path to a YAML file")
    run.add_argument("--repetitions", type=int, default=3, help="measured repetitions per task")
    run.add_argument("--preset", default="",
                     help="memory policy preset: default | fast | conservative | adaptive")
    run.add_argument("--parallel-small-models", action="store_true",
                     help="test small models side by side when the plan finds that they all "
                     "fit in the memory budget together (their results are marked)")
    run.add_argument("--parallel-max-models", type=int, default=3, metavar="N",
                     help="most models side by side in one batch (default 3, as Ollama's "
                     "OLLAMA_MAX_LOADED_MODELS)")
    run.add_argument("--parallel-max-model-gb", type=float, default=0.0, metavar="GB",
                     help="only models predicted at most this large (GB) go side by side; "
                     "0: any that fit together")
    run.add_argument("--dynamic-keep-alive", action="store_true",
                     help="keep_alive from the free memory: longer when more is free")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (order, footprints, unloads, restarts); load nothing")
    run.add_argument("--results-dir", default=DEFAULT_RESULTS_DIR,
                     help="folder that gets one sub-folder per run")
    run.add_argument("--keep-loaded", action="store_true",
                     help="leave models another client had loaded at the start loaded (their "
                          "memory is counted); by default they are unloaded first")
    run.add_argument("--state-dir", default="",
                     help="folder of measured footprints and unload/restart durations, shared "
                          "with the llm_bench node (default ~/.cache/shadowhound_llm_bench)")
    run.add_argument("--name", default=None, help="label appended to the run id")
    run.add_argument("--resume", default=None, metavar="RUN_ID",
                     help="continue a run: models complete in its log are skipped")
    run.add_argument("--num-ctx", type=int, default=4096)
    run.add_argument("--num-predict", type=int, default=512)
    run.add_argument("--temperature", type=float, default=0.0)
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--num-thread", type=int, default=0, metavar="N",
                     help="CPU threads of Ollama's runner (its num_thread option; 0 = Ollama's "
                          "choice): fewer leave cores to ROS and stop busy-waiting threads "
                          "from slowing each other on a busy CPU")
    run.add_argument("--keep-alive", default="5m", help="seconds or a duration like 5m")
    run.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up")
    run.add_argument("--no-pull", action="store_true", help="skip models not on the server")
    run.add_argument("--request-timeout", type=float, default=300.0,
                     help="deadline of one measured request in seconds")
    run.add_argument("--load-deadline", type=float, default=600.0, metavar="S",
                     help="deadline of one model load in seconds (600: a 70B model read cold)")
    run.add_argument("--stream-stall", type=float, default=60.0, metavar="S",
                     help="a stream with no token for this long fails as stalled")
    run.add_argument("--no-preempt", action="store_true",
                     help="no watchdog on memory samples (only the check between requests)")
    run.add_argument("--enforce-container-limit", action="store_true",
                     help="keep the container's memory limit at the model budget")
    run.add_argument("--oom-score-backstop", action="store_true",
                     help="runners first, measured ROS processes last for the kernel's OOM killer")
    run.add_argument("--bandwidth-gbps", type=float, default=None,
                     help="memory bandwidth in GB/s for roofline efficiency (Thor: 273)")
    run.add_argument("--canary-model", default="", help="small model timed before and after")
    run.add_argument("--canary-min-tps", type=float, default=0.0,
                     help="canary decode tokens/s below which the machine counts as slowed")
    run.add_argument("--container", default="",
                     help="Ollama container (or systemd unit) name for memory management "
                     "(see --backend, --unguarded)")
    run.add_argument("--backend", default="docker",
                     choices=("auto", "docker", "podman", "systemd", "api_only"),
                     help="what --container names: a Docker (default) or Podman container, a "
                     "systemd unit, or auto = a container of that name, else an active "
                     "systemd unit, else the Ollama API only")
    run.add_argument("--systemctl", default="systemctl",
                     help="systemctl command of the systemd backend (e.g. 'sudo -n systemctl')")
    run.add_argument("--unguarded", action="store_true",
                     help="no memory management: nothing is unloaded or restarted")
    run.add_argument("--calibrate", action="store_true",
                     help="choose the memory sources again by loading the smallest model "
                     "(done on a machine's first run anyway; kept beside the footprint cache)")
    run.add_argument("--memory-sources", default="auto", metavar="auto|S1,S2",
                     help="where model memory is read: auto (calibration chooses) or a comma "
                     "list of cgroup_working_set, cgroup_anon, gpu_processes, host_used, nvmap")
    run.add_argument("--meminfo-path", default=DEFAULT_MEMINFO_PATH,
                     help="Linux-format meminfo file of the machine (default /proc/meminfo)")
    run.add_argument("--nvidia-smi-command", default=DEFAULT_NVIDIA_SMI_COMMAND,
                     help="command answering --query-compute-apps (default nvidia-smi)")
    run.add_argument("--drop-caches-path", default=DEFAULT_DROP_CACHES_PATH,
                     help="file the policy writes 3 to when it drops the page cache")
    run.add_argument("--drop-caches", default="auto", choices=("auto", "never"),
                     help="let the policy drop the page cache when reclaim stalls or Ollama "
                     "refuses for free memory (needs the privilege to write the file)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--sysfs-root", default="/",
                     help="root of the machine's /sys, /proc, /etc for the platform record and "
                     "power sensors (a simulator's fake Thor tree in tests)")
    run.add_argument("--platform-hz", type=float, default=20.0,
                     help="power / temperature samples per second")
    run.add_argument("--no-platform", action="store_true",
                     help="no machine record, power or temperature sampling")
    cli_budget.add_budget_options(run)
    cli_budget.add_simulation_options(run)
    cli_history.add_history_db_option(run)
    run.add_argument("--no-history", action="store_true",
                     help="do not record the run in the history database")
    report = sub.add_parser("report", help="rebuild a run's reports from its tests.jsonl")
    report.add_argument("run_dir", help="the run's folder (holds tests.jsonl)")
    cli_history.add_verbs(sub, DEFAULT_RESULTS_DIR)
    return parser


def format_event(event: ProgressEvent) -> str:
    """One readable progress line."""
    where = f"{event.model} ({event.model_index + 1}/{event.model_count})" if event.model else ""
    line = f"[{event.progress * 100:5.1f}%] {event.phase.value:<18} {where:<28} {event.status}"
    if event.memory is not None:
        line += (f"  | container {to_gib(event.memory.container.working_set_bytes):.1f} GiB"
                 f" of budget {to_gib(event.memory.model_budget_bytes):.1f} GiB")
    # Status texts carry server and model words: a terminal must print them, not run them.
    return terminal_line(line.rstrip())


def format_machine(record: MachineRecord) -> str:
    """Format the machine record and its warnings for the dry-run plan."""
    lines = ["Machine:"] + ["  " + line[2:] for line in machine_lines(record.to_dict())]
    lines += [f"  WARNING: {w}" for w in machine_warnings(record)]
    return "\n".join(lines)


def format_plan(plan: RunPlan) -> str:
    lines = [f"Plan (preset {plan.preset}):"]
    for p in plan.models:
        actions = ", ".join(p.actions_before) or "-"
        lines.append(f"  {p.model:<28} footprint {to_gib(p.predicted_footprint_bytes):6.2f} GiB "
                     f"({p.prediction_source}); before: {actions}; peak "
                     f"{to_gib(p.predicted_peak_bytes):.2f} GiB"
                     + (f"; SKIP: {p.skip_reason}" if p.skip_reason else ""))
    for batch in plan.batches or []:
        if len(batch) > 1:
            lines.append(f"  side by side: {' + '.join(batch)}")
    lines.append(f"  predicted peak {to_gib(plan.predicted_peak_bytes):.2f} GiB, "
                 f"{plan.predicted_unloads} unload(s), {plan.predicted_restarts} restart(s), "
                 f"budget {to_gib(plan.model_budget_bytes):.2f} GiB")
    if plan.memory_sources:
        lines.append(f"  memory: {plan.memory_sources}")
    if plan.calibration_steps:
        lines.append(f"  calibration first: {', '.join(plan.calibration_steps)}")
    return "\n".join(terminal_line(line) for line in lines)


def _build_guard(args: argparse.Namespace, client: OllamaClient) -> Tuple[
        Optional[MemoryGuard], str]:
    """Build the memory guard for this run, or return None with the reason why not."""
    if args.unguarded:
        return None, "memory management turned off (--unguarded)"
    try:
        from .engine import cli_guard  # provided by the memory policy
    except ImportError:
        return None, "memory management is not available in this build; running unguarded"
    builder: Any = getattr(cli_guard, "build_guard_for_cli", None)
    if builder is None:
        return None, "memory management has no CLI builder yet; running unguarded"
    overrides: dict = {}
    if args.parallel_small_models:
        overrides.update(parallel_small_models=True, parallel_max_models=args.parallel_max_models)
        if args.parallel_max_model_gb > 0:
            overrides["parallel_max_model_bytes"] = int(args.parallel_max_model_gb * GB)
    if args.dynamic_keep_alive:
        overrides["dynamic_keep_alive"] = True
    if args.no_preempt:
        overrides["preempt_on_breach"] = False
    if args.enforce_container_limit:
        overrides["enforce_container_limit"] = True
    if args.oom_score_backstop:
        overrides["oom_score_backstop"] = True
    if args.drop_caches != "auto":
        overrides["drop_caches"] = args.drop_caches
    overrides.update(cli_budget.budget_overrides(args))
    sources = MemorySourceSettings(
        meminfo_path=args.meminfo_path, nvidia_smi_command=args.nvidia_smi_command,
        drop_caches_path=args.drop_caches_path,
        sources=parse_sources_setting(args.memory_sources.split(",")))
    guard = builder(client=client, container=args.container, preset=args.preset or "default",
                    num_ctx=args.num_ctx, memory_sources=sources, backend_kind=args.backend,
                    memory_scale=args.memory_scale, ros_reserve=cli_budget.ros_reserve_from(args),
                    systemctl=args.systemctl.split(),
                    footprint_cache_path=footprint_cache_path(args.state_dir),
                    **({"policy_overrides": overrides} if overrides else {}))
    if not args.container:
        return guard, ("no --container given: memory is estimated from Ollama's /api/ps "
                       "(footprints and cleanup unverified) and the container cannot be "
                       "restarted")
    return guard, str(getattr(guard.backend, "selection_reason", "") or "")


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        num_ctx=args.num_ctx, num_predict=args.num_predict, temperature=args.temperature,
        seed=args.seed, keep_alive=args.keep_alive, repetitions=args.repetitions,
        warmup=not args.no_warmup, pull_missing=not args.no_pull,
        request_deadline_s=args.request_timeout, load_deadline_s=args.load_deadline,
        stream_stall_s=args.stream_stall,
        memory_bandwidth_bytes_per_s=args.bandwidth_gbps * GB if args.bandwidth_gbps else None,
        canary_model=args.canary_model, canary_min_decode_tokens_per_s=args.canary_min_tps,
        calibrate_memory_sources=args.calibrate,
        extra_options={"num_thread": args.num_thread} if args.num_thread > 0 else {})


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if not args.models and not args.resume:
        print("error: give --models (or --resume RUN_ID)", file=sys.stderr)
        return EXIT_USAGE
    try:
        options = _options(args)
        suite = load_suite(args.suite)
        client = OllamaClient(base_url=args.host)
    except (OptionsError, SuiteError, ValueError) as exc:
        print(terminal_line(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    with client:
        try:
            guard, note = _build_guard(args, client)
        except (PolicySettingsError, MemorySourceError) as exc:
            print(terminal_line(f"error: {exc}"), file=sys.stderr)
            return EXIT_USAGE
        except Exception as exc:  # e.g. the named container or the Docker engine is missing
            print(terminal_line(f"error: memory management cannot start: {exc} "
                                "(use --unguarded to run without it)"), file=sys.stderr)
            return EXIT_FAILED
        try:
            return _run_with(args, out, client, guard, note, options, suite)
        finally:
            close = getattr(guard, "close", None)
            if close is not None:
                close()


def _run_with(args: argparse.Namespace, out: TextIO, client: OllamaClient,
              guard: Optional[MemoryGuard], note: str, options: RunOptions, suite: Any) -> int:
    cancel = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("canceling after the current request (Ctrl-C again to stop at once)",
              file=out, flush=True)

    def show(event: ProgressEvent) -> None:
        if not args.quiet:
            print(format_event(event), file=out, flush=True)

    for line in (note, cli_budget.reserve_note(args, guard)):
        if line:
            print(terminal_line(f"note: {line}"), file=out, flush=True)
    platform = None if args.no_platform else PlatformMonitor(PlatformSettings(
        sysfs_root=args.sysfs_root, sample_hz=args.platform_hz))
    try:
        return _run_runner(args, out, client, guard, note, options, suite, cancel, show,
                           on_sigint, platform)
    finally:
        if platform is not None:
            platform.close()


def _run_runner(args: argparse.Namespace, out: TextIO, client: OllamaClient,
                guard: Optional[MemoryGuard], note: str, options: RunOptions, suite: Any,
                cancel: threading.Event, show: Any, on_sigint: Any,
                platform: Optional[PlatformMonitor]) -> int:
    try:
        runner = BenchmarkRunner(
            client=client, guard=guard, options=options, suite=suite,
            results_root=Path(args.results_dir), run_id=args.resume, run_name=args.name,
            resume=bool(args.resume), on_progress=show, cancel=cancel, note=note,
            preset=args.preset, platform=platform)
    except RunDirError as exc:
        print(terminal_line(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        try:
            plan = runner.plan(args.models)
            print(format_plan(plan), file=out)
            stop = cli_budget.check_budget(plan, guard) \
                if isinstance(guard, PolicyMemoryGuard) else None
            if stop:
                print(terminal_line(f"  a run would stop: {stop}"), file=out)
            if platform is not None:
                print(format_machine(platform.machine(
                    bandwidth_override_bytes_per_s=options.memory_bandwidth_bytes_per_s,
                    ollama_version=client.version(),
                    container=getattr(guard, "backend", None))), file=out)
        except OllamaError as exc:
            print(terminal_line(f"error: {exc}"), file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    if isinstance(guard, PolicyMemoryGuard):
        try:  # a run whose budget holds none of its models stops before loading anything
            stop = cli_budget.check_budget(runner.plan(args.models), guard)
        except OllamaError:
            stop = None  # the run reports an unreachable server itself
        if stop:
            print(terminal_line(f"error: {stop}"), file=sys.stderr)
            return EXIT_FAILED
    previous = signal.signal(signal.SIGINT, on_sigint) \
        if threading.current_thread() is threading.main_thread() else None
    run_models = list(args.models) + ([options.canary_model] if options.canary_model else [])
    try:
        # Start from what Ollama really holds; leave it holding nothing this run loaded.
        outcome, bookends = run_between_bookends(
            guard if isinstance(guard, PolicyMemoryGuard) else None, client,
            lambda: runner.run(args.models), run_models, keep_others=args.keep_loaded,
            load_deadline_s=options.load_deadline_s,
            run_dir=lambda: Path(runner.results_root) / runner.run_id)
    except (RunDirError, ValueError) as exc:
        print(terminal_line(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    _print_outcome(outcome, out)
    if bookends is not None and bookends.end is not None:
        for line in left_loaded_lines(bookends.end.to_dict()):
            print(terminal_line(line), file=out)
        _wait_for_followed(bookends, out)
    if not args.no_history:
        cli_history.record_run_history(outcome.run_dir, args.history_db, out)
    if outcome.status == "canceled":
        return EXIT_CANCELED
    return EXIT_OK if outcome.status == "ok" else EXIT_FAILED


def _wait_for_followed(bookends: Any, out: TextIO) -> None:
    """Stay until what the run left loading or unloading is gone (Ctrl-C leaves it)."""
    follower = bookends.follower
    if follower is None:
        return
    names = ", ".join(f.model for f in follower.models)
    print(terminal_line(f"following {names} for up to {FOLLOW_AT_EXIT_S:.0f} s until Ollama "
                        "no longer holds it (a load the run cut may go on in Ollama); Ctrl-C "
                        "leaves it"), file=out, flush=True)
    end = time.monotonic() + FOLLOW_AT_EXIT_S
    try:
        while not follower.wait(0.2) and time.monotonic() < end:
            pass
    except KeyboardInterrupt:
        pass
    if not follower.done:
        follower.stop()
        follower.wait(FOLLOW_STOP_S)
    for line in followed_lines({"models": [f.to_dict() for f in follower.models]}):
        print(terminal_line(f"after the run: {line}"), file=out)


def _print_outcome(outcome: RunOutcome, out: TextIO) -> None:
    print(terminal_line(f"run {outcome.run_id}: {outcome.status} — {outcome.message}"),
          file=out)
    if outcome.summary is not None:
        for m in outcome.summary.models:
            decode = m.median("decode_tokens_per_s")
            print(terminal_line(
                f"  {m.model:<28} {m.status:<8} "
                f"decode {'-' if decode is None else f'{decode:.1f}'} tok/s, "
                f"quality {'-' if m.quality_score is None else f'{m.quality_score:.0f}'}, "
                f"{_j_per_token(m.energy)}"
                + (f", {m.ended_early} of {m.tests_ok} test(s) ended early (the server stopped "
                   "the prediction: repeat limit or invalid UTF-8)" if m.ended_early else "")
                + (f"  ({m.reason})" if m.reason else "")), file=out)
        for warning in (outcome.summary.platform or {}).get("warnings") or []:
            print(terminal_line(f"  WARNING: {warning}"), file=out)
    if outcome.reports is not None:
        print(f"reports: {outcome.reports.run_dir}", file=out)


def _j_per_token(energy: Optional[dict]) -> str:
    value = (energy or {}).get("j_per_token")
    return "energy not measured" if value is None else f"{value:.3f} J/token"


def _report(args: argparse.Namespace, out: TextIO) -> int:
    try:
        paths = render_reports(Path(args.run_dir))
    except ReportError as exc:
        print(terminal_line(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    for path in (paths.results_json, paths.csv, paths.markdown, paths.memory_plot):
        print(path, file=out)
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _build_parser().parse_args(list(argv) if argv is not None else None)
    out = sys.stdout
    if args.command == "report":
        return _report(args, out)
    if args.command == "compare":
        return cli_history.run_compare(args, out)
    if args.command == "history":
        return cli_history.run_history(args, out)
    return _run(args, out)


if __name__ == "__main__":
    sys.exit(main())
