"""The referee's judgements on recorded sample files: breaches, memory back, leftovers."""

import json

import pytest
from referee import (FailureKind, classify_failure, judge_cleanup, judge_headroom, leftovers,
                     memory_back_s, read_marks, read_samples)

MIB = 1 << 20
LIMIT = 2048 * MIB


def _line(t, used_mib, *, file_mib=0, pool_mib=0, device_mib=0, runners=(), kills=0,
          container_anon_mib=0):
    return json.dumps({
        't': t, 'machine_limit_bytes': LIMIT, 'machine_usage_bytes': used_mib * MIB,
        'machine_file_bytes': file_mib * MIB, 'oom_kills': kills,
        'groups': {'ollama': container_anon_mib * MIB},
        'group_anon': {'ollama': container_anon_mib * MIB}, 'pool_bytes': pool_mib * MIB,
        'device_bytes': device_mib * MIB, 'runners': [list(r) for r in runners]})


@pytest.fixture
def unified_episode(tmp_path):
    """Record a unified-memory preemption: growth, unload to the pool, a drop."""
    path = tmp_path / 'samples.jsonl'
    lines = [_line(0.0, 1500, device_mib=600, runners=[(10, 'ollama-runner', 40 * MIB)])]
    lines.append(json.dumps({'t': 0.05, 'mark': 'growth'}))
    # Nav2 grows 320 MiB: free memory 548 -> 228 MiB, under a 300 MiB reserve
    lines += [_line(0.1, 1820, device_mib=600, runners=[(10, 'ollama-runner', 40 * MIB)]),
              _line(0.2, 1820, device_mib=600, runners=[(10, 'ollama-runner', 40 * MIB)]),
              # the runner exits; the driver keeps its pages in the pool: still under
              _line(0.3, 1800, pool_mib=600),
              _line(0.4, 1800, pool_mib=600),
              # the caches are dropped: the pool is released
              _line(0.5, 1200)]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_a_breach_runs_from_the_crossing_to_the_first_sample_back(unified_episode):
    samples = read_samples(unified_episode)
    verdict = judge_headroom(samples, reserve_bytes=300 * MIB, period_s=0.1, unload_s=0.25)
    assert len(verdict.breaches) == 1
    breach = verdict.breaches[0]
    assert (breach.start_t, breach.end_t) == (0.1, 0.5)
    assert breach.min_headroom_bytes == (LIMIT - 1820 * MIB) - 300 * MIB
    assert verdict.min_headroom_bytes == breach.min_headroom_bytes
    assert not verdict.kept  # 0.4 s under, 0.35 s allowed
    assert judge_headroom(samples, reserve_bytes=300 * MIB, period_s=0.1,
                          unload_s=0.3).kept


def test_reclaimable_page_cache_counts_as_room_and_a_pool_does_not(tmp_path):
    path = tmp_path / 's.jsonl'
    path.write_text('\n'.join([_line(0.0, 1900, file_mib=400), _line(0.1, 1900, pool_mib=400),
                               ]) + '\n')
    first, second = read_samples(str(path))
    assert first.allocatable_bytes == 548 * MIB and first.free_bytes == 148 * MIB
    assert second.allocatable_bytes == 148 * MIB


def test_a_breach_never_ended_is_not_kept(tmp_path):
    path = tmp_path / 's.jsonl'
    path.write_text('\n'.join(_line(t / 10, 1900, pool_mib=500) for t in range(5)) + '\n')
    verdict = judge_headroom(read_samples(str(path)), reserve_bytes=300 * MIB, period_s=0.1,
                             unload_s=5.0)
    assert verdict.breaches[0].end_t is None and not verdict.kept


def test_memory_is_back_only_when_the_pool_is_released(unified_episode):
    samples = read_samples(unified_episode)
    growth = read_marks(unified_episode)[0].t
    assert memory_back_s(samples, from_t=growth, model_bytes_at_most=16 * MIB) == \
        pytest.approx(0.45)
    assert memory_back_s(samples[:-1], from_t=growth, model_bytes_at_most=16 * MIB) is None


def test_leftovers_name_the_runner_and_the_live_device_pages(unified_episode):
    samples = read_samples(unified_episode)
    assert leftovers(samples).nothing_loaded
    held = leftovers(samples[:3])
    assert not held.nothing_loaded and held.runners[0][1] == 'ollama-runner'
    assert held.device_bytes == 600 * MIB
    assert leftovers(samples[:5]).nothing_loaded and leftovers(samples[:5]).pool_bytes


def test_a_real_held_leak_makes_a_clean_verdict_wrong(tmp_path):
    path = tmp_path / 's.jsonl'
    path.write_text('\n'.join([_line(0.0, 300, container_anon_mib=20),
                               _line(5.0, 500, container_anon_mib=180)]) + '\n')
    samples = read_samples(str(path))
    said_clean = judge_cleanup(samples, before_t=0.0, after_t=5.0, product_says_clean=True,
                               tolerance_bytes=32 * MIB, container_group='ollama')
    assert said_clean.held_bytes == 160 * MIB and not said_clean.truly_clean
    assert not said_clean.correct
    said_leak = judge_cleanup(samples, before_t=0.0, after_t=5.0, product_says_clean=False,
                              tolerance_bytes=32 * MIB, container_group='ollama')
    assert said_leak.correct


def test_failures_split_into_physics_and_decisions(tmp_path):
    path = tmp_path / 's.jsonl'
    path.write_text('\n'.join([_line(0.0, 300), _line(1.0, 2000), _line(2.0, 300, kills=1)])
                    + '\n')
    samples = read_samples(str(path))
    kind = classify_failure(samples, start_t=0.5, end_t=2.0, status='error',
                            error='unexpected EOF')
    assert kind is FailureKind.OOM_KILL and kind.physics  # the counter moved: the kernel
    assert classify_failure(samples, start_t=0.0, end_t=1.5, status='error',
                            error='unexpected EOF') is FailureKind.EOF
    assert classify_failure(samples, start_t=0.0, end_t=1.5, status='error',
                            error='model requires more system memory (2.1 GiB) than is '
                                  'available') is FailureKind.REFUSAL
    stop = classify_failure(samples, start_t=0.5, end_t=2.0, status='pressure_stop')
    assert stop is FailureKind.PRESSURE_STOP and not stop.physics
    assert classify_failure(samples, start_t=0, end_t=1, status='skipped') is FailureKind.SKIP
    assert classify_failure(samples, start_t=0, end_t=1,
                            status='preempted') is FailureKind.PREEMPTION


def test_a_line_cut_by_a_kill_is_skipped(tmp_path):
    path = tmp_path / 's.jsonl'
    path.write_text(_line(0.0, 300) + '\n' + _line(0.1, 300)[:20])
    assert len(read_samples(str(path))) == 1


def test_the_referee_imports_nothing_of_the_product():
    import subprocess
    import sys

    from test_referee_live import BENCHMARKS
    code = ('import sys, referee, referee.sampler, referee.truth, referee.verdicts; '
            'print(sorted(m for m in sys.modules if "shadowhound" in m))')
    out = subprocess.run([sys.executable, '-c', code], cwd=BENCHMARKS, capture_output=True,
                         text=True, timeout=60, env={'PYTHONPATH': BENCHMARKS})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'
