"""The policy's word on models found loaded, left loaded, loaded to calibrate or preempted."""

from shadowhound_llm_bench.core.decider.decision import Action, Decision

from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings


def policy():
    return MemoryPolicy(preset_settings("default"))


def test_nothing_loaded_before_the_run_is_kept():
    assert policy().at_run_start([]).action is Action.KEEP


def test_models_found_loaded_are_unloaded_by_default():
    decision = policy().at_run_start(["phi4:14b", "llama3.3:70b"], run_models=["phi4:14b"])
    assert decision.action is Action.UNLOAD_OTHERS
    assert decision.models_to_unload == ("phi4:14b", "llama3.3:70b")
    assert "left by an earlier run or another client" in decision.reason


def test_kept_models_are_counted_but_a_model_the_run_tests_is_unloaded_anyway():
    decision = policy().at_run_start(["phi4", "llama3.3:70b"], run_models=["phi4:latest"],
                                     keep_others=True)
    assert decision.action is Action.UNLOAD_OTHERS
    assert decision.models_to_unload == ("phi4",)  # else it would be "measured" at ~0
    assert "llama3.3:70b kept and counted" in decision.reason
    only_others = policy().at_run_start(["llama3.3:70b"], run_models=["phi4:14b"],
                                        keep_others=True)
    assert only_others.action is Action.KEEP and "counted" in only_others.reason


def test_the_end_of_a_run_unloads_what_it_loaded():
    assert policy().at_run_end([]).action is Action.KEEP
    decision = policy().at_run_end(["llama3.3:70b"])
    assert decision.action is Action.UNLOAD and decision.models_to_unload == ("llama3.3:70b",)


def test_a_calibration_unloads_what_is_loaded_but_never_a_model_kept():
    decision = policy().before_calibration("phi4:14b", ["llama3.3:70b", "qwq:32b"],
                                           kept=["llama3.3:70b"])
    assert decision.action is Action.UNLOAD_OTHERS
    assert decision.models_to_unload == ("qwq:32b",)
    assert "llama3.3:70b found loaded and kept" in decision.reason
    only_kept = policy().before_calibration("phi4:14b", ["llama3.3"],
                                            kept=["llama3.3:latest"])
    assert only_kept.action is Action.KEEP and "kept" in only_kept.reason
    assert policy().before_calibration("phi4:14b", ["qwq:32b"]).models_to_unload == ("qwq:32b",)


def test_a_model_loaded_to_calibrate_is_unloaded_again():
    decision = policy().after_calibration_load("phi4:14b")
    assert decision.action is Action.UNLOAD and decision.models_to_unload == ("phi4:14b",)


def test_a_preemption_unloads_the_preempted_models_and_everything_listed():
    # The PREEMPT decision itself is tested in test_preemption_rules.py.
    cut = Decision(Action.PREEMPT, "the robot needs memory", ("phi4:14b",))
    decision = policy().preemption_unloads(cut, ["qwq:32b", "phi4:14b", ""])
    assert decision.action is Action.UNLOAD
    assert decision.models_to_unload == ("phi4:14b", "qwq:32b")
    assert "the robot needs memory" in decision.reason
