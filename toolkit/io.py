"""Small file helpers shared by every stage: atomic writes, content hashes, folder locks."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolkit.errors import AdtkError


def os_error_text(e: OSError) -> str:
    """'Permission denied: /x/y' for an OSError that names its file, else its own text."""
    return f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)


def writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` as a folder that exists and can be written (made, with its parents, when
    missing; :func:`creatable_folder` checks first); otherwise an :class:`AdtkError` of one
    line that says why."""
    p = creatable_folder(path, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AdtkError(f"{p}: cannot create the {what} ({os_error_text(e)})") from None
    return p


def creatable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check, without creating anything, that ``path`` is a writable folder or can be made one
    (its nearest existing ancestor is a writable folder); an :class:`AdtkError` of one line
    otherwise. For commands that must leave nothing behind when they stop on bad input."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise AdtkError(f"{p}: exists and is not a folder, so it cannot be the {what}")
        if not os.access(p, os.W_OK | os.X_OK):
            raise AdtkError(f"{p}: the {what} is not writable")
        return p
    a = p.absolute().parent
    while not a.exists() and a != a.parent:
        a = a.parent
    if not a.is_dir():
        raise AdtkError(f"{p}: cannot create the {what} ({a} is a file, not a folder)")
    if not os.access(a, os.W_OK | os.X_OK):
        raise AdtkError(f"{p}: cannot create the {what} ({a} is not writable)")
    return p


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only on success.

    The rename is atomic on POSIX, so a reader (or a later run after ``kill -9``) sees either
    the old file or the complete new one, never a half-written file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=suffix or f".tmp{dest.suffix}", dir=dest.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes 0600 files; give the result the mode a plain open() would (umask applies),
    # so reports and manifests stay readable by the people they are shared with.
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def atomic_write_json(dest: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def json_clean(obj: Any) -> Any:
    """NaN/inf -> None (JSON null), numpy scalars -> Python, recursively."""
    if isinstance(obj, dict):
        return {k: json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


#: What a non-blocking flock raises (as errno) when another process holds the lock.
_LOCK_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` for the block, or raise ``AdtkError(busy)``.

    An ``flock``: the kernel releases it when the holder exits, however it exits (``kill -9``
    too), so a lock never outlives its process and needs no clean-up. The holder's pid and
    host are written into the file so that the refusal can name them. POSIX (Linux, macOS).
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a+" never truncates: a process that is refused must still read the holder's pid.
    fh = open(path, "a+")  # noqa: SIM115  (held for the whole block)
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in _LOCK_HELD:
                raise
            fh.seek(0)
            holder = fh.read().strip()
            raise AdtkError(busy + (f" (held by process {holder})" if holder else "")) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def lock_holder(path: str | os.PathLike) -> str | None:
    """Who holds :func:`exclusive_lock` on ``path`` now ("PID on HOST"), or None if nobody."""
    import fcntl

    try:
        fh = open(path)  # noqa: SIM115  (closed below; closing also drops a lock we took)
    except OSError:
        return None  # no lock file: nobody ever locked it
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in _LOCK_HELD:
                raise
            return fh.read().strip() or "another process"
        return None
    finally:
        fh.close()
