"""Boxes across sampled frames -> track ids.

An online tracker in the manner of ByteTrack (Zhang et al., ECCV 2022), kept small:

1. each live track predicts where its box is now: its last box, moved to the straight line
   fitted by least squares to its box centres of the last ``window`` seconds (1 s; never
   fewer than its last two centres). A fixed time span, not a number of frames: at 25 frames/s
   the centre's step from one frame to the next is mostly box jitter and the sway of a
   walker's stride (about 1 s long), at 2 frames/s mostly walking; a 1 s fit averages over a
   stride at any rate. So a walker who moved a third of their width since the last sampled
   frame is still matched by overlap, and two people crossing keep their own paths;
2. boxes scored at least ``high`` are matched to the predictions by maximising total IoU
   (``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``); pairs below ``min_iou`` stay
   unmatched, except that a box whose centre lies within ``max_jump`` box heights of the
   prediction may still continue it (at a cost above any overlapping pair): at 2 sampled frames
   per second a cyclist moves more than their own width between samples;
3. (optional, ``high``) weaker boxes are matched, by overlap only, to the tracks still
   unmatched, and never start a track (ByteTrack's second association). Off by default: on
   the two MOTChallenge sequences, YOLOX boxes down to 0.3-0.5 fed this way lowered precision
   on PETS09-S2L1 (0.89 -> 0.79-0.85) and IDF1 (0.85 -> 0.80-0.83), for +0.01 of recall;
4. an unmatched strong box starts a new track; a track unseen for more than ``max_gap`` seconds
   ends;
5. (``appearance``, 1 in ``adtk extract``) each pair's cost also holds how unlike the box's
   colours are to the track's: 1 - the intersection of colour histograms (the upper and lower
   half of the box's middle, 4x4x4 BGR bins each; the track's a running mean, each box
   weighing 0.2), weighted equally with the overlap term (both lie in 0-1). Where people
   cross between two sampled frames, overlap alone cannot tell who is who; their clothes can.
   Measured end to end (``adtk extract``, weights 0 / 0.5 / 1 / 2; IDF1): PETS09-S2L1 at the
   default 2 frames/s 0.768 / 0.793 / 0.848 / 0.856 (recall 0.918-0.920, ID switches 13
   each), at every frame 0.846 / 0.846 / 0.846 / 0.847; TUD-Stadtmitte at every frame 0.765 /
   0.786 / 0.753 / 0.753 (precision 0.956-0.959, recall 0.833-0.834), at 2 frames/s (15
   frames) 0.598 / 0.593 / 0.593 / 0.593, with recall 0.794 against 0.773.

Measured on the same YOLOX detections (``benchmarks/detect_track.py --only tracker``; IDF1 at
every frame / at 2 frames per second): PETS09-S2L1 0.839 / 0.758, TUD-Stadtmitte 0.771 /
0.598. The velocity of the last step alone gave 0.584 / 0.770 and 0.722 / 0.690 (TUD-Stadtmitte
at 2 frames/s is 15 frames: one switch moves IDF1 by ~0.05), no prediction 0.458 / 0.454 and
0.653 / 0.517. Tracked as ``adtk extract`` does (short tracks dropped, gaps up to 0.5 s
bridged) at 1, 2, 3.5 and 7 frames/s on PETS09-S2L1 and 2, 5, 12.5 and 25 on TUD-Stadtmitte,
the 1 s fit was the best or within 0.03 of the best of the windows tried (last step, 0.5, 1,
2 s) at six of the eight rates; on TUD-Stadtmitte at 2 and 5 frames/s the last step (0.70
against 0.61) and a 2 s fit (0.81 against 0.76) did better.

Why not a tracking library: supervision's ByteTrack (0.26.1, its last release with one),
norfair 2.3 (IoU, Kalman) and boxmot 25 (ByteTrack, OC-SORT) were measured on the same
detections. On every frame norfair and OC-SORT reach a higher IDF1 on TUD-Stadtmitte
(0.820, 0.827) and a lower one on PETS09-S2L1 (0.724, 0.663); at the 2 frames per second that
``adtk extract`` samples by default they all lose a sixth to a half of the people (recall
0.50-0.74 against 0.90 on PETS09-S2L1): their Kalman filters count frames and gate by
overlap, and people move more than their width between samples. They also do not install
beside this toolkit's pins: supervision 0.26 and boxmot require the full ``opencv-python``
(which displaces the headless OpenCV this toolkit needs), norfair requires numpy < 2, and
boxmot pulls in timm, gdown and huggingface-hub; ``trackers`` requires OpenCV 5.
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
    window: float = 1.0
    #: the box centres it was matched to, ``(t, cx, cy)``: those of the last ``window``
    #: seconds, and never fewer than the last two
    hist: list[tuple[float, float, float]] = field(default_factory=list)
    seen: int = 1
    #: its appearance (colour histograms), a running mean over its boxes; None: unknown
    feat: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.hist.append((self.last_t, *_centre(self.box)))

    def predict(self, t: float) -> np.ndarray:
        """The box at time ``t``: its last size, its centre on the straight line fitted (least
        squares) to the centres of the last ``window`` seconds."""
        h = np.asarray(self.hist, np.float64)  # (K, 3)
        dt = h[:, 0] - h[:, 0].mean()
        if len(h) < 2 or not (dt**2).sum() > 0:
            return self.box
        mean = h[:, 1:].mean(axis=0)
        vel = (dt[:, None] * (h[:, 1:] - mean)).sum(axis=0) / (dt**2).sum()
        cx, cy = mean + vel * (t - h[:, 0].mean()) - np.asarray(_centre(self.box))
        return self.box + np.asarray([cx, cy, cx, cy], np.float32)

    def move(self, box: np.ndarray, t: float, feat: np.ndarray | None = None) -> None:
        self.box, self.last_t = box, t
        if feat is not None:
            self.feat = (feat if self.feat is None
                         else FEAT_KEEP * self.feat + (1 - FEAT_KEEP) * feat)
        self.hist.append((t, *_centre(box)))
        # the fit spans a fixed time, not a number of frames: at 25 frames/s the centre's
        # frame-to-frame step is mostly box jitter, at 2 frames/s mostly walking
        while len(self.hist) > 2 and t - self.hist[0][0] > self.window + 1e-9:
            self.hist.pop(0)
        self.seen += 1


#: how much of a track's appearance each new box keeps (a running mean)
FEAT_KEEP = 0.8


def _centre(box: np.ndarray) -> tuple[float, float]:
    return float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2


@dataclass
class IouTracker:
    """Online tracker; call :meth:`update` once per sampled frame, in time order.

    ``high``: boxes scored below it only continue tracks (None: every box is strong).
    ``predict``: move each track along its recent path before matching.
    ``window``: seconds of a track's path that its velocity is fitted to.
    """

    max_gap: float = 2.0
    min_iou: float = 0.1
    max_jump: float = 0.75
    high: float | None = None
    predict: bool = True
    window: float = 1.0
    next_id: int = 0
    tracks: list[_Track] = field(default_factory=list)
    lengths: dict[int, int] = field(default_factory=dict)
    #: weight of appearance (1 - histogram intersection of the boxes' colours,
    #: :func:`toolkit.video.sequences.appearance`) in a pair's cost; 0: boxes only
    appearance: float = 0.0

    def update(self, t: float, boxes: np.ndarray, scores: np.ndarray | None = None,
               feats: np.ndarray | None = None) -> np.ndarray:
        """Track ids (N,) int64 of the boxes (N, 4) seen at time ``t`` seconds.

        A weak box (score below ``high``) that continues no track gets -1. ``feats``: each
        box's colour histograms (used with an ``appearance`` weight above 0).
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        feats = feats if self.appearance > 0 else None
        # tracks unseen for longer than max_gap are over: they never match again
        self.tracks = [tr for tr in self.tracks if t - tr.last_t <= self.max_gap + 1e-9]
        ids = np.full(len(boxes), -1, np.int64)
        strong = np.ones(len(boxes), bool)
        if scores is not None and self.high is not None:
            strong = np.asarray(scores, np.float32).reshape(-1) >= self.high
        free = list(range(len(self.tracks)))
        if len(boxes) and free:
            pred = np.stack([tr.predict(t) if self.predict else tr.box for tr in self.tracks])
            s_idx = np.flatnonzero(strong)
            free = self._match(boxes, s_idx, pred, free, t, ids, feats, jump=True)
            w_idx = np.flatnonzero(~strong)
            self._match(boxes, w_idx, pred, free, t, ids, feats, jump=False)
        for r in np.flatnonzero((ids < 0) & strong):
            tr = _Track(self.next_id, boxes[r], t, self.window,
                        feat=None if feats is None else feats[r])
            self.next_id += 1
            self.tracks.append(tr)
            self.lengths[tr.tid] = 1
            ids[r] = tr.tid
        return ids

    def _match(self, boxes, b_idx, pred, free, t, ids, feats, jump: bool) -> list[int]:
        """Assign boxes ``b_idx`` to the tracks ``free``; return the tracks still free.
        ``feats``: the boxes' colour histograms (None: boxes only)."""
        if not len(b_idx) or not free:
            return free
        iou = iou_matrix(boxes[b_idx], pred[free])
        if jump:
            dist = _centre_jump(boxes[b_idx], pred[free])
            ok = (iou >= self.min_iou) | (dist <= self.max_jump)
            # overlapping pairs cost < 1; jump-only pairs cost 1 + jump; forbidden pairs 1e6
            cost = np.where(iou >= self.min_iou, 1.0 - iou, 1.0 + dist)
        else:
            ok = iou >= self.min_iou
            cost = 1.0 - iou
        if feats is not None:
            tf = [self.tracks[i].feat for i in free]
            known = np.asarray([f is not None for f in tf])
            if known.any():
                tfm = np.stack([f if f is not None else np.zeros(feats.shape[1], np.float32)
                                for f in tf])
                inter = np.minimum(feats[b_idx][:, None, :], tfm[None, :, :]).sum(axis=2)
                cost = cost + self.appearance * np.where(known[None, :], 1.0 - inter, 0.0)
        cost = np.where(ok, cost, 1e6)
        rows, cols = linear_sum_assignment(cost)
        taken = set()
        for r, c in zip(rows, cols, strict=True):
            if ok[r, c]:
                tr = self.tracks[free[c]]
                ids[b_idx[r]] = tr.tid
                tr.move(boxes[b_idx[r]], t, None if feats is None else feats[b_idx[r]])
                self.lengths[tr.tid] += 1
                taken.add(free[c])
        return [i for i in free if i not in taken]

    def end_all(self) -> None:
        """End every track now (a shot cut: the next boxes start new tracks)."""
        self.tracks = []

    def live(self) -> set[int]:
        """Ids of the tracks that may still continue."""
        return {tr.tid for tr in self.tracks}


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
