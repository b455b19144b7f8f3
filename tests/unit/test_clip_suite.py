"""``--suite ped2`` planning: split manifests per protocol and seed, shared by the methods."""

import pandas as pd
import pytest

from toolkit.data import manifest as mf
from toolkit.data.synthetic import make_clip_manifest
from toolkit.engine import grid
from toolkit.errors import AdtkError

TRAIN = [f"train/train_{i:02d}.mp4" for i in range(1, 17)]
TEST = [f"test/test_{i:02d}.mp4" for i in range(1, 13)]


def write_crop_manifest(path, videos, abnormal=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    return mf.write_manifest(make_clip_manifest(videos, abnormal), path)



@pytest.fixture
def ped2_like(tmp_path):
    videos = TRAIN[:4] + TEST[:6]
    src = write_crop_manifest(tmp_path / "crops" / "manifest.parquet", videos, TEST[:6])
    fl = pd.DataFrame([(v, f, f / 10, int(f == 1)) for v in TEST[:6] for f in range(3)],
                      columns=["video", "frame_idx", "time_s", "abnormal"])
    fl.to_csv(tmp_path / "frame_labels.csv", index=False)
    return src, tmp_path / "frame_labels.csv", tmp_path / "runs"


def test_each_seed_has_one_manifest_that_baseline_and_adnl_share(ped2_like):
    src, fl, out = ped2_like
    cfgs = grid.plan({"data": str(src), "out": str(out)}, {"seed": [1, 2, 3]}, "ped2",
                     suite_options={"frame_labels": str(fl), "labelled_clips": 2})
    official = [c for c in cfgs if c.data.endswith("ped2-official.parquet")]
    assert [c.method for c in official] == ["baseline"]  # ADNL has no anomalies to learn from
    few = [c for c in cfgs if c not in official]
    assert sorted((c.seed, c.method) for c in few) == [
        (s, m) for s in (1, 2, 3) for m in ("adnl", "baseline")]
    tests = {}
    for c in few:
        meta = mf.read_meta(c.data)
        assert meta["protocol_seed"] == c.seed and meta["labelled_clips"] == 2
        df = mf.read_manifest(c.data)
        test = set(df.loc[df.split == "test", "video"])
        train = set(df.loc[df.split == "train", "video"])
        assert not test & train and test == set(meta["test_videos"])
        tests.setdefault(c.seed, []).append((c.method, c.data, frozenset(test)))
    for runs in tests.values():
        assert len({d for _, d, _ in runs}) == 1 and len({t for _, _, t in runs}) == 1
    assert len({runs[0][2] for runs in tests.values()}) > 1  # seeds choose different clips
    off = mf.read_manifest(official[0].data)
    assert set(off.loc[off.split == "test", "video"]) == set(TEST[:6])


def test_replanning_keeps_manifests_and_run_ids(ped2_like):
    src, fl, out = ped2_like
    opts = {"frame_labels": str(fl), "labelled_clips": 1}
    a = grid.plan({"data": str(src), "out": str(out)}, {"seed": [4]}, "ped2", suite_options=opts)
    b = grid.plan({"data": str(src), "out": str(out)}, {"seed": [4]}, "ped2", suite_options=opts)
    assert [c.run_id for c in a] == [c.run_id for c in b]


def test_official_only_and_bad_input(ped2_like):
    src, fl, out = ped2_like
    cfgs = grid.plan({"data": str(src), "out": str(out)}, {"method": ["baseline"]}, "ped2",
                     suite_options={"frame_labels": str(fl), "labelled_clips": 0})
    assert len(cfgs) == 1 and cfgs[0].data.endswith("ped2-official.parquet")
    with pytest.raises(AdtkError, match="needs --frame-labels"):
        grid.plan({"data": str(src), "out": str(out)}, {}, "ped2", suite_options={})
    with pytest.raises(AdtkError, match="needs --data"):
        grid.plan({"out": str(out)}, {}, "ped2", suite_options={"frame_labels": str(fl)})
    with pytest.raises(AdtkError, match="would leave no test clip|only"):
        grid.plan({"data": str(src), "out": str(out)}, {}, "ped2",
                  suite_options={"frame_labels": str(fl), "labelled_clips": 6})
