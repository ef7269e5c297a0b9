"""
An independent referee: samples ground truth the product never reads and judges its promises.

It imports nothing of shadowhound_llm_bench. Start it around a run, then judge the file:

    from referee import Referee, Watch, judge_headroom, leftovers
    with Referee(out, Watch(machine_cgroup=..., driver_state=..., server_pid=...)) as ref:
        t0 = ref.mark('growth')
        ...
    verdict = judge_headroom(read_samples(out), reserve_bytes=..., period_s=0.1, unload_s=1.0)
"""

from referee.samples import Mark, Sample, between, read_marks, read_samples
from referee.sampler import Referee, Watch, take_sample
from referee.verdicts import (
    Breach, CleanupJudgement, FailureKind, HeadroomVerdict, Leftovers, classify_failure,
    judge_cleanup, judge_headroom, leftovers, memory_back_s, ros_headroom_bytes)

__all__ = [
    'Breach', 'CleanupJudgement', 'FailureKind', 'HeadroomVerdict', 'Leftovers', 'Mark',
    'Referee', 'Sample', 'Watch', 'between', 'classify_failure', 'judge_cleanup',
    'judge_headroom', 'leftovers', 'memory_back_s', 'read_marks', 'read_samples',
    'ros_headroom_bytes', 'take_sample',
]
