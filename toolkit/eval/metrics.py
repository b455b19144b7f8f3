"""Metrics on (label, score) pairs: AUROC, AUPR, ROC points, bootstrap CIs, frame-level scores.

Scores are "higher means more anomalous" everywhere; labels are 1 for abnormal, 0 for normal.
scikit-learn does the arithmetic; this module adds the conventions (NaN when a metric is
undefined, e.g. a single class) and the vectorised bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _xy(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int8).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    return y, s


def has_both_classes(labels) -> bool:
    y = np.asarray(labels)
    return bool(y.size) and 0 < int(y.sum()) < y.size


def auroc(labels, scores) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, s = _xy(labels, scores)
    return float(roc_auc_score(y, s)) if has_both_classes(y) else math.nan


def aupr(labels, scores) -> float:
    """Average precision with abnormal as the positive class; NaN without both classes."""
    y, s = _xy(labels, scores)
    return float(average_precision_score(y, s)) if has_both_classes(y) else math.nan


def roc_points(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of the ROC curve, for plotting."""
    y, s = _xy(labels, scores)
    if not has_both_classes(y):
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def _auroc_ranked(y: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """AUROC for many resamples at once via the Mann-Whitney U statistic.

    y: (B, N) 0/1 labels, ranks: (B, N) average ranks of the scores within each row.
    """
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    rank_sum = (ranks * y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bootstrap_ci(
    labels,
    scores,
    metric: str | Callable = "auroc",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI, resampling normal and abnormal samples separately.

    Stratified resampling keeps both classes in every resample, so the AUROC is always defined.
    AUROC uses a vectorised rank formula (1000 resamples of 10k samples in well under a second).
    """
    y, s = _xy(labels, scores)
    if not has_both_classes(y):
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    idx = np.concatenate(
        [rng.choice(pos, (n_boot, pos.size)), rng.choice(neg, (n_boot, neg.size))], axis=1
    )  # (B, N)
    if metric == "auroc":
        from scipy.stats import rankdata

        vals = _auroc_ranked(y[idx], rankdata(s[idx], axis=1))
    else:
        fn = {"aupr": aupr}.get(metric, metric) if isinstance(metric, str) else metric
        if isinstance(fn, str):
            raise ValueError(f"unknown metric {metric!r}")
        vals = np.array([fn(y[i], s[i]) for i in idx])
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(vals, [alpha, 1 - alpha])
    return float(lo), float(hi)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value), ignoring NaN."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def frame_scores(
    scores: pd.DataFrame, keys: Sequence[str] = ("video", "frame_idx")
) -> pd.DataFrame:
    """Frame-level scores: the highest score among a frame's crops (the Ped2 convention)."""
    return scores.groupby(list(keys), as_index=False, sort=True)["score"].max()


def frame_auroc(
    scores: pd.DataFrame,
    frame_labels: pd.DataFrame,
    keys: Sequence[str] = ("video", "frame_idx"),
    label_col: str = "abnormal",
    missing_score: float | None = None,
) -> float:
    """Frame-level AUROC against per-frame labels.

    Frames with no crop get ``missing_score`` (default: the lowest crop score, i.e. "nothing
    anomalous seen"), so frames where the detector found nobody still count.
    """
    fs = frame_scores(scores, keys)
    merged = frame_labels.merge(fs, on=list(keys), how="left")
    fill = float(fs["score"].min()) if missing_score is None and len(fs) else missing_score
    merged["score"] = merged["score"].fillna(fill if fill is not None else 0.0)
    return auroc(merged[label_col].to_numpy(), merged["score"].to_numpy())


def score_metrics(labels, scores, prefix: str = "test_", n_boot: int = 1000, seed: int = 0) -> dict:
    """The metrics.json block for one labelled score set: AUROC, its 95% CI, AUPR, counts."""
    y, s = _xy(labels, scores)
    lo, hi = bootstrap_ci(y, s, "auroc", n_boot=n_boot, seed=seed)
    return {
        f"{prefix}auroc": auroc(y, s),
        f"{prefix}auroc_ci95": [lo, hi],
        f"{prefix}aupr": aupr(y, s),
        f"{prefix}n": int(y.size),
        f"{prefix}n_abnormal": int(y.sum()),
    }
