"""Console client: send a RunBenchmark goal with rclpy, print feedback lines and the result."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from typing import Any, List, Optional

from ..core.inert_text import terminal_line
from .interfaces_import import import_interfaces, import_rclpy

DEFAULT_ACTION = "/llm_bench/run_benchmark"
EXIT_OK, EXIT_FAILED, EXIT_REJECTED, EXIT_NO_SERVER, EXIT_CANCELED = 0, 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm_bench_client",
        description="Send a RunBenchmark goal to the llm_bench node (no ros2 command needed). "
                    "Ctrl-C cancels the run; its partial report is still written.")
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
    for label, path in (("report", result.report_markdown), ("results", result.report_json),
                        ("csv", result.report_csv), ("memory plot", result.memory_plot),
                        ("log", result.jsonl_log)):
        if path:
            lines.append(f"{label + ':':<13}{path}")
    return [terminal_line(line) for line in lines]


def _spin_until(rclpy_module: Any, node: Any, future: Any, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while not future.done() and time.monotonic() < end:
        rclpy_module.spin_once(node, timeout_sec=0.1)
    return future.done()


def main(argv: Optional[List[str]] = None) -> int:
    """Send one goal and wait for its result; Ctrl-C cancels the run."""
    args = build_parser().parse_args(argv)
    rclpy = import_rclpy()
    run_benchmark, _, _ = import_interfaces()
    from rclpy.action import ActionClient
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    node = rclpy.create_node("llm_bench_client")
    client = ActionClient(node, run_benchmark, args.action)
    try:
        if not client.wait_for_server(timeout_sec=args.server_timeout):
            print(f"error: no action server at {args.action} after {args.server_timeout:g} s "
                  "(is the llm_bench node running, with the same ROS_DOMAIN_ID?)",
                  file=sys.stderr)
            return EXIT_NO_SERVER

        last_line = [""]

        def on_feedback(message: Any) -> None:
            # The node repeats feedback in long phases to show it is alive; print only news.
            line = feedback_line(message.feedback)
            if not args.quiet and line != last_line[0]:
                print(line, flush=True)
            last_line[0] = line

        send = client.send_goal_async(goal_from_args(run_benchmark.Goal, args),
                                      feedback_callback=on_feedback)
        if not _spin_until(rclpy, node, send, args.server_timeout):
            print("error: the server did not answer the goal", file=sys.stderr)
            return EXIT_NO_SERVER
        handle = send.result()
        if not handle.accepted:
            print("goal rejected by the node (its log says why: bad values, or a run is "
                  "already going)", file=sys.stderr)
            return EXIT_REJECTED
        print("goal accepted", flush=True)
        result_future = handle.get_result_async()
        try:
            while not result_future.done():
                rclpy.spin_once(node, timeout_sec=0.1)
        except KeyboardInterrupt:
            print("canceling: the run stops after the current request and writes its report",
                  flush=True)
            handle.cancel_goal_async()
            try:
                while not result_future.done():
                    rclpy.spin_once(node, timeout_sec=0.1)
            except KeyboardInterrupt:
                print("not waiting for the result", file=sys.stderr)
                return EXIT_CANCELED
        result = result_future.result().result
        for line in result_lines(result):
            print(line, flush=True)
        if result.status == "canceled":
            return EXIT_CANCELED
        return EXIT_OK if result.success else EXIT_FAILED
    finally:
        client.destroy()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
