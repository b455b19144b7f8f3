"""Person detectors behind one small interface, chosen by name from a registry.

Boxes are ``float32`` arrays of shape (N, 4) in ``x0, y0, x1, y1`` source-frame pixels.

- ``hog``: OpenCV's built-in HOG people detector (offline, no weights), with NMS.
- ``motion``: moving foreground blobs (MOG2 background subtraction) of person-like shape.
- ``torchvision``: a COCO person detector (Faster R-CNN / RetinaNet / SSDlite), batched.
- ``auto``: HOG run only on the regions that move, plus the motion blobs that no HOG box
  covers (object-centric anomaly detection combines both: HOG misses small people and
  non-person objects such as carts, motion misses nothing that moves).

Motion gating (on by default, :class:`DetectionPipeline`) sends a detector only the frames,
and for HOG only the regions, where something moves or where a person was on the previous
sampled frame; an empty fixed-camera scene then costs one small background-subtraction step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.errors import AdtkError
from toolkit.registry import Registry


@dataclass
class Detections:
    """Boxes (N, 4) ``x0, y0, x1, y1``, scores (N,), and the detector name of each box."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def of(cls, boxes, scores, name: str) -> Detections:
        """Detections from array-likes, all attributed to detector ``name``."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        return cls(boxes, scores, [name] * len(boxes))

    def select(self, keep) -> Detections:
        """The subset at ``keep`` (indices or a boolean mask)."""
        keep = np.asarray(keep)
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        return Detections(self.boxes[keep], self.scores[keep], [self.names[i] for i in keep])

    def __add__(self, other: Detections) -> Detections:
        return Detections(
            np.concatenate([self.boxes, other.boxes]),
            np.concatenate([self.scores, other.scores]),
            self.names + other.names,
        )


# ----------------------------------------------------------------------------- box helpers


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M)."""
    inter = _inter(a, b)
    area_a = _area(a)[:, None]
    area_b = _area(b)[None, :]
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def overlap_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller box's area (1.0 when one box holds the other)."""
    inter = _inter(a, b)
    small = np.minimum(_area(a)[:, None], _area(b)[None, :])
    return np.where(small > 0, inter / np.maximum(small, 1e-9), 0.0)


