"""Frames from a video file, sampled by time, without ever holding the whole video.

Skipped frames are only ``grab()``-ed (demuxed and, for inter-coded streams, decoded inside
the codec, but never converted to a BGR array), which is the cheapest way OpenCV offers to move
forward through a stream while staying frame-exact.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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


def iter_sampled(
    path: str | os.PathLike,
    target_fps: float,
    start_frame: int = 0,
    stop_frame: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_idx, time_s, bgr_frame)`` at about ``target_fps`` frames per second.

    Sampled frame k is the first frame whose index reaches ``k * stride`` (stride = source fps /
    target fps), so sampling is exact in time for any ratio. Skipped frames are only grabbed.
    ``on_frame(n)`` is called with the number of source frames passed since its last call
    (progress reporting). A stream that ends well short of the container's frame count raises
    :class:`VideoError` (truncated or corrupt file).
    """
    cap, info = open_video(path)
    stride = sample_stride(info.fps, target_fps)
    try:
        idx = 0
        next_k = math.ceil(start_frame / stride)
        passed = 0
        got_any = False
        while stop_frame is None or idx < stop_frame:
            want = idx >= start_frame and idx >= math.ceil(next_k * stride - 1e-9)
            if want:
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None
            if not ok:
                break
            got_any = True
            passed += 1
            if want:
                if frame is None:
                    break
                next_k += 1
                if on_frame is not None:
                    on_frame(passed)
                    passed = 0
                yield idx, idx / info.fps, frame
            idx += 1
        if on_frame is not None and passed:
            on_frame(passed)
        if not got_any:
            raise VideoError(f"{path}: no frame could be decoded (corrupt or not a video)")
        expected = info.frame_count if stop_frame is None else min(stop_frame, info.frame_count)
        if expected and idx < expected * (1 - TRUNCATION_TOLERANCE) - 1:
            raise VideoError(
                f"{path}: truncated or corrupt video (decoding stopped at frame {idx} of "
                f"{expected})"
            )
    finally:
        cap.release()


def sampled_indices(frame_count: int, fps: float, target_fps: float) -> np.ndarray:
    """The frame indices :func:`iter_sampled` yields from a stream of ``frame_count`` frames.

    ``target_fps`` 0 (or at least ``fps``) means every frame.
    """
    stride = 1.0 if target_fps <= 0 else sample_stride(fps, target_fps)
    k = np.arange(int(np.ceil(frame_count / stride)) + 1)
    idx = np.ceil(k * stride - 1e-9).astype(np.int64)
    return idx[idx < frame_count]
