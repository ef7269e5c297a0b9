"""On the unified Thor with a large runner CPU share, calibration still sees the device memory."""

import json

import yaml

from shadowhound_llm_bench.sim.scenario import scenario_path

from test_sources_on_simulated_machines import _run, simulated  # noqa: F401 - the fixture

SMALL, LARGER = "phi4:14b", "qwen2.5-coder:32b"
# 8 GiB of a 128 GiB Thor: the runner's CPU-side share charged to the container moves
# cgroup_anon by ~0.85x phi4:14b's prediction (it "tracks" the small model alone), but only
# ~0.4x qwen2.5-coder:32b's.
RUNNER_SHARE = "8GiB"


def _thor_with_runner_share(tmp_path):
    with open(scenario_path("thor"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["machine"]["runner_cpu_share"] = RUNNER_SHARE
    path = tmp_path / "thor_runner_share.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_a_runner_share_charged_to_the_container_does_not_hide_device_memory(
        simulated, tmp_path):  # noqa: F811 - the fixture imported above
    start, build = simulated
    sim, scenario = start(_thor_with_runner_share(tmp_path))
    guard, client = build(sim, scenario)
    summary = guard.calibrate([SMALL, LARGER])
    result = guard.calibration
    moved = {m.source: m for m in result.movements}
    # The trap is real on this machine: the small model alone is tracked by cgroup_anon.
    assert moved["cgroup_anon"].tracks, summary
    assert result.chosen == ("cgroup_anon", "gpu_processes"), summary
    assert [c[0] for c in result.checks] == [LARGER]
    # The larger model's memory is then seen through the chosen sources.
    record = _run(guard, client, LARGER)
    estimate = guard.metadata_estimates[LARGER]
    assert 0.5 * estimate <= record.measured_footprint_bytes <= 2 * estimate
    assert record.memory_source == "cgroup_anon+gpu_processes"


def test_a_first_load_the_chosen_sources_are_blind_to_chooses_them_again(
        simulated, tmp_path):  # noqa: F811 - the fixture imported above
    start, build = simulated
    sim, scenario = start(_thor_with_runner_share(tmp_path))
    guard, client = build(sim, scenario)
    # Calibrated with the small model alone: the runner's share fools it (cgroup_anon alone).
    guard.calibrate([SMALL])
    assert guard.calibration.chosen == ("cgroup_anon",)
    record = _run(guard, client, LARGER)
    estimate = guard.metadata_estimates[LARGER]
    reasons = [d.reason for d in guard.decisions() if d.action == "calibrate"]
    blind = [r for r in reasons if r.startswith("recalibrate:")]
    assert len(blind) == 1 and LARGER in blind[0] and "cgroup_anon saw" in blind[0], reasons
    assert "not kept" in record.measurement_rejected_reason
    # Chosen again with the larger model: device memory is read now, and its footprint
    # through the new choice is 0.5-2x the prediction (the blind one was never cached).
    assert guard.calibration.chosen == ("cgroup_anon", "gpu_processes"), reasons
    assert 0.5 * estimate <= record.measured_footprint_bytes <= 2 * estimate
    assert record.memory_source == "cgroup_anon+gpu_processes"
    cached = json.loads((tmp_path / "footprints.json").read_text())["footprints"]
    kept = [(key, e["bytes"]) for key, e in cached.items() if LARGER in key]
    # One footprint of the larger model, through the new choice (the key names the sources).
    assert len(kept) == 1 and 0.5 * estimate <= kept[0][1] <= 2 * estimate, cached
    assert "gpu_processes" in kept[0][0]
    # A model the new choice sees is not checked again.
    again = _run(guard, client, SMALL)
    assert not again.measurement_rejected_reason
    assert len([d for d in guard.decisions() if d.reason.startswith("recalibrate:")]) == 1
