"""Per-sample anomaly scores -> scores.parquet, and the metrics.json block computed from them.

Every number goes through :mod:`toolkit.eval.metrics`, so tables built from metrics.json agree
with the scores bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from toolkit.data.datasets import BenchData, SampleSet
from toolkit.errors import AdtkError
from toolkit.eval import metrics as M

SCORE_COLUMNS = ("sample_id", "split", "label", "score", "event")


#: ``adtk bench --tta``: test-time augmentation of the scores.
TTA = ("none", "hflip")


def tta_scores(
    method: Any, x: Any, batch_size: int = 1024, tta: str = "none", negate: tuple[int, ...] = ()
) -> np.ndarray:
    """The method's scores of ``x``; with ``tta`` ``hflip``, the mean of the scores of each
    image and of its mirror image (:func:`toolkit.engine.train.mirror`, the flow's horizontal
    component negated as in training).

    Why: a model trained with ``--augment hflip`` has learned an image and its mirror as the
    same normal, so either error is an equally valid score; their mean halves the part of a
    crop's error that depends on which way it faces (the odd normal crop that one orientation
    happens to reconstruct badly). Only the scores written out (val and test) are averaged:
    the validation AUROC that ``--select best-val`` and the history use during training is
    that of single images. Measured on Ped2 (README "End to end on real footage"):
    few-shot frame AUROC +0.003-0.010 over 16 splits, the official AAE -0.004, so not a default.
    """
    if tta not in TTA:
        raise AdtkError(f"unknown tta {tta!r}; use one of {', '.join(TTA)}")
    if not len(x):
        return np.zeros(0)
    scores = method.score_samples(x, batch_size=batch_size)
    if tta == "hflip":
        import torch

        from toolkit.engine.train import mirror

        flipped = np.concatenate([
            method.score_samples(mirror(torch.as_tensor(x[i : i + batch_size]), negate),
                                 batch_size=batch_size)
            for i in range(0, len(x), batch_size)
        ])
        scores = (scores + flipped) / 2.0
    return scores


def score_set(
    method: Any, s: SampleSet, split: str, batch_size: int = 1024, tta: str = "none",
    negate: tuple[int, ...] = (),
) -> pd.DataFrame:
    """One row per sample: sample_id, split, label, score (+ event, video, frame_idx, target).

    ``tta``, ``negate``: see :func:`tta_scores`."""
    scores = tta_scores(method, s.x, batch_size, tta, negate)
    df = pd.DataFrame(
        {
            "sample_id": s.meta["sample_id"].astype("string").to_numpy(),
            "split": split,
            "label": s.meta["label"].astype("string").to_numpy(),
            "score": scores.astype(np.float64),
            "event": s.meta["event"].astype("string").to_numpy(),
        }
    )
    for col, dtype in (("video", "string"), ("frame_idx", "int64"), ("target", "int64"),
                       ("sequence_id", "string")):
        if col in s.meta.columns:
            df[col] = s.meta[col].astype(dtype).to_numpy()
    for col in ("sample_id", "split", "label", "event"):
        df[col] = df[col].astype("string")
    return df


def score_data(
    method: Any, data: BenchData, batch_size: int = 1024, tta: str = "none"
) -> pd.DataFrame:
    """scores.parquet's frame: validation then test samples."""
    negate = tuple(data.info.get("flip_negate", ()))
    return pd.concat(
        [
            score_set(method, data.val, "val", batch_size, tta, negate),
            score_set(method, data.test, "test", batch_size, tta, negate),
        ],
        ignore_index=True,
    )


def _y(df: pd.DataFrame) -> np.ndarray:
    return (df["label"] == "abnormal").to_numpy().astype(np.int8)


def compute_test_metrics(
    scores: pd.DataFrame, unseen_events: Iterable[str] = (), n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Test AUROC (+CI, AUPR, counts), seen/unseen and per-event AUROC, frame-level AUROC."""
    test = scores[scores["split"] == "test"]
    # crops of one track are not independent samples: where scores name each crop's track,
    # the confidence interval resamples tracks (metrics.bootstrap_ci)
    groups = test["sequence_id"].to_numpy() if "sequence_id" in test.columns else None
    out = M.score_metrics(
        _y(test), test["score"].to_numpy(), prefix="test_", n_boot=n_boot, seed=seed,
        groups=groups,
    )
    normal = test[test["label"] == "normal"]
    abn = test[test["label"] == "abnormal"]
    events = abn["event"].fillna("").astype(str)

    def vs_normal(mask: np.ndarray) -> float:
        part = pd.concat([normal, abn[mask]])
        return M.auroc(_y(part), part["score"].to_numpy())

    unseen = set(map(str, unseen_events))
    is_unseen = events.isin(unseen).to_numpy()
    out["test_auroc_seen"] = vs_normal(~is_unseen) if unseen and (~is_unseen).any() else math.nan
    out["test_auroc_unseen"] = vs_normal(is_unseen) if unseen and is_unseen.any() else math.nan
    out["unseen_events"] = sorted(unseen)  # so tables can name the held-out kinds
    out["test_auroc_by_event"] = {
        ev: vs_normal((events == ev).to_numpy()) for ev in sorted(set(events)) if ev
    }
    out["test_frame_auroc"] = math.nan
    if {"video", "frame_idx"} <= set(test.columns) and len(test):
        # Frame labels follow the interval labels the crops carry: a frame is abnormal when any
        # crop in it is; its score is its highest crop score (metrics.frame_auroc).
        fl = (
            test.assign(abnormal=_y(test))
            .groupby(["video", "frame_idx"], as_index=False)["abnormal"]
            .max()
        )
        out["test_frame_auroc"] = M.frame_auroc(test[["video", "frame_idx", "score"]], fl)
    return out