def _area(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _inter(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return w * h


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4, contain: float = 0.8
) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    Besides the IoU rule, of two boxes one of which lies mostly (``contain`` of the smaller
    box's area) inside the other, only the better-scored is kept, whichever is larger: HOG
    often reports a person's torso inside the whole person, which would otherwise become a
    second track (the ``auto`` detector later grows a kept torso box to its moving body).
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    for i in order:
        if keep:
            kb = boxes[keep]
            if iou_matrix(boxes[i : i + 1], kb).max() > iou:
                continue
            if overlap_min(boxes[i : i + 1], kb).max() > contain:
                continue
        keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def filter_size(det: Detections, min_size: float, min_score: float | None) -> Detections:
    """Drop boxes shorter than ``min_size`` pixels or scored below ``min_score``."""
    if not len(det):
        return det
    keep = (det.boxes[:, 3] - det.boxes[:, 1]) >= min_size
    if min_score is not None:
        keep &= det.scores >= min_score
    return det.select(keep)


# ----------------------------------------------------------------------------- motion


class MotionModel:
    """MOG2 background subtraction on a small grey copy of each sampled frame.

    Only sampled frames update the model (skipped frames are never decoded), so the learning
    rate is set per sampled frame from ``absorb_s``: roughly how long something must stand
    still before it becomes background. People who stop at a desk for half a minute stay
    foreground; a moved chair is forgotten after a minute or two. The background starts as the
    per-pixel median of frames spread over the video's first seconds
    (:meth:`init_background`), so people present in the first frame leave no ghosts.
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
        self.global_change = False
        self.ref_level = 128.0
        # Foreground whose texture matches the background's at the same pixels (normalised
        # cross-correlation >= light_ncc) is a change of light (a reflection in a window,
        # sunlight, re-exposure), not an object: measured on the indoor clip, light blobs
        # score 0.95-1.0 and people below 0.5.
        self.light_ncc = light_ncc

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        """The grey, downscaled copy of ``frame`` that the model works on."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        return cv2.resize(grey, self.small, interpolation=cv2.INTER_AREA)

    def init_background(self, smalls: Sequence[np.ndarray]) -> None:
        """Start the model from the median of ``smalls`` (grey, already shrunk)."""
        if not len(smalls):
            return
        median = np.median(np.stack(list(smalls)), axis=0).astype(np.uint8)
        self._start(median)

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

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one sampled frame; return ``(blob boxes (N, 4) full-res, fill (N,))``.

        ``fill`` is the foreground fraction inside each blob's box (the motion score).
        """
        small = self.shrink(frame)
        if not self.initialised:
            self._start(small)
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        small = self._compensate(small)
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
        return (np.asarray(boxes, np.float32) / self.scale, np.asarray(fill, np.float32))


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


def _inside_larger(boxes: np.ndarray, frac: float = 0.6) -> np.ndarray:
    """Mask of boxes lying mostly inside a larger box (mask fragments of one body)."""
    if len(boxes) < 2:
        return np.zeros(len(boxes), bool)
    ov = overlap_min(boxes, boxes)
    area = _area(boxes)
    larger = area[None, :] > area[:, None]
    return ((ov >= frac) & larger).any(axis=1)


def _group_fill(groups: np.ndarray, parts: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Motion score of each grouped box: the best foreground fill among its parts (0-1)."""
    out = np.zeros(len(groups), np.float32)
    if not len(groups) or not len(parts):
        return out
    cx, cy = (parts[:, 0] + parts[:, 2]) / 2, (parts[:, 1] + parts[:, 3]) / 2
    for g, (x0, y0, x1, y1) in enumerate(groups):
        inside = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
        out[g] = fill[inside].max() if inside.any() else 0.0
    return out


def person_like(boxes: np.ndarray, min_aspect: float = 0.5, max_aspect: float = 6.0) -> np.ndarray:
    """Mask of boxes whose height / width ratio could be a person (or a person on a bike)."""
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    h = boxes[:, 3] - boxes[:, 1]
    ratio = h / w
    return (ratio >= min_aspect) & (ratio <= max_aspect)


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


# ----------------------------------------------------------------------------- registry

DETECTORS: Registry[type[Detector]] = Registry("detector")


def register(name: str) -> Callable[[type[Detector]], type[Detector]]:
    """Class decorator: make a detector available as ``--detector name``."""
    return DETECTORS.register(name)


def list_detectors() -> list[str]:
    """Names of the registered detectors, sorted."""
    return sorted(DETECTORS.names())


def create(name: str, cfg: Any) -> Detector:
    """Build the detector ``name`` from an :class:`~toolkit.config.ExtractConfig`."""
    return DETECTORS.get(name)(cfg)


class Detector:
    """One interface for every detector.

    ``detect(frames, motion)`` takes a batch of BGR frames and, per frame, the motion blobs of
    that frame (or ``None`` when there is no motion model) plus the regions worth searching
    (``rois``; ``None`` = the whole frame). Returns one :class:`Detections` per frame.
    """

    name = "base"
    #: needs motion blobs even when gating is off
    needs_motion = False
    #: can restrict its search to regions (True) or only to whole frames (False)
    uses_rois = False
    #: its scores' default lower bound (``--min-score`` overrides)
    default_min_score: float | None = None
    batch_size = 1

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def detect(
        self,
        frames: Sequence[np.ndarray],
        blobs: Sequence[Detections | None],
        rois: Sequence[np.ndarray | None],
    ) -> list[Detections]:
        raise NotImplementedError


@register("hog")
class HogDetector(Detector):
    """OpenCV's HOG + linear SVM people detector (Dalal & Triggs), with NMS.

    With regions, each region is padded and rescaled so that its moving body is about
    ``hog_target`` pixels tall (never enlarged beyond ``hog_upscale``): the 64x128 window then
    sees the person at the first few pyramid levels, which is most of the speed-up over a
    full-frame pass. Regions too small to hold a person even at ``hog_upscale`` are skipped.
    """

    uses_rois = True
    default_min_score = 0.0
    #: a person must be about this tall (pixels) for the 64x128 window
    min_person = 96
    hog_target = 110

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale = float(getattr(cfg, "hog_upscale", 1.0))
        self.step = float(getattr(cfg, "hog_scale_step", 1.05))

    def detect(self, frames, blobs, rois) -> list[Detections]:
        return [self.detect_one(f, r) for f, r in zip(frames, rois, strict=True)]

    def detect_one(self, frame: np.ndarray, rois: np.ndarray | None) -> Detections:
        """HOG boxes in ``frame``: in the regions ``rois`` (N, 4), or everywhere when None."""
        H, W = frame.shape[:2]
        if rois is None:
            det = self._run(frame, 0, 0, self.upscale)
        else:
            det = Detections()
            for x0, y0, x1, y1 in np.asarray(rois, np.float32).reshape(-1, 4):
                h = y1 - y0
                if h * self.upscale < self.min_person * 0.6:
                    continue
                s = min(self.upscale, self.hog_target / max(h, 1.0))
                # pad so that a body seen only in part by the motion mask still fits
                px, py = 0.35 * h + 8 / s, 0.25 * h + 8 / s
                a0, b0 = int(max(0, x0 - px)), int(max(0, y0 - py))
                a1, b1 = int(min(W, x1 + px)), int(min(H, y1 + py))
                found = self._run(frame[b0:b1, a0:a1], a0, b0, s)
                if len(found):
                    # a window much taller than the moving body is HOG seeing a "person" in a
                    # crowd's texture or in the replicated border, not this body
                    found = found.select((found.boxes[:, 3] - found.boxes[:, 1]) <= 1.5 * h)
                det = det + found
        if len(det) > 1:
            det = det.select(nms(det.boxes, det.scores))
        return det

    def _run(self, img: np.ndarray, ox: float, oy: float, s: float) -> Detections:
        if s != 1.0:
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=interp)
        # a person filling the frame's height needs some room above and below to fit the
        # 64x128 window at ~100 px tall: extend the region by repeating its border
        py, px = max(0, 144 - img.shape[0]), max(0, 72 - img.shape[1])
        if py or px:
            img = cv2.copyMakeBorder(
                img, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REPLICATE
            )
            ox, oy = ox - (px // 2) / s, oy - (py // 2) / s
        rects, weights = self.hog.detectMultiScale(
            img, winStride=(8, 8), padding=(8, 8), scale=self.step
        )
        if len(rects) == 0:
            return Detections()
        r = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1) / s
        boxes += np.asarray([ox, oy, ox, oy], np.float32)
        return Detections.of(boxes, np.asarray(weights).reshape(-1), "hog")


@register("motion")
class MotionDetector(Detector):
    """Moving foreground blobs of person-like shape as detections (score = blob fill, 0-1)."""

    needs_motion = True
    default_min_score = 0.0

    def detect(self, frames, blobs, rois) -> list[Detections]:
        return [b if b is not None else Detections() for b in blobs]


@register("auto")
class AutoDetector(Detector):
    """HOG on moving regions, plus every motion blob that no HOG box covers.

    A blob counts as covered when at least half of the smaller of the two boxes overlaps a
    HOG box. The ``detector`` column of each crop says which source produced it.
    """

    needs_motion = True
    uses_rois = True
    default_min_score = 0.0

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.hog = HogDetector(cfg)

    def detect(self, frames, blobs, rois) -> list[Detections]:
        out = []
        for frame, blob, roi in zip(frames, blobs, rois, strict=True):
            det = self.hog.detect_one(frame, roi)
            out.append(add_uncovered(det, blob) if blob is not None else det)
        return out


def add_uncovered(
    det: Detections, blobs: Detections, cover: float = 0.5, extend: bool = True
) -> Detections:
    """``det`` plus the ``blobs`` that no box of ``det`` covers.

    Covered: at least ``cover`` of the smaller of the two boxes lies in their intersection
    (a torso box inside a body blob, or a body box inside a blob of two people, both count).
    With ``extend``, a detector box grows to the union with the upright blobs it covers: HOG
    often reports a torso one frame and the whole person the next, and crops that jump
    between the two break tracks and make the crop set inconsistent.
    """
    if not len(blobs):
        return det
    if len(det):
        ov = overlap_min(blobs.boxes, det.boxes)  # (blobs, det)
        covered = ov.max(axis=1) >= cover
        if extend:
            boxes = det.boxes.copy()
            for j in range(len(det)):
                for i in np.flatnonzero(ov[:, j] >= cover):
                    u = np.concatenate(
                        [
                            np.minimum(boxes[j, :2], blobs.boxes[i, :2]),
                            np.maximum(boxes[j, 2:], blobs.boxes[i, 2:]),
                        ]
                    )
                    if u[3] - u[1] >= u[2] - u[0]:  # stays one upright body
                        boxes[j] = u
            det = Detections(boxes, det.scores, det.names)
        blobs = blobs.select(~covered)
    return det + blobs


#: torchvision COCO detectors offered by ``--tv-model`` (all use COCO label 1 = person)
TV_MODELS = {
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "retinanet_resnet50_fpn_v2": "RetinaNet_ResNet50_FPN_V2_Weights",
    "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights",
}


@register("torchvision")
class TorchvisionDetector(Detector):
    """A COCO person detector from torchvision, batched, on the GPU when there is one.

    Weights come from ``--weights FILE`` (a state_dict), else torchvision's weights API
    (downloaded once into torch's cache). Offline without a cached copy it stops with a
    message that says how to supply them. ``random_init=True`` builds the network with random
    weights (for testing the plumbing only).
    """

    default_min_score = 0.5

    def __init__(self, cfg: Any, random_init: bool = False):
        super().__init__(cfg)
        import torch
        from torchvision.models import detection as tvd

        arch = getattr(cfg, "tv_model", "fasterrcnn_mobilenet_v3_large_fpn")
        if arch not in TV_MODELS:
            raise AdtkError(f"unknown torchvision model {arch!r}; known: {', '.join(TV_MODELS)}")
        dev = getattr(cfg, "device", "auto")
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev
        )
        self.batch_size = int(getattr(cfg, "batch", 8))
        builder = getattr(tvd, arch)
        weights_file = getattr(cfg, "weights", None)
        # the model keeps boxes down to 0.05 (--min-score filters further); SSDlite's own
        # default of 0.001 would send hundreds of thousands of boxes through NMS
        thresh = "box_score_thresh" if "fasterrcnn" in arch else "score_thresh"
        kw: dict[str, Any] = {thresh: 0.05}
        if random_init or weights_file:
            state = None
            if weights_file:
                # read the file before building the network: a bad file fails fast
                path = Path(weights_file)
                if not path.is_file():
                    raise AdtkError(f"{path}: weights file not found")
                try:
                    state = torch.load(path, map_location="cpu", weights_only=True)
                except Exception as e:  # noqa: BLE001 - any load failure is the user's file
                    msg = str(e).splitlines()[0][:200]
                    raise AdtkError(f"{path}: not a state_dict for {arch} ({msg})") from None
                if isinstance(state, dict) and isinstance(state.get("model"), dict):
                    state = state["model"]  # a training checkpoint {"model": state_dict, ...}
                if not isinstance(state, dict):
                    raise AdtkError(f"{path}: not a state_dict for {arch}")
            model = builder(weights=None, weights_backbone=None, **kw)
            if state is not None:
                try:
                    model.load_state_dict(state)
                except RuntimeError as e:
                    msg = str(e).splitlines()[0][:200]
                    raise AdtkError(
                        f"{weights_file}: not a state_dict for {arch} ({msg})"
                    ) from None
        else:
            enum = getattr(tvd, TV_MODELS[arch]).DEFAULT
            try:
                model = builder(weights=enum, **kw)
            except Exception as e:  # noqa: BLE001 - offline: URLError, OSError, HTTP errors
                cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
                raise AdtkError(
                    f"torchvision detector: weights {enum} are not in the cache ({cache}) and "
                    f"could not be downloaded ({type(e).__name__}). Run once with network "
                    f"access, copy the file to {cache}, or pass --weights FILE (a state_dict "
                    f"for {arch})"
                ) from None
        self.model = model.eval().to(self.device)
        self.torch = torch

    def detect(self, frames, blobs, rois) -> list[Detections]:
        torch = self.torch
        out: list[Detections] = []
        for i in range(0, len(frames), self.batch_size):
            chunk = frames[i : i + self.batch_size]
            # BGR uint8 (H, W, 3) -> RGB float (3, H, W) in [0, 1]
            x = [
                torch.from_numpy(np.ascontiguousarray(f[:, :, ::-1]))
                .to(self.device)
                .permute(2, 0, 1)
                .float()
                .div_(255)
                for f in chunk
            ]
            with torch.inference_mode():
                preds = self.model(x)
            for p in preds:
                keep = p["labels"] == 1
                out.append(
                    Detections.of(
                        p["boxes"][keep].float().cpu().numpy(),
                        p["scores"][keep].float().cpu().numpy(),
                        "torchvision",
                    )
                )
        return out


