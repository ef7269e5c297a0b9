"""The CLI's dry-run plan shows the machine and its warnings; a run prints J/token."""

import os

from platform_helpers import SimWithThor
from shadowhound_llm_bench.cli import main


def test_dry_run_plan_shows_the_machine_and_a_power_mode_warning(tmp_path, capsys):
    root = str(tmp_path / "thor")
    sim = SimWithThor(root)
    try:
        state = os.path.join(root, "var/lib/ollama_sim/power_mode")
        with open(state + ".tmp", "w") as f:
            f.write("70W\n2\n")
        os.replace(state + ".tmp", state)
        code = main(["run", "--host", sim.url, "--models", "phi4:14b", "--unguarded",
                     "--dry-run", "--sysfs-root", root,
                     "--results-dir", str(tmp_path / "results")])
    finally:
        sim.stop()
    out = capsys.readouterr().out
    assert code == 0
    assert "Module: NVIDIA Jetson AGX Thor Developer Kit (p3834-0008); L4T 38.2.0" in out
    assert "Power mode: 70W (id 2); clocks locked: yes" in out
    assert "WARNING: power mode is 70W" in out
    assert "273.0 GB/s" in out


def test_no_platform_leaves_the_machine_out(tmp_path, capsys):
    root = str(tmp_path / "thor")
    sim = SimWithThor(root)
    try:
        code = main(["run", "--host", sim.url, "--models", "deepseek-r1:7b", "--unguarded",
                     "--no-platform", "--repetitions", "1", "--no-warmup", "--quiet",
                     "--num-predict", "32", "--results-dir", str(tmp_path / "results")])
    finally:
        sim.stop()
    out = capsys.readouterr().out
    assert code == 0
    assert "energy not measured" in out
