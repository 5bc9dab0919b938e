"""Run jobs as child processes, at most N at a time, on device slots; used by ``train.py --jobs``.

Slot k runs on ``devices[k % len(devices)]``, so ``--jobs 4 --devices cuda:0 cuda:1`` keeps at
most two runs on each GPU. A job may name another job (``after``) that must exit successfully
before it starts; if that one fails, the job is reported as blocked and never started.
``launch(job, device)`` starts one job and returns its ``Popen``: an argument, so tests can
drive the scheduling with tiny fake processes instead of training runs.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

STOP_WAIT_S = 60.0  # after SIGTERM a child gets this long to exit before SIGKILL


@dataclass(frozen=True)
class Job:
    """``key`` names the job; ``after`` is the key of a job that must succeed first (a key that
    is not in the job list counts as already done, e.g. a teacher trained by an earlier command)."""
    key: Hashable
    after: Hashable | None = None


@dataclass(frozen=True)
class Outcome:
    key: Hashable
    returncode: int | None     # None: never ran
    device: str | None = None  # the slot's device; None when never started
    seconds: float = 0.0       # from launch until the exit was noticed (poll resolution)
    blocked: bool = False      # not started: its ``after`` job failed
    error: str = ""            # not started: ``launch`` raised OSError

    @property
    def ok(self) -> bool:
        return self.returncode == 0


Launcher = Callable[[Job, str], subprocess.Popen]


def device_slots(devices: Sequence[str], max_jobs: int) -> list[str]:
    """The device of each of the ``max_jobs`` slots, round-robin over ``devices``."""
    return [devices[k % len(devices)] for k in range(max_jobs)]


def run_pool(jobs: Sequence[Job], launch: Launcher, devices: Sequence[str], max_jobs: int,
             on_end: Callable[[Outcome], None] | None = None, poll: float = 0.5) -> dict[Hashable, Outcome]:
    """Run every job, in list order as slots free up and dependencies allow; one failure does
    not stop the others. ``on_end`` is called as each job ends. Returns every job's outcome.
    Any exception (Ctrl-C, SIGTERM turned into KeyboardInterrupt) stops all children first."""
    if max_jobs < 1 or not devices:
        raise ValueError("run_pool needs max_jobs >= 1 and at least one device")
    keys = [j.key for j in jobs]
    for i, j in enumerate(jobs):  # dependencies point backwards, so there are no cycles
        if j.after in keys[i:]:
            raise ValueError(f"job {j.key!r} must come after the job it needs ({j.after!r})")
    slots = device_slots(devices, max_jobs)
    waiting = list(jobs)
    running: dict[int, tuple[Job, subprocess.Popen, float]] = {}  # slot -> job, process, start time
    outcomes: dict[Hashable, Outcome] = {}

    def finish(out: Outcome) -> None:
        outcomes[out.key] = out
        if on_end is not None:
            on_end(out)

    try:
        while waiting or running:
            for slot, (job, proc, t0) in list(running.items()):
                if proc.poll() is not None:
                    del running[slot]
                    finish(Outcome(job.key, proc.returncode, slots[slot], time.monotonic() - t0))
            for job in list(waiting):
                if job.after in keys and job.after not in outcomes:
                    continue  # what it needs is still waiting or running
                if job.after in keys and not outcomes[job.after].ok:
                    waiting.remove(job)
                    finish(Outcome(job.key, None, blocked=True))
                    continue
                free = [s for s in range(len(slots)) if s not in running]
                if not free:
                    break
                waiting.remove(job)
                try:
                    running[free[0]] = (job, launch(job, slots[free[0]]), time.monotonic())
                except OSError as exc:
                    finish(Outcome(job.key, None, slots[free[0]], error=str(exc)))
            if running:
                time.sleep(poll)
    except BaseException:
        stop_all([proc for _, proc, _ in running.values()])
        raise
    return outcomes


def stop_all(procs: Sequence[subprocess.Popen], wait_s: float = STOP_WAIT_S) -> None:
    """SIGTERM every child and wait for it: a training run exits at once, its last completed
    epoch already saved. A child still alive after ``wait_s`` is killed."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + wait_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
