"""Boxes and track ids against box ground truth: detection precision / recall and the CLEAR-MOT
and identity measures (MOTA, IDF1, identity switches) from py-motmetrics.

Both tables hold one row per box: ``frame_idx``, ``track_id``, ``x``, ``y``, ``w``, ``h``
(pixels, top-left corner and size). A hypothesis box matches a ground-truth box of the same
frame at IoU >= ``iou`` (0.5, the MOTChallenge rule), one to one, by maximum total IoU.

Precision and recall are computed here, per frame, from that matching (they need no track
ids, so a detector can be measured on its own); the tracking measures come from motmetrics,
whose matching also carries identities over from frame to frame. With no identity to carry
the two matchings agree, which the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from toolkit.video.geometry import iou_matrix

COLUMNS = ("frame_idx", "track_id", "x", "y", "w", "h")


@dataclass
class MotScores:
    """One row of a detection / tracking results table."""

    precision: float
    recall: float
    mota: float
    idf1: float
    id_switches: int
    tp: int
    fp: int
    fn: int

    def as_dict(self) -> dict:
        return asdict(self)


def _xyxy(df: pd.DataFrame) -> np.ndarray:
    x, y = df["x"].to_numpy(float), df["y"].to_numpy(float)
    return np.stack([x, y, x + df["w"].to_numpy(float), y + df["h"].to_numpy(float)], 1)


def match_counts(gt: pd.DataFrame, hyp: pd.DataFrame, iou: float = 0.5) -> tuple[int, int, int]:
    """``(true positives, false positives, false negatives)`` over all frames."""
    tp = 0
    g_by = dict(tuple(gt.groupby("frame_idx")))
    h_by = dict(tuple(hyp.groupby("frame_idx")))
    for f in set(g_by) & set(h_by):
        m = iou_matrix(_xyxy(g_by[f]), _xyxy(h_by[f]))
        r, c = linear_sum_assignment(-m)
        tp += int((m[r, c] >= iou).sum())
    return tp, len(hyp) - tp, len(gt) - tp


def evaluate(
    gt: pd.DataFrame, hyp: pd.DataFrame, frames: Iterable[int] | None = None, iou: float = 0.5
) -> MotScores:
    """Scores of ``hyp`` against ``gt`` on ``frames`` (default: every frame of ``gt``).

    Restricting to ``frames`` measures a run that sampled only some frames: ground truth on
    frames that were never looked at does not count as missed.
    """
    import motmetrics as mm

    if frames is not None:
        frames = sorted(set(int(f) for f in frames))
        gt = gt[gt["frame_idx"].isin(frames)]
        hyp = hyp[hyp["frame_idx"].isin(frames)]
    else:
        frames = sorted(set(gt["frame_idx"]) | set(hyp["frame_idx"]))
    tp, fp, fn = match_counts(gt, hyp, iou)
    acc = mm.MOTAccumulator(auto_id=False)
    g_by = dict(tuple(gt.groupby("frame_idx")))
    h_by = dict(tuple(hyp.groupby("frame_idx")))
    empty = gt.iloc[:0]
    for f in frames:
        g, h = g_by.get(f, empty), h_by.get(f, empty)
        # motmetrics' own iou_matrix calls np.asfarray, gone in numpy 2: the same distance
        # (1 - IoU, NaN = may not match) from our IoU
        d = 1.0 - iou_matrix(_xyxy(g), _xyxy(h))
        d[d > 1.0 - iou] = np.nan
        acc.update(g["track_id"].to_numpy(), h["track_id"].to_numpy(), d, frameid=int(f))
    summary = mm.metrics.create().compute(
        acc, metrics=["mota", "idf1", "num_switches"], name="run"
    )
    row = summary.loc["run"]
    return MotScores(
        precision=tp / max(1, tp + fp),
        recall=tp / max(1, tp + fn),
        mota=float(row["mota"]),
        idf1=float(row["idf1"]),
        id_switches=int(row["num_switches"]),
        tp=tp,
        fp=fp,
        fn=fn,
    )


def read_gt(path) -> pd.DataFrame:
    """A MOTChallenge-style ``gt.csv`` (``frame_idx, track_id, x, y, w, h, ...``)."""
    df = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return df