# ----------------------------------------------------------------------------- pipeline


class DetectionPipeline:
    """Motion model + detector + gating for one video (it holds per-video state).

    Per sampled frame: update the background model; when gating is on and nothing moves and
    no person was seen on the previous sampled frame, the detector is not called. Otherwise
    the detector gets the frame and, if it searches regions, the moving regions grouped into
    bodies plus the previous frame's boxes (people who stand still fade from the motion mask
    but should still be looked for).
    """

    def __init__(self, cfg: Any, frame_size: tuple[int, int], sample_fps: float, detector=None):
        self.cfg = cfg
        self.detector = detector if detector is not None else create(cfg.detector, cfg)
        gate = bool(getattr(cfg, "motion_gate", True))
        self.gate = gate
        self.motion = None
        if gate or self.detector.needs_motion:
            self.motion = MotionModel(
                frame_size,
                sample_fps,
                width=int(getattr(cfg, "motion_width", 320)),
                absorb_s=float(getattr(cfg, "motion_absorb_s", 60.0)),
            )
        self.min_size = float(getattr(cfg, "min_size", 0) or 0)
        ms = getattr(cfg, "min_score", None)
        self.min_score = self.detector.default_min_score if ms is None else float(ms)
        self.prev = np.zeros((0, 4), np.float32)
        self.frames_gated = 0

    def init_background(self, frames: Sequence[np.ndarray]) -> None:
        """Start the background model from these (BGR) frames; see :class:`MotionModel`."""
        if self.motion is not None:
            self.motion.init_background([self.motion.shrink(f) for f in frames])

    def process(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for a batch of consecutive sampled frames."""
        results: list[Detections | None] = [None] * len(frames)
        todo: list[int] = []
        blobs: list[Detections | None] = []
        rois: list[np.ndarray | None] = []
        for i, frame in enumerate(frames):
            blob = None
            moving = np.zeros((0, 4), np.float32)
            if self.motion is not None:
                moving, fill = self.motion.update(frame)
                gc = self.motion.global_change
                b = moving if gc else group_boxes(moving, grow=0.0, upright=True)
                keep = person_like(b) & ((b[:, 3] - b[:, 1]) >= max(self.min_size, 1))
                keep &= not gc
                keep &= ~_inside_larger(b)
                blob = Detections.of(b[keep], _group_fill(b[keep], moving, fill), "motion")
            if self.gate and self.motion is not None and not len(moving) and not len(self.prev):
                self.frames_gated += 1
                results[i] = Detections()
                continue
            roi = None
            if self.detector.uses_rois and self.gate and self.motion is not None:
                roi = group_boxes(np.concatenate([moving, self.prev]), grow=0.0, upright=True)
            if self.detector.batch_size > 1 or not self.detector.uses_rois:
                # batched detectors see whole frames; prev boxes are used as soon as known
                todo.append(i)
                blobs.append(blob)
                rois.append(roi)
                continue
            det = self._finish(self.detector.detect([frame], [blob], [roi])[0])
            results[i] = det
        if todo:
            dets = self.detector.detect([frames[i] for i in todo], blobs, rois)
            for i, det in zip(todo, dets, strict=True):
                results[i] = self._finish(det)
        return [r if r is not None else Detections() for r in results]

    def _finish(self, det: Detections) -> Detections:
        det = filter_size(det, self.min_size, self.min_score)
        self.prev = det.boxes.copy()
        return det
