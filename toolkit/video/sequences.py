"""One video's detections -> tracked crops: tracking, gap bridging, track filters, crop files.

:class:`CropSequences` takes each sampled frame's detections in time order. It tracks them
(:class:`~toolkit.video.track.IouTracker`), keeps a track's crops in memory until the track
has ``min_track`` detections (so crops of short tracks are never written), and fills a
track's short gaps: when a person missed by the detector for at most ``bridge_s`` seconds is
found again, the frames in between get boxes interpolated between the two detections, with
crops cut from those frames (``detector`` = ``bridged``). Longer gaps stay gaps: a straight
line is a fair guess for a blink of the detector, not for two seconds behind a pillar
(measured on TUD-Stadtmitte, bridging every gap up to 2 s cost 0.05 of precision). At the end,
tracks that never moved and that no person detector supports are dropped
(:func:`static_tracks`) and their crop files removed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from toolkit.video.geometry import crop, iou_matrix, oversize_box
from toolkit.video.track import IouTracker

COLUMNS = (
    "name",
    "frame_idx",
    "det",
    "time_s",
    "track_id",
    "x",
    "y",
    "w",
    "h",
    "det_score",
    "detector",
    "object_class",
)
#: a bridged box this close (IoU) to a box already on its frame is the same object twice
BRIDGE_DUP_IOU = 0.5
#: frames kept for bridging gaps, at most this many bytes (a 1080p frame is 6 MB)
BRIDGE_BYTES = 256 << 20


#: median detector score at which a still person detection in whose box nothing moved is
#: still a person (:func:`static_tracks`): halfway from YOLOX's 0.6 threshold to 0.9; people
#: in the shared clips score 0.8-0.9, the sign and the post that had been kept 0.60-0.69
SURE_PERSON = 0.75


def static_tracks(df: pd.DataFrame, min_move: float = 0.5, motion: bool = False) -> set[int]:
    """Tracks that never move and that no person detector supports: not objects.

    A flickering light, a swaying plant or a moved chair makes a motion blob that stays in
    place; a track moves when its box centre gets at least ``min_move`` times its median box
    height away from where it started (the median centre of its first quarter against that of
    its last). People who stand still are kept when a person
    detector found them (``object_class`` person) on any of their crops, and, where a motion
    model ran (``motion``), something moved in their box at least once (``+motion`` in a
    crop's ``detector``): a person who stands still walked in, or shifts their weight, while a
    sign, a poster or a mannequin that the detector takes for a person never moves at all
    (on PETS09-S2L1, a blue signpost scored 0.60-0.69 as a person, 19 crops at 2 frames/s).
    """
    if not len(df):
        return set()
    support = df["object_class"] == "person"
    if motion and "detector" in df:
        found_by = df["detector"].astype(str)
        stirred = found_by.str.contains("motion", regex=False)
        sure = pd.Series(False, index=df.index)
        if "det_score" in df:
            # a confident detection stays a person even where nothing ever moved: someone
            # standing still since before the motion model started, which learnt them as
            # background (the sign and the post above scored 0.60-0.69)
            scores = df["det_score"].where(found_by != "bridged")
            sure = scores.groupby(df["track_id"]).transform("median") >= SURE_PERSON
        support = support & (stirred.groupby(df["track_id"]).transform("any") | sure)
    d = pd.DataFrame(
        {
            "t": df["track_id"],
            "f": df["frame_idx"] if "frame_idx" in df else np.arange(len(df)),
            "cx": df["x"] + df["w"] / 2,
            "cy": df["y"] + df["h"] / 2,
            "h": df["h"],
            "p": support,
        }
    ).sort_values(["t", "f"], kind="stable")
    g = d.groupby("t")
    # how far the track got: from where it was in its first quarter to where it was in its
    # last (medians), not the spread of its centres: a blob that flickers in place (a
    # reflection, a shadow, a patch of road) spreads its box around one spot but goes nowhere
    rank = g.cumcount()
    n = g["t"].transform("size")
    q = np.maximum(1, n // 4)
    first = d[rank < q].groupby("t")[["cx", "cy"]].median()
    last = d[rank >= n - q].groupby("t")[["cx", "cy"]].median()
    net = np.hypot(last["cx"] - first["cx"], last["cy"] - first["cy"])
    moved = net >= min_move * g["h"].median()
    person = g["p"].any()
    return {int(t) for t in net.index[~moved & ~person]}


def appearance(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Colour histograms (N, 128) of the boxes: the upper and the lower half of each box's
    middle (a person's top and trousers), 4x4x4 BGR bins each, every half summing to 0.5."""
    out = np.zeros((len(boxes), 128), np.float32)
    h, w = frame.shape[:2]
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, np.float64)):
        bw, bh = x1 - x0, y1 - y0
        # boxes may reach past the frame (crops are padded): every bound clamped to it
        xa, xb = (int(min(max(v, 0), w)) for v in (x0 + 0.25 * bw, x1 - 0.25 * bw))
        ya, ym, yb = (int(min(max(v, 0), h)) for v in (y0 + 0.1 * bh, y0 + 0.5 * bh,
                                                        y1 - 0.1 * bh))
        for j, (a, b) in enumerate(((ya, ym), (max(ya, ym), yb))):
            patch = frame[a:b, xa:xb]
            if patch.size == 0 or patch.ndim != 3:
                continue
            hist = cv2.calcHist([patch], [0, 1, 2], None, [4, 4, 4], [0, 256] * 3).ravel()
            total = float(hist.sum())
            if total > 0:
                out[k, 64 * j: 64 * (j + 1)] = 0.5 * hist / total
    return out


