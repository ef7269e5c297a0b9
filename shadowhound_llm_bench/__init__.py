"""Benchmark local LLMs on a robot without putting the robot at risk."""

__version__ = "0.1.0"
