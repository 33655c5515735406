"""The scheduler workaround: at most one pending re-evaluation timer, a daemon, per scheduler."""

import threading
import time
from types import SimpleNamespace

from snakemake.scheduling.job_scheduler import JobScheduler

from workflow_scripts import scheduler_timers

# Snakemake's own method, also where a Snakefile loaded in this process already patched it
UPSTREAM = getattr(
    JobScheduler, "_spectsynth_upstream_reevaluation", JobScheduler._schedule_reevalutation
)


def fake_scheduler() -> SimpleNamespace:
    return SimpleNamespace(_open_jobs=threading.Semaphore(0))


def releases(sem: threading.Semaphore, wait: float) -> int:
    time.sleep(wait)
    n = 0
    while sem.acquire(blocking=False):
        n += 1
    return n


def test_upstream_arms_one_timer_per_call():
    # what the workaround is for: 20 asks, 20 timers, 20 extra scheduler passes
    sched = fake_scheduler()
    for _ in range(20):
        UPSTREAM(sched, 0.05)
    assert releases(sched._open_jobs, 0.3) == 20


def test_one_pending_timer_and_one_release():
    sched = fake_scheduler()
    for _ in range(20):
        scheduler_timers._schedule_once(sched, 0.05)
    timer = sched._spectsynth_timer
    assert timer.daemon  # a pending timer never holds the interpreter at exit
    assert releases(sched._open_jobs, 0.3) == 1
    # after it fired, the next ask arms a new one
    assert sched._spectsynth_timer is None
    scheduler_timers._schedule_once(sched, 0.05)
    assert releases(sched._open_jobs, 0.3) == 1


def test_schedulers_do_not_share_a_timer():
    a, b = fake_scheduler(), fake_scheduler()
    scheduler_timers._schedule_once(a, 0.05)
    scheduler_timers._schedule_once(b, 0.05)
    assert releases(a._open_jobs, 0.3) == 1
    assert releases(b._open_jobs, 0.0) == 1


def test_install_patches_snakemake_once():
    try:
        assert scheduler_timers.install()
        patched = JobScheduler._schedule_reevalutation
        assert patched is scheduler_timers._schedule_once
        assert scheduler_timers.install()  # idempotent
        assert JobScheduler._schedule_reevalutation is patched
    finally:
        JobScheduler._schedule_reevalutation = UPSTREAM


def test_install_leaves_a_snakemake_without_the_method(monkeypatch):
    monkeypatch.delattr(JobScheduler, "_schedule_reevalutation")
    assert not scheduler_timers.install()
    assert not hasattr(JobScheduler, "_schedule_reevalutation")
