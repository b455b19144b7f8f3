"""End to end on two real UCSD Ped2 clips: extract every frame, official protocol, frame AUROC.

UCSD Ped2: Mahadevan et al., "Anomaly detection in crowded scenes", CVPR 2010. Skipped when
../shared/data is absent.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from toolkit.data.manifest import read_manifest, read_meta

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_two_ped2_clips_extract_bench_frame_auroc(shared_data, tmp_path, adtk, ped2_clips):
    ped2 = shared_data / "ucsd-ped2"
    clips = ped2_clips("train/train_01.mp4", "test/test_02.mp4")
    adtk("extract", clips, "--out", tmp_path / "crops", "--labels", ped2 / "labels.csv",
          "--fps", 10, "--target", "object", "--workers", 1, "--no-progress")
    crops = read_manifest(tmp_path / "crops" / "manifest.parquet")
    assert set(crops["video"]) == {"train/train_01.mp4", "test/test_02.mp4"}

    out = adtk("bench", "--suite", "ped2", "--data", tmp_path / "crops" / "manifest.parquet",
                "--frame-labels", ped2 / "frame_labels.csv", "--labelled-clips", 0,
                "--method", "baseline", "--seed", 1, "--epochs", 2, "--frame-smooth", 5,
                "--track-smooth", 3,
                "--out", tmp_path / "runs", "--no-report", "--no-progress", "--threads", 1)
    assert "frame AUROC micro" in out and "macro" in out
    split = tmp_path / "runs" / "splits" / "ped2-official.parquet"
    assert read_meta(split)["test_videos"] == ["test/test_02.mp4"]
    df = read_manifest(split)
    assert set(df.loc[df.split == "train", "video"]) == {"train/train_01.mp4"}

    (run,) = [p for p in (tmp_path / "runs").iterdir() if (p / "metrics.json").is_file()]
    m = json.loads((run / "metrics.json").read_text())
    frames = pd.read_parquet(run / "frame_scores.parquet")
    labels = pd.read_csv(ped2 / "frame_labels.csv")
    want = labels[labels.video == "test/test_02.mp4"]
    # every frame of the test clip is scored, also those where no crop was found
    assert len(frames) == len(want) == m["frame_n"] == 180
    assert frames["abnormal"].sum() == want["abnormal"].sum() == m["frame_n_abnormal"]
    assert m["frame_auroc_micro"] == pytest.approx(
        roc_auc_score(frames["abnormal"], frames["score"]))
    assert m["frame_auroc_macro"] == pytest.approx(m["frame_auroc_micro"])  # one clip
    assert m["frame_auroc_micro_smoothed"] == pytest.approx(
        roc_auc_score(frames["abnormal"], frames["score_smoothed"]))
    assert 0.5 < m["frame_with_crops"] <= 1.0
    test = crops[crops.video == "test/test_02.mp4"]
    scores = pd.read_parquet(run / "scores.parquet")[["sample_id", "score"]]
    mx = test[["crop_id", "frame_idx"]].merge(scores, left_on="crop_id", right_on="sample_id")
    assert len(mx) == len(test)  # every test crop was scored
    mx = mx.groupby("frame_idx")["score"].max()
    got = frames.set_index("frame_idx").loc[mx.index, "score"]
    assert np.allclose(got.to_numpy(), mx.to_numpy())
    assert m["protocol"] == "official" and m["object_auroc"] is None  # no region labels here
    # smoothed: each crop's score the median of its track's 3 (its own and its neighbours'),
    # then the frame maximum, then the mean of 5 frames; by pandas, not adtk's code
    tr = test[["crop_id", "frame_idx", "sequence_id"]].merge(
        scores, left_on="crop_id", right_on="sample_id").sort_values("frame_idx")
    tr["med"] = tr.groupby("sequence_id")["score"].transform(
        lambda v: v.rolling(3, center=True, min_periods=1).median())
    fmax = tr.groupby("frame_idx")["med"].max().reindex(range(180))
    fmax = fmax.fillna(fmax.min())  # frames without crops: the lowest frame score
    want_s = fmax.rolling(5, center=True, min_periods=1).mean()
    assert np.allclose(frames.sort_values("frame_idx")["score_smoothed"], want_s)
    assert m["frame_eval"]["track_smooth"] == 3
