"""benchmarks/frame_errors.py: the split of a run's lost frame AUROC adds up to 1 - AUROC
(scikit-learn's), ties counted half, on a real run folder evaluated by adtk's frame code."""

import json
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from toolkit.data import manifest as mf
from toolkit.data import protocols as P
from toolkit.data.synthetic import make_clip_manifest
from toolkit.eval import frames as F

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "frame_errors.py"
TRAIN = ["train/train_01.mp4"]
TEST = ["test/test_01.mp4", "test/test_02.mp4"]


def _bench() -> dict:
    """The script's functions (run as a file, as a user would: benchmarks is no package)."""
    return runpy.run_path(str(BENCH), run_name="frame_errors_bench")


def test_wrong_pairs_count_ties_half_and_sum_to_one_minus_auroc():
    mod = _bench()
    y = np.array([1, 1, 0, 0, 0, 1], bool)
    s = np.array([0.9, 0.5, 0.5, 0.7, 0.1, 0.2])
    by_normal, by_abnormal = mod["wrong_pairs"](y, s)
    # normal 0.5: ties abnormal 0.5 (half) and beats abnormal 0.2; 0.7: beats 0.5 and 0.2
    assert by_normal.tolist() == [0, 0, 1.5, 2, 0, 0]
    assert by_abnormal.tolist() == [0, 1.5, 0, 0, 0, 2]
    pairs = y.sum() * (~y).sum()
    assert by_normal.sum() / pairs == pytest.approx(1 - roc_auc_score(y, s))
    assert by_abnormal.sum() == by_normal.sum()


def test_a_run_folder_splits_its_loss_by_top_crop_and_by_clip(tmp_path):
    videos = TRAIN + TEST
    src = mf.write_manifest(make_clip_manifest(videos, TEST),
                            tmp_path / "crops" / "manifest.parquet")
    data = P.write_protocol_manifest(src, tmp_path / "official.parquet",
                                     P.official_split(videos, TEST)).path
    test = mf.read_manifest(data).query("split == 'test'")
    rng = np.random.default_rng(3)
    scores = pd.DataFrame({
        "sample_id": test["crop_id"], "split": "test", "label": test["label"],
        "score": rng.random(len(test)) + 0.5 * (test["label"] == "abnormal").to_numpy(),
        "event": test["event"], "video": test["video"], "frame_idx": test["frame_idx"]})
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    scores.to_parquet(run / "scores.parquet")
    (run / "config.json").write_text(json.dumps({"data": str(data), "method": "baseline",
                                                 "input": "appearance", "seed": 1}))
    (run / "metrics.json").write_text(json.dumps({"test_auroc": 0.5}))
    frames = sorted(set(test["frame_idx"]))
    fl = pd.DataFrame([(v, f, f / 10, int(i % 3 == 1)) for v in TEST
                       for i, f in enumerate(frames + [max(frames) + 1])],  # one frame, no crop
                      columns=["video", "frame_idx", "time_s", "abnormal"])
    fl.to_csv(tmp_path / "fl.csv", index=False)
    F.evaluate_run(run, F.FrameEvalConfig(str(tmp_path / "fl.csv")))

    got = _bench()["analyse"](run, ["test_02"])
    fs = pd.read_parquet(run / "frame_scores.parquet")
    micro = roc_auc_score(fs["abnormal"], fs["score"])
    assert got["micro"] == pytest.approx(micro)
    assert 0.5 < micro < 1
    assert sum(got["by_normal_top_crop"].values()) == pytest.approx(1 - micro)
    assert sum(got["by_abnormal_clip"].values()) == pytest.approx(1 - micro)
    assert set(got["by_abnormal_clip"]) <= {"test_01", "test_02"}
    assert (fs["n_crops"] == 0).sum() == 2  # the frame without crops is scored, lowest
    kept = ~fs["video"].str.contains("test_02")
    assert got["micro_left_out"] == pytest.approx(
        roc_auc_score(fs.loc[kept, "abnormal"], fs.loc[kept, "score"]))
    # the synthetic clips have no video files: frame sizes come from the boxes
    assert set(got["by_normal_top_crop"]) <= {"anomalous object", "frame edge", "other",
                                              "no crop"}
