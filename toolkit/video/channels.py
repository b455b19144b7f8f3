"""Motion channels of a crop: how its box's content moves, from the neighbouring frames.

A 64x64 grey crop of a 30-pixel walker says little about what makes a biker anomalous: speed.
Each crop can therefore carry a second image, cut at the same box (and at the oversize box)
from a motion field of its frame, stored as a 3-channel PNG beside the crop:

``flow``: dense optical flow (Farneback, OpenCV) from
    frame t to frame t+1 of the source video. Channels: horizontal and vertical speed in
    frame heights per second (source pixels per frame x fps / frame height: the same number
    for the same scene at any resolution or frame rate), stored as ``128 + FLOW_GAIN * u``
    and ``128 + FLOW_GAIN * v``, and the speed itself as ``MAG_GAIN * |(u, v)|``, each clipped
    to 0..255 (so up to 0.64 frame heights per second: a UCSD Ped2 biker moves about 0.3).
``diff``: temporal gradients of the grey frames: ``128 + (I_t - I_t-1)``,
    ``128 + (I_t+1 - I_t)`` and ``|I_t+1 - I_t-1|``, each clipped to 0..255.

Neighbours are source frames (t-1, t+1), whatever the sampling rate, so the channels describe
the same motion at ``--fps 2`` as at every frame. At a video's first and last frame the
missing neighbour is the frame itself (no motion there).

Why flow is the recommended kind (``benchmarks/motion_channels.py`` on the crops of Ped2's 12
test clips at every frame, labelled by the object regions; measured with the motion detector's
crops and the earlier box-relative flow unit): a logistic probe on the 16x16 channels,
out-of-fold by clip, separated abnormal from normal crops with AUROC 0.715 on flow against
0.682 on temporal gradients (0.639 on the grey appearance alone).
Flow costs more: 22.8 CPU ms per source frame against 3.7 for gradients (Ped2, 360x240).
Gradients mix speed with contrast (a dark coat moving slowly changes more pixels than a grey
one moving fast); flow measures displacement itself.

Why absolute speed, not speed relative to the box: on the 28,926 crops of Ped2's test clips
(YOLOX + motion blobs, every frame), the crop's mean flow magnitude alone, with no training,
ranks abnormal crops with AUROC 0.950 in source pixels against 0.890 in box heights, and frame
AUROC (a frame's highest crop) 0.902 against 0.754 micro: dividing by the box's height blows
up the flow of the small partial boxes at the frame's edge (a leg, a head, 6x13 px), which
then outrank every biker.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

#: ``--motion-channels`` values; ``none`` writes no motion crops.
MOTION_KINDS = ("none", "flow", "diff")
#: uint8 steps per frame height per second of speed (u, v): +-0.64 fit in 0..255.
FLOW_GAIN = 200.0
#: uint8 steps per frame height per second of speed |(u, v)|: up to 0.64.
MAG_GAIN = 400.0
#: Farneback settings: a 3-level pyramid follows the few-pixel steps of small, fast objects
#: (a biker crosses ~7 px per frame at Ped2's 360x240); the rest are OpenCV's usual values.
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 9, "iterations": 3, "poly_n": 5,
             "poly_sigma": 1.1, "flags": 0}


def describe(kind: str) -> dict[str, object]:
    """What the manifest's metadata says about the motion channels of ``kind``."""
    if kind == "flow":
        return {
            "kind": "flow",
            "method": "Farneback optical flow, frame t -> t+1 (OpenCV)",
            "channels": [
                f"u: 128 + {FLOW_GAIN:g} * horizontal speed in frame heights per second",
                f"v: 128 + {FLOW_GAIN:g} * vertical speed in frame heights per second",
                f"magnitude: {MAG_GAIN:g} * |(u, v)| in the same unit",
            ],
            "columns": ["path_motion", "path_motion_oversize"],
        }
    if kind == "diff":
        return {
            "kind": "diff",
            "method": "temporal gradients of the grey frames t-1, t, t+1",
            "channels": ["128 + (I_t - I_t-1)", "128 + (I_t+1 - I_t)", "|I_t+1 - I_t-1|"],
            "columns": ["path_motion", "path_motion_oversize"],
        }
    return {"kind": "none"}


