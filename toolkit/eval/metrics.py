"""Metrics on (label, score) pairs: AUROC, AUPR, ROC points, bootstrap CIs, frame-level scores.

Scores are "higher means more anomalous" everywhere; labels are 1 for abnormal, 0 for normal.
scikit-learn does the arithmetic; this module adds the conventions (NaN when a metric is
undefined, e.g. a single class) and the vectorised bootstrap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence

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
    groups=None,
) -> tuple[float, float]:
    """Percentile bootstrap CI, resampling normal and abnormal samples separately.

    Stratified resampling keeps both classes in every resample, so the AUROC is always defined.
    AUROC uses a vectorised rank formula (1000 resamples of 10k samples in well under a second).

    ``groups`` (one id per sample, e.g. each crop's track): a cluster bootstrap. Whole groups
    are resampled, each with all its samples, within three strata (normal samples only,
    anomalies only, both: :func:`_group_resamples`): the crops of one track are near copies
    of each other, and resampling them one by one would count one walker forty times as
    forty pieces of evidence (the interval
    comes out far too narrow). A resample keeps its size only on average. Where no stratum
    holding anomalies (or none holding normal samples) has two groups, every resample draws
    the same ones on that side: (nan, nan), not an interval of width zero. With interval labels
    every track seen during an abnormal interval holds an "anomaly", so the groups overstate
    how many independent events there are.
    """
    y, s = _xy(labels, scores)
    if not has_both_classes(y):
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    if groups is not None:
        codes = group_codes(groups, y.size)
        if not _both_sides_vary(y, codes):
            return (math.nan, math.nan)
        idx = _group_resamples(y, codes, n_boot, rng)
        if metric == "auroc":  # the rank formula per resample (sklearn's checks cost more)
            from scipy.stats import rankdata

            return _percentiles([_auroc_ranked(y[i][None], rankdata(s[i])[None])[0]
                                 for i in idx], level)
        fn = _metric_fn(metric)
        return _percentiles([fn(y[i], s[i]) for i in idx], level)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    idx = np.concatenate(
        [rng.choice(pos, (n_boot, pos.size)), rng.choice(neg, (n_boot, neg.size))], axis=1
    )  # (B, N)
    if metric == "auroc":
        from scipy.stats import rankdata

        vals = _auroc_ranked(y[idx], rankdata(s[idx], axis=1))
    else:
        fn = _metric_fn(metric)
        vals = np.array([fn(y[i], s[i]) for i in idx])
    return _percentiles(vals, level)


def _metric_fn(metric: str | Callable) -> Callable:
    """A bootstrap metric by name ("aupr"), or the callable given."""
    fn = {"aupr": aupr}.get(metric, metric) if isinstance(metric, str) else metric
    if isinstance(fn, str):
        raise ValueError(f"unknown metric {metric!r}")
    return fn


def _percentiles(vals, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(np.asarray(list(vals), dtype=np.float64), [alpha, 1 - alpha])
    return float(lo), float(hi)


#: a test split whose anomalies come from fewer tracks than this gets a warning (bench's
#: result line, the runs table): its AUROC describes those tracks, not a kind of anomaly
FEW_SEQUENCES = 5


def group_codes(groups, n: int) -> np.ndarray:
    """Integer codes of per-sample group ids (a missing id is a group of its own, one per
    sample: nothing says those samples belong together)."""
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != n:
        raise ValueError(f"groups ({len(g)}) and labels ({n}) differ in length")
    codes, uniq = pd.factorize(g.astype("string"), use_na_sentinel=True)
    missing = codes < 0
    codes[missing] = len(uniq) + np.arange(int(missing.sum()))
    return codes


def _strata(y: np.ndarray, codes: np.ndarray) -> list[np.ndarray]:
    """Group numbers per stratum: normal samples only, anomalies only, both."""
    n = int(codes.max()) + 1
    has_abn = np.zeros(n, bool)
    has_norm = np.zeros(n, bool)
    np.logical_or.at(has_abn, codes, y == 1)
    np.logical_or.at(has_norm, codes, y == 0)
    return [np.flatnonzero(has_norm & ~has_abn), np.flatnonzero(has_abn & ~has_norm),
            np.flatnonzero(has_abn & has_norm)]


def _both_sides_vary(y: np.ndarray, codes: np.ndarray) -> bool:
    """Whether cluster resamples vary both the normal and the abnormal samples: some stratum
    holding each class has two groups or more (one group per stratum is drawn every time)."""
    norm_only, abn_only, both = (st.size for st in _strata(y, codes))
    return (norm_only >= 2 or both >= 2) and (abn_only >= 2 or both >= 2)


def _group_resamples(
    y: np.ndarray, codes: np.ndarray, n_boot: int, rng: np.random.Generator
):
    """Sample indices of ``n_boot`` cluster resamples, one at a time. Groups are drawn within
    three strata, each keeping its number of groups: normal samples only, anomalies only, and
    both (a track that an interval label makes abnormal part of the time), so every resample
    holds both classes."""
    n = int(codes.max()) + 1
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(n + 1))
    members = [order[starts[g]:starts[g + 1]] for g in range(n)]
    strata = _strata(y, codes)
    for _ in range(n_boot):
        picked = np.concatenate([rng.choice(st, st.size) for st in strata if st.size])
        yield np.concatenate([members[g] for g in picked])


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


def score_metrics(
    labels, scores, prefix: str = "test_", n_boot: int = 1000, seed: int = 0, groups=None
) -> dict:
    """The metrics.json block for one labelled score set: AUROC, its 95% CI, AUPR, counts.

    ``groups``: each sample's group (its track): the CI then resamples groups
    (:func:`bootstrap_ci`), and the block counts the groups, and those holding an anomaly."""
    y, s = _xy(labels, scores)
    lo, hi = bootstrap_ci(y, s, "auroc", n_boot=n_boot, seed=seed, groups=groups)
    out = {
        f"{prefix}auroc": auroc(y, s),
        f"{prefix}auroc_ci95": [lo, hi],
        f"{prefix}aupr": aupr(y, s),
        f"{prefix}n": int(y.size),
        f"{prefix}n_abnormal": int(y.sum()),
        f"{prefix}auroc_ci95_resamples": "samples" if groups is None else "sequences",
    }
    if groups is not None:
        codes = group_codes(groups, y.size)
        out[f"{prefix}n_sequences"] = int(np.unique(codes).size)
        out[f"{prefix}n_sequences_abnormal"] = int(np.unique(codes[y == 1]).size)
    return out


# --- frame-level evaluation (the video anomaly field's standard) ------------------------------
#
# A frame's score summarises the scores of the crops found in it; every frame listed in the
# frame labels is scored, including frames where the detector found nobody. Micro AUROC pools
# all frames of all clips; macro AUROC averages the per-clip AUROCs of the clips that hold both
# classes. Published numbers mix the two, so both are always reported and named.

FRAME_AGGREGATES = ("max", "mean", "topk")
FRAME_KEYS = ("video", "frame_idx")


def aggregate_frames(
    crop_scores: pd.DataFrame, how: str = "max", k: int = 3, keys: Sequence[str] = FRAME_KEYS
) -> pd.DataFrame:
    """One row per frame that has crops: ``keys``, ``score``, ``n_crops``.

    ``how``: ``max`` (the field's convention: the most anomalous object decides), ``mean`` of
    the frame's crop scores, or ``topk``: the mean of the ``k`` highest (all of them when the
    frame has fewer than ``k``).
    """
    if how not in FRAME_AGGREGATES:
        known = ", ".join(FRAME_AGGREGATES)
        raise ValueError(f"unknown frame aggregate {how!r}; use one of {known}")
    keys = list(keys)
    g = crop_scores.groupby(keys, sort=True)["score"]
    if how == "max":
        s = g.max()
    elif how == "mean":
        s = g.mean()
    else:
        if int(k) < 1:
            raise ValueError(f"top-k needs k >= 1, got {k}")
        ranked = crop_scores.sort_values("score", ascending=False, kind="stable")
        top = ranked[ranked.groupby(keys, sort=False).cumcount().to_numpy() < int(k)]
        s = top.groupby(keys, sort=True)["score"].mean()
    out = s.rename("score").reset_index()
    out["n_crops"] = g.size().to_numpy().astype(np.int64)
    return out


def _along_groups(
    table: pd.DataFrame,
    values: np.ndarray,
    by: str | list[str],
    order: str,
    smooth: Callable[[np.ndarray], np.ndarray],
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """``values`` with each group of ``by`` (rows in ``keep`` only; others unchanged) replaced
    by ``smooth`` of its values taken in ``order``; returned in ``table``'s row order."""
    out = values.copy()
    pos = np.arange(len(table)) if keep is None else np.flatnonzero(keep)
    if not len(pos):
        return out
    ordv = table[order].to_numpy()
    for _, idx in table.iloc[pos].groupby(by, sort=False).indices.items():
        rows = pos[np.asarray(idx)]
        rows = rows[np.argsort(ordv[rows], kind="stable")]
        out[rows] = smooth(values[rows])
    return out


def _half_widths(width: int) -> tuple[int, int]:
    """Values before and after the centre in a centred window (an even width leans forward)."""
    return (width - 1) // 2, width // 2


#: ``--frame-smooth-filter`` values: what ``--frame-smooth N`` does to a clip's frame scores.
FRAME_FILTERS = ("mean", "gaussian")


def smooths(width: int, kind: str = "mean") -> bool:
    """Whether ``width`` smooths at all: a mean needs 2 frames or more, a Gaussian sigma > 0."""
    return int(width) > (0 if kind == "gaussian" else 1)


def smooth_frames(
    frames: pd.DataFrame,
    width: int,
    col: str = "score",
    clip: str = "video",
    order: str = "frame_idx",
    kind: str = "mean",
) -> np.ndarray:
    """``col`` smoothed along each clip's listed frames, in ``order``; ``frames``' row order.

    ``kind="mean"``: a centred moving mean of ``width`` frames; at a clip's ends the window
    shrinks to the frames that exist (no padding values are invented); ``width`` <= 1
    returns the scores unchanged.
    ``kind="gaussian"``: a Gaussian of standard deviation ``width`` frames
    (``scipy.ndimage.gaussian_filter1d`` with its defaults: truncated at 4 sigma, the clip
    mirrored at its ends), the filter of Reiss and Hoshen's public Ped2 evaluation code
    (sigma 3); ``width`` <= 0 returns the scores unchanged.
    """
    if kind not in FRAME_FILTERS:
        raise ValueError(f"unknown frame filter {kind!r}; known: {', '.join(FRAME_FILTERS)}")
    values = frames[col].to_numpy(dtype=np.float64)
    width = int(width)
    if not smooths(width, kind) or not len(frames):
        return values.copy()
    if kind == "gaussian":
        from scipy.ndimage import gaussian_filter1d

        return _along_groups(frames, values, clip, order,
                             lambda v: gaussian_filter1d(v, float(width)))
    half_lo, half_hi = _half_widths(width)

    def mean(v: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(v)])
        i = np.arange(v.size)
        lo = np.maximum(i - half_lo, 0)
        hi = np.minimum(i + half_hi + 1, v.size)
        return (c[hi] - c[lo]) / (hi - lo)

    return _along_groups(frames, values, clip, order, mean)


