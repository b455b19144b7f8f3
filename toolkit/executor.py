"""Executors: run independent tasks (a video, a run config) in local worker processes or on Ray.

A task is an opaque work item: an importable function, its arguments and a key. The same work
function runs under every executor; an executor only schedules, retries and collects. The
caller hears about each task through ``on_event(kind, key, payload)``:

- whatever the function reports while it runs: it is called as ``fn(*args, emit=emit)`` and
  ``emit(kind, payload)`` forwards e.g. ``("start", n_frames)`` or ``("frames", n)``;
- then exactly one ``"done"`` (payload: the function's return value) or ``"failed"`` (payload:
  a :class:`Failure`, which says whether the function raised, its worker died, it stalled, or
  the worker could not see the files it needs).

A worker that dies (a native crash, the OOM killer, ``kill -9``) fails only its task, which is
retried ``retries`` times before it counts as failed; an exception raised by the function is
a result, never retried (it would fail the same way). Workers die with their parent: a killed
``adtk`` leaves no orphans.

``local`` is a pool of worker processes on this machine. ``ray`` submits Ray tasks to a
cluster (``pip install -e ".[ray]"``); every node must see the task's files at the same path
(a shared filesystem), which the task checks before it starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import AdtkError

EXECUTORS = ("local", "ray")
#: Times a task whose worker died is tried again before it counts as failed.
DEFAULT_RETRIES = 2
#: Extra seconds a task gets before its first report: a fresh worker imports cv2 / torch
#: first, which on a loaded machine can take longer than the stall limit.
STARTUP_GRACE_S = 60.0
RAY_INSTALL = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'

OnEvent = Callable[[str, Hashable, Any], None]


@dataclass(frozen=True)
class Task:
    """One unit of work. ``fn`` must be importable by name (a module-level function)."""

    key: Hashable
    fn: Callable[..., Any]
    args: tuple = ()
    name: str = ""  # for messages: a video's path, a run id
    cpus: float = 1.0  # what the task reserves on a Ray cluster
    gpus: float = 0.0
    gpus_if_any: float = 0.0  # device auto: reserve this much GPU when the cluster has GPUs
    paths: tuple[str, ...] = ()  # files and folders the worker must see (shared filesystem)


@dataclass(frozen=True)
class Failure:
    """Why a task failed. ``kind``: error | died | stalled | unreachable."""

    kind: str
    message: str = ""  # error: the exception in one line; died: how (signal, exit code)
    attempts: int = 1
    error_type: str = ""
    signal: str = ""  # died: the signal's name when the worker was killed by one

    def __str__(self) -> str:
        tries = f"; tried {self.attempts} times" if self.attempts > 1 else ""
        if self.kind == "died":
            how = f" ({self.signal})" if self.signal else (f" ({self.message})" if self.message
                                                           else "")
            return f"its worker process died{how}{tries}"
        if self.kind == "stalled":
            return f"no progress for {self.message} s; stopped it"
        return self.message + tries


@dataclass(frozen=True)
class ExecutorConfig:
    """How tasks run: ``kind`` local or ray, and the Ray settings (ignored by local)."""

    kind: str = "local"
    address: str | None = None  # None: a running cluster if there is one, else a local Ray
    cpus: float | None = None  # per task; None: each stage's default
    gpus: float | None = None
    retries: int = DEFAULT_RETRIES

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise AdtkError(f"--executor {self.kind}: use one of {', '.join(EXECUTORS)}")
        if self.retries < 0:
            raise AdtkError(f"--retries {self.retries}: must be >= 0")
        for name in ("cpus", "gpus"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise AdtkError(f"--ray-{name} {v}: must be >= 0")
        if self.kind == "ray":
            require_ray()


def require_ray():
    """The ray module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise AdtkError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
                        ) from None
    return ray


