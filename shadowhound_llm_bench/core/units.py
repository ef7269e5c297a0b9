"""Byte units: bytes inside the program, GiB only at the edges."""

GIB = 1024 ** 3
MIB = 1024 ** 2
GB = 1000 ** 3


def to_gib(n_bytes: float) -> float:
    """Convert bytes to GiB, for messages and reports."""
    return float(n_bytes) / GIB


def from_gib(gib: float) -> int:
    """Convert GiB to whole bytes."""
    return int(round(gib * GIB))