def smooth_tracks(
    crop_scores: pd.DataFrame,
    width: int,
    track: str = "track",
    clip: str = "video",
    order: str = "frame_idx",
) -> np.ndarray:
    """Centred moving median of each track's crop scores over ``width`` of its crops.

    Returned in ``crop_scores``' row order. A track is one object (``adtk extract``'s
    sequences), so a score that jumps for one crop of it (a box that slipped half off the
    person, a partial box at the frame's border, a flicker of the flow) is replaced by what
    the same object scored just before and after; an object that stays anomalous for more than
    half the window keeps its score. At a track's ends the window shrinks to the crops that
    exist. Rows with no track (missing ``track``) keep their score. ``width`` <= 1: unchanged.
    """
    values = crop_scores["score"].to_numpy(dtype=np.float64)
    width = int(width)
    if width <= 1 or not len(crop_scores):
        return values.copy()
    half_lo, half_hi = _half_widths(width)

    def median(v: np.ndarray) -> np.ndarray:
        # a (n, width) window view padded with NaN at both ends, median ignoring the padding
        pad = np.concatenate([np.full(half_lo, np.nan), v, np.full(half_hi, np.nan)])
        return np.nanmedian(np.lib.stride_tricks.sliding_window_view(pad, width), axis=1)

    keep = crop_scores[track].notna().to_numpy()
    return _along_groups(crop_scores, values, [clip, track], order, median, keep)