def describe_error(e: BaseException) -> str:
    """One line on an exception a work function raised (adtk's own errors as they are)."""
    if isinstance(e, AdtkError):
        return " ".join(str(e).split())
    if isinstance(e, MemoryError):
        return "out of memory"
    msg = str(e).splitlines()[0][:200] if str(e) else ""
    tb = traceback.extract_tb(e.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {msg}{where}"


def _call(fn: Callable, args: tuple, emit: Callable[[str, Any], None]) -> tuple[str, Any]:
    """Run the work function: ("done", result) or ("failed", Failure) for an exception."""
    try:
        return "done", fn(*args, emit=emit)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - one bad task must not stop the others
        return "failed", Failure("error", describe_error(e), error_type=type(e).__name__)


# ----------------------------------------------------------------------------- parent death


def die_with_parent(poll_s: float = 0.5, owner: int | None = None) -> None:
    """Make this (worker) process exit as soon as its parent does, on any platform.

    On Linux the kernel sends SIGKILL when the parent exits (PR_SET_PDEATHSIG); everywhere a
    daemon thread also polls the parent id (a dead parent's children are re-parented), which
    covers macOS and a parent that died before the prctl call. Both exits are silent: no
    traceback from a worker whose parent is gone.

    ``owner``: the process that started the pool. Under the forkserver start method the
    worker's parent is the fork server, which need not die with the owner (it did outlive a
    ``kill -9`` of ``adtk extract`` here), so the thread also watches the owner itself.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # alive, owned by someone else
        # Linux: a killed owner not yet reaped is a zombie
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        return False

    def watch() -> None:
        while True:
            if os.getppid() != parent or (owner is not None and gone(owner)):
                os._exit(1)
            time.sleep(poll_s)

    if os.getppid() != parent or parent == 1:
        os._exit(1)
    threading.Thread(target=watch, name="adtk-parent-watch", daemon=True).start()


# ----------------------------------------------------------------------------- local


def _local_worker(conn, init: tuple | None, owner: int | None = None) -> None:
    """Worker process: run the tasks sent over ``conn`` one at a time."""
    die_with_parent(owner=owner)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        if init is not None:
            init[0](*init[1])
        while True:
            msg = conn.recv()
            if msg is None:
                return
            idx, fn, args = msg

            def emit(kind: str, payload: Any = None, idx=idx) -> None:
                conn.send((kind, idx, payload))

            kind, payload = _call(fn, args, emit)
            conn.send((kind, idx, payload))
    except (EOFError, OSError):
        # the parent is gone (or closed the pipe): end quietly, as the parent watch would
        os._exit(1)


def _describe_death(code: int | None) -> tuple[str, str]:
    """(signal name, message) for a worker's exit code."""
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name, ""
        except ValueError:
            return f"signal {-code}", ""
    return "", f"exit code {code}"


@dataclass
class _Slot:
    proc: Any
    conn: Any
    task: int | None = None
    last: float = 0.0
    started: bool = False  # the worker has reported on its current task
    stalled: bool = False


def mp_context(preload: Sequence[str] = ()):
    """forkserver where there is one (workers fork from a server that imported ``preload``
    once), else spawn; never fork (a forked torch / OpenCV thread pool can deadlock)."""
    import multiprocessing as mp

    if preload and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def prestart(preload: Sequence[str]) -> None:
    """Start the fork server now, so that it imports ``preload`` while the caller plans its
    work (the workers it forks later start from those imports). Nothing where there is no
    fork server; a server already running is kept."""
    ctx = mp_context(preload)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


@dataclass
class LocalExecutor:
    """Tasks in ``workers`` processes on this machine.

    ``init = (function, args)`` runs once in each worker before its first task (e.g. thread
    settings that must precede importing torch). A task whose worker reports nothing for
    ``stall_s`` seconds is killed and fails without a retry (a stuck decoder stays stuck).
    """

    workers: int = 1
    preload: tuple[str, ...] = ()
    init: tuple | None = None
    stall_s: float | None = None
    retries: int = DEFAULT_RETRIES
    kind: str = field(default="local", init=False)

    def session(self):
        """Nothing to connect to: local workers start with :meth:`run`."""
        return contextlib.nullcontext()

    def run(self, tasks: Sequence[Task], on_event: OnEvent) -> None:
        from multiprocessing.connection import wait

        ctx = mp_context(self.preload)
        pending = deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        slots: list[_Slot] = []

        def spawn() -> _Slot:
            parent_conn, child_conn = ctx.Pipe()
            proc = ctx.Process(target=_local_worker, args=(child_conn, self.init, os.getpid()),
                               daemon=True)
            proc.start()
            child_conn.close()
            return _Slot(proc, parent_conn)

        def drain(slot: _Slot) -> None:
            while True:
                try:
                    if not slot.conn.poll():
                        return
                    kind, idx, payload = slot.conn.recv()
                except (EOFError, OSError):
                    return
                slot.last = time.monotonic()
                slot.started = True
                if kind == "failed" and isinstance(payload, Failure):
                    payload = Failure(payload.kind, payload.message, attempts[idx],
                                      payload.error_type, payload.signal)
                on_event(kind, tasks[idx].key, payload)
                if kind in ("done", "failed"):
                    slot.task = None

        try:
            for _ in range(min(self.workers, len(tasks))):
                slots.append(spawn())
            while pending or any(s.task is not None for s in slots):
                for s in list(slots):
                    if s.task is None and not s.proc.is_alive():
                        slots.remove(s)  # died between tasks: nothing lost, replace it
                        if pending:
                            slots.append(spawn())
                for s in slots:
                    if s.task is None and pending:
                        s.task = pending.popleft()
                        attempts[s.task] += 1
                        s.last = time.monotonic()
                        s.started = False
                        t = tasks[s.task]
                        s.conn.send((s.task, t.fn, t.args))
                busy = [s for s in slots if s.task is not None]
                ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy],
                             timeout=1.0)
                now = time.monotonic()
                for s in list(busy):
                    if s.conn in ready:
                        drain(s)
                    if self.stall_s is not None and s.task is not None and s.proc.is_alive():
                        limit = self.stall_s + (0 if s.started else STARTUP_GRACE_S)
                        if now - s.last > limit:
                            s.proc.kill()
                            s.proc.join(5)
                            s.stalled = True
                    if s.proc.sentinel in ready or not s.proc.is_alive():
                        drain(s)  # messages sent before it died
                        s.proc.join(1)
                        if s.task is not None:
                            k = s.task
                            if s.stalled:
                                on_event("failed", tasks[k].key,
                                         Failure("stalled", f"{self.stall_s:g}", attempts[k]))
                            elif attempts[k] <= self.retries:
                                pending.appendleft(k)  # a dead worker: try again
                            else:
                                sig, msg = _describe_death(s.proc.exitcode)
                                on_event("failed", tasks[k].key,
                                         Failure("died", msg, attempts[k], signal=sig))
                            s.task = None
                        slots.remove(s)
                        if pending:
                            slots.append(spawn())
        finally:
            for s in slots:
                with contextlib.suppress(OSError):
                    s.conn.send(None)
            for s in slots:
                # a busy worker (Ctrl-C mid-task) is stopped now: its task commits atomically
                # or not at all, and the next run redoes it
                s.proc.join(2 if s.task is None else 0)
                if s.proc.is_alive():
                    s.proc.kill()
                    s.proc.join(1)


