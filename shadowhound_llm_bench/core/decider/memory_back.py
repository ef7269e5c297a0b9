"""
When the robot has its memory back after a preemption, and what the policy does when it has not.

On unified memory (Jetson Thor) an unload ends the runner, but the GPU driver keeps the freed
pages in its pool until the caches are dropped (see decider/cache_drop.py): the models' memory is
gone by the chosen sources while MemAvailable stays down. The robot has its memory back only when
its ROS headroom is back; when the models' memory left and the headroom did not come back on a
unified machine, a drop is what returns it, and the policy orders it before any wait.
"""

from __future__ import annotations

from .cache_drop import unified_memory
from .decision import Action, Decision
from ..memory.memory_reading import MemoryReading
from .preemption import find_breach, keeps_rising, ros_headroom_bytes
from .policy_settings import PolicySettings
from ..units import to_gib


def _gib(n_bytes: int) -> str:
    return f"{to_gib(n_bytes):.3f} GiB"


def robot_has_memory_back(reading: MemoryReading) -> bool:
    """Tell whether the robot's ROS headroom is back (an unknown host counts as back)."""
    return reading.host_total_bytes <= 0 or ros_headroom_bytes(reading) >= 0


def drop_returns_memory(reading: MemoryReading, *, can_drop_caches: bool,
                        dropped_caches: bool) -> bool:
    """Tell whether a cache drop is what can still give the robot its memory back."""
    return (not robot_has_memory_back(reading) and can_drop_caches and not dropped_caches
            and unified_memory(reading.source))


def _free_numbers(reading: MemoryReading) -> str:
    free = f"MemFree {_gib(reading.host_free_bytes)}, " if reading.host_free_bytes >= 0 else ""
    return (f"{free}MemAvailable {_gib(reading.host_available_bytes)}, ROS headroom "
            f"{_gib(ros_headroom_bytes(reading))} (reserve {_gib(reading.ros_reserve_bytes)})")


def while_preempting(settings: PolicySettings, *, since_unload_s: float,
                     held_after_unload_bytes: int, held_now_bytes: int, budget_bytes: int,
                     restarted: bool, models_released: bool = False,
                     reading: MemoryReading = None, can_drop_caches: bool = False,
                     dropped_caches: bool = False) -> Decision:
    """
    After the unload was sent: DROP_CACHES, RESTART or WAIT.

    DROP_CACHES when the models' memory left and the headroom did not come back on unified
    memory; RESTART when the memory keeps rising or stays; else WAIT.
    """
    numbers = (f"models hold {_gib(held_now_bytes)} ({_gib(held_after_unload_bytes)} when "
               f"the unload was sent, {since_unload_s:.2f} s ago)")
    if models_released and reading is not None and drop_returns_memory(
            reading, can_drop_caches=can_drop_caches, dropped_caches=dropped_caches):
        return Decision(Action.DROP_CACHES, f"the models' memory left but the robot did not get "
                        f"it back ({_free_numbers(reading)}): the driver's pool or the page "
                        f"cache holds it; drop the caches; {numbers}")
    if models_released:
        return Decision(Action.KEEP, f"the models' memory is released; {numbers}")
    if restarted or held_now_bytes <= 0:  # a restart frees only what models hold
        why = "container restarted" if restarted else "no restart: models hold nothing"
        return Decision(Action.WAIT, f"{why}; {numbers}")
    if keeps_rising(held_after_unload_bytes, held_now_bytes, budget_bytes=budget_bytes,
                    rise_fraction=settings.preempt_rise_fraction):
        return Decision(Action.RESTART, f"memory keeps rising after the unload (a load "
                        f"Ollama goes on with): restart the container; {numbers}")
    if since_unload_s > settings.preempt_release_deadline_s:
        return Decision(Action.RESTART, f"memory not released within "
                        f"{settings.preempt_release_deadline_s:.1f} s of the unload: restart "
                        f"the container; {numbers}")
    return Decision(Action.WAIT, f"waiting for the unload; {numbers}")


def after_preemption(settings: PolicySettings, reading: MemoryReading, waited_s: float, *,
                     can_drop_caches: bool = False, dropped_caches: bool = False) -> Decision:
    """
    After a preemption: LOAD (go on), DROP_CACHES, WAIT for headroom, or END_RUN.

    A run never ends waiting for memory that only a cache drop would return: the drop comes
    first.
    """
    breach = find_breach(reading, error_percent=settings.pressure_alert_percent)
    if breach is None:
        return Decision(Action.LOAD, "the robot has its memory back: go on with the next "
                        f"model (working set {_gib(reading.container.working_set_bytes)}, "
                        f"budget {_gib(reading.model_budget_bytes)})")
    if drop_returns_memory(reading, can_drop_caches=can_drop_caches,
                           dropped_caches=dropped_caches):
        return Decision(Action.DROP_CACHES, f"no headroom after the preemption on unified "
                        f"memory ({_free_numbers(reading)}): drop the caches before waiting; "
                        f"{breach.describe()}")
    if waited_s < settings.preempt_wait_s:
        return Decision(Action.WAIT, f"wait up to {settings.preempt_wait_s - waited_s:.1f} s "
                        f"for headroom: {breach.describe()}")
    return Decision(Action.END_RUN, f"end the run: no headroom after waiting "
                    f"{waited_s:.1f} s: {breach.describe()}")
