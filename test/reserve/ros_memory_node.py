"""
A real rclpy process that holds a known amount of memory (test helper for the ROS reserve).

Usage: ros_memory_node.py [--alloc-mb N] [--grow-mb N] [--nodes a,b,c] --ros-args ...

One node (named by the ROS arguments) or, with --nodes, several nodes in one process as a
component container holds them; each node holds --alloc-mb of written memory. SIGUSR1 makes the
first node hold --grow-mb more. Prints "ready <bytes>" / "grown <bytes>" once the memory is
in place.
"""

import argparse
import signal
import sys
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

PAGE = 4096


def written_buffer(size_bytes: int) -> bytearray:
    """Memory that is really resident: every page written with a non-zero byte."""
    buffer = bytearray(size_bytes)
    pages = (size_bytes + PAGE - 1) // PAGE
    buffer[::PAGE] = b'\x5a' * pages
    return buffer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--alloc-mb', type=int, default=0)
    parser.add_argument('--grow-mb', type=int, default=0)
    parser.add_argument('--nodes', default='')
    options = parser.parse_args(rclpy.utilities.remove_ros_args(sys.argv)[1:])

    rclpy.init(args=sys.argv)
    component_names = [name for name in options.nodes.split(',') if name]
    if component_names:
        # The container's own node takes the global __node remap; components, as in
        # rclcpp_components, ignore global arguments.
        nodes = [Node('component_container')]
        nodes += [Node(name, use_global_arguments=False) for name in component_names]
        holders = nodes[1:]
    else:
        # Like a Nav2 server, the node's compiled-in name is its executable's name.
        nodes = [Node(Path(sys.argv[0]).stem)]
        holders = nodes
    held = {id(node): [written_buffer(options.alloc_mb * 2**20)] for node in holders}
    grow_requests = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: grow_requests.append(signum))

    executor = SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    print(f'ready {len(holders) * options.alloc_mb * 2**20}', flush=True)
    total_bytes = len(holders) * options.alloc_mb * 2**20
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.05)
            while grow_requests:
                grow_requests.pop()
                held[id(holders[0])].append(written_buffer(options.grow_mb * 2**20))
                total_bytes += options.grow_mb * 2**20
                print(f'grown {total_bytes}', flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
