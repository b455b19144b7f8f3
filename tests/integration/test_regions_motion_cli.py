"""Region labels, motion channels and ``bench --input`` end to end on generated videos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.manifest import read_manifest, read_meta, write_manifest
from toolkit.methods import list_methods
from toolkit.video.synthetic import make_video


def _run(*args):
    return CliRunner().invoke(main, [*args], catch_exceptions=False)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Three clips (a bike and a walker in each of two, two walkers in one), every frame,
    with flow channels; then the bike's boxes as a region file, applied on a second run."""
    tmp = tmp_path_factory.mktemp("regions")
    vids = tmp / "in"
    make_video(vids / "a.avi", seconds=3, anomaly="bike", seed=1)
    make_video(vids / "b.avi", seconds=3, anomaly="bike", seed=2)
    make_video(vids / "c.avi", seconds=3, seed=3)
    (tmp / "labels.csv").write_text(
        "video,start_s,end_s,label,event\na.avi,0,9,abnormal,bike\nb.avi,0,9,abnormal,bike\n"
        "c.avi,0,9,normal,\n"
    )
    out = tmp / "crops"
    args = ["extract", str(vids), "--out", str(out), "--labels", str(tmp / "labels.csv"),
            "--target", "object", "--detector", "auto",
            "--fps", "0", "--motion-channels", "flow", "--workers", "1", "--no-progress"]
    r = _run(*args)
    assert r.exit_code == 0, r.output
    first = read_manifest(out / "manifest.parquet")
    # every frame of the 10 fps clips was looked at
    assert first.groupby("video")["frame_idx"].nunique().max() > 20
    # the bike rides in the top lane: its boxes (slightly shifted) become the regions
    bike = first[first["video"].isin(["a.avi", "b.avi"]) & (first["y"] < 60)]
    assert len(bike) > 10
    reg = bike[["video", "frame_idx", "time_s", "x", "y", "w", "h"]].copy()
    reg["x"] += 1
    reg["area_px"] = reg["w"] * reg["h"]
    reg.to_csv(tmp / "regions.csv", index=False)
    r = _run(*args, "--regions", str(tmp / "regions.csv"))
    assert r.exit_code == 0, r.output
    assert "3 already done" in r.output  # regions are labels: nothing re-extracted
    return tmp, out, r.output


def test_region_labels_recall_and_motion_paths(extracted):
    tmp, out, output = extracted
    df = read_manifest(out / "manifest.parquet")
    region_videos = df["video"].isin(["a.avi", "b.avi"])
    top = df["y"] < 60
    assert (df.loc[region_videos & top, "label"] == "abnormal").all()
    assert (df.loc[region_videos & ~top, "label"] == "normal").all()  # the walker beside
    assert (df.loc[region_videos, "label_interval"] == "abnormal").all()
    assert set(df.loc[region_videos, "label_source"]) == {"region"}
    assert set(df.loc[~region_videos, "label_source"]) == {"interval"}
    assert set(df.loc[region_videos & top, "event"]) == {"bike"}
    # recall: every region has its crop
    assert "anomalous regions covered by a crop" in output
    line = next(x for x in output.splitlines() if x.strip().startswith("all"))
    assert "100.0%" in line
    meta = read_meta(out / "manifest.parquet")
    assert meta["regions"]["recall"][-1]["recall"] == 1.0
    assert meta["motion_channels"]["kind"] == "flow"
    img = cv2.imread(str(out / df["path_motion"].iloc[0]))
    assert img.shape == (64, 64, 3)
    # everyone moves in these clips: flow magnitude in the motion crops (but for the clips'
    # last frames, which have no next frame)
    last = df["frame_idx"] == df.groupby("video")["frame_idx"].transform("max")
    mag = np.array([cv2.imread(str(out / p))[..., 2].mean() for p in df["path_motion"]])
    assert (mag[~last.to_numpy()] > 20).all()
    # inspect shows the recall figure stored with the manifest
    r = _run("inspect", str(out / "manifest.parquet"))
    assert "anomalous regions covered by a crop" in r.output
    assert "label sources: region" in r.output and "are not the anomalous object" in r.output
    # a split carries the motion channels' description, so bench knows how to flip them
    split = tmp / "split.parquet"
    r = _run("split", str(out / "manifest.parquet"), "--out", str(split))
    assert r.exit_code == 0, r.output
    assert read_meta(split)["motion_channels"]["kind"] == "flow"
    from toolkit.data.datasets import load_manifest_data

    data = load_manifest_data(split, size=16, input="both")
    assert data.train.x.shape[1:] == (6, 16, 16) and data.info["flip_negate"] == (5,)
    assert load_manifest_data(split, size=16, input="motion").info["flip_negate"] == (2,)
    assert load_manifest_data(split, size=16).info["flip_negate"] == ()


