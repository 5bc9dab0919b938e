"""The --jobs scheduler with fake launchers: tiny ``python -c`` processes instead of training runs."""
import signal
import subprocess
import sys
import time

import pytest

from util.training.run_pool import Job, run_pool

POLL = 0.02


class FakeRuns:
    """A launcher whose jobs sleep ``seconds`` and exit with ``codes[key]`` (default 0); it
    records starts, ends and how many jobs run at once, overall and per device."""

    def __init__(self, seconds=0.3, codes=None):
        self.seconds, self.codes = seconds, codes or {}
        self.events, self.running, self.max_running, self.per_device = [], {}, 0, {}

    def launch(self, job, device):
        self.events.append(("start", job.key, device))
        self.running[job.key] = device
        self.max_running = max(self.max_running, len(self.running))
        on_device = sum(d == device for d in self.running.values())
        self.per_device[device] = max(self.per_device.get(device, 0), on_device)
        code = self.codes.get(job.key, 0)
        script = f"import time, sys; time.sleep({self.seconds}); sys.exit({code})"
        return subprocess.Popen([sys.executable, "-c", script])

    def ended(self, out):
        self.events.append(("end", out.key, out.device))
        self.running.pop(out.key, None)

    def started(self):
        return [key for kind, key, _ in self.events if kind == "start"]

    def index(self, kind, key):
        return next(i for i, (k, j, _) in enumerate(self.events) if (k, j) == (kind, key))


def test_concurrency_limit_and_round_robin_devices():
    fake = FakeRuns()
    jobs = [Job(i) for i in range(6)]
    out = run_pool(jobs, fake.launch, ["gpu0", "gpu1"], max_jobs=3, on_end=fake.ended, poll=POLL)
    assert all(o.ok for o in out.values()) and len(out) == 6
    assert fake.max_running == 3  # reached, never exceeded
    assert [d for kind, _, d in fake.events if kind == "start"][:3] == ["gpu0", "gpu1", "gpu0"]
    assert fake.per_device == {"gpu0": 2, "gpu1": 1}  # slots: gpu0, gpu1, gpu0


def test_dependent_job_starts_only_after_its_teacher_succeeded():
    fake = FakeRuns()
    jobs = [Job("teacher"), Job("student", after="teacher"), Job("other")]
    out = run_pool(jobs, fake.launch, ["cpu"], max_jobs=3, on_end=fake.ended, poll=POLL)
    assert all(o.ok for o in out.values())
    assert fake.started()[:2] == ["teacher", "other"]  # the free slot goes to the next ready job
    assert fake.index("end", "teacher") < fake.index("start", "student")
    # a teacher that is not in the list (trained by an earlier command) counts as done
    assert run_pool([Job("x", after="trained-earlier")], fake.launch, ["cpu"], 1, poll=POLL)["x"].ok


def test_failed_teacher_blocks_its_dependents_without_starting_them():
    fake = FakeRuns(seconds=0.05, codes={"teacher": 3})
    jobs = [Job("teacher"), Job("student", after="teacher"), Job("grandstudent", after="student"), Job("other")]
    out = run_pool(jobs, fake.launch, ["cpu"], max_jobs=2, on_end=fake.ended, poll=POLL)
    assert sorted(fake.started()) == ["other", "teacher"]
    assert out["teacher"].returncode == 3 and not out["teacher"].ok and not out["teacher"].blocked
    assert out["student"].blocked and out["grandstudent"].blocked and out["student"].returncode is None
    assert out["other"].ok
    assert {key for kind, key, _ in fake.events if kind == "end"} == {j.key for j in jobs}  # all reported


def test_one_failure_does_not_stop_the_others():
    fake = FakeRuns(seconds=0.05, codes={"a": 1})
    out = run_pool([Job("a"), Job("b"), Job("c")], fake.launch, ["cpu"], max_jobs=1, on_end=fake.ended, poll=POLL)
    assert fake.started() == ["a", "b", "c"]
    assert [out[k].ok for k in "abc"] == [False, True, True]


def test_interrupt_terminates_running_children():
    procs = []

    def launch(job, device):
        if job.key == "second":
            raise KeyboardInterrupt  # Ctrl-C while the first job runs
        procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return procs[-1]

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_pool([Job("first"), Job("second")], launch, ["cpu"], max_jobs=2, poll=POLL)
    assert procs[0].returncode == -signal.SIGTERM and time.monotonic() - t0 < 30


def test_dependencies_must_point_backwards():
    with pytest.raises(ValueError, match="must come after"):
        run_pool([Job("student", after="teacher"), Job("teacher")], FakeRuns().launch, ["cpu"], 1)
