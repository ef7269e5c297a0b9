"""Console client: send a RunBenchmark goal with rclpy, print feedback lines and the result."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import Any, List, Optional

from ..core.runs.inert_text import terminal_line
from .interfaces_import import import_interfaces, import_rclpy

DEFAULT_ACTION = "/llm_bench/run_benchmark"
EXIT_OK, EXIT_FAILED, EXIT_REJECTED, EXIT_NO_SERVER, EXIT_CANCELED = 0, 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm_bench_client",
        description="Send a RunBenchmark goal to the llm_bench node (no ros2 command needed). "
                    "Ctrl-C cancels the run; its partial report is still written and the "
                    "partial result printed.")
    parser.add_argument("models", nargs="*", help="models to test (default: the node's list)")
    parser.add_argument("--action", default=DEFAULT_ACTION, help="action name")
    parser.add_argument("--suite", default="", help="suite name or YAML path")
    parser.add_argument("--repetitions", type=int, default=0)
    parser.add_argument("--preset", default="",
                        help="default | fast | conservative | adaptive")
    parser.add_argument("--order", default="", help="small_to_large | large_to_small | as_given")
    parser.add_argument("--dry-run", action="store_true", help="plan only, load nothing")
    parser.add_argument("--calibrate", action="store_true",
                        help="choose the memory sources again with the smallest model")
    parser.add_argument("--num-ctx", type=int, default=0)
    parser.add_argument("--num-predict", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=-1.0)
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--keep-alive", default="")
    parser.add_argument("--no-pull", action="store_true")
    parser.add_argument("--run-name", default="")
    parser.add_argument("--resume", default="", metavar="RUN_ID")
    parser.add_argument("--server-timeout", type=float, default=10.0,
                        help="seconds to wait for the action server")
    parser.add_argument("--quiet", action="store_true", help="no feedback lines")
    return parser


def goal_from_args(goal_type: type, args: argparse.Namespace) -> Any:
    """Fill a RunBenchmark goal from the command line."""
    goal = goal_type()
    goal.models = list(args.models)
    goal.suite = args.suite
    goal.repetitions = max(0, args.repetitions)
    goal.preset = args.preset
    goal.order = args.order
    goal.dry_run = bool(args.dry_run)
    goal.num_ctx = args.num_ctx
    goal.num_predict = args.num_predict
    goal.temperature = float(args.temperature)
    goal.seed = args.seed
    goal.keep_alive = args.keep_alive
    goal.no_pull = bool(args.no_pull)
    goal.calibrate = bool(getattr(args, "calibrate", False))
    goal.run_name = args.run_name
    goal.resume_run_id = args.resume
    return goal


def feedback_line(feedback: Any) -> str:
    """One progress line: percent, phase, model, memory and status."""
    model = f" {feedback.model}" if feedback.model else ""
    position = (f" [{feedback.model_index + 1}/{feedback.model_count}]"
                if feedback.model and feedback.model_count else "")
    memory = ""
    if feedback.model_budget_bytes:
        memory = (f" | {feedback.container_working_set_gib:.2f}/"
                  f"{feedback.model_budget_gib:.2f} GiB")
    # The status carries server and model words: printed as text, never run by the terminal.
    return terminal_line(f"{100.0 * feedback.progress:5.1f}% {feedback.phase:<18}{model}"
                         f"{position}{memory} | {feedback.status}")


def _num(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def result_lines(result: Any) -> List[str]:
    """Format the result as a small table plus the report paths."""
    lines = [f"run {result.run_id or '-'}: {result.status}"]
    if result.error_code:
        lines.append(f"error {result.error_code}: {result.error_msg}")
    if result.models:
        lines.append(f"{'model':<22} {'status':<9} {'tok/s':>7} {'ttft ms':>8} {'quality':>7} "
                     f"{'peak GiB':>8}  reason")
        for m in result.models:
            lines.append(f"{m.model:<22} {m.status:<9} {_num(m.decode_tokens_per_s):>7} "
                         f"{_num(m.ttft_ms, 0):>8} {_num(m.quality_score, 0):>7} "
                         f"{_num(m.memory_peak_gib, 2):>8}  {m.reason}")
    if result.peak_container_bytes:
        lines.append(f"peak container memory: {result.peak_container_gib:.2f} GiB")
    if result.summary:
        lines.append(result.summary)
    for model, reason in zip(result.still_loaded_models, result.still_loaded_reasons):
        lines.append(f"still loaded: {model} — {reason}")
    for label, path in (("report", result.report_markdown), ("results", result.report_json),
                        ("csv", result.report_csv), ("memory plot", result.memory_plot),
                        ("log", result.jsonl_log)):
        if path:
            lines.append(f"{label + ':':<13}{path}")
    return [terminal_line(line) for line in lines]


def main(argv: Optional[List[str]] = None) -> int:
    """Send one goal and wait for its result; Ctrl-C cancels and prints the partial result."""
    args = build_parser().parse_args(argv)
    rclpy = import_rclpy()
    import_interfaces()
    from rclpy.signals import SignalHandlerOptions

    from .bench_client import BenchmarkClient, TaskResult

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    bench = BenchmarkClient(action_name=args.action)
    try:
        if not bench.wait_for_server(args.server_timeout):
            print(f"error: no action server at {args.action} after {args.server_timeout:g} s "
                  "(is the llm_bench node running, with the same ROS_DOMAIN_ID?)",
                  file=sys.stderr)
            return EXIT_NO_SERVER
        if not bench.start(goal_from_args(bench.RunBenchmark.Goal, args),
                           timeout_s=args.server_timeout):
            print("error: the server did not accept the goal", file=sys.stderr)
            return EXIT_NO_SERVER
        print("goal accepted", flush=True)
        last_line = ""
        count = 0
        try:
            while not bench.is_done():
                # The node repeats feedback in long phases to show it is alive; print only news.
                if bench.feedback_count != count and not args.quiet:
                    count = bench.feedback_count
                    line = feedback_line(bench.feedback())
                    if line != last_line:
                        print(line, flush=True)
                    last_line = line
        except KeyboardInterrupt:
            print("canceling: the run stops after the current request, unloads and writes its "
                  "report; the partial result follows (Ctrl-C again to leave at once)",
                  flush=True)
            try:
                if bench.cancel() is None:
                    print("error: no result after the cancel", file=sys.stderr)
                    return EXIT_CANCELED
            except KeyboardInterrupt:
                print("not waiting for the result", file=sys.stderr)
                return EXIT_CANCELED
        result = bench.result()
        for line in result_lines(result):
            print(line, flush=True)
        kind = bench.result_kind()
        if result.status == "rejected":
            return EXIT_REJECTED
        if kind is TaskResult.CANCELED or result.status == "canceled":
            return EXIT_CANCELED
        return EXIT_OK if kind is TaskResult.SUCCEEDED else EXIT_FAILED
    finally:
        bench.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
