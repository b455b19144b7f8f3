"""Boxes across sampled frames -> track ids, with optimal IoU assignment.

Each sampled frame's boxes are matched to the live tracks by maximising total IoU
(``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``); pairs below ``min_iou`` stay
unmatched, except that a box whose centre lies within ``max_jump`` box heights of a track's
last box may still continue it (at a cost above any overlapping pair): at 2 sampled frames per
second a cyclist moves more than their own width between samples.
An unmatched box starts a new track; a track not matched for more than ``max_gap``
seconds ends. Tracks are matched against their last box, so a person hidden for a moment is
picked up again where they were last seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from toolkit.video.geometry import iou_matrix


@dataclass
class _Track:
    tid: int
    box: np.ndarray
    last_t: float


@dataclass
class IouTracker:
    """Online IoU tracker; call :meth:`update` once per sampled frame, in time order."""

    max_gap: float = 2.0
    min_iou: float = 0.1
    max_jump: float = 0.75
    next_id: int = 0
    tracks: list[_Track] = field(default_factory=list)
    lengths: dict[int, int] = field(default_factory=dict)

    def update(self, t: float, boxes: np.ndarray) -> np.ndarray:
        """Assign a track id to each box (N, 4) seen at time ``t`` seconds; returns (N,) int64."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        # tracks unseen for longer than max_gap are over: they never match again
        self.tracks = [tr for tr in self.tracks if t - tr.last_t <= self.max_gap + 1e-9]
        ids = np.full(len(boxes), -1, np.int64)
        if len(boxes) and self.tracks:
            prev = np.stack([tr.box for tr in self.tracks])
            iou = iou_matrix(boxes, prev)
            jump = _centre_jump(boxes, prev)
            ok = (iou >= self.min_iou) | (jump <= self.max_jump)
            # overlapping pairs cost < 1; jump-only pairs cost 1 + jump; forbidden pairs 1e6
            cost = np.where(iou >= self.min_iou, 1.0 - iou, 1.0 + jump)
            cost = np.where(ok, cost, 1e6)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if ok[r, c]:
                    tr = self.tracks[c]
                    ids[r] = tr.tid
                    tr.box, tr.last_t = boxes[r], t
                    self.lengths[tr.tid] += 1
        for r in np.flatnonzero(ids < 0):
            tr = _Track(self.next_id, boxes[r], t)
            self.next_id += 1
            self.tracks.append(tr)
            self.lengths[tr.tid] = 1
            ids[r] = tr.tid
        return ids


def _centre_jump(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Centre distance of each pair (N, M), in units of the taller box's height."""
    ca = np.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2], 1)[:, None, :]
    cb = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)[None, :, :]
    h = np.maximum((a[:, 3] - a[:, 1])[:, None], (b[:, 3] - b[:, 1])[None, :])
    return np.linalg.norm(ca - cb, axis=2) / np.maximum(h, 1.0)


def track_boxes(
    frames: list[tuple[float, np.ndarray]],
    max_gap: float = 2.0,
    min_iou: float = 0.1,
    max_jump: float = 0.75,
) -> list[np.ndarray]:
    """Track ids for a whole sequence of ``(time_s, boxes)``; one id array per frame."""
    tracker = IouTracker(max_gap=max_gap, min_iou=min_iou, max_jump=max_jump)
    return [tracker.update(t, b) for t, b in frames]
