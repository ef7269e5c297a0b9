"""
What the test areas share: simulators, container engines, the real Ollama, ROS nodes, waits.

The test folder is on sys.path (pytest puts the folder of the top conftest.py there), so a
test or an area's conftest.py imports `from support.waiting import wait_until`; an area's
conftest.py takes a shared fixture by importing it.
"""
