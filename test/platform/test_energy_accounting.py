"""Energy per phase from power samples: nearest-sample integration, coverage, J/token."""

import datetime as dt

import pytest

from shadowhound_llm_bench.core.platform.energy_accounting import (
    PowerSample, SampleSeries, model_energy,
)

T0 = 1_800_000_000.0


def _iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


def _steps(spans, period=0.01, temp=50.0, throttled=False):
    """Return samples every period over (start, end, watts) spans."""
    out = []
    for start, end, watts in spans:
        t = start
        while t < end - 1e-9:
            out.append(PowerSample(t_s=T0 + t, power_w=watts, temp_c=temp,
                                   throttled=throttled, power_mode="MAXN"))
            t += period
    return out


def test_constant_power_integrates_to_power_times_time():
    series = SampleSeries(_steps([(0.0, 2.0, 50.0)]))
    part = series.integrate(T0 + 0.5, T0 + 1.5)
    assert part.energy_j == pytest.approx(50.0, rel=0.01)
    assert part.mean_w == pytest.approx(50.0)
    assert part.measured


def test_a_step_is_split_at_the_sample_midpoint():
    series = SampleSeries(_steps([(0.0, 1.0, 20.0), (1.0, 2.0, 100.0)], period=0.1))
    assert series.integrate(T0 + 0.0, T0 + 2.0).energy_j == pytest.approx(
        20.0 * 1.0 + 100.0 * 1.0, rel=0.03)


def test_a_gap_is_not_filled_and_a_mostly_uncovered_phase_is_not_measured():
    samples = _steps([(0.0, 0.2, 40.0)]) + _steps([(5.0, 5.2, 40.0)])
    series = SampleSeries(samples, max_gap_s=1.0)
    part = series.integrate(T0 + 0.0, T0 + 5.2)
    assert part.covered_s < 0.5 * part.duration_s  # each side of the gap: max_gap_s / 2
    assert not part.measured
    assert part.to_dict() is None  # "not measured", never zero


def test_model_energy_from_log_records_gives_phases_and_j_per_token():
    # 0-1 s load at 45 W, 1-1.2 s prefill at 120 W, 1.2-3.2 s decode at 80 W, then idle 25 W.
    samples = _steps([(0.0, 1.0, 45.0), (1.0, 1.2, 120.0), (1.2, 3.2, 80.0), (3.2, 4.0, 25.0)])
    recs = [
        {"type": "model_start", "stamp": _iso(T0)},
        {"type": "load", "stamp": _iso(T0 + 1.0), "client_s": 1.0},
        {"type": "test", "status": "ok", "warmup": False, "started": _iso(T0 + 1.0),
         "metrics": {"ttft_ms": 200.0, "e2e_latency_s": 2.2, "eval_count": 100}},
        {"type": "model_end", "stamp": _iso(T0 + 4.0)},
    ]
    energy = model_energy(SampleSeries(samples), recs)
    phases = energy["phases"]
    assert phases["load"]["energy_j"] == pytest.approx(45.0, rel=0.03)
    assert phases["prefill"]["energy_j"] == pytest.approx(24.0, rel=0.05)
    assert phases["decode"]["energy_j"] == pytest.approx(160.0, rel=0.03)
    assert phases["idle"]["energy_j"] == pytest.approx(20.0, rel=0.1)
    assert energy["generated_tokens"] == 100
    assert energy["j_per_token"] == pytest.approx((24.0 + 160.0) / 100, rel=0.03)
    assert energy["decode_j_per_token"] == pytest.approx(1.6, rel=0.03)
    assert energy["peak_w"] == 120.0
    assert energy["throttled_s"] == 0.0


def test_no_power_sensor_means_no_energy_record():
    samples = [PowerSample(t_s=T0 + i * 0.1, power_w=None, temp_c=60.0) for i in range(20)]
    assert model_energy(SampleSeries(samples), [{"type": "model_start", "stamp": _iso(T0)}]) \
        is None


def test_throttled_time_is_counted():
    series = SampleSeries(_steps([(0.0, 1.0, 80.0)], throttled=True, temp=90.0))
    part = series.integrate(T0 + 0.0, T0 + 1.0)
    assert part.throttled_s == pytest.approx(1.0, abs=0.02)
    assert part.peak_temp_c == 90.0
