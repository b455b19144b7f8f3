"""Frames from a video file, sampled by time, without ever holding the whole video.

Skipped frames are only ``grab()``-ed (demuxed and, for inter-coded streams, decoded inside
the codec, but never converted to a BGR array), which is the cheapest way OpenCV offers to move
forward through a stream while staying frame-exact.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import AdtkError

#: Extensions searched for when the input is a folder (lower case, without dot).
VIDEO_EXTENSIONS = frozenset(
    [
        "mp4",
        "m4v",
        "avi",
        "mkv",
        "mov",
        "webm",
        "mpg",
        "mpeg",
        "mpe",
        "ts",
        "mts",
        "m2ts",
        "wmv",
        "flv",
        "3gp",
        "ogv",
        "mjpeg",
        "mjpg",
    ]
)
#: A stream that stops this far short of its header's frame count is called truncated
#: (containers estimate counts from duration, so a small shortfall is normal).
TRUNCATION_TOLERANCE = 0.02


class VideoError(AdtkError):
    """A video that cannot be opened or decoded; the message names the file and the reason."""


class TruncatedVideo(VideoError):
    """Decoding stopped at frame ``stopped_at`` (0-based: the first frame that did not decode)
    well before the ``expected`` frames the container promised. The frames before it were
    yielded normally, so the caller can keep them."""

    def __init__(self, path: str | os.PathLike, stopped_at: int, expected: int):
        super().__init__(
            f"{path}: truncated or corrupt video (decoding stopped at frame {stopped_at} of "
            f"{expected})"
        )
        self.stopped_at = int(stopped_at)
        self.expected = int(expected)


def quiet_decoder(verbose: bool = False) -> None:
    """Silence OpenCV's and FFmpeg's own log lines (``[mjpeg @ 0x...] overread 8``) unless
    ``verbose``; the reader's errors say what went wrong in one line instead.

    OpenCV reads ``OPENCV_FFMPEG_LOGLEVEL`` once per process, when it opens its first video,
    so this must run before that (workers call it first thing). A level the user set in the
    environment is kept.
    """
    if verbose:
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    import cv2

    if os.environ["OPENCV_LOG_LEVEL"].upper() == "ERROR":
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (frame_count may be an estimate)."""

    path: str
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        """Length in seconds (from the container's frame count and rate)."""
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def is_video_name(path: str | os.PathLike) -> bool:
    """True when the file name has a video extension (case-insensitive)."""
    return Path(path).suffix.lower().lstrip(".") in VIDEO_EXTENSIONS


