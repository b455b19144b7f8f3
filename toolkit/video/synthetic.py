"""Generated fixed-camera footage: walkers (normal) and carts or bikes (anomalies).

Used by ``adtk demo`` and the tests, so the whole pipeline can run with no data at all. The
scene is a textured static background seen from a fixed camera; people are dark
person-shaped blobs walking in their own lanes (never one above the other, since a motion
mask cannot tell two vertically touching people apart). An anomaly replaces one walker with
an object of another shape: a ``cart`` (a wide box on wheels) or a ``bike`` (a rider over two
wheels, moving 1.5 times as fast).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import AdtkError

ANOMALIES = ("cart", "bike")
#: Written beside every generated clip, so that results made from these clips can be shown as
#: synthetic (the report follows run -> split manifest -> crop manifest -> video folders).
MARKER = "SYNTHETIC.json"
MARKER_TEXT = ("generated fixed-camera clips (toolkit.video.synthetic): drawn walkers are "
               "normal, drawn carts and bikes abnormal; not real footage")


def _draw_walker(frame: np.ndarray, x: int, y: int, step: int) -> None:
    cv2.ellipse(frame, (x + 7, y + 8), (6, 7), 0, 0, 360, (40, 40, 40), -1)
    cv2.rectangle(frame, (x, y + 15), (x + 14, y + 38), (30, 30, 60), -1)
    swing = 3 if (step // 2) % 2 else -3  # legs alternate: a little texture in time
    cv2.line(frame, (x + 4, y + 38), (x + 4 + swing, y + 50), (30, 30, 30), 3)
    cv2.line(frame, (x + 10, y + 38), (x + 10 - swing, y + 50), (30, 30, 30), 3)


def _draw_cart(frame: np.ndarray, x: int, y: int, step: int) -> None:
    cv2.rectangle(frame, (x - 10, y + 18), (x + 34, y + 42), (20, 110, 160), -1)
    cv2.circle(frame, (x - 2, y + 46), 5, (20, 20, 20), -1)
    cv2.circle(frame, (x + 26, y + 46), 5, (20, 20, 20), -1)


def _draw_bike(frame: np.ndarray, x: int, y: int, step: int) -> None:
    cv2.circle(frame, (x - 6, y + 42), 9, (25, 25, 25), 2)
    cv2.circle(frame, (x + 22, y + 42), 9, (25, 25, 25), 2)
    cv2.line(frame, (x - 6, y + 42), (x + 22, y + 42), (25, 25, 25), 2)
    cv2.ellipse(frame, (x + 8, y + 6), (6, 7), 0, 0, 360, (40, 40, 40), -1)
    cv2.rectangle(frame, (x + 2, y + 13), (x + 14, y + 32), (150, 40, 40), -1)


_DRAW = {None: _draw_walker, "cart": _draw_cart, "bike": _draw_bike}


def make_video(
    path: str | Path,
    seconds: float = 6.0,
    fps: int = 10,
    walkers: int = 2,
    seed: int = 0,
    anomaly: str | None = None,
    size: tuple[int, int] = (240, 160),
    speed: float | None = None,
) -> Path:
    """Write an MJPG AVI of ``seconds`` at ``fps``; ``anomaly`` replaces the first walker.

    Walkers go right in lanes 60 px apart, 100 px apart horizontally, so each is one
    connected blob; the seed varies the background texture and the start positions.
    ``speed`` is in pixels per second (bikes 1.5 times as fast), re-entering on the left when
    they leave the frame; by default everyone covers 100 px over the whole clip. Keep walkers
    at a few body widths per second for long clips: a person who barely moves for seconds
    becomes part of any background model.
    """
    if anomaly not in _DRAW:
        raise AdtkError(f"unknown anomaly {anomaly!r}; choose from {', '.join(ANOMALIES)}")
    w, h = size
    if h < 60 * walkers + 10:
        raise AdtkError(f"a {w}x{h} frame holds at most {(h - 10) // 60} walker lanes")
    rng = np.random.default_rng(seed)
    bg = (rng.integers(150, 200, (h, w, 1)) * np.ones((1, 1, 3))).astype(np.uint8)
    bg = cv2.GaussianBlur(bg, (5, 5), 0)
    offset = int(rng.integers(0, 10))  # keeps the last lane inside a 240 px frame
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mark_synthetic(path.parent)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not vw.isOpened():
        raise AdtkError(f"{path}: OpenCV cannot write MJPG video here")
    n = int(seconds * fps)
    try:
        for i in range(n):
            frame = bg.copy()
            for k in range(walkers):
                kind = anomaly if k == 0 else None
                pace = 1.5 if kind == "bike" else 1.0
                travel = pace * (speed * i / fps if speed else 100 * i / n)
                x = int(10 + offset + (100 * k + travel) % (w - 40))
                _DRAW[kind](frame, x, 30 + 60 * k, i)
            vw.write(frame)
    finally:
        vw.release()
    return path


def mark_synthetic(folder: str | Path) -> None:
    """Say in ``folder`` that its videos are generated (idempotent)."""
    import json

    from toolkit.io import atomic_write_text

    marker = Path(folder) / MARKER
    if not marker.is_file():
        atomic_write_text(marker, json.dumps({"synthetic": True, "what": MARKER_TEXT}) + "\n")


def is_synthetic_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds videos made by this module."""
    return (Path(folder) / MARKER).is_file()
