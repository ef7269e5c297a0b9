"""Property-based fuzzing with a fixed, small example budget (seconds): no input is a crash."""

import pytest
from hypothesis import HealthCheck, given, settings

import fuzz_targets as targets
import fuzz_targets_compressed as compressed
import fuzz_targets_history as history

# Derandomized: CI replays the same examples every time; benchmarks/fuzz_long.py explores.
CI = settings(derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))


def _no_defect(outcome):
    assert not outcome.defect, f'{outcome.label}: {outcome.detail}'


@settings(CI, max_examples=200)
@given(request=targets.goal_requests())
def test_goal_validation_accepts_or_rejects_every_goal_with_a_clean_message(request):
    _no_defect(targets.check_goal(request))


@settings(CI, max_examples=80)
@given(data=targets.mutated(targets.suite_document()))
def test_suite_parsing_refuses_broken_suites_without_quoting_them(data):
    _no_defect(targets.check_suite_data(data))


@settings(CI, max_examples=80)
@given(text=targets.suite_file_texts())
def test_suite_files_never_crash_the_loader_or_leak_their_content(text):
    _no_defect(targets.check_suite_file(text))


@settings(CI, max_examples=50)
@given(data=targets.mutated(targets.scenario_document()))
def test_scenario_parsing_refuses_broken_scenarios_with_its_own_error(data):
    _no_defect(targets.check_scenario(data))


@settings(CI, max_examples=150)
@given(changes=targets.parameter_changes())
def test_parameter_validation_refuses_bad_values_with_its_own_error(changes):
    _no_defect(targets.check_parameters(changes))


@settings(CI, max_examples=60)
@given(text=targets.suite_file_texts())
def test_params_files_never_crash_the_check(text):
    _no_defect(targets.check_params_file(text))


@pytest.fixture(scope='module')
def client_target():
    with targets.ClientTarget() as target:
        yield target


@settings(CI, max_examples=30)
@given(example=targets.hostile_replies())
def test_the_ollama_client_survives_any_reply_within_its_deadline(client_target, example):
    _no_defect(client_target.check(example))


@settings(CI, max_examples=25)
@given(example=compressed.encoded_replies())
def test_the_ollama_client_refuses_or_reads_any_encoded_reply_with_little_memory(
        client_target, example):
    _no_defect(compressed.check_encoded(client_target.server, example))


@settings(CI, max_examples=6)
@given(example=history.crafted_databases())
def test_a_crafted_history_database_is_imported_or_refused_and_prints_nothing_live(example):
    _no_defect(history.check_database(example))


@settings(CI, max_examples=3)
@given(example=history.crafted_run_folders())
def test_crafted_run_folders_compare_and_import_without_a_control_byte_or_formula(example):
    _no_defect(history.check_run_folders(example))
