"""Ctrl-C and SIGTERM end a training command the same clean way."""
from __future__ import annotations

import signal
from typing import Any


def sigterm_as_ctrl_c() -> None:
    """Make SIGTERM (a job scheduler, ``timeout``, ``train.py --jobs`` stopping its children) end a
    run the way Ctrl-C does: KeyboardInterrupt, one line, no traceback, last completed epoch kept.
    Only the first signal raises; later ones are swallowed so they cannot break that clean exit
    (a terminal's Ctrl-C reaches ``train.py --jobs`` children just before its SIGTERM does).
    Swallowed by a no-op, not SIG_IGN: a signal already pending when the disposition becomes
    SIG_IGN makes Python print an "ignored due to race condition" traceback."""
    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
