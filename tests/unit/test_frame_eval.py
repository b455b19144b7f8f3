"""Frame-level evaluation of a run folder: frame_scores.parquet, metrics.json, object AUROC."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from toolkit.data import manifest as mf
from toolkit.data import protocols as P
from toolkit.data.synthetic import make_clip_manifest
from toolkit.errors import AdtkError
from toolkit.eval import frames as F

TRAIN = [f"train/train_{i:02d}.mp4" for i in range(1, 17)]
TEST = [f"test/test_{i:02d}.mp4" for i in range(1, 13)]


def write_crop_manifest(path, videos, abnormal=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    return mf.write_manifest(make_clip_manifest(videos, abnormal), path)



def make_run(tmp_path, region: bool):
    """A finished run folder over a protocol split manifest, scores made by hand."""
    videos = TRAIN[:2] + TEST[:3]
    src = write_crop_manifest(tmp_path / "crops" / "manifest.parquet", videos, TEST[:3])
    if region:  # what extract --regions adds: the region label and where it came from
        df = mf.read_manifest(src)
        df["label_interval"] = df["label"]
        df["label_source"] = np.where(df["video"].str.startswith("test"), "region", "interval")
        mf.write_manifest(df, src)
    split = P.official_split(videos, TEST[:3])
    data = P.write_protocol_manifest(src, tmp_path / "official.parquet", split).path
    test = mf.read_manifest(data).query("split == 'test'")
    rng = np.random.default_rng(0)
    score = rng.random(len(test)) + (test["label"] == "abnormal").to_numpy()
    scores = pd.DataFrame({
        "sample_id": test["crop_id"], "split": "test", "label": test["label"], "score": score,
        "event": test["event"],
        "video": test["video"],
        "frame_idx": test["frame_idx"]})
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    scores.to_parquet(run / "scores.parquet")
    (run / "config.json").write_text(json.dumps({"data": str(data)}))
    (run / "metrics.json").write_text(json.dumps({"test_auroc": 0.5, "frame_auroc_micro": 0.1}))
    # frames 0-4 listed per clip; crops exist on frames 0-2 only; frame 1 abnormal
    fl = pd.DataFrame([(v, f, f / 10, int(f == 1)) for v in TEST[:3] for f in range(5)],
                      columns=["video", "frame_idx", "time_s", "abnormal"])
    fl.to_csv(tmp_path / "fl.csv", index=False)
    return run, tmp_path / "fl.csv", scores, fl


def test_evaluate_run_writes_frame_scores_and_metrics(tmp_path):
    run, fl_path, scores, fl = make_run(tmp_path, region=False)
    m = F.evaluate_run(run, F.FrameEvalConfig(str(fl_path), smooth=3))
    fs = pd.read_parquet(run / "frame_scores.parquet")
    assert len(fs) == 15 and fs["n_crops"].tolist().count(0) == 6  # frames 3-4 of 3 clips
    mx = scores.groupby(["video", "frame_idx"])["score"].max()
    fs_i = fs.set_index(["video", "frame_idx"])
    assert np.allclose(fs_i.loc[mx.index, "score"], mx)
    assert (fs_i.loc[fs.n_crops.eq(0).pipe(lambda s: fs[s]).set_index(["video", "frame_idx"])
                     .index, "score"] == mx.min()).all()
    assert m["frame_auroc_micro"] == pytest.approx(roc_auc_score(fs["abnormal"], fs["score"]))
    per = [roc_auc_score(g["abnormal"], g["score"]) for _, g in fs.groupby("video")]
    assert m["frame_auroc_macro"] == pytest.approx(np.mean(per))
    assert m["frame_auroc_micro_smoothed"] == pytest.approx(
        roc_auc_score(fs["abnormal"], fs["score_smoothed"]))
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test_auroc"] == 0.5  # the run's own metrics stay
    assert saved["frame_auroc_micro"] == pytest.approx(m["frame_auroc_micro"])
    assert saved["protocol"] == "official" and saved["frame_n"] == 15
    assert saved["object_auroc"] is None and "no region labels" in saved["object_note"]
    # evaluated again without smoothing: the smoothed keys go, nothing stale stays
    F.evaluate_run(run, F.FrameEvalConfig(str(fl_path)))
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["frame_auroc_micro_smoothed"] is None
    assert "score_smoothed" not in pd.read_parquet(run / "frame_scores.parquet")


def test_object_auroc_uses_region_labelled_crops(tmp_path):
    run, fl_path, scores, _ = make_run(tmp_path, region=True)
    m = F.evaluate_run(run, F.FrameEvalConfig(str(fl_path), aggregate="topk", topk=2))
    y = (scores["label"] == "abnormal").astype(int)
    assert m["object_auroc"] == pytest.approx(roc_auc_score(y, scores["score"]))
    assert m["object_n"] == len(scores)
    assert m["frame_eval"]["aggregate"] == "topk"


def test_videos_match_by_trailing_path_and_bad_labels_are_one_line(tmp_path):
    names = {v: v.split("/")[-1] for v in TEST}  # extracted from the test/ folder itself
    assert F.match_videos(TEST, names.values()) == {n: v for v, n in names.items()}
    with pytest.raises(AdtkError, match="several"):
        F.match_videos(["a/x.mp4", "b/x.mp4"], ["x.mp4"])
    bad = tmp_path / "bad.csv"
    bad.write_text("video,frame_idx,abnormal\nv.mp4,0,0\nv.mp4,1,2\n")
    with pytest.raises(AdtkError, match="row 3: abnormal must be 0 or 1"):
        F.read_frame_labels(bad)
    bad.write_text("video,frame_idx,abnormal\nv.mp4,0,0\nv.mp4,0,1\n")
    with pytest.raises(AdtkError, match="row 3: frame 0 of v.mp4 listed twice"):
        F.read_frame_labels(bad)
    bad.write_text("video,frame\nv.mp4,0\n")
    with pytest.raises(AdtkError, match="missing column"):
        F.read_frame_labels(bad)
    with pytest.raises(AdtkError, match="no such file"):
        F.read_frame_labels(tmp_path / "none.csv")
    with pytest.raises(AdtkError, match="--frame-smooth"):
        F.FrameEvalConfig("x", smooth=-1)


def test_sequence_split_leaves_out_frames_seen_in_training(tmp_path):
    df = make_clip_manifest(["v.mp4"], ["v.mp4"], frames=3)
    df["split"] = ["train", "test", "test"]  # frame 0's only crop trained the model
    data = tmp_path / "split.parquet"
    mf.write_manifest(df, data, kind="split")
    run = tmp_path / "run"
    run.mkdir()
    test = df[df.split == "test"]
    pd.DataFrame({"sample_id": test["crop_id"], "split": "test", "label": test["label"],
                  "score": [0.9, 0.1], "event": test["event"], "video": test["video"],
                  "frame_idx": test["frame_idx"]}).to_parquet(run / "scores.parquet")
    (run / "config.json").write_text(json.dumps({"data": str(data)}))
    (run / "metrics.json").write_text("{}")
    fl = pd.DataFrame({"video": "v.mp4", "frame_idx": range(5), "abnormal": [0, 1, 0, 0, 1]})
    fl.to_csv(tmp_path / "fl.csv", index=False)
    m = F.evaluate_run(run, F.FrameEvalConfig(str(tmp_path / "fl.csv")))
    fs = pd.read_parquet(run / "frame_scores.parquet")
    assert fs["frame_idx"].tolist() == [1, 2, 3, 4] and m["frame_n_excluded_trained"] == 1
    assert m["protocol"] is None


def test_per_kind_frame_and_object_auroc_use_only_the_clips_of_that_kind(tmp_path):
    run, fl_path, scores, fl = make_run(tmp_path, region=True)
    # the third clip's anomaly is a cart: its kind is scored on its own clip only
    cart = TEST[2]
    scores.loc[scores["video"] == cart, "event"] = scores.loc[
        scores["video"] == cart, "event"].where(lambda e: e.isna(), "cart")
    scores.to_parquet(run / "scores.parquet")
    m = F.evaluate_run(run, F.FrameEvalConfig(str(fl_path)))
    assert m["frame_clips_by_event"] == {"bike": TEST[:2], "cart": [cart]}
    fs = pd.read_parquet(run / "frame_scores.parquet")
    for kind, clips in m["frame_clips_by_event"].items():
        f = fs[fs["video"].isin(clips)]
        assert m["frame_auroc_by_event"][kind] == pytest.approx(
            roc_auc_score(f["abnormal"], f["score"]))
        s = scores[scores["video"].isin(clips)]
        assert m["object_auroc_by_event"][kind] == pytest.approx(
            roc_auc_score(s["label"] == "abnormal", s["score"]))
    assert m["frame_auroc_by_event"]["cart"] == pytest.approx(m["frame_auroc_by_clip"][cart])


def test_gaussian_frame_smoothing_is_recorded_and_named(tmp_path):
    from scipy.ndimage import gaussian_filter1d

    run, fl_path, _, _ = make_run(tmp_path, region=False)
    m = F.evaluate_run(run, F.FrameEvalConfig(str(fl_path), smooth=2, smooth_filter="gaussian"))
    fs = pd.read_parquet(run / "frame_scores.parquet")
    for _, g in fs.groupby("video"):
        g = g.sort_values("frame_idx")
        assert np.allclose(g["score_smoothed"], gaussian_filter1d(g["score"].to_numpy(), 2.0))
    assert m["frame_eval"]["smooth_filter"] == "gaussian"
    assert m["frame_eval"]["smooth_kind"] == "Gaussian of sigma 2 frames per clip"
    assert F.smooth_label(m["frame_eval"]) == "Gauss. 2 fr."
    assert "smoothed (Gauss. 2 fr.)" in F.summary_line(m)
    assert (f"as Reiss and Hoshen's {m['frame_auroc_micro_gauss3']:.4f}"
            in F.summary_line(m))
    assert m["frame_auroc_micro_smoothed"] == pytest.approx(
        roc_auc_score(fs["abnormal"], fs["score_smoothed"]))
    # a run evaluated before the option existed reads as the moving mean it was
    assert F.smooth_label({"smooth": 9, "track_smooth": 5}) == "track 5 + 9 fr."
    with pytest.raises(AdtkError, match="--frame-smooth-filter 'median': use one of mean, gauss"):
        F.FrameEvalConfig(str(fl_path), smooth=3, smooth_filter="median")


def test_track_smoothing_uses_the_manifest_tracks_and_needs_them(tmp_path):
    run, fl_path, scores, _ = make_run(tmp_path, region=False)
    m = F.evaluate_run(run, F.FrameEvalConfig(str(fl_path), track_smooth=3))
    fs = pd.read_parquet(run / "frame_scores.parquet")
    # by hand: the median of each sequence's 3 neighbouring crops, then the frame maximum
    cfg = json.loads((run / "config.json").read_text())
    seq = mf.read_manifest(cfg["data"]).set_index("crop_id")["sequence_id"]
    s = scores.assign(seq=scores["sample_id"].map(seq)).sort_values("frame_idx")
    s["med"] = s.groupby("seq")["score"].transform(
        lambda v: v.rolling(3, center=True, min_periods=1).median())
    want = s.groupby(["video", "frame_idx"])["med"].max()
    got = fs.set_index(["video", "frame_idx"]).loc[want.index, "score_smoothed"]
    assert np.allclose(got, want)
    assert fs.loc[fs.n_crops.eq(0), "score_smoothed"].eq(want.min()).all()
    assert m["frame_eval"]["smooth_kind"] == "moving median of 3 crops along each track"
    assert "smoothed (track 3)" in F.summary_line(m)
    assert m["frame_auroc_micro"] == pytest.approx(roc_auc_score(fs["abnormal"], fs["score"]))
    # the manifest (where the tracks are) moved away: one line saying so
    from pathlib import Path

    Path(cfg["data"]).rename(tmp_path / "moved.parquet")
    with pytest.raises(AdtkError, match="--track-smooth needs the run's crop manifest"):
        F.evaluate_run(run, F.FrameEvalConfig(str(fl_path), track_smooth=3))
    with pytest.raises(AdtkError, match="--track-smooth must be >= 0"):
        F.FrameEvalConfig(str(fl_path), track_smooth=-1)
