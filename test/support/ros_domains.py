"""
The ROS 2 domain of each test area.

Each test area runs its nodes in a domain of its own, so areas that run at the same time (and
parallel checkouts, moved apart by SHB_TEST_DOMAIN_SHIFT) do not see each other's nodes.
"""

import contextlib
import os
from typing import Iterator


def area_domain_id(base: int) -> int:
    """Return a test area's ROS domain id: its base moved by SHB_TEST_DOMAIN_SHIFT."""
    return (base + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232


@contextlib.contextmanager
def ros_domain(domain_id: int) -> Iterator[None]:
    """Run the block in this ROS domain (rclpy.init reads it); the one before is restored."""
    saved = os.environ.get('ROS_DOMAIN_ID')
    os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop('ROS_DOMAIN_ID', None)
        else:
            os.environ['ROS_DOMAIN_ID'] = saved
