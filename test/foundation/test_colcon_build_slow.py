"""A copy of the repository builds with colcon, and its install serves the generated interfaces."""

import os
from pathlib import Path
import shutil
import subprocess
import sys

from foundation_helpers import wheel_prefix

IGNORED = shutil.ignore_patterns(
    '.git', '.venv', 'build', 'install', 'log', 'results', '__pycache__', '*.egg-info',
    '.pytest_cache', '.bootstrap-stamp*', '.bootstrap.lock')
CONSOLE_SCRIPTS = ('llm_bench_node', 'llm_bench_client', 'shadowhound-llm-bench', 'ollama_sim')
BUILD_TIMEOUT_S = 400


def build_env(repo_root: Path) -> dict:
    """Environment for colcon: the ROS 2 underlay only, not this checkout's own install."""
    env = dict(os.environ)
    env.pop('COLCON_PREFIX_PATH', None)
    prefix = wheel_prefix()
    if prefix:
        env['AMENT_PREFIX_PATH'] = prefix
        env['CMAKE_PREFIX_PATH'] = prefix
    else:
        own = str(repo_root / 'install')
        for name in ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH'):
            parts = [p for p in env.get(name, '').split(os.pathsep) if p and own not in p]
            env[name] = os.pathsep.join(parts)
    env['PATH'] = os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', '')])
    return env


def test_colcon_builds_both_packages_from_a_copy_slow(repo_root, tmp_path):
    tree = tmp_path / 'shadowhound_llm_bench'
    shutil.copytree(repo_root, tree, ignore=IGNORED, symlinks=True)
    colcon = shutil.which('colcon', path=str(Path(sys.executable).parent)) or 'colcon'

    build = subprocess.run(
        [colcon, 'build', '--base-paths', '.', 'interfaces',
         '--cmake-args', '-DBUILD_TESTING=OFF', f'-DPython3_EXECUTABLE={sys.executable}'],
        cwd=tree, env=build_env(repo_root), capture_output=True, text=True,
        timeout=BUILD_TIMEOUT_S)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    for package in ('shadowhound_llm_bench_interfaces', 'shadowhound_llm_bench'):
        assert f'Finished <<< {package} [' in build.stdout, package

    install = tree / 'install'
    share = install / 'shadowhound_llm_bench' / 'share'
    assert (share / 'ament_index/resource_index/packages/shadowhound_llm_bench').is_file()
    assert (share / 'shadowhound_llm_bench/package.xml').is_file()
    for config_file in (repo_root / 'config').rglob('*'):
        if config_file.is_file():
            relative = config_file.relative_to(repo_root)
            assert (share / 'shadowhound_llm_bench' / relative).is_file(), relative
    for launch_file in (repo_root / 'launch').glob('*.launch.py'):
        assert (share / 'shadowhound_llm_bench/launch' / launch_file.name).is_file()
    scripts = install / 'shadowhound_llm_bench/lib/shadowhound_llm_bench'
    for name in CONSOLE_SCRIPTS:
        assert (scripts / name).is_file(), name

    # A user's shell: source the copy's setup.bash, then import the generated Python types.
    probe = (
        'from shadowhound_llm_bench_interfaces.action import RunBenchmark\n'
        'from shadowhound_llm_bench_interfaces.msg import ContainerMemory, ModelResult\n'
        'import shadowhound_llm_bench_interfaces as pkg\n'
        'goal = RunBenchmark.Goal(models=["phi4:14b"], preset="adaptive")\n'
        'print(pkg.__file__)\n'
        'print(goal.models[0], goal.preset, goal.temperature, goal.seed)\n'
        'print(ContainerMemory.STATE_RESTARTING, ModelResult().status == "")\n'
    )
    shell = f'. "{install}/setup.bash" && exec "{sys.executable}" -c \'{probe}\''
    result = subprocess.run(['bash', '-c', shell], cwd=tmp_path, env=build_env(repo_root),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    module_file, goal_line, constants_line = result.stdout.strip().splitlines()[-3:]
    assert module_file.startswith(str(install))
    assert goal_line == 'phi4:14b adaptive -1.0 -1'
    assert constants_line == '2 True'
