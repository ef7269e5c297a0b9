"""The platform's /diagnostics status and the slowdown attribution, from plain values."""

from shadowhound_llm_bench.core.platform.diagnostic_summary import Level
from shadowhound_llm_bench.core.platform.energy_accounting import PowerSample
from shadowhound_llm_bench.core.platform.platform_diagnostics import platform_status
from shadowhound_llm_bench.core.platform.platform_record import MachineRecord
from shadowhound_llm_bench.core.platform.slowdown_attribution import attribute_slowdown

MAXN = MachineRecord(module_model="NVIDIA Jetson AGX Thor Developer Kit", power_mode="MAXN",
                     power_mode_id=0, power_mode_is_max=True, clocks_locked=True)
NOW = 1_800_000_000.0


def _status(machine, sample, source="sysfs"):
    return platform_status(machine, sample, source=source, energy_j=10.0, throttled_s=0.0,
                           now_s=NOW, stale_after_s=5.0)


def test_ok_at_maxn_with_a_fresh_cool_sample():
    status = _status(MAXN, PowerSample(t_s=NOW - 0.1, power_w=30.0, temp_c=50.0,
                                       throttled=False, power_mode="MAXN"))
    assert status.level == Level.OK and "30.0 W" in status.message


def test_warn_on_a_low_power_mode_and_on_throttling():
    low = MachineRecord(power_mode="40W", power_mode_id=3, power_mode_is_max=False)
    sample = PowerSample(t_s=NOW, power_w=30.0, temp_c=50.0, throttled=False)
    assert _status(low, sample).level == Level.WARN
    hot = PowerSample(t_s=NOW, power_w=90.0, temp_c=91.0, throttled=True)
    status = _status(MAXN, hot)
    assert status.level == Level.WARN and "throttling" in status.message


def test_stale_and_not_measured():
    old = PowerSample(t_s=NOW - 60.0, power_w=30.0)
    assert _status(MAXN, old).level == Level.STALE
    none = _status(MachineRecord(), None, source="none")
    assert none.level == Level.OK and "not measured" in none.message


def test_attribution_names_throttling_a_power_mode_change_or_neither():
    slowed = {"slowed_down": True}
    throttled = attribute_slowdown(
        canary_verdict=slowed, canary_state={"after": {"measured": True, "throttled_s": 2.0}},
        machine_start={"power_mode": "MAXN"}, machine_end={"power_mode": "MAXN"},
        model_energy={})
    assert throttled["cause"] == "throttling" and throttled["slowed_down"]
    mode = attribute_slowdown(
        canary_verdict=slowed, canary_state={}, machine_start={"power_mode": "MAXN"},
        machine_end={"power_mode": "30W"}, model_energy={})
    assert mode["cause"] == "power_mode_change" and "30W" in mode["message"]
    neither = attribute_slowdown(
        canary_verdict=slowed, canary_state={"after": {"measured": True, "throttled_s": 0.0}},
        machine_start={"power_mode": "MAXN"}, machine_end={"power_mode": "MAXN"},
        model_energy={"m": None})
    assert neither["cause"] == "neither" and "memory" in neither["message"]
    unknown = attribute_slowdown(canary_verdict=None, canary_state={}, machine_start=None,
                                 machine_end=None, model_energy={"m": None})
    assert unknown["cause"] == "not_measured"


def test_a_model_decoding_throttled_is_named_even_without_a_canary():
    energy = {"phases": {"decode": {"duration_s": 10.0, "throttled_s": 4.0,
                                    "peak_temp_c": 90.0}}, "power_modes": ["MAXN"]}
    result = attribute_slowdown(canary_verdict=None, canary_state={},
                                machine_start={"power_mode": "MAXN"},
                                machine_end={"power_mode": "MAXN"}, model_energy={"m": energy})
    assert result["cause"] == "throttling" and "m: throttled 40 % of decode" in result["message"]
