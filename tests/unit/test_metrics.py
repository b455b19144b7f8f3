import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from toolkit.eval import metrics as M


def test_auroc_perfect_inverted_and_chance():
    y = np.array([0, 0, 0, 1, 1])
    assert M.auroc(y, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert M.auroc(y, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0
    assert M.auroc(y, [1, 1, 1, 1, 1]) == 0.5


def test_single_class_gives_nan_not_error():
    assert math.isnan(M.auroc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(M.aupr([1, 1], [0.1, 0.2]))
    assert all(math.isnan(v) for v in M.bootstrap_ci([0, 0], [1, 2]))


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        M.auroc([0, 1], [0.1])


def test_vectorised_bootstrap_auroc_matches_sklearn_per_resample():
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.3).astype(int)
    s = rng.normal(size=200) + y * 1.0
    ranks_y = np.stack([y, y[::-1]])
    ss = np.stack([s, s[::-1]])
    from scipy.stats import rankdata

    got = M._auroc_ranked(ranks_y, rankdata(ss, axis=1))
    assert got == pytest.approx([roc_auc_score(y, s), roc_auc_score(y[::-1], s[::-1])])


def test_bootstrap_ci_contains_point_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def ci(n):
        y = (rng.random(n) < 0.5).astype(int)
        s = rng.normal(size=n) + y
        return M.auroc(y, s), M.bootstrap_ci(y, s, n_boot=500, seed=3)

    a_small, (lo_s, hi_s) = ci(100)
    a_big, (lo_b, hi_b) = ci(5000)
    assert lo_s <= a_small <= hi_s and lo_b <= a_big <= hi_b
    assert (hi_b - lo_b) < (hi_s - lo_s)
    # Same seed, same interval.
    y = np.array([0, 1] * 50)
    s = np.linspace(0, 1, 100)
    assert M.bootstrap_ci(y, s, seed=7) == M.bootstrap_ci(y, s, seed=7)


def test_bootstrap_aupr_metric():
    y = np.array([0, 1] * 30)
    s = y + np.linspace(0, 0.5, 60)
    lo, hi = M.bootstrap_ci(y, s, "aupr", n_boot=50)
    assert 0.9 <= lo <= hi <= 1.0


def test_mean_std_known_values():
    assert M.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert M.mean_std([5.0]) == (5.0, 0.0)
    assert M.mean_std([1.0, float("nan"), 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert all(math.isnan(v) for v in M.mean_std([]))


def test_frame_level_auroc_takes_max_per_frame_and_fills_empty_frames():
    scores = pd.DataFrame(
        {"video": ["a", "a", "a", "b"], "frame_idx": [0, 0, 1, 0], "score": [0.1, 0.9, 0.2, 0.3]}
    )
    fs = M.frame_scores(scores)
    assert fs["score"].tolist() == [0.9, 0.2, 0.3]
    labels = pd.DataFrame(
        {"video": ["a", "a", "b", "b"], "frame_idx": [0, 1, 0, 1], "abnormal": [1, 0, 0, 0]}
    )
    # frame b/1 has no crop: it gets the lowest score; a/0 (0.9) is the top -> AUROC 1.
    assert M.frame_auroc(scores, labels) == 1.0


def test_score_metrics_block():
    out = M.score_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_boot=100)
    assert out["test_auroc"] == 0.75
    assert out["test_n"] == 4 and out["test_n_abnormal"] == 2
    lo, hi = out["test_auroc_ci95"]
    assert 0 <= lo <= hi <= 1


def _tracks(n_tracks: int, per_track: int, seed: int):
    """Tracks of near-identical crops: each track's scores share one draw (abnormal tracks
    higher on average), plus a little noise per crop."""
    rng = np.random.default_rng(seed)
    y, s, g = [], [], []
    for t in range(n_tracks):
        abn = t % 2
        level = rng.normal(0.7 * abn, 1.0)
        y += [abn] * per_track
        s += list(level + rng.normal(0, 0.05, per_track))
        g += [f"track{t}"] * per_track
    return np.array(y), np.array(s), np.array(g)


def test_cluster_bootstrap_resamples_tracks_not_their_crops():
    """40 crops per track carry one track's evidence: resampling crops one by one gives an
    interval several times too narrow; resampling tracks gives an honest one."""
    y, s, g = _tracks(20, 40, seed=3)
    lo_s, hi_s = M.bootstrap_ci(y, s, seed=0)
    lo_g, hi_g = M.bootstrap_ci(y, s, seed=0, groups=g)
    assert lo_g <= M.auroc(y, s) <= hi_g
    assert (hi_g - lo_g) > 3 * (hi_s - lo_s)
    # the same seed, the same interval
    assert M.bootstrap_ci(y, s, seed=0, groups=g) == (lo_g, hi_g)
    # over many such test sets, the track interval covers the truth far more often
    covered = {"samples": 0, "sequences": 0}
    for rep in range(20):
        y, s, g = _tracks(20, 10, seed=100 + rep)
        truth = 0.69  # P(abnormal track's level > normal one's): Phi(0.7 / sqrt(2))
        lo, hi = M.bootstrap_ci(y, s, n_boot=200, seed=rep)
        covered["samples"] += lo <= truth <= hi
        lo, hi = M.bootstrap_ci(y, s, n_boot=200, seed=rep, groups=g)
        covered["sequences"] += lo <= truth <= hi
    assert covered["sequences"] >= 16 and covered["samples"] <= 12, covered


def test_one_abnormal_track_has_no_interval_and_the_block_counts_tracks():
    y = np.array([0] * 30 + [1] * 10)
    s = np.r_[np.zeros(30), np.ones(10)]
    g = np.array(["a"] * 15 + ["b"] * 15 + ["c"] * 10)
    out = M.score_metrics(y, s, groups=g)
    assert out["test_auroc"] == 1.0 and all(np.isnan(out["test_auroc_ci95"]))
    assert out["test_n_sequences"] == 3 and out["test_n_sequences_abnormal"] == 1
    assert out["test_auroc_ci95_resamples"] == "sequences"
    assert M.score_metrics(y, s)["test_auroc_ci95"] == [1.0, 1.0]  # per sample: no such care


def test_one_normal_track_has_no_interval_either_and_ids_are_checked():
    """Found in review: one normal track never varies across resamples, so its interval was
    [1, 1] again. Missing ids are tracks of their own; a wrong length is an error."""
    y = np.array([0] * 10 + [1] * 20)
    s = np.r_[np.zeros(10), np.ones(20)]
    g = np.array(["n"] * 10 + ["a"] * 10 + ["b"] * 10)
    assert all(np.isnan(M.bootstrap_ci(y, s, groups=g)))
    g2 = np.array([None] * 10 + ["a"] * 10 + ["b"] * 10, dtype=object)  # 10 unnamed: 10 tracks
    lo, hi = M.bootstrap_ci(y, s, groups=g2)
    assert lo == hi == 1.0  # perfectly separated, and now resampled on both sides
    assert M.score_metrics(y, s, groups=g2)["test_n_sequences"] == 12
    with pytest.raises(ValueError, match="differ in length"):
        M.bootstrap_ci(y, s, groups=g[:5])


def test_tracks_holding_both_classes_keep_both_in_every_resample():
    """Interval labels: a track is abnormal part of the time. No resample may lack a class
    (an undefined AUROC would be dropped silently)."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 0, 1, 1], 6)
    s = rng.normal(size=y.size) + y
    g = np.repeat([f"t{i}" for i in range(6)], 4)  # six tracks, each half abnormal
    idx = list(M._group_resamples(y, M.group_codes(g, y.size), 200, rng))
    assert all(0 < y[i].sum() < len(i) for i in idx)
    lo, hi = M.bootstrap_ci(y, s, groups=g)
    assert lo < M.auroc(y, s) < hi


def test_no_interval_where_each_abnormal_stratum_holds_one_track():
    """Found in review: one anomaly-only track and one track holding both passed a count of
    two abnormal tracks, but each stratum draws its one track every time: [1, 1] again."""
    y = np.array([0] * 50 + [1] * 5 + [0] * 5 + [1] * 5)
    s = np.r_[np.zeros(50), np.ones(5), np.zeros(5), np.ones(5)]
    g = np.array([f"n{i // 5}" for i in range(50)] + ["a"] * 5 + ["m"] * 10)
    assert all(np.isnan(M.bootstrap_ci(y, s, groups=g)))
