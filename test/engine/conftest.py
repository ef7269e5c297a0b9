"""Engine tests: ROS domain 30 (not used by these tests, set so nothing leaks into others)."""

import os

os.environ.setdefault("ROS_DOMAIN_ID", "30")
