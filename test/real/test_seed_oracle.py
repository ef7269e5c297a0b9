"""The real seed table's oracle: the cheapest unloads and restarts that avoid every failure."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

from seed_oracle import OracleInputs, cheapest_schedule  # noqa: E402

MB = 10 ** 6
SEED = {'phi4': 460 * MB, 'qwen': 800 * MB, 'qwq': 800 * MB, 'llama': 1560 * MB,
        'deepseek': 280 * MB}
ORDER = ('phi4', 'qwen', 'qwq', 'llama', 'deepseek')


def inputs(**changes):
    values = dict(order=ORDER, footprint_bytes=SEED, limit_bytes=2684 * MB, server_bytes=10 * MB,
                  unload_s={'phi4': 0.2, 'qwen': 0.3, 'qwq': 0.3}, default_unload_s=0.3,
                  restart_s=1.8)
    values.update(changes)
    return OracleInputs(**values)


def test_two_unloads_make_room_for_the_largest_and_the_cheapest_ones_are_chosen():
    # phi4 + qwen + qwq fit; Ollama's cap of 3 evicts phi4 for llama, the two 800 MB stay:
    # two of the three must go before llama, the cheapest two (phi4 may go early).
    schedule = cheapest_schedule(inputs())
    assert schedule.feasible and schedule.management_s == pytest.approx(0.5)
    assert schedule.actions == ('unload phi4 before qwen', 'unload qwen before qwq')
    same = cheapest_schedule(inputs(unload_s={}))
    assert same.management_s == pytest.approx(0.6) and len(same.actions) == 2


def test_a_restart_is_chosen_when_it_is_cheaper_than_the_unloads():
    schedule = cheapest_schedule(inputs(restart_s=0.4))
    assert schedule.management_s == 0.4 and schedule.actions == ('restart before llama',)


def test_nothing_is_needed_when_everything_fits_and_nothing_when_one_never_fits():
    assert cheapest_schedule(inputs(limit_bytes=10 ** 12)).management_s == 0.0
    never = cheapest_schedule(inputs(limit_bytes=1000 * MB))
    assert not never.feasible and 'llama does not fit the limit even alone' in never.note