def score_frames(
    crop_scores: pd.DataFrame,
    frame_labels: pd.DataFrame,
    how: str = "max",
    k: int = 3,
    smooth: int = 0,
    missing_score: float | None = None,
    track_smooth: int = 0,
    smooth_filter: str = "mean",
) -> pd.DataFrame:
    """Every frame of ``frame_labels`` with its score (the frame-level evaluation's table).

    ``crop_scores``: video, frame_idx, score (one row per crop), and ``track`` (the crop's
    object) for ``track_smooth``. ``frame_labels``: video, frame_idx, abnormal (0/1), and
    optionally time_s. Returns frame_labels' frames sorted by (video, frame_idx) with
    ``n_crops``, ``score`` and, when either step smooths, ``score_smoothed``: the frame
    scores from crop scores first smoothed along their tracks (a moving median of
    ``track_smooth`` crops, :func:`smooth_tracks`, when > 1), then along the clip
    (:func:`smooth_frames` with ``smooth`` and ``smooth_filter``: a moving mean of ``smooth``
    frames when > 1, or a Gaussian of sigma ``smooth`` frames when > 0).
    ``score`` is always the raw one.

    A frame without a crop gets ``missing_score``; by default the lowest frame score of the
    whole evaluation ("nothing anomalous seen"), so it ranks with the least anomalous frames
    and never counts as evidence either way beyond that. It is applied before smoothing.
    Crops in frames that are not listed are ignored.
    """
    keys = list(FRAME_KEYS)
    fl = frame_labels.copy()
    fl["abnormal"] = fl["abnormal"].astype(np.int8)

    def frame_table(crops: pd.DataFrame) -> pd.DataFrame:
        agg = aggregate_frames(crops, how, k, keys)
        out = fl.merge(agg, on=keys, how="left", validate="one_to_one")
        have = out["score"].notna()
        miss = missing_score
        if miss is None:
            miss = float(out.loc[have, "score"].min()) if have.any() else 0.0
        out["score"] = out["score"].fillna(float(miss)).astype(np.float64)
        out["n_crops"] = out["n_crops"].fillna(0).astype(np.int64)
        return out.sort_values(keys, kind="stable").reset_index(drop=True)

    out = frame_table(crop_scores)
    base = out
    if int(track_smooth) > 1:
        if "track" not in crop_scores.columns:
            raise ValueError("track smoothing needs each crop's track (a 'track' column)")
        tracked = crop_scores.assign(score=smooth_tracks(crop_scores, int(track_smooth)))
        base = frame_table(tracked)
    if smooths(smooth, smooth_filter):
        out["score_smoothed"] = smooth_frames(base, int(smooth), kind=smooth_filter)
    elif base is not out:
        out["score_smoothed"] = base["score"].to_numpy()
    return out


