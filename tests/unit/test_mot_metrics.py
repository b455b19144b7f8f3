"""The benchmark's metric code (toolkit.eval.mot) against py-motmetrics on hand-made tracks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.eval.mot import evaluate, match_counts

mm = pytest.importorskip("motmetrics")


def _df(rows):
    return pd.DataFrame(rows, columns=["frame_idx", "track_id", "x", "y", "w", "h"])


def _case():
    # Two people over 6 frames. The hypothesis: finds A on every frame (but loses and renews
    # A's id at frame 3: one identity switch), finds B on frames 0-3 only (misses 4-5), puts a
    # loose box on A at frame 2 (IoU < 0.5: a false positive and a miss) and one box where
    # nobody is (a false positive).
    gt, hyp = [], []
    for f in range(6):
        gt.append((f, 1, 10 + 5 * f, 10, 20, 40))
        gt.append((f, 2, 100, 10 + 3 * f, 20, 40))
        a_id = 10 if f < 3 else 11
        if f == 2:
            hyp.append((f, a_id, 10 + 5 * f + 12, 10, 20, 40))  # shifted 12 of 20 px: IoU 0.25
        else:
            hyp.append((f, a_id, 10 + 5 * f + 1, 11, 20, 40))
        if f < 4:
            hyp.append((f, 20, 100, 10 + 3 * f, 21, 40))
    hyp.append((5, 30, 300, 300, 20, 40))
    return _df(gt), _df(hyp)


def _motmetrics(gt, hyp):
    acc = mm.MOTAccumulator(auto_id=False)
    for f in range(6):
        g, h = gt[gt.frame_idx == f], hyp[hyp.frame_idx == f]
        # motmetrics' own IoU distance (its iou_matrix needs numpy < 2: written out here)
        d = np.full((len(g), len(h)), np.nan)
        for i, (_, a) in enumerate(g.iterrows()):
            for j, (_, b) in enumerate(h.iterrows()):
                d[i, j] = mm.distances.boxiou(
                    a[["x", "y", "w", "h"]].to_numpy(float), b[["x", "y", "w", "h"]].to_numpy(float)
                )
        d = 1 - d
        d[d > 0.5] = np.nan
        acc.update(g.track_id.to_numpy(), h.track_id.to_numpy(), d, frameid=f)
    return mm.metrics.create().compute(
        acc, metrics=["precision", "recall", "mota", "idf1", "num_switches", "num_false_positives",
                      "num_misses"], name="x"
    ).loc["x"]


def test_counts_precision_and_recall_by_hand():
    gt, hyp = _case()
    # 12 gt boxes; 11 hyp boxes; matched: A on 5 frames + B on 4 = 9
    assert match_counts(gt, hyp) == (9, 2, 3)
    s = evaluate(gt, hyp)
    assert s.precision == pytest.approx(9 / 11) and s.recall == pytest.approx(9 / 12)
    # MOTA = 1 - (FN + FP + IDSW) / GT = 1 - (3 + 2 + 1) / 12
    assert s.mota == pytest.approx(0.5) and s.id_switches == 1


def test_agrees_with_py_motmetrics():
    gt, hyp = _case()
    ours, ref = evaluate(gt, hyp), _motmetrics(gt, hyp)
    assert ours.precision == pytest.approx(ref["precision"])
    assert ours.recall == pytest.approx(ref["recall"])
    assert ours.mota == pytest.approx(ref["mota"])
    assert ours.idf1 == pytest.approx(ref["idf1"])
    assert ours.id_switches == ref["num_switches"]
    assert (ours.fp, ours.fn) == (ref["num_false_positives"], ref["num_misses"])


def test_frames_restrict_the_evaluation_to_the_sampled_frames():
    gt, hyp = _case()
    s = evaluate(gt, hyp, frames=[0, 1])
    assert (s.tp, s.fp, s.fn) == (4, 0, 0) and s.precision == 1.0 and s.recall == 1.0
