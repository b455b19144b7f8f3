"""Frame-level evaluation on hand-made scores: aggregation, smoothing, micro / macro AUROC."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from toolkit.eval import metrics as M


def crops(rows):
    return pd.DataFrame(rows, columns=["video", "frame_idx", "score"])


def labels(rows):
    return pd.DataFrame(rows, columns=["video", "frame_idx", "abnormal"])


def test_aggregate_max_mean_topk_by_hand():
    c = crops([("a", 0, 1.0), ("a", 0, 5.0), ("a", 0, 3.0), ("a", 1, 2.0), ("b", 0, 7.0)])
    got = {h: M.aggregate_frames(c, h, k=2) for h in ("max", "mean", "topk")}
    assert got["max"]["score"].tolist() == [5.0, 2.0, 7.0]
    assert got["mean"]["score"].tolist() == [3.0, 2.0, 7.0]
    # top-2 of frame a/0 is (5 + 3) / 2; a frame with one crop keeps that crop's score
    assert got["topk"]["score"].tolist() == [4.0, 2.0, 7.0]
    assert got["max"]["n_crops"].tolist() == [3, 1, 1]
    assert M.aggregate_frames(c, "topk", k=1)["score"].tolist() == got["max"]["score"].tolist()
    with pytest.raises(ValueError, match="unknown frame aggregate"):
        M.aggregate_frames(c, "median")


def test_every_listed_frame_is_scored_and_empty_frames_get_the_lowest_score():
    c = crops([("a", 0, 0.4), ("a", 2, 0.9), ("a", 2, 0.1), ("a", 9, 5.0)])  # frame 9 unlisted
    fl = labels([("a", 0, 0), ("a", 1, 0), ("a", 2, 1), ("a", 3, 1)])
    f = M.score_frames(c, fl)
    assert f["frame_idx"].tolist() == [0, 1, 2, 3]
    assert f["n_crops"].tolist() == [1, 0, 2, 0]
    # frames 1 and 3 have no crop: the lowest frame score (0.4), not the lowest crop score 0.1
    assert f["score"].tolist() == [0.4, 0.4, 0.9, 0.4]
    assert M.score_frames(c, fl, missing_score=-1.0)["score"].tolist() == [0.4, -1.0, 0.9, -1.0]


def test_smoothing_is_a_centred_moving_mean_per_clip_with_shrinking_ends():
    f = pd.DataFrame({
        "video": ["a"] * 5 + ["b"] * 2,
        "frame_idx": [4, 0, 1, 2, 3, 0, 1],  # out of order on purpose
        "score": [5.0, 1.0, 2.0, 3.0, 4.0, 10.0, 20.0],
    })
    s = M.smooth_frames(f, 3)
    # a in frame order: 1 2 3 4 5 -> (1+2)/2, 2, 3, 4, (4+5)/2; b never mixes with a
    assert s.tolist() == [4.5, 1.5, 2.0, 3.0, 4.0, 15.0, 15.0]
    assert M.smooth_frames(f, 1).tolist() == f["score"].tolist()
    # an even width leans one frame forward: frame i averages i-1, i, i+1, i+2 (width 4)
    assert M.smooth_frames(f, 4)[1] == pytest.approx((1 + 2 + 3) / 3)
    sm = M.score_frames(crops([("a", 0, 0.0), ("a", 1, 3.0), ("a", 2, 0.0)]),
                        labels([("a", i, 0) for i in range(3)]), smooth=3)
    assert sm["score_smoothed"].tolist() == [1.5, 1.0, 1.5]


def test_gaussian_smoothing_is_scipys_filter_per_clip_in_frame_order():
    from scipy.ndimage import gaussian_filter1d

    f = pd.DataFrame({
        "video": ["a"] * 5 + ["b"] * 3,
        "frame_idx": [4, 0, 1, 2, 3, 0, 1, 2],  # out of order on purpose
        "score": [5.0, 1.0, 2.0, 9.0, 4.0, 10.0, 20.0, 0.0],
    })
    s = M.smooth_frames(f, 2, kind="gaussian")
    a = gaussian_filter1d(np.array([1.0, 2.0, 9.0, 4.0, 5.0]), 2.0)  # a in frame order
    b = gaussian_filter1d(np.array([10.0, 20.0, 0.0]), 2.0)  # b on its own
    assert np.allclose(s, [a[4], a[0], a[1], a[2], a[3], *b])
    # sigma 1 smooths (a mean of width 1 does not); sigma 0 is off
    assert not np.allclose(M.smooth_frames(f, 1, kind="gaussian"), f["score"])
    assert M.smooth_frames(f, 0, kind="gaussian").tolist() == f["score"].tolist()
    sm = M.score_frames(crops([("a", 0, 0.0), ("a", 1, 3.0), ("a", 2, 0.0)]),
                        labels([("a", i, 0) for i in range(3)]), smooth=1,
                        smooth_filter="gaussian")
    assert np.allclose(sm["score_smoothed"], gaussian_filter1d(np.array([0.0, 3.0, 0.0]), 1.0))
    with pytest.raises(ValueError, match="unknown frame filter 'median'"):
        M.smooth_frames(f, 3, kind="median")


def test_track_smoothing_is_a_centred_median_per_track_then_the_frame_mean():
    c = pd.DataFrame({
        "video": ["a"] * 6 + ["b"],
        "frame_idx": [3, 0, 1, 2, 0, 1, 0],  # out of order on purpose
        "score": [1.0, 1.0, 9.0, 1.0, 2.0, 2.0, 5.0],
        "track": ["t1", "t1", "t1", "t1", "t2", "t2", "t1"],  # b's t1 is another object
    })
    got = M.smooth_tracks(c, 3)
    # t1 in frame order 1 9 1 1: the one-crop spike at frame 1 goes; the ends use 2 crops
    # (median of 1 and 9 is 5); t2 stays 2; b's lone crop keeps its score
    assert got.tolist() == [1.0, 5.0, 1.0, 1.0, 2.0, 2.0, 5.0]
    assert M.smooth_tracks(c, 1).tolist() == c["score"].tolist()
    # a crop without a track keeps its score
    assert M.smooth_tracks(c.assign(track=[None] * 7), 3).tolist() == c["score"].tolist()
    fl = labels([("a", i, 0) for i in range(4)])
    f = M.score_frames(c[c.video == "a"], fl, track_smooth=3)
    assert f["score"].tolist() == [2.0, 9.0, 1.0, 1.0]  # raw: frame max of the crops
    assert f["score_smoothed"].tolist() == [5.0, 2.0, 1.0, 1.0]  # max of smoothed crops
    both = M.score_frames(c[c.video == "a"], fl, track_smooth=3, smooth=3)
    assert both["score_smoothed"].tolist() == pytest.approx([3.5, 8 / 3, 4 / 3, 1.0])
    with pytest.raises(ValueError, match="track"):
        M.score_frames(c.drop(columns="track"), fl, track_smooth=3)


def test_micro_and_macro_auroc_against_sklearn():
    rng = np.random.default_rng(0)
    rows = []
    for clip, n, shift in (("c1", 40, 1.0), ("c2", 30, 0.2), ("c3", 25, 3.0)):
        y = (rng.random(n) < 0.4).astype(int)
        s = rng.normal(size=n) + shift * y + (5.0 if clip == "c3" else 0.0)  # c3 scores higher
        rows += [(clip, i, int(y[i]), float(s[i])) for i in range(n)]
    rows += [("c4", i, 0, float(rng.normal())) for i in range(10)]  # one class only
    f = pd.DataFrame(rows, columns=["video", "frame_idx", "abnormal", "score"])
    m = M.frame_metrics(f)
    assert m["micro"] == pytest.approx(roc_auc_score(f["abnormal"], f["score"]))
    per = [roc_auc_score(g["abnormal"], g["score"]) for _, g in f[f.video != "c4"].groupby("video")]
    assert m["macro"] == pytest.approx(np.mean(per))
    assert m["n_clips"] == 4 and m["n_clips_macro"] == 3
    assert math.isnan(m["by_clip"]["c4"])
    # the clip offset moves micro (pooled ranking) but not macro (within-clip rankings)
    assert m["micro"] != pytest.approx(m["macro"])


def test_clip_minmax_micro_scales_each_clip_before_pooling():
    # Each clip ranks its frames perfectly, but clip b's scores sit far above clip a's: the
    # pooled ranking mixes them (micro < 1); min-max per clip removes the offset.
    f = labels([("a", 0, 0), ("a", 1, 0), ("a", 2, 1), ("b", 0, 0), ("b", 1, 1),
                ("c", 0, 0), ("c", 1, 0)]).assign(score=[0.1, 0.2, 0.5, 10.0, 11.0, 3.0, 3.0])
    m = M.frame_metrics(f)
    assert m["micro"] < 1.0 and m["macro"] == 1.0
    assert m["micro_clipnorm"] == 1.0
    scaled = M.clip_minmax(f["score"].to_numpy(), f.groupby("video").indices.values())
    # a: (s - 0.1) / 0.4; b: 0 and 1; c: constant -> 0
    np.testing.assert_allclose(scaled, [0.0, 0.25, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert M.auroc(f["abnormal"], scaled) == m["micro_clipnorm"]
    # a clip with a non-finite score has no range: NaN throughout, never a silent 0
    bad = M.clip_minmax(np.array([0.1, np.nan, 0.3, 1.0, 2.0]),
                        [np.array([0, 1, 2]), np.array([3, 4])])
    assert np.isnan(bad[:3]).all() and list(bad[3:]) == [0.0, 1.0]


def test_macro_ignores_single_class_clips_and_is_nan_without_any():
    f = labels([("a", 0, 0), ("a", 1, 0), ("b", 0, 1)]).assign(score=[0.1, 0.2, 0.9])
    m = M.frame_metrics(f)
    assert m["micro"] == 1.0
    assert math.isnan(m["macro"]) and m["n_clips_macro"] == 0
