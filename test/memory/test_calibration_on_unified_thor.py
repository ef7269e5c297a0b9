"""On the unified Thor with a large runner CPU share, calibration still sees the device memory."""

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
    estimate = guard._metadata_estimates[LARGER]
    assert 0.5 * estimate <= record.measured_footprint_bytes <= 2 * estimate
    assert record.memory_source == "cgroup_anon+gpu_processes"
