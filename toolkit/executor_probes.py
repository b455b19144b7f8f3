"""Work functions that behave, crash, hang or die on purpose, for checking an executor.

The executor tests (local processes and a real Ray cluster) run them; so can a user checking
a new cluster (``toolkit.executor`` with ``square`` and ``die_once``). They live at module
level in an installed module, so that worker processes on any node can import them.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def square(x: int, *, emit) -> int:
    emit("start", x)
    return x * x


def die_once(marker: str, *, emit) -> str:
    """SIGKILL its own worker the first time (``kill -9`` from outside, the OOM killer)."""
    if not os.path.exists(marker):
        Path(marker).write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return "second try"


def always_abort(*, emit) -> None:
    os.abort()  # a native crash, e.g. inside a decoder


def raise_value_error(*, emit) -> None:
    raise ValueError("bad input row 3")


def hang(*, emit) -> None:
    emit("start", 0)
    time.sleep(600)


def run_collect(runner, tasks):
    events = []
    runner.run(tasks, lambda kind, key, payload: events.append((kind, key, payload)))
    return events


def final(events):
    return {key: (kind, payload) for kind, key, payload in events if kind in ("done", "failed")}
