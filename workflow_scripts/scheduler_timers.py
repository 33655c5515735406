"""One pending scheduler re-evaluation at a time (a workaround for Snakemake 9's job scheduler).

Snakemake's scheduler loop blocks on a semaphore that job completions release. With a job rate
limit (always on: ``--max-jobs-per-timespan`` defaults to 100/1s), every pass of the loop that
leaves ready jobs waiting (on a 2-core machine: almost every pass) arms a new
``threading.Timer(timespan)`` whose release starts another pass, which arms another timer. Each
job completion therefore starts one more self-renewing timer chain: after N completions the loop
runs about N times a second, and each pass recomputes the params and resources of every ready job
and selects jobs again. Measured on the demo (2 cores, 513 jobs), the Snakemake process itself
used 202 CPU-s of the run's 1,683, rising from 4 CPU-s a minute at the start to 24 near the end;
with thousands of jobs it grows without bound. The timers are also non-daemon threads, so the
interpreter waits for pending ones at exit.

`install()` replaces ``JobScheduler._schedule_reevalutation`` (sic) with one that keeps at most
one pending timer per scheduler (a daemon thread): a pass asked for while one is pending is
already due within the same delay, so nothing waits longer than before. A Snakemake without that
method (a later fix, or another layout) is left untouched.
"""

from __future__ import annotations

import threading

_PATCHED = "_spectsynth_single_timer"
_GUARD = threading.Lock()  # our own: the scheduler's lock may be held by the caller


def _schedule_once(self, delay: float) -> None:
    with _GUARD:
        if getattr(self, "_spectsynth_timer", None) is not None:
            return

        def fire() -> None:
            with _GUARD:
                self._spectsynth_timer = None
            self._open_jobs.release()

        self._spectsynth_timer = threading.Timer(delay, fire)
        self._spectsynth_timer.daemon = True
        self._spectsynth_timer.start()


setattr(_schedule_once, _PATCHED, True)


def install() -> bool:
    """Patch Snakemake's scheduler in this process; True where the patch is (now) in place."""
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    current = getattr(JobScheduler, "_schedule_reevalutation", None)
    if current is None:
        return False
    if not getattr(current, _PATCHED, False):
        JobScheduler._spectsynth_upstream_reevaluation = current
        JobScheduler._schedule_reevalutation = _schedule_once
    return True