def motion_field(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, kind: str) -> np.ndarray:
    """(H, W, 3) float32 field of frame ``cur`` (grey uint8 frames); see the module docstring.

    ``flow``: (u, v, unused) in source pixels; ``diff``: the three uint8 channels, unclipped.
    """
    import cv2

    if kind == "flow":
        f = cv2.calcOpticalFlowFarneback(cur, nxt, None, **FARNEBACK)  # (H, W, 2)
        return np.concatenate([f, np.zeros_like(f[..., :1])], axis=2)
    if kind == "diff":
        p, c, n = (a.astype(np.float32) for a in (prev, cur, nxt))
        return np.stack([128 + c - p, 128 + n - c, np.abs(n - p)], axis=2)
    raise ValueError(f"unknown motion kind {kind!r}; known: {', '.join(MOTION_KINDS[1:])}")


def motion_crop(field: np.ndarray, box, size: int, kind: str, speed: float = 1.0) -> np.ndarray:
    """The field at ``box`` (x0, y0, x1, y1), resized to ``size`` and encoded as uint8 (S, S, 3).

    ``speed``: flow: frame heights per second of one source pixel per frame (fps / height).
    """
    from toolkit.video.extract import crop

    c = crop(field, box, size).astype(np.float32)  # padded with 0 outside the frame
    if kind == "flow":
        u, v = c[..., 0] * speed, c[..., 1] * speed
        c = np.stack([128 + FLOW_GAIN * u, 128 + FLOW_GAIN * v, MAG_GAIN * np.hypot(u, v)], 2)
    return np.clip(np.rint(c), 0, 255).astype(np.uint8)


def write_motion_crops(
    src: str | os.PathLike,
    rows: pd.DataFrame,
    out: Path,
    kind: str,
    size: int,
    oversize: Callable,
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """Write ``out/motion/<name>`` and ``out/motion_oversize/<name>`` for every row.

    ``rows``: ``name``, ``frame_idx`` and the box ``x, y, w, h``; ``oversize`` maps a box to
    its oversize box. One more pass over the video decodes every frame (the neighbours of the
    crops' frames), keeping three grey frames in memory.
    """
    import cv2

    from toolkit.errors import AdtkError
    from toolkit.video.reader import iter_sampled, probe
    from toolkit.video.writer import PngWriter

    (out / "motion").mkdir(exist_ok=True)
    (out / "motion_oversize").mkdir(exist_ok=True)
    if not len(rows):
        return
    want: dict[int, list[tuple[str, tuple[float, ...]]]] = defaultdict(list)
    for r in rows.itertuples(index=False):
        want[int(r.frame_idx)].append(
            (r.name, (float(r.x), float(r.y), float(r.x + r.w), float(r.y + r.h)))
        )
    last = max(want)
    info = probe(src)
    speed = float(info.fps or 0) / max(float(info.height or 0), 1.0)
    if not speed > 0:
        raise AdtkError(f"{src}: unknown frame rate or size; flow channels need both")

    files = PngWriter(prefix=f"{src}: ", what="motion crop", root=out)

    def emit(fi: int, prev, cur, nxt) -> None:
        field = motion_field(prev, cur, nxt, kind)
        for name, box in want[fi]:
            for sub, b in (("motion", box), ("motion_oversize", oversize(box))):
                files(out / sub / name, motion_crop(field, b, size, kind, speed))

    window: list[tuple[int, np.ndarray]] = []  # (frame_idx, grey) of the last <= 3 frames
    first = max(0, min(want) - 1)  # a chunk's rows start late in the video: seek there
    with files:  # every file written (or its error raised) on the way out
        for fi, _, frame in iter_sampled(src, info.fps, start_frame=first, stop_frame=last + 2,
                                         on_frame=on_frame):
            window = [*window[-2:], (fi, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))]
            if len(window) >= 2:  # the middle (or, at the start, first) frame has its next
                c = len(window) - 2
                f, cur = window[c]
                if f in want:
                    emit(f, window[c - 1][1] if c else cur, cur, window[c + 1][1])
        if window and window[-1][0] in want:  # the video's last frame: no next frame
            f, cur = window[-1]
            emit(f, window[-2][1] if len(window) > 1 else cur, cur, cur)
