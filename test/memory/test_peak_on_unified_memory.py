"""The run's peak on unified memory: what the chosen sources saw, not the container alone."""

from shadowhound_llm_bench.core.runs.run_records import summarize_run

MIB = 1 << 20


def _run(readings):
    return summarize_run([{"type": "run_start", "run_id": "r", "models": ["llama3.3:70b"]},
                          {"type": "memory", "readings": readings}])


def test_the_peak_counts_device_memory_outside_the_container():
    # llama3.3:70b on the simulated Thor: 0.19 GiB in the container, 0.69 GiB by nvidia-smi
    readings = [{"container": {"working_set_bytes": 190 * MIB}, "model_memory_bytes": 30 * MIB},
                {"container": {"working_set_bytes": 195 * MIB}, "model_memory_bytes": 706 * MIB}]
    assert _run(readings).peak_working_set_bytes == 706 * MIB


def test_a_container_machine_keeps_its_working_set_peak():
    readings = [{"container": {"working_set_bytes": 700 * MIB}, "model_memory_bytes": 650 * MIB},
                {"container": {"working_set_bytes": 400 * MIB}}]
    assert _run(readings).peak_working_set_bytes == 700 * MIB
