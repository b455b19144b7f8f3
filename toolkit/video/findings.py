"""What a finished video's part metadata tells its user: the extraction summary's findings.

Each function reads what :func:`toolkit.video.extract.extract_video` recorded about one video
(its part's metadata, its crops) and returns a line for the summary, or '' (None for
:func:`turned_people`) where there is nothing to say: a camera that moved, a frozen picture,
people too small for YOLOX's input, a video on its side, why a video gave no crop, an
input size larger than the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import ExtractConfig


def some(items: Sequence[str], sep: str = "; ", k: int = 5) -> str:
    """The first ``k`` of ``items`` joined, and " ..." where there are more."""
    return sep.join(items[:k]) + (" ..." if len(items) > k else "")


#: share of a video's sampled frames that must be shifted onto the background before the
#: summary says its camera moved (a fixed camera's frames never are: 0 of 7,228 on the shared
#: clips, Ped2 included)
MOVING_CAMERA_SHARE = 0.05


def camera_moved(meta: dict[str, Any]) -> str:
    """How the camera of a finished video moved, from its part's metadata; '' when it did not."""
    sampled = int(meta.get("sampled_frames") or 0)
    aligned = int(meta.get("camera_aligned_frames") or 0)
    restarts = int(meta.get("camera_restarts") or 0)
    cuts = int(meta.get("shot_cuts") or 0)
    if not restarts and not cuts and (not sampled or aligned < MOVING_CAMERA_SHARE * sampled):
        return ""
    said = []
    if aligned:
        said.append(f"shifted in {aligned} of {sampled} sampled frames")
    if cuts:
        said.append(f"{cuts} shot cut(s)")
    if restarts:
        said.append(f"a new view {restarts} time(s)")
    return ", ".join(said)


def frozen(meta: dict[str, Any], cfg: ExtractConfig) -> str:
    """How long a finished video's picture was frozen; '' under a second (a few repeated
    frames of a still scene are no news)."""
    n = int(meta.get("frozen_frames") or 0)
    fps = float(meta.get("fps") or 0)
    rate = min(cfg.fps, fps) if cfg.fps > 0 and fps else fps
    if not n or not rate or n / rate < 1.0:
        return ""
    blank = int(meta.get("blank_frames") or 0)
    what = (", all blank (one colour)" if blank >= n else
            f", {blank} of them blank (one colour)" if blank else "")
    return (f"{n / rate:.0f} s: {n} of {int(meta.get('sampled_frames') or 0)} sampled "
            f"frames{what}")


#: the median height (pixels in YOLOX's input) of a video's detected boxes under which the
#: summary suggests a larger --yolox-size. YOLOX-Nano misses small people: PETS09-S2L1 as a
#: 1536x1152 camera (benchmarks/detect_track.py --sequence PETS09-S2L1-2x2; people a median
#: 34 px tall at 640) gave recall 0.854 at 640 against 0.911 at 1280 (67 px, the native
#: sequence's scale at 640, where recall is 0.910)
SMALL_IN_YOLOX_PX = 40.0


def small_in_yolox(part: pd.DataFrame, meta: dict[str, Any], cfg: ExtractConfig) -> str:
    """How small a video's YOLOX boxes were in the network's input; '' when not small."""
    if cfg.detector != "yolox" or part is None or not len(part) or "object_class" not in part:
        return ""
    long_side = max(int(meta.get("width") or 0), int(meta.get("height") or 0))
    if long_side <= cfg.yolox_size:
        return ""  # at full resolution or enlarged: a larger input cannot add detail
    found = part["object_class"].notna()
    if not found.any():
        return ""
    px = float(part.loc[found, "h"].median()) * cfg.yolox_size / long_side
    if px >= SMALL_IN_YOLOX_PX:
        return ""
    return (f"detected boxes a median {px:.0f} px tall at --yolox-size {cfg.yolox_size} on "
            f"{meta.get('width')}x{meta.get('height')} frames")


#: how a video that lies on its side is turned upright: (cv2.rotate code, ffmpeg's filter)
TURNS = {"90 clockwise": ("ROTATE_90_CLOCKWISE", "transpose=1"),
         "90 counter-clockwise": ("ROTATE_90_COUNTERCLOCKWISE", "transpose=2"),
         "180": ("ROTATE_180", "transpose=1,transpose=1")}


