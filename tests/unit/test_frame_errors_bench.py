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


def test_each_lost_pair_goes_to_the_kind_of_crop_that_tops_the_normal_frame(tmp_path):
    """Known boxes and scores: an abnormal frame (0.5) under the normal frames of a clip whose
    object sits at the frame's left edge (0.9) and of a clip whose object is inside it (0.7)."""
    tests = ["test/test_01.mp4", "test/test_02.mp4", "test/test_03.mp4"]
    videos = TRAIN + tests
    df = make_clip_manifest(videos, tests[:1])  # test_01's frame 1 holds the anomaly
    inside = df["video"] == tests[2]
    df.loc[inside, ["x", "y"]] = 50  # test_02's boxes stay at (0, 0): the left edge
    src = mf.write_manifest(df, tmp_path / "crops" / "manifest.parquet")
    data = P.write_protocol_manifest(src, tmp_path / "official.parquet",
                                     P.official_split(videos, tests)).path
    test = mf.read_manifest(data).query("split == 'test'")
    level = {tests[0]: 0.2, tests[1]: 0.9, tests[2]: 0.7}
    score = np.where(test["label"] == "abnormal", 0.5, test["video"].map(level))
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    pd.DataFrame({"sample_id": test["crop_id"], "split": "test", "label": test["label"],
                  "score": score, "event": test["event"], "video": test["video"],
                  "frame_idx": test["frame_idx"]}).to_parquet(run / "scores.parquet")
    (run / "config.json").write_text(json.dumps({"data": str(data), "method": "baseline",
                                                 "input": "motion", "seed": 1}))
    (run / "metrics.json").write_text(json.dumps({"test_auroc": 0.5}))
    pd.DataFrame([(v, f, f / 10, int(v == tests[0] and f == 1)) for v in tests
                  for f in range(3)],
                 columns=["video", "frame_idx", "time_s", "abnormal"]).to_csv(
        tmp_path / "fl.csv", index=False)
    F.evaluate_run(run, F.FrameEvalConfig(str(tmp_path / "fl.csv")))

    got = _bench()["analyse"](run, [])
    # 1 abnormal frame x 8 normal ones; the 3 edge frames and the 3 inside frames beat it
    assert got["micro"] == pytest.approx(0.25)
    assert got["by_normal_top_crop"]["frame edge"] == pytest.approx(3 / 8)
    assert got["by_normal_top_crop"]["other"] == pytest.approx(3 / 8)
    assert got["by_normal_top_crop"].get("anomalous object", 0) == 0
    assert got["by_abnormal_clip"] == {"test_01": pytest.approx(6 / 8)}
    # no video files here: the frame's size is unknown, so only left and top edges count
    assert got["frame_size_unknown"] == tests
