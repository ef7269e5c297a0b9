"""Calibration is not fooled by a runner's CPU share, a source that fell, or an old footprint."""

from shadowhound_llm_bench.core.memory.memory_calibration import (
    LoadCheck, blind_to_first_load, choose_sources)
from shadowhound_llm_bench.engine.footprint_cache import FootprintCache

MIB = 1024 ** 2
SMALL_BYTES = 60 * MIB
LARGE_BYTES = 600 * MIB
RUNNER_SHARE = 40 * MIB  # the runner's own CPU-side memory, charged to the container


def _values(*, anon, gpu, host_used):
    return {"cgroup_anon": anon, "cgroup_working_set": anon + 10 * MIB,
            "cgroup_mapped": anon, "gpu_processes": gpu, "host_used": host_used}


IDLE = _values(anon=50 * MIB, gpu=0, host_used=0)


def _unified_load(model_bytes):
    """Source values after a load on unified memory: device memory outside the cgroup."""
    return _values(anon=50 * MIB + RUNNER_SHARE, gpu=model_bytes,
                   host_used=model_bytes + RUNNER_SHARE)


def test_the_runner_share_alone_tracks_a_small_model_on_unified_memory():
    # 40 MiB of 60 MiB predicted: 0.67x, within 0.5-2x. One small load cannot tell that this
    # is the runner and not the model: cgroup_anon alone is chosen (the blind choice).
    result = choose_sources(machine="thor", model="small", predicted_bytes=SMALL_BYTES,
                            before=IDLE, after=_unified_load(SMALL_BYTES))
    assert result.chosen == ("cgroup_anon",)


def test_a_larger_model_shows_the_runner_share_does_not_grow_with_the_model():
    check = LoadCheck("large", LARGE_BYTES, IDLE, _unified_load(LARGE_BYTES))
    result = choose_sources(machine="thor", model="small", predicted_bytes=SMALL_BYTES,
                            before=IDLE, after=_unified_load(SMALL_BYTES), checks=[check])
    assert result.tracked and result.chosen == ("cgroup_anon", "gpu_processes")
    (checked,) = result.checks
    assert checked[0] == "large"
    moved = sum(m.delta_bytes for m in checked[2] if m.source in result.chosen)
    assert 0.5 * LARGE_BYTES <= moved <= 2 * LARGE_BYTES
    assert "checked with large" in result.describe()
    again = type(result).from_dict(result.to_dict())
    assert again.checks == result.checks


def test_a_set_with_a_member_that_moved_down_is_rejected():
    # The container's anonymous pages fell by 200 MiB (another process left) while GPU memory
    # rose by 500 MiB: the sum, 300 MiB, is 0.5x the prediction but measures nothing.
    before = _values(anon=300 * MIB, gpu=0, host_used=0)
    after = _values(anon=100 * MIB, gpu=500 * MIB, host_used=0)
    result = choose_sources(machine="thor", model="m", predicted_bytes=LARGE_BYTES,
                            before=before, after=after)
    assert result.chosen != ("cgroup_anon", "gpu_processes")
    assert "cgroup_anon" not in result.chosen


def test_a_footprint_is_kept_per_chosen_sources(tmp_path):
    chosen = ["cgroup_anon"]
    path = str(tmp_path / "footprints.json")
    cache = FootprintCache(path, sources_of=lambda: "+".join(chosen))
    cache.put("llama3.3:70b", digest="sha256:ab", num_ctx=4096, footprint_bytes=16 * MIB)
    assert cache.get("llama3.3:70b", digest="sha256:ab", num_ctx=4096) == 16 * MIB
    # Recalibrated: device memory is now read too; the footprint seen without it is not used.
    chosen[:] = ["cgroup_anon", "gpu_processes"]
    assert cache.get("llama3.3:70b", digest="sha256:ab", num_ctx=4096) is None
    again = FootprintCache(path, sources_of=lambda: "cgroup_anon")
    assert again.get("llama3.3:70b", digest="sha256:ab", num_ctx=4096) == 16 * MIB


def test_a_first_load_seen_under_half_its_prediction_calls_for_a_new_choice():
    assert blind_to_first_load("large", int(0.49 * LARGE_BYTES), LARGE_BYTES, "cgroup_anon")
    why = blind_to_first_load("large", -MIB, LARGE_BYTES, "cgroup_anon")
    assert why.startswith("recalibrate:") and "0.00x" in why and "not kept" in why
    assert blind_to_first_load("large", LARGE_BYTES // 2, LARGE_BYTES, "cgroup_anon") is None
    assert blind_to_first_load("unknown", 0, 0, "cgroup_anon") is None