@pytest.mark.slow
def test_bench_trains_on_motion_and_both_for_every_method(extracted, tmp_path):
    _, out, _ = extracted
    df = read_manifest(out / "manifest.parquet")
    # a split by video: a.avi trains (its bike is the labelled anomaly), b and c test
    df["split"] = np.where(df["video"] == "a.avi", "train", "test")
    df.loc[(df["video"] == "c.avi") & (df["frame_idx"] % 4 == 0), "split"] = "val"
    df.loc[(df["video"] == "c.avi") & (df["frame_idx"] % 4 == 1), "split"] = "train"
    man = out / "split.parquet"
    write_manifest(df, man, kind="split", meta={"crops_root": "."})
    runs = tmp_path / "runs"
    tiny = ["--epochs", "1", "--batch-size", "32", "--width", "8", "--latent-dim", "4",
            "--size", "16", "--device", "cpu", "--threads", "1", "--no-report"]
    methods = [a for m in list_methods() for a in ("--method", m)]
    r = _run("bench", "--data", str(man), "--input", "motion,both", *methods, "--out",
             str(runs), *tiny)
    assert r.exit_code == 0, r.output
    metrics = [json.loads(p.read_text()) for p in runs.glob("*/metrics.json")]
    assert sorted((m["method"], m["input"]) for m in metrics) == sorted(
        (m, i) for m in list_methods() for i in ("motion", "both")
    )
    for m in metrics:
        conf = json.loads((runs / m["run_id"] / "config.json").read_text())
        assert conf["input"] == m["input"]
    # the report's image figures load each run's own input (both: 6 channels, motion: 3),
    # one after the other in one process, as a report does
    from toolkit.eval.plots import run_image_figures

    for m in sorted((m for m in metrics if m["method"] == "baseline"), key=lambda m: m["input"]):
        folder = runs / m["run_id"]
        conf = json.loads((folder / "config.json").read_text())
        figs = run_image_figures(folder, conf, pd.read_parquet(folder / "scores.parquet"))
        assert [t for t, _ in figs][-1] == "Reconstructions (input above output)", m["input"]
    # --tta hflip: the same training (same model), another run id, scores of both faces
    base = next(m for m in metrics if m["method"] == "baseline" and m["input"] == "motion")
    r = _run("bench", "--data", str(man), "--input", "motion", "--method", "baseline",
             "--tta", "hflip", "--out", str(runs), *tiny)
    assert r.exit_code == 0, r.output
    tta = [json.loads(p.read_text()) for p in runs.glob("*/config.json")]
    tta = next(c for c in tta if c.get("tta") == "hflip")
    assert tta["run_id"] != base["run_id"]
    a, b = (torch.load(runs / i / "model.pt", weights_only=True)
            for i in (base["run_id"], tta["run_id"]))
    assert all(torch.equal(a[k], b[k]) for k in a)
    s0, s1 = (pd.read_parquet(runs / i / "scores.parquet")["score"]
              for i in (base["run_id"], tta["run_id"]))
    assert len(s0) == len(s1) and not np.allclose(s0, s1)
    r = CliRunner().invoke(main, ["bench", "--data", str(man), "--input", "motion", "--method",
                                  "baseline", "--tta", "hflip", "--augment", "none", "--out",
                                  str(tmp_path / "r3"), *tiny])
    assert r.exit_code == 2, r.output
    assert "trained with --augment hflip" in r.output, r.output
    # an appearance-only manifest asked for motion: one clear line
    plain = df.drop(columns=["path_motion", "path_motion_oversize"])
    write_manifest(plain, out / "plain.parquet", kind="split", meta={"crops_root": "."})
    r = CliRunner().invoke(main, ["bench", "--data", str(out / "plain.parquet"), "--input",
                                  "motion", "--out", str(tmp_path / "r2"), *tiny])
    assert r.exit_code == 2 and "no motion channels" in r.output


def test_bad_region_file_stops_before_any_work(extracted, tmp_path):
    tmp, _, _ = extracted
    bad = tmp_path / "bad.csv"
    bad.write_text("video,frame_idx,time_s,x,y,w,h,area_px\na.avi,3,0.3,230,10,20,20,400\n")
    r = CliRunner().invoke(main, ["extract", str(tmp / "in"), "--out", str(tmp_path / "o"),
                                  "--regions", str(bad), "--no-progress"])
    assert r.exit_code == 2
    assert "line 2: box x=230" in r.output and "outside the 240x160 frame" in r.output
    assert not (tmp_path / "o").exists()
    labels = tmp_path / "labels.csv"
    labels.write_text("video,start_s,end_s,label,event\nother/a.avi,0,3,abnormal,bike\n")
    r = CliRunner().invoke(main, ["extract", str(tmp / "in"), "--out", str(tmp_path / "o"),
                                  "--labels", str(labels), "--no-progress"])
    assert r.exit_code == 2 and "none of the 1 row(s) matches a video" in r.output


def test_every_frame_setting_is_accepted_by_yaml_too(tmp_path):
    from toolkit.config import ExtractConfig, resolve

    (tmp_path / "x.yaml").write_text("extract:\n  fps: 0\n  motion_channels: diff\n")
    cfg = resolve(ExtractConfig, tmp_path / "x.yaml", "extract")
    assert cfg.fps == 0.0 and cfg.motion_channels == "diff"
    with pytest.raises(Exception, match="fps"):
        ExtractConfig(fps=-1)
