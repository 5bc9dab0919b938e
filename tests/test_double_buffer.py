"""Double-buffered end-to-end path (util/bench/runner.py): the ordering of copies and
computes with recording fake streams and events (no CUDA here), and the CPU path's row."""
import contextlib

import pytest
import torch

from util.bench.config import BenchConfig
from util.bench.runner import DoubleBuffer, run_benchmark
from util.bench.results import BENCH


class FakeEvent:
    """Counts its records; a wait sees the count of the record it waits for."""
    count = 0

    def __init__(self):
        FakeEvent.count += 1
        self.name, self.records = f"e{FakeEvent.count}", 0


class FakeStream:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def wait_event(self, event):
        self.log.append((self.name, "wait", event, event.records))

    def record_event(self, event):
        event.records += 1
        self.log.append((self.name, "record", event, event.records))

    def wait_stream(self, other):
        self.log.append((self.name, "wait_stream", other.name, None))


def _pipeline(steps):
    log, current = [], ["compute"]
    copy, compute = FakeStream("copy", log), FakeStream("compute", log)

    @contextlib.contextmanager
    def on_stream(stream):
        current.append(stream.name)
        yield
        current.pop()

    class Buffer:
        def __init__(self, b):
            self.b = b

        def copy_(self, src, non_blocking=False):
            assert non_blocking
            log.append((current[-1], "copy", self.b, None))

    buffers = [Buffer(0), Buffer(1)]

    def fn(b):
        def run(x):
            assert x is buffers[b]  # each callable on its own buffer: no hidden copy
            log.append((current[-1], "compute", b, None))
            return b
        return run

    pipe = DoubleBuffer(object(), buffers, [fn(0), fn(1)], copy, compute, FakeEvent, on_stream)
    outs = [pipe.step() for _ in range(steps)]
    return pipe, log, outs


def test_copies_run_on_their_stream_and_alternate_buffers():
    pipe, log, outs = _pipeline(4)
    assert outs == [0, 1, 0, 1]
    assert log[0] == ("copy", "wait_stream", "compute", None)
    assert [(s, b) for s, op, b, _ in log if op == "copy"] == [("copy", b) for b in (0, 1, 0, 1, 0)]
    assert [(s, b) for s, op, b, _ in log if op == "compute"] == [("compute", b) for b in (0, 1, 0, 1)]


def test_each_compute_waits_for_its_copy_and_each_copy_for_the_compute_that_read_its_buffer():
    pipe, log, _ = _pipeline(5)
    ops = [(s, op, x, n) for s, op, x, n in log if op != "wait_stream"]
    copies = [i for i, o in enumerate(ops) if o[1] == "copy"]
    computes = [i for i, o in enumerate(ops) if o[1] == "compute"]
    for batch, i in enumerate(computes):
        b = batch % 2
        # just before it: the compute stream waits for the latest copy into its buffer
        assert ops[i - 1] == ("compute", "wait", pipe.copied[b], batch // 2 + 1)
        assert ops[i + 1] == ("compute", "record", pipe.consumed[b], batch // 2 + 1)
        # the copy of batch + 1 was queued before this compute, into the other buffer
        assert copies[batch + 1] < i
    for batch, i in enumerate(copies):
        b = batch % 2
        # the copy of batch k into b waits for the compute of batch k - 2 (the last one on b)
        want = batch // 2  # records of consumed[b] so far: 0 before b was ever computed on
        assert ops[i - 1] == ("copy", "wait", pipe.consumed[b], want)
        assert ops[i + 1] == ("copy", "record", pipe.copied[b], batch // 2 + 1)


def test_double_buffer_needs_two_buffers():
    with pytest.raises(ValueError, match="two buffers"):
        DoubleBuffer(None, [torch.zeros(1)], [lambda x: x], None, None, FakeEvent, None)


def test_cpu_end_to_end_runs_without_copy_columns():
    """On CPU the frames are where the model runs: no copy, so no host-to-device numbers."""
    row = run_benchmark(BenchConfig(model="noscope_coral", fold=2, device="cpu", precision="fp32",
                                    batch_images=4, num_warmup=0, num_iteration=1, trials=1,
                                    backend="eager", end_to_end=True))
    assert row["end_to_end_images_per_sec"] > 0
    assert row["end_to_end_h2d_bytes_per_image"] is None
    assert row["end_to_end_h2d_bytes_per_sec"] is None and row["h2d_bytes_per_sec"] is None


def test_bench_csv_appends_the_copy_columns_last():
    assert BENCH.names[-2:] == ["E2EH2DBytesPerSec", "H2DBandwidth"]
    assert BENCH.upgradable  # an older CSV (a prefix of these columns) gets them, empty