def check_readable(path: str | os.PathLike) -> None:
    """Raise :class:`VideoError` for a missing, non-regular, unreadable or empty file."""
    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such file")
    if not p.is_file():
        raise VideoError(f"{p}: not a regular file")
    if not os.access(p, os.R_OK):
        raise VideoError(f"{p}: permission denied (file is not readable)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError as e:
        raise VideoError(f"{p}: cannot read ({e.strerror or e})") from None
    if not head:
        raise VideoError(f"{p}: empty file")
    if _looks_like_text(head):
        raise VideoError(f"{p}: not a video (the file contains text)")


def _looks_like_text(head: bytes) -> bool:
    # Video containers are binary from their first bytes; a text file (a README, a CSV
    # renamed to .mp4) is printable throughout. Checking here gives a clearer message than
    # FFmpeg's generic "could not open".
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def open_video(path: str | os.PathLike):
    """Open ``path`` with OpenCV (FFmpeg backend); return ``(capture, info)``.

    Raises :class:`VideoError` with the reason when the file is not a decodable video.
    """
    import cv2

    check_readable(path)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: not a video, or a corrupt or truncated one (cannot open it)")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        cap.release()
        raise VideoError(f"{path}: the video reports no usable frame rate ({fps})")
    if width <= 0 or height <= 0:
        cap.release()
        raise VideoError(f"{path}: the video has no picture stream")
    return cap, VideoInfo(str(path), fps, max(count, 0), width, height)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Container facts of a video (opens and closes it; decodes nothing)."""
    cap, info = open_video(path)
    cap.release()
    return info


def sample_stride(fps: float, target_fps: float) -> float:
    """Stride between sampled frames, in source frames (>= 1)."""
    if target_fps <= 0:
        raise ValueError("target fps must be > 0")
    return max(1.0, fps / target_fps)


def _seek(cap, path: str | os.PathLike, frame: int):
    """Position ``cap`` so that the next read returns frame ``frame``; returns the capture.

    OpenCV's FFmpeg backend seeks to the keyframe before ``frame`` and decodes forward, which is
    frame-exact (same pixels as reading from the start) for constant-frame-rate files. When it
    reports another position (variable frame rate, a broken index, a truncated file), the
    video is reopened and grabbed up to ``frame``: slow but exact. Raises
    :class:`TruncatedVideo` when the stream ends before ``frame``.
    """
    import cv2

    if frame <= 0:
        return cap
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    if int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) == frame:
        return cap
    cap.release()
    cap, info = open_video(path)
    for i in range(frame):
        if not cap.grab():
            cap.release()
            raise TruncatedVideo(path, i, info.frame_count)
    return cap


def iter_sampled(
    path: str | os.PathLike,
    target_fps: float,
    start_frame: int = 0,
    stop_frame: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_idx, time_s, bgr_frame)`` at about ``target_fps`` frames per second.

    Sampled frame k is the first frame whose index reaches ``k * stride`` (stride = source fps /
    target fps), so sampling is exact in time for any ratio, and a range that starts at
    ``start_frame`` samples the same frames as a read from the start (the reader seeks there).
    Skipped frames are only grabbed. ``on_frame(n)`` is called with the number of source
    frames passed since its last call (progress reporting). A stream that ends well short of
    the container's frame count (or of ``stop_frame``) raises :class:`TruncatedVideo` after
    the frames that did decode (less the last one, which a cut file decodes only in part);
    one with no decodable frame at all raises :class:`VideoError`.
    """
    cap, info = open_video(path)
    stride = sample_stride(info.fps, target_fps)
    try:
        cap = _seek(cap, path, start_frame)
        idx = max(0, start_frame)
        # the first k whose sampled frame (the first index reaching k * stride) is >= idx
        next_k = max(0, math.ceil(idx / stride) - 1)
        while math.ceil(next_k * stride - 1e-9) < idx:
            next_k += 1
        passed = 0
        got_any = False
        # A file cut inside a frame decodes that frame partly (grey or smeared below the
        # cut), so each sampled frame is held back until the stream goes on after it.
        held: tuple[int, float, np.ndarray] | None = None
        while stop_frame is None or idx < stop_frame:
            want = idx >= math.ceil(next_k * stride - 1e-9)
            if want:
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None
            if not ok:
                break
            got_any = True
            passed += 1
            if held is not None:
                yield held
                held = None
            if want:
                if frame is None:
                    break
                next_k += 1
                if on_frame is not None:
                    on_frame(passed)
                    passed = 0
                held = (idx, idx / info.fps, frame)
            idx += 1
        if on_frame is not None and passed:
            on_frame(passed)
        expected = info.frame_count if stop_frame is None else min(stop_frame, info.frame_count)
        if not got_any and start_frame <= 0:
            raise VideoError(f"{path}: no frame could be decoded (corrupt or not a video)")
        span = expected - max(0, start_frame)
        if expected and idx < expected - span * TRUNCATION_TOLERANCE - 1:
            # the held frame is the last one before the stream broke off: not trusted
            raise TruncatedVideo(path, idx - 1 if held is not None else idx, info.frame_count)
        if held is not None:
            yield held
    finally:
        cap.release()


#: frames decoded ahead of the consumer by :func:`prefetched` (a few frames' memory)
PREFETCH_DEPTH = 4


def prefetched(
    path: str | os.PathLike,
    target_fps: float,
    start_frame: int = 0,
    stop_frame: int | None = None,
    on_frame: Callable[[int], None] | None = None,
    depth: int = PREFETCH_DEPTH,
    pre: Callable[[np.ndarray], Any] | None = None,
) -> Iterator[tuple[int, float, np.ndarray, Any]]:
    """:func:`iter_sampled`, decoded in a background thread up to ``depth`` frames ahead, as
    ``(frame_idx, time_s, bgr_frame, pre(bgr_frame))`` (None without ``pre``).

    The same frames in the same order, and the same exceptions (``TruncatedVideo`` after the
    frames that decoded), raised here in the caller's thread; ``on_frame`` is also called in
    the caller's thread, as each frame is handed over. ``pre`` runs in the decoding thread,
    once per frame, in order: work that depends on the frames alone (the motion model), so
    that it too runs ahead. OpenCV releases the GIL while it decodes and filters, so this
    overlaps with what the caller does with earlier frames (detection; measured in
    ``benchmarks/extract_throughput.py``). Closing the iterator early (an exception in the
    caller) stops the thread and releases the file before it returns. ``depth`` 0: all in
    the caller's thread. Memory: up to ``depth`` + 3 decoded frames at once.
    """
    if depth <= 0:
        for fi, t, frame in iter_sampled(path, target_fps, start_frame, stop_frame, on_frame):
            yield fi, t, frame, None if pre is None else pre(frame)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    passed = [0]

    def count(n: int) -> None:
        passed[0] += n

    def put(msg: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        gen = iter_sampled(path, target_fps, start_frame, stop_frame, on_frame=count)
        try:
            for fi, t, frame in gen:
                extra = None if pre is None else pre(frame)
                n, passed[0] = passed[0], 0
                if not put(("frame", (fi, t, frame, extra), n)):
                    return
            put(("end", None, passed[0]))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put(("error", e, passed[0]))
        finally:
            gen.close()  # releases the capture in this thread, also when stopped early

    thread = threading.Thread(target=run, name="adtk-decode", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value, n = q.get(timeout=0.5)
            except queue.Empty:
                if thread.is_alive() or not q.empty():
                    continue  # a slow frame (the parent's stall watchdog covers a hung one)
                raise VideoError(f"{path}: the decoding thread stopped without a result") from None
            if n and on_frame is not None:
                on_frame(n)
            if kind == "frame":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join()


def sampled_indices(frame_count: int, fps: float, target_fps: float) -> np.ndarray:
    """The frame indices :func:`iter_sampled` yields from a stream of ``frame_count`` frames.

    ``target_fps`` 0 (or at least ``fps``) means every frame.
    """
    stride = 1.0 if target_fps <= 0 else sample_stride(fps, target_fps)
    k = np.arange(int(np.ceil(frame_count / stride)) + 1)
    idx = np.ceil(k * stride - 1e-9).astype(np.int64)
    return idx[idx < frame_count]
