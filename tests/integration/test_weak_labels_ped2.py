"""Region labels vs interval labels for training, on real UCSD Ped2 clips (CLI, end to end).

UCSD Ped2: Mahadevan et al., "Anomaly detection in crowded scenes", CVPR 2010. Skipped when
../shared/data is absent.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_interval_training_labels_on_region_labelled_ped2_clips(
    shared_data, tmp_path, adtk, ped2_clips
):
    ped2 = shared_data / "ucsd-ped2"
    clips = ped2_clips("train/train_01.mp4", "test/test_02.mp4", "test/test_04.mp4")
    adtk("extract", clips, "--out", tmp_path / "crops", "--labels", ped2 / "labels.csv",
          "--regions", ped2 / "anomaly_regions.csv", "--fps", 5, "--target", "object",
          "--workers", 1, "--no-progress")
    man = tmp_path / "crops" / "manifest.parquet"
    out = adtk("bench", "--suite", "ped2", "--data", man, "--frame-labels",
                ped2 / "frame_labels.csv", "--labelled-clips", 1, "--seed", 1, "--method",
                "adnl", "--train-labels", "auto,interval", "--epochs", 3, "--size", 16,
                "--batch-size", 32, "--out", tmp_path / "runs", "--no-report", "--no-progress",
                "--threads", 1)
    assert "frame AUROC micro" in out
    runs = {}
    for m in (tmp_path / "runs").glob("*/metrics.json"):
        cfg = json.loads((m.parent / "config.json").read_text())
        runs[cfg["train_labels"]] = (cfg, json.loads(m.read_text()), m.parent)
    assert set(runs) == {"auto", "interval"}
    (c_reg, m_reg, f_reg), (c_int, m_int, f_int) = runs["auto"], runs["interval"]
    assert c_reg["run_id"] != c_int["run_id"]
    # region labels: every labelled crop, the paper's unbounded term; interval labels: one
    # negative per abnormal frame, chosen once after a normal-only third of the epochs (1 of
    # 3), and the bounded term
    assert m_reg["train_label_source"] == "region" and m_reg["neg_bound"] == "none"
    assert m_int["train_label_source"] == "interval" and m_int["neg_bound"] == "margin"
    assert m_reg["neg_select"] == "all" and m_int["neg_select"] == "mil-once"
    assert c_int["params"]["mil_warmup"] == 1 and c_reg["params"]["mil_warmup"] == 0
    h_int = pd.read_parquet(f_int / "history.parquet")
    assert h_int["neg_selected"].isna().iloc[0]  # the warm-up epoch: no negatives
    chosen = h_int["neg_selected"].iloc[1:]
    assert (chosen == chosen.iloc[0]).all() and 0 < chosen.iloc[0] < m_int["n_train_abnormal"]
    # the interval labels call the walkers beside the anomaly abnormal too
    assert m_int["n_train_abnormal"] > m_reg["n_train_abnormal"] > 0
    # what is scored does not change: same test crops, same labels, same frames
    s_reg, s_int = (pd.read_parquet(f / "scores.parquet") for f in (f_reg, f_int))
    key = ["sample_id", "split", "label"]
    assert s_reg[key].sort_values("sample_id").reset_index(drop=True).equals(
        s_int[key].sort_values("sample_id").reset_index(drop=True))
    assert m_reg["frame_n"] == m_int["frame_n"] and m_reg["object_n"] == m_int["object_n"]
    assert m_reg["frame_auroc_micro"] is not None and m_int["frame_auroc_micro"] is not None
