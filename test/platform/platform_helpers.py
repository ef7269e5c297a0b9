"""Helpers of the platform tests: the simulator started with a fake Thor tree."""

from support.simulators import SimProcess


class SimWithThor(SimProcess):
    """The simulator as a process, writing a fake Thor tree under root."""

    def __init__(self, root: str, *, scenario: str = "thor", ambient_c: float = 35.0,
                 faults: str = "") -> None:
        self.root = root
        super().__init__(scenario, faults, extra_args=[
            "--platform-root", root, "--platform-ambient-c", str(ambient_c)])