# ----------------------------------------------------------------------------- ray


def _ray_task(fn: Callable, args: tuple, cwd: str, paths: tuple[str, ...]):
    """A Ray generator task: yields (kind, payload) events, ending in done / failed."""
    import socket

    yield "_begin", None
    node = socket.gethostname()
    missing = [p for p in (cwd, *paths) if not os.path.exists(p)]
    if missing:
        yield "failed", Failure(
            "unreachable",
            f"{missing[0]}: not visible on node {node}; with --executor ray on several "
            "machines, the input, the output folder and the working folder must be on a "
            "filesystem every node mounts at the same path",
        )
        return
    os.chdir(cwd)  # relative paths in settings mean what they meant to the command
    events: queue.SimpleQueue = queue.SimpleQueue()
    result: list = []

    def work() -> None:
        try:
            result.append(_call(fn, args, lambda kind, payload=None: events.put((kind, payload))))
        except BaseException as e:  # noqa: BLE001 - reported below, never lost in a thread
            result.append(("failed", Failure("error", describe_error(e),
                                             error_type=type(e).__name__)))
        events.put(None)

    threading.Thread(target=work, name="adtk-task", daemon=True).start()
    while (ev := events.get()) is not None:
        yield ev
    yield result[0]


@contextlib.contextmanager
def ray_session(address: str | None = None):
    """Ray, connected for the duration: to ``address``, else to a running cluster if there is
    one (``ray start --head``), else to a local Ray started for this command and stopped
    after it."""
    ray = require_ray()
    _check_reachable(address)
    if ray.is_initialized():  # a caller (a notebook, the tests) connected already
        yield ray
        return
    import logging

    kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False,
                          "include_dashboard": False}
    try:
        ray.init(address=address or None, **kw)
    except ConnectionError as e:
        raise AdtkError(f"--ray-address {address}: cannot connect ({e}); start a cluster with "
                        "`ray start --head` or leave --ray-address out for a local Ray") from None
    except TypeError:  # a Ray Client address (ray://) takes fewer init options
        ray.init(address=address)
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 10.0) -> None:
    """A host:port address that nothing answers on fails now (Ray itself retries for many
    minutes before it gives up)."""
    import socket

    if not address or address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise AdtkError(f"--ray-address {address}: expected HOST:PORT (e.g. head-node:6379), "
                        "auto, or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise AdtkError(f"--ray-address {address}: nothing answers there ({e.strerror or e}); "
                        "start the cluster with `ray start --head` on that machine, or leave "
                        "--ray-address out for a local Ray") from None


