"""The least drop that works: `1` when only the page cache is in the way, `3` for the pool."""

from shadowhound_llm_bench.adapters.memory_sources import CacheDropper
from shadowhound_llm_bench.core.memory.footprint import FootprintPrediction
from shadowhound_llm_bench.core.decider.decision import Action, Preparation

from source_files import GIB, MIB
from test_drop_caches import REFUSAL, _policy, _reading


def test_page_cache_in_the_way_of_a_load_is_dropped_with_1():
    prediction = FootprintPrediction("m", 2 * GIB, "metadata")
    unified = _reading(source="cgroup_anon+gpu_processes", free=GIB, available=5 * GIB)
    done = Preparation(empty_working_set_bytes=200 * MIB, can_drop_caches=True)
    decision = _policy().before_model("m", prediction, unified, [], done)
    assert decision.action is Action.DROP_CACHES and decision.drop_level == 1


def test_memory_the_host_did_not_get_back_is_dropped_with_3():
    # The driver's pool is released by the shrinkers (2), which `1` does not run.
    judge = dict(still_listed=False, before_unload_bytes=GIB, after_unload_bytes=0,
                 footprint_bytes=GIB)
    stalled = _policy().cleanup("m", reclaim_stalled=True, can_drop_caches=True, **judge)
    assert stalled.decision.action is Action.DROP_CACHES and stalled.decision.drop_level == 3
    refused = _policy().on_load_failure("m", REFUSAL, 1, can_drop_caches=True)
    assert refused.action is Action.DROP_CACHES and refused.drop_level == 3


def test_the_dropper_writes_the_level_it_is_given(tmp_path):
    target = tmp_path / "drop_caches"
    target.write_text("")
    dropper = CacheDropper(path=str(target))
    outcome = dropper.drop(1)
    assert outcome.dropped and target.read_text() == "1\n"
    assert "wrote 1" in outcome.message
    assert dropper.drop(3).dropped and target.read_text() == "3\n"
