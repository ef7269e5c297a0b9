"""
What memory readings mean.

Parses and interprets where a model's memory shows up (meminfo, cgroup stat, nvidia-smi,
tegrastats), which sources track a model on this machine (calibration), a model's predicted and
measured footprint, and how much memory ROS 2 / Nav2 hold and need reserved. It decides what a
number is, never what to do about it.
"""
