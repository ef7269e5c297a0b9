"""The summary shows memory sources, reclaim time, drop-caches calls, rejected footprints."""

from shadowhound_llm_bench.core.runs.run_records import ModelResult, RunSummary
from shadowhound_llm_bench.reports.markdown_report import render_markdown


def test_summary_shows_the_memory_sources_and_their_numbers():
    memory = {"predicted_footprint_bytes": 2 ** 30, "prediction_source": "metadata",
              "measured_footprint_bytes": 2 ** 28, "cleanup_successful": True,
              "reclaim_s": 1.234, "drop_caches_calls": 1, "unloads": 1,
              "memory_source": "cgroup_anon+gpu_processes",
              "measurement_rejected_reason": "measured footprint of m (0.25 GiB) not kept: "
                                             "0.25x the metadata estimate 1.00 GiB"}
    summary = RunSummary(run_id="r", status="ok", guarded=True,
                         plan={"memory_sources": "calibrated in this run: memory sources "
                                                 "cgroup_anon + gpu_processes"},
                         models=[ModelResult(model="m", status="ok", memory=memory)])
    text = render_markdown(summary)
    assert "| reclaim s | drop caches |" in text
    rows = [line for line in text.splitlines() if line.startswith("| m |")]
    assert any("| yes | 1.23 | 1 | 1 |" in row for row in rows)
    assert "Memory sources: calibrated in this run" in text
    assert "Model memory read from: cgroup_anon+gpu_processes" in text
    assert "- Not cached: measured footprint of m (0.25 GiB) not kept" in text