def clip_minmax(scores: np.ndarray, groups: Iterable[np.ndarray]) -> np.ndarray:
    """``scores`` min-max scaled to [0, 1] within each group of positions (a clip's frames).

    A clip whose frames all score the same becomes 0 throughout (where ``ano_pred``'s
    ``(s - min) / max`` would divide by zero); a clip holding a non-finite score becomes NaN
    throughout (no range to scale by), never silently 0.
    """
    out = np.zeros(len(scores), dtype=np.float64)
    for idx in groups:
        v = np.asarray(scores[idx], dtype=np.float64)
        if not np.isfinite(v).all():
            out[idx] = np.nan
            continue
        lo, span = float(v.min()), float(v.max() - v.min())
        out[idx] = (v - lo) / span if span > 0 else 0.0
    return out


#: Published Ped2 evaluations that smooth frame scores, as their public code does (read there):
#: metrics.json key -> (what it is, in words). Raw micro (VEC's ``test.py``) and clip min-max
#: (MNAD's ``utils.py``) are :func:`frame_metrics`' ``micro`` and ``micro_clipnorm``.
PUBLISHED_SMOOTHING = {
    "frame_auroc_micro_hf2vad": "HF2-VAD's evaluation (Liu et al., ICCV 2021, eval.py and "
    "utils/eval_utils.py): each clip's first 4 frames left out, the rest through a 17-frame "
    "median filter (scipy.signal.medfilt), one ROC over all clips",
    "frame_auroc_micro_gauss3": "Reiss and Hoshen's evaluation (Accurate-Interpretable-VAD, "
    "evaluate.py, sigma 3 for Ped2): each clip through a Gaussian of sigma 3 frames "
    "(scipy.ndimage.gaussian_filter1d), one ROC over all clips",
}
#: HF2-VAD's median width and the frames it leaves out at each clip's start; Reiss and
#: Hoshen's sigma for Ped2
HF2VAD_MEDIAN, HF2VAD_SKIP, REISS_SIGMA = 17, 4, 3


