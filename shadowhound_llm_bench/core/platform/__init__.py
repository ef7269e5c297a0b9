"""
The machine a run measured.

Module, release, power mode and clocks, energy per phase, why a run slowed down (thermal, power
mode), the canary verdict and the memory-bandwidth roofline, and what /diagnostics says of them.
"""
