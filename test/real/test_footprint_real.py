"""The product predicts the real server's /api/ps size within 5 %, the simulator within 2 %."""

from benchmarks.footprint_real import measure_release
from shadowhound_llm_bench.real_ollama.footprint_shapes import SMOKE_CASES


def test_predicted_and_simulated_sizes_match_the_real_release(real_ollama_server):
    rows = measure_release(real_ollama_server, SMOKE_CASES)
    assert [r.case for r in rows] == list(SMOKE_CASES)
    for row in rows:
        assert row.version == real_ollama_server.version
        assert abs(row.predicted_error) <= 0.05, (row.case.label, row.prediction_detail)
        assert abs(row.sim_error) <= 0.02, row.case.label
        assert f'for Ollama {row.version}' in row.prediction_detail
    # The two releases account differently for the same files: the prediction follows.
    formula = 'llamarunner' if real_ollama_server.version.startswith('0.12.') else 'llama-server'
    assert all(formula in r.prediction_detail for r in rows)