class CropSequences:
    """Tracked crops of one video, or of one chunk of it (``span``); ``write(name, box_img,
    oversize_img)`` stores a crop.

    For a chunk, frames before ``span.start`` (its warm-up) are tracked but not emitted: the
    tracks seen there (``head``) and their boxes (``lookback``) let the parent join them to the
    previous chunk's. Tracks that may continue across a boundary (in ``head``, or seen from
    ``span.tail`` on) are kept however short, and never judged static here: the join decides
    on their whole length.
    """

    def __init__(
        self,
        cfg: Any,
        write: Callable[[str, np.ndarray, np.ndarray], None],
        sample_fps: float,
        frame_bytes: int,
        span: Any = None,
        drain: Callable[[], None] | None = None,
        motion: bool = False,
    ):
        self.cfg = cfg
        #: a motion model ran: a static person track needs motion in its box once
        #: (:func:`static_tracks`)
        self.motion = motion
        # waits until every crop handed to ``write`` is on disk (a writer that works in the
        # background), so that deleting a static track's crops cannot race its writes
        self.drain = drain
        self.start = span.start if span is not None else 0
        self.tail = span.tail if span is not None else None
        self.head: set[int] = set()
        self.lookback: list[tuple[int, int, int, int, int, int]] = []
        self.last_frame: dict[int, int] = {}
        self.write = write
        self.tracker = IouTracker(max_gap=cfg.max_gap, min_iou=cfg.min_iou, max_jump=cfg.max_jump,
                                  appearance=float(getattr(cfg, "track_appearance", 0.0)))
        self.rows: list[tuple] = []
        # crops wait in memory until their track has min_track detections:
        # pending[track] = [(name, box crop, oversize crop)]
        self.pending: dict[int, list[tuple[str, np.ndarray, np.ndarray]]] = {}
        self.hits: dict[int, int] = {}
        self.confirmed: set[int] = set()
        # last detection of each track: (sample number, box, class)
        self.last: dict[int, tuple[int, np.ndarray]] = {}
        keep = int(np.floor(min(cfg.bridge_s, cfg.max_gap) * sample_fps + 1e-9))
        keep = min(keep, BRIDGE_BYTES // max(1, frame_bytes))
        # (sample number, frame index, time, pixels, the boxes already on that frame)
        self.recent: deque[tuple[int, int, float, np.ndarray, list[np.ndarray]]] = deque(
            maxlen=max(0, keep)
        )
        self.n = 0
        self.bridged = 0

    def add(self, fi: int, t: float, frame: np.ndarray, det, cut: bool = False) -> None:
        """The detections ``det`` of sampled frame ``fi`` (time ``t`` s, pixels ``frame``);
        ``cut``: the frame starts a new shot, so every track ends before it (no track, and no
        bridged gap, joins two views)."""
        if cut:
            self.tracker.end_all()
            self.last.clear()
            self.recent.clear()
        feats = appearance(frame, det.boxes) if self.tracker.appearance > 0 else None
        ids = self.tracker.update(t, det.boxes, feats=feats)
        for k in range(len(det)):
            box, tid = det.boxes[k], int(ids[k])
            if fi < self.start:  # a chunk's warm-up: tracked, not emitted
                self.head.add(tid)
                x0, y0, x1, y1 = (round(float(v)) for v in box)
                self.lookback.append((fi, tid, x0, y0, x1, y1))
                self.last[tid] = (self.n, box)
                continue
            self._bridge(tid, box, det.classes[k])
            self._emit(
                tid, f"{fi:08d}_{k:02d}.png", frame, fi, t, box,
                float(det.scores[k]), det.names[k], det.classes[k], True, k,
            )  # fmt: skip
            self.last[tid] = (self.n, box)
        # tracks the tracker has ended can never be confirmed: free their crops
        live = self.tracker.live()
        for tid in [t_ for t_ in self.pending if t_ not in live and not self.at_boundary(t_)]:
            del self.pending[tid]
        for tid in [t_ for t_ in self.last if t_ not in live]:
            del self.last[tid]
        if self.recent.maxlen:
            self.recent.append((self.n, fi, t, frame, list(det.boxes)))
        self.n += 1

    def at_boundary(self, tid: int) -> bool:
        """The track may continue in a neighbouring chunk."""
        return tid in self.head or (
            self.tail is not None and self.last_frame.get(tid, -1) >= self.tail
        )

    def _bridge(self, tid: int, box: np.ndarray, cls: str | None) -> None:
        if tid not in self.last or not self.recent:
            return
        j, prev = self.last[tid]
        gap = self.n - j - 1
        frames = {n: (fi, t, f, boxes) for n, fi, t, f, boxes in self.recent if j < n < self.n}
        if gap <= 0 or len(frames) < gap:
            return  # nothing missed, or the frames in between are no longer kept
        for q in range(1, gap + 1):
            a = q / (gap + 1)
            fi, t, frame, boxes = frames[j + q]
            if fi < self.start:
                continue  # the previous chunk emits (and bridges) its own frames
            b = (prev * (1 - a) + box * a).astype(np.float32)
            if boxes and iou_matrix(b[None], np.asarray(boxes)).max() >= BRIDGE_DUP_IOU:
                # the object is there under another track (the tracker split it): a bridged
                # crop would show it twice
                continue
            boxes.append(b)
            self._emit(tid, f"{fi:08d}_b{tid}.png", frame, fi, t, b, 0.0, "bridged", cls, False)
            self.bridged += 1

    def _emit(self, tid, name, frame, fi, t, box, score, det_name, cls, detected,
              k: int = -1) -> None:
        # k: the detection's index on its frame (-1 for a bridged box); orders first
        # appearances when tracks are numbered
        self.last_frame[tid] = fi
        size = self.cfg.size
        item = (name, crop(frame, box, size), crop(frame, oversize_box(box), size))
        if tid in self.confirmed:
            self.write(*item)
        else:
            self.pending.setdefault(tid, []).append(item)
            self.hits[tid] = self.hits.get(tid, 0) + int(detected)
            if self.hits[tid] >= self.cfg.min_track:
                self.confirmed.add(tid)
                for it in self.pending.pop(tid):
                    self.write(*it)
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        self.rows.append((name, fi, k, t, tid, x0, y0, x1 - x0, y1 - y0, score, det_name, cls))

    def finish(self, stage: Path) -> tuple[pd.DataFrame, dict[str, int]]:
        """The kept rows (by frame) and counts; crops of static tracks are deleted from
        ``stage``."""
        provisional = {tid for tid in self.pending if self.at_boundary(tid)}
        for tid in sorted(provisional):
            for it in self.pending.pop(tid):
                self.write(*it)
        df = pd.DataFrame(self.rows, columns=list(COLUMNS))
        keep = df["track_id"].isin(self.confirmed | provisional)
        dropped = int(df.loc[~keep, "track_id"].nunique())
        df = df[keep]
        inner = ~df["track_id"].map(self.at_boundary).astype(bool)
        static = static_tracks(df[inner], motion=self.motion)
        if static and self.drain is not None:
            self.drain()
        for name in df.loc[df["track_id"].isin(static), "name"]:
            for sub in ("box", "oversize"):
                (stage / sub / name).unlink(missing_ok=True)
        df = df[~df["track_id"].isin(static)]
        df = df.sort_values(["frame_idx", "name"], kind="stable").reset_index(drop=True)
        counts = {
            "tracks_dropped": dropped,
            "static_tracks_dropped": len(static),
            "bridged_crops": int((df["detector"] == "bridged").sum()),
        }
        return df, counts
