"""How a run's statuses become the run status, the goal state, the error code and message."""

import pytest

from shadowhound_llm_bench.core.settings.goal_outcome import (GoalErrorCode, GoalState,
                                                              outcome_of_run)
from shadowhound_llm_bench.core.runs.run_records import ModelStatus, RunStatus
from shadowhound_llm_bench.core.runs.run_status import is_success, run_status

from node_helpers import interfaces_available

OK, SKIPPED, FAILED = ModelStatus.OK, ModelStatus.SKIPPED, ModelStatus.FAILED


@pytest.mark.parametrize('statuses, already, expected', [
    ([OK, OK], 0, RunStatus.OK),
    ([OK, SKIPPED], 0, RunStatus.PARTIAL),
    ([OK, FAILED], 0, RunStatus.PARTIAL),
    ([SKIPPED], 0, RunStatus.FAILED),  # nothing tested is not success
    ([SKIPPED, FAILED, ModelStatus.ABORTED], 0, RunStatus.FAILED),
    ([], 0, RunStatus.FAILED),
    ([], 2, RunStatus.OK),  # a resumed run whose models were all complete already
    ([SKIPPED], 1, RunStatus.PARTIAL),
])
def test_run_status_from_the_models_statuses(statuses, already, expected):
    status, message = run_status(statuses, canceled=False, already_complete=already)
    assert status is expected and message


def test_after_a_resume_the_message_counts_every_ok_model_of_the_run():
    status, message = run_status([OK, OK], canceled=False, already_complete=1)
    assert status is RunStatus.OK
    assert message == '3 ok (1 ok before the resume)'


def test_a_canceled_run_is_canceled_whatever_its_models_did():
    status, message = run_status([OK], canceled=True)
    assert status is RunStatus.CANCELED and '1 ok' in message


def test_only_ok_and_planned_are_success():
    assert is_success('ok') and is_success('planned')
    assert not any(is_success(s) for s in ('partial', 'failed', 'canceled', 'aborted'))


@pytest.mark.parametrize('status, message, cancel, state, code', [
    ('ok', '', False, GoalState.SUCCEEDED, GoalErrorCode.NONE),
    ('planned', '', False, GoalState.SUCCEEDED, GoalErrorCode.NONE),
    ('partial', 'not every model was tested: 1 ok, 1 skipped', False, GoalState.SUCCEEDED,
     GoalErrorCode.MODELS_NOT_TESTED),
    ('failed', 'no model completed its tests: 1 skipped', False, GoalState.ABORTED,
     GoalErrorCode.MODELS_NOT_TESTED),
    ('failed', 'Ollama at http://x:1 is not usable: refused', False, GoalState.ABORTED,
     GoalErrorCode.OLLAMA_UNAVAILABLE),
    ('canceled', 'canceled', True, GoalState.CANCELED, GoalErrorCode.CANCELED),
    ('canceled', 'canceled', False, GoalState.ABORTED, GoalErrorCode.INTERRUPTED),
    ('incomplete', '', False, GoalState.ABORTED, GoalErrorCode.UNKNOWN),
])
def test_goal_outcome_of_each_run_status(status, message, cancel, state, code):
    outcome = outcome_of_run(status, message, cancel_requested=cancel)
    assert outcome.state is state and outcome.error_code is code
    assert outcome.success == (code is GoalErrorCode.NONE)
    assert (outcome.error_msg == '') == (code is GoalErrorCode.NONE)


@pytest.mark.skipif(not interfaces_available(), reason='interfaces not built')
def test_the_error_codes_are_the_result_message_constants():
    from shadowhound_llm_bench_interfaces.action import RunBenchmark
    for code in GoalErrorCode:
        assert getattr(RunBenchmark.Result, code.name) == code.value
