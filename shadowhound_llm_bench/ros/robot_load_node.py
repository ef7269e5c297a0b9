"""A stand-in robot process for demos: an rclpy node (named by --ros-args) holding some memory."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

PAGE = 4096


def main(argv: Optional[List[str]] = None) -> int:
    """Hold --hold-mb of written memory in a spinning node until SIGINT/SIGTERM."""
    import signal

    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.utilities import remove_ros_args

    args = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog="robot_load_node")
    parser.add_argument("--hold-mb", type=float, default=0.0)
    options = parser.parse_args(remove_ros_args(args)[1:])
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rclpy.init(args=args)
    node = Node("robot_load")
    held = bytearray(int(options.hold_mb * 1024 * 1024))
    held[::PAGE] = b"\x01" * len(range(0, len(held), PAGE))  # resident, not just reserved
    node.get_logger().info(f"holding {options.hold_mb:g} MB")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
