"""
A process standing in for a Nav2 server whose memory grows (costmaps, a bigger map).

    python -m shadowhound_llm_bench.sim.growing_nav2 --name controller_server --hold-mib 20

It is named like a Nav2 executable (argv[0] and /proc/<pid>/comm), so the node's ROS process scan
counts it as ROS memory. Commands on stdin, one per line, each answered with "ok <bytes held>":
`grow BYTES` touches that much more memory, `shrink BYTES` gives it back, `held` reports. With
--oom-score-adj the process asks the kernel to spare it (negative values need root).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

PAGE = 4096


def _touch(size: int) -> bytearray:
    block = bytearray(size)
    for offset in range(0, size, PAGE):
        block[offset] = 1
    return block


def main(argv: List[str]) -> int:
    """Hold memory and follow commands until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--name", default="controller_server")
    parser.add_argument("--hold-mib", type=float, default=16.0)
    parser.add_argument("--oom-score-adj", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        with open("/proc/self/comm", "w", encoding="ascii") as handle:
            handle.write(args.name[:15])
    except OSError:
        pass
    if args.oom_score_adj is not None:
        try:
            with open("/proc/self/oom_score_adj", "w", encoding="ascii") as handle:
                handle.write(str(args.oom_score_adj))
        except OSError as exc:
            print(f"cannot set oom_score_adj {args.oom_score_adj}: {exc}", file=sys.stderr)
    blocks = [_touch(int(args.hold_mib * (1 << 20)))]
    print(f"ok {sum(len(b) for b in blocks)}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "grow":
            blocks.append(_touch(int(words[1])))
        elif words[0] == "shrink":
            wanted = int(words[1])
            while blocks and wanted > 0 and len(blocks) > 1:
                wanted -= len(blocks.pop())
        print(f"ok {sum(len(b) for b in blocks)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.argv[0] = os.environ.get("NAV2_STAND_IN_ARGV0", sys.argv[0])
    sys.exit(main(sys.argv[1:]))
