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