def turned_people(detector: Any, frame: np.ndarray | None, cfg: ExtractConfig) -> str | None:
    """The turn (a key of :data:`TURNS`) under which a person detector finds the most people
    in ``frame``, if at least two and more than twice as many as in the frame as it is; else
    None. Never raises: it only adds a hint (a detector that fails on a turned frame gives
    none).

    For a video that gave no person crop: a camera mounted on its side, or a phone video
    whose pixels (not only its rotation tag, which the decoder applies) lie sideways. Person
    detectors are trained on upright people; turning upright frames by 90 takes them to
    nothing (YOLOX-Nano at score 0.5 on a frame each of PETS09-S2L1, TUD-Stadtmitte and
    OpenCV's vtest.avi: 7 / 5 / 7 people upright, 0 / 0 / 0 turned either way by 90), so
    the test does not fire on upright footage. Every turn is tried and the best one wins:
    a detector also finds some people upside down, so the first turn with two people can be
    the wrong one, and one upside-down "person" in the frame as it is must not hide the
    turn that shows them all. Three detector passes on one frame, at the run's --min-score
    (the detector's default without it).
    """
    import cv2

    if frame is None or cfg.target != "person" or not getattr(detector, "finds_persons", False):
        return None
    floor = cfg.min_score if cfg.min_score is not None else detector.default_min_score or 0.0

    def people(img: np.ndarray) -> int:
        det = detector.detect([img], [None], [None])[0]
        return int((det.persons() & (det.scores >= floor)).sum())

    try:
        upright = people(frame)
        counts = {turn: people(np.ascontiguousarray(cv2.rotate(frame, getattr(cv2, code))))
                  for turn, (code, _) in TURNS.items()}
    except Exception:  # noqa: BLE001 - a hint is not worth a failed video
        return None
    best = max(counts, key=lambda t: counts[t])  # ties: the first in TURNS
    return best if counts[best] >= 2 and counts[best] > 2 * upright else None


def why_empty(video: str, meta: dict[str, Any], cfg: ExtractConfig) -> str:
    """``video`` and, where its part's metadata tells, why it gave no crop."""
    turn = meta.get("turned")
    if turn in TURNS:
        how = "is upside down" if turn == "180" else "lies on its side"
        return (f"{video} (the person detector finds people when the picture is turned "
                f"{turn}: the video {how}; turn it first, e.g. ffmpeg -i IN "
                f"-vf {TURNS[turn][1]} OUT)")
    sampled = int(meta.get("sampled_frames") or 0)
    dropped = int(meta.get("tracks_dropped") or 0)
    if 0 < sampled < cfg.min_track:
        src_fps = float(meta.get("fps") or 0)
        every = cfg.fps == 0 or (src_fps and src_fps <= cfg.fps)  # each frame sampled already
        rate = "every frame" if every else f"--fps {cfg.fps:g}"
        hint = "" if every else ", --fps 0 samples every frame"
        return (f"{video} ({sampled} sampled frame(s) at {rate}, fewer than --min-track "
                f"{cfg.min_track}: no track can be kept{hint})")
    if dropped:
        return f"{video} ({dropped} track(s) shorter than --min-track {cfg.min_track} dropped)"
    return f"{video} (nothing found)"


def yolox_size_note(cfg: ExtractConfig, long_sides: dict[str, int]) -> str:
    """A note where a --yolox-size above the default enlarges frames beyond their own pixels:
    the cost grows with the square of the size, the frame's detail does not."""
    default = ExtractConfig().yolox_size
    if cfg.detector != "yolox" or cfg.yolox_size <= default:
        return ""
    small = {v: n for v, n in long_sides.items() if 0 < n < cfg.yolox_size}
    if not small:
        return ""
    top = max(small.values())
    own = max(default, -(-top // 32) * 32)  # the frames' own size, as a multiple of 32
    return (f"--yolox-size {cfg.yolox_size} is larger than the frames of {len(small)} "
            f"video(s) (long side {top} px at most): YOLOX then works on an enlarged picture, "
            f"at about {(cfg.yolox_size / own) ** 2:.1f}x the time of --yolox-size {own}, "
            "where the frames' own pixels end")


#: frame rates a camera or recorder gives (frames per second); a container's rate outside
#: them is more likely a writer's mistake (1000 or 90000: a timebase taken for a rate)
PLAUSIBLE_FPS = (1.0, 240.0)


def odd_fps(meta: dict[str, Any]) -> str:
    """The frame rate a video's container states, where it is implausible; '' otherwise."""
    fps = float(meta.get("fps") or 0)
    lo, hi = PLAUSIBLE_FPS
    if not fps or lo <= fps <= hi:
        return ""
    return f"{fps:g} frames/s stated, {int(meta.get('frames') or 0)} frames"