def published_smoothing(frames: pd.DataFrame, col: str = "score", clip: str = "video",
                        order: str = "frame_idx") -> dict[str, float]:
    """Micro frame AUROC of ``frames[col]`` under each evaluation of
    :data:`PUBLISHED_SMOOTHING`, from the raw frame scores (a frame's highest crop score in
    both papers' code). Each clip in ``order``."""
    from scipy.signal import medfilt

    # HF2-VAD drops each clip's first frames before filtering, so it needs its own pass
    ym, sm = [], []
    for _, g in frames.sort_values([clip, order], kind="stable").groupby(clip, sort=True):
        v = g[col].to_numpy(np.float64)[HF2VAD_SKIP:]
        ym.append(g["abnormal"].to_numpy(np.int8)[HF2VAD_SKIP:])
        with warnings.catch_warnings():  # a clip shorter than the filter: zero-padded, as
            warnings.simplefilter("ignore", UserWarning)  # in HF2-VAD's own code
            sm.append(medfilt(v, HF2VAD_MEDIAN) if len(v) else v)
    # Reiss and Hoshen's is --frame-smooth-filter gaussian at their sigma
    gauss = smooth_frames(frames, REISS_SIGMA, col, clip, order, kind="gaussian")
    return {
        "frame_auroc_micro_hf2vad": (auroc(np.concatenate(ym), np.concatenate(sm)) if ym
                                     else math.nan),
        "frame_auroc_micro_gauss3": (auroc(frames["abnormal"].to_numpy(), gauss) if len(frames)
                                     else math.nan),
    }


def frame_metrics(frames: pd.DataFrame, col: str = "score", clip: str = "video") -> dict:
    """Micro and macro frame AUROC of ``frames[col]`` against ``frames['abnormal']``.

    ``micro``: every frame of every clip in one ranking. ``macro``: the mean of the per-clip
    AUROCs over the clips holding both classes (``n_clips_macro`` of ``n_clips``); clips with
    one class only have no AUROC and are left out of the mean, never counted as 0.5.
    ``micro_clipnorm``: micro after min-max scaling each clip's scores to [0, 1]
    (:func:`clip_minmax`), the protocol of the public evaluation code of Liu et al. (CVPR
    2018, ``ano_pred``) and MNAD (Park et al., CVPR 2020), which many published Ped2 micro
    numbers follow. It uses each test clip's score range, so it is not an online score.
    """
    y = frames["abnormal"].to_numpy()
    s = frames[col].to_numpy(dtype=np.float64)
    groups = frames.groupby(clip, sort=True).indices
    by_clip = {str(v): auroc(y[idx], s[idx]) for v, idx in groups.items()}
    defined = [a for a in by_clip.values() if not math.isnan(a)]
    return {
        "micro": auroc(y, s),
        "micro_clipnorm": auroc(y, clip_minmax(s, groups.values())),
        "macro": float(np.mean(defined)) if defined else math.nan,
        "n_clips": len(by_clip),
        "n_clips_macro": len(defined),
        "by_clip": by_clip,
    }
