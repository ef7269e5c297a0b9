"""The simulation parameter group: apart from the robot's parameters, former names still read."""

import dataclasses

import pytest

from shadowhound_llm_bench.core.decider.policy_settings import PolicySettings
from shadowhound_llm_bench.core.settings.node_settings import NodeSettings, NodeSettingsError
from shadowhound_llm_bench.core.settings.parameter_docs import render_parameter_docs
from shadowhound_llm_bench.core.settings.parameter_specs import ROBOT_SPECS
from shadowhound_llm_bench.core.settings.simulation_parameters import (
    RENAMED, SIMULATION_SPECS, SimulatedMachine)
from shadowhound_llm_bench.core.units import GIB


def test_the_robot_parameters_hold_no_simulated_machine():
    for spec in ROBOT_SPECS:
        assert 'simulat' not in spec.name and 'scale' not in spec.name, spec.name
    assert all(spec.name.startswith('simulation.') for spec in SIMULATION_SPECS)
    assert 'memory_scale' not in {f.name for f in dataclasses.fields(PolicySettings)}


def test_a_robot_is_its_own_machine_by_default():
    assert NodeSettings().simulated_machine() == SimulatedMachine(
        memory_scale=1.0, total_bytes=0, system_reserve_bytes=10 * GIB)
    assert not NodeSettings().simulated_machine().simulated_host
    assert NodeSettings().deprecation_notes == ()


def test_the_simulated_machine_scales_the_preset_byte_sizes():
    settings = NodeSettings(values={'simulation.memory_scale': 0.125,
                                    'simulation.total_gib': 1.0,
                                    'simulation.system_reserve_gib': 0.125})
    machine = settings.simulated_machine()
    assert machine.memory_scale == 0.125 and machine.simulated_host
    assert machine.total_bytes == GIB and machine.system_reserve_bytes == GIB // 8
    assert settings.policy_settings().safety_buffer_bytes == int(2 * GIB * 0.125)


@pytest.mark.parametrize('old, new, value', [
    ('policy.memory_scale', 'simulation.memory_scale', 0.125),
    ('host.simulated_total_gib', 'simulation.total_gib', 1.0),
    ('host.system_reserve_gib', 'simulation.system_reserve_gib', 0.5),
])
def test_a_former_name_still_sets_the_new_parameter_with_a_note(old, new, value):
    assert RENAMED[old] == new
    settings = NodeSettings(values={old: value})
    assert settings[new] == value and old not in settings.values
    (note,) = settings.deprecation_notes
    assert repr(old) in note and f'use {new!r}' in note and 'deprecated' in note
    changed = NodeSettings().with_changes({old: value})
    assert changed[new] == value and changed.deprecation_notes == (note,)


def test_a_former_name_beside_its_new_name_is_refused():
    with pytest.raises(NodeSettingsError, match="give 'simulation.memory_scale' only"):
        NodeSettings(values={'policy.memory_scale': 0.5, 'simulation.memory_scale': 0.25})


def test_a_former_name_is_checked_under_the_new_name():
    with pytest.raises(NodeSettingsError, match='simulation.memory_scale must be at most 1'):
        NodeSettings(values={'policy.memory_scale': 3.0})


def test_the_parameters_page_keeps_the_simulation_group_apart():
    page = render_parameter_docs()
    simulation = page.index('## simulation')
    former = page.index('## Former names')
    assert simulation < former
    for spec in SIMULATION_SPECS:
        assert simulation < page.index(f'`{spec.name}`') < former
    for old, new in RENAMED.items():
        assert f'| `{old}` | `{new}` |' in page
    assert 'never scaled' in page[simulation:former]
