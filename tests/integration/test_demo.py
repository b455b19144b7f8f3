"""The demo's generated footage goes through the real extract: both labels, clean crops."""

from __future__ import annotations

from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.manifest import read_manifest
from toolkit.demo import EXTRACT_ARGS, make_dataset


def test_demo_dataset_extracts_into_normal_walkers_and_abnormal_carts_and_bikes(tmp_path):
    videos = make_dataset(tmp_path / "videos", normal=2, abnormal=2, seconds=8)
    r = CliRunner().invoke(
        main,
        ["extract", str(videos), "--out", str(tmp_path / "crops"), "--no-progress", *EXTRACT_ARGS],
    )
    assert r.exit_code == 0, r.output
    df = read_manifest(tmp_path / "crops" / "manifest.parquet")
    assert set(df["label"]) == {"normal", "abnormal"}
    normal = df[df["label"] == "normal"]
    # two walkers per clip, one box each per sampled frame (8 s at 2 fps): not fragments
    assert normal.groupby(["video", "frame_idx"]).size().median() == 2
    assert normal["h"].between(45, 60).all(), normal["h"].describe()
    kinds = {v.split("/")[1].split("_")[0] for v in df.loc[df["label"] == "abnormal", "video"]}
    assert kinds == {"cart", "bike"}
