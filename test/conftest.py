"""Settings shared by every test area."""

import os

# ROS 2 discovery stays on this machine, so parallel test runs do not see each other's nodes.
# Each area also picks its own ROS_DOMAIN_ID (see the area's conftest.py).
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