@dataclass
class RayExecutor:
    """Tasks as Ray tasks, each reserving ``Task.cpus`` / ``Task.gpus`` on some node."""

    address: str | None = None
    stall_s: float | None = None
    retries: int = DEFAULT_RETRIES
    kind: str = field(default="ray", init=False)

    def session(self):
        """Connect now (a bad address fails before any progress bar); ``run`` reuses it."""
        return ray_session(self.address)

    def run(self, tasks: Sequence[Task], on_event: OnEvent) -> None:
        if not tasks:
            return
        with ray_session(self.address) as ray:
            self._run(ray, tasks, on_event)

    def _run(self, ray, tasks: Sequence[Task], on_event: OnEvent) -> None:
        from ray.exceptions import RayError, TaskCancelledError

        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        tasks = [t if t.gpus or not (has_gpu and t.gpus_if_any) else
                 dataclasses.replace(t, gpus=t.gpus_if_any) for t in tasks]
        _warn_infeasible(ray, tasks)
        remote = ray.remote(_ray_task)
        cwd = os.getcwd()
        gens: dict[Any, int] = {}
        for i, t in enumerate(tasks):
            # max_retries: Ray re-runs a task whose worker died; an exception inside the
            # function is caught in _ray_task and comes back as a "failed" event instead
            gen = remote.options(num_cpus=t.cpus, num_gpus=t.gpus, max_retries=self.retries,
                                 retry_exceptions=False, name=f"adtk:{t.name or t.key}"
                                 ).remote(t.fn, t.args, cwd,
                                          tuple(os.path.abspath(p) for p in t.paths))
            gens[gen] = i
        last: dict[int, float] = {}  # task -> time of its last event (once it has begun)
        stalled: set[int] = set()
        try:
            while gens:
                ready, _ = ray.wait(list(gens), num_returns=1, timeout=1.0)
                for gen in ready:
                    i = gens[gen]
                    t = tasks[i]
                    try:
                        kind, payload = ray.get(next(gen))
                    except StopIteration:
                        del gens[gen]
                        continue
                    except TaskCancelledError:
                        del gens[gen]
                        on_event("failed", t.key, Failure("stalled", f"{self.stall_s:g}"))
                        continue
                    except RayError as e:  # the worker died self.retries + 1 times
                        del gens[gen]
                        on_event("failed", t.key, Failure(
                            "died", _ray_death(e), self.retries + 1, error_type=type(e).__name__))
                        continue
                    last[i] = time.monotonic()
                    if kind == "_begin":
                        continue
                    on_event(kind, t.key, payload)
                    if kind in ("done", "failed"):
                        del gens[gen]
                if self.stall_s is not None:
                    now = time.monotonic()
                    for gen, i in gens.items():
                        if i in last and i not in stalled and now - last[i] > self.stall_s:
                            stalled.add(i)
                            ray.cancel(gen, force=True)
        except BaseException:
            for gen in gens:  # Ctrl-C: stop every task still queued or running
                with contextlib.suppress(Exception):
                    ray.cancel(gen, force=True)
            raise


def _ray_death(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if "OutOfMemory" in type(e).__name__ or "memory" in text.lower():
        return "out of memory"
    return "the worker crashed or was killed"


def _warn_infeasible(ray, tasks: Sequence[Task]) -> None:
    """Say so when no node has what a task asks for (Ray would wait for such a node)."""
    try:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    except Exception:  # noqa: BLE001 - a Ray Client may not offer this; the check is a courtesy
        return
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    need_c = max(t.cpus for t in tasks)
    need_g = max(t.gpus for t in tasks)
    if need_c > cpus or need_g > gpus:
        print(f"note: a task asks Ray for {need_c:g} CPU(s) and {need_g:g} GPU(s), but the "
              f"largest node has {cpus:g} and {gpus:g}: it waits until such a node joins "
              "(see --ray-cpus / --ray-gpus)", file=sys.stderr)


def create(cfg: ExecutorConfig, *, workers: int = 1, preload: Sequence[str] = (),
           init: tuple | None = None, stall_s: float | None = None):
    """The executor ``cfg`` names (``workers``, ``preload``, ``init``: the local pool's)."""
    if cfg.kind == "ray":
        return RayExecutor(address=cfg.address, stall_s=stall_s, retries=cfg.retries)
    return LocalExecutor(workers=max(1, workers), preload=tuple(preload), init=init,
                         stall_s=stall_s, retries=cfg.retries)
