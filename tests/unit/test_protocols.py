"""Clip-level protocol splits: official and few-shot; no clip in train and test."""

import numpy as np
import pytest

from toolkit.data import protocols as P
from toolkit.data.synthetic import make_clip_manifest
from toolkit.errors import AdtkError

TRAIN = [f"train/train_{i:02d}.mp4" for i in range(1, 17)]
TEST = [f"test/test_{i:02d}.mp4" for i in range(1, 13)]


def test_official_trains_on_every_non_test_clip_and_tests_on_every_test_clip():
    s = P.official_split(TRAIN + TEST, TEST)
    assert list(s.train) == sorted(TRAIN) and list(s.test) == sorted(TEST)
    assert not set(s.train) & set(s.test)
    df = P.assign(make_clip_manifest(TRAIN + TEST), s)
    assert set(df.loc[df.split == "test", "video"]) == set(TEST)
    assert len(df) == 3 * 28


@pytest.mark.parametrize("seed", range(1, 9))
def test_fewshot_moves_k_seeded_test_clips_into_training(seed):
    s = P.fewshot_split(TRAIN + TEST, TEST, 3, seed)
    assert len(s.labelled) == 3 and set(s.labelled) <= set(TEST)
    assert set(s.train) == set(TRAIN) | set(s.labelled)
    assert set(s.test) == set(TEST) - set(s.labelled) and len(s.test) == 9
    assert not set(s.train) & set(s.test)
    assert s == P.fewshot_split(TRAIN + TEST, TEST, 3, seed)  # same seed, same clips
    df = P.assign(make_clip_manifest(TRAIN + TEST), s)
    # every crop of a clip lands in that clip's split: no clip in both
    assert (df.groupby("video")["split"].nunique() == 1).all()


def test_seeds_choose_different_clips_and_the_choice_ignores_list_order():
    chosen = {P.fewshot_split(TRAIN + TEST, TEST, 3, s).labelled for s in range(1, 9)}
    assert len(chosen) > 4
    shuffled = list(np.random.default_rng(0).permutation(TRAIN + TEST))
    assert (P.fewshot_split(shuffled, TEST[::-1], 3, 5).labelled
            == P.fewshot_split(TRAIN + TEST, TEST, 3, 5).labelled)


def test_fewshot_chooses_only_among_candidates_and_checks_k():
    cand = P.abnormal_clips(make_clip_manifest(TRAIN + TEST, abnormal=TEST[:4]))
    assert cand == sorted(TEST[:4])
    for seed in range(10):
        assert set(P.fewshot_split(TRAIN + TEST, TEST, 2, seed, candidates=cand).labelled) <= set(
            cand)
    with pytest.raises(AdtkError, match="only 4 test clip"):
        P.fewshot_split(TRAIN + TEST, TEST, 5, 0, candidates=cand)
    with pytest.raises(AdtkError, match="would leave no test clip"):
        P.fewshot_split(TRAIN + TEST[:2], TEST[:2], 2, 0)
    with pytest.raises(AdtkError, match=">= 1"):
        P.fewshot_split(TRAIN + TEST, TEST, 0, 0)
    with pytest.raises(AdtkError, match="none of the 1 test clips"):
        P.official_split(TRAIN, ["test/nope.mp4"])
    assert P.abnormal_clips(make_clip_manifest(TEST, abnormal=TEST[:2]), events=["cart"]) == []


def write_crop_manifest(path, videos, abnormal=()):
    from toolkit.data import manifest as mf

    path.parent.mkdir(parents=True, exist_ok=True)
    return mf.write_manifest(make_clip_manifest(videos, abnormal), path)


def test_written_manifests_share_test_clips_between_methods_and_resume(tmp_path):
    from toolkit.data import manifest as mf

    videos = TRAIN[:3] + TEST[:4]
    src = write_crop_manifest(tmp_path / "crops" / "manifest.parquet", videos, TEST[:4])
    split = P.fewshot_split(videos, TEST[:4], 1, 3)
    a = P.write_protocol_manifest(src, tmp_path / "s" / "f.parquet", split)
    assert a.written
    got = mf.read_manifest(a.path)
    meta = mf.read_meta(a.path)
    assert meta["test_videos"] == list(split.test) and meta["protocol"] == "fewshot"
    assert set(got.loc[got.split == "test", "video"]) == set(split.test)
    assert mf.crops_root(a.path) == src.parent.resolve()
    before = a.path.stat().st_mtime_ns
    again = P.write_protocol_manifest(src, a.path, split)  # same source and split: kept
    assert not again.written and a.path.stat().st_mtime_ns == before
    other = P.write_protocol_manifest(src, a.path, P.fewshot_split(videos, TEST[:4], 2, 3))
    assert other.written


def test_protocol_splits_share_one_crop_cache_beside_their_source(tmp_path):
    import cv2
    import torch

    from toolkit.data import manifest as mf
    from toolkit.data.datasets import load_crop_tensor, load_manifest_data

    videos = TRAIN[:2] + TEST[:3]
    df = make_clip_manifest(videos, TEST[:3])
    src = tmp_path / "crops" / "manifest.parquet"
    rng = np.random.default_rng(0)
    for p in [*df["path"], *df["path_oversize"]]:
        (src.parent / p).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src.parent / p), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    mf.write_manifest(df, src)
    direct = load_crop_tensor(src, df, "normal", 8)
    for seed in (1, 2):
        split = P.fewshot_split(videos, TEST[:3], 1, seed)
        out = P.write_protocol_manifest(src, tmp_path / "splits" / f"{seed}.parquet", split)
        data = load_manifest_data(out.path, size=8)
        for part in (data.train, data.test, data.train_abn):
            idx = df.reset_index().set_index("crop_id").loc[part.meta["sample_id"], "index"]
            assert torch.equal(part.x, direct[torch.as_tensor(idx.to_numpy().copy())])
    assert sorted(p.name for p in tmp_path.rglob("*.cache.pt")) == ["manifest.normal8.cache.pt"]


def test_unseen_kind_split_labels_only_clips_of_the_seen_kind():
    df = make_clip_manifest(TRAIN + TEST, TEST)
    kinds = {TEST[3]: "cart", TEST[11]: "skateboard"}
    df["event"] = [kinds.get(v, e) if e is not None else None
                   for v, e in zip(df.video, df.event, strict=True)]
    ev = P.clip_events(df)
    assert ev[TEST[3]] == {"cart"} and ev[TEST[0]] == {"bike"} and TRAIN[0] not in ev
    for seed in range(1, 9):
        s = P.unseen_kind_split(TRAIN + TEST, TEST, 3, seed, ev, ["bike"])
        assert set(s.labelled).isdisjoint({TEST[3], TEST[11]})
        assert {TEST[3], TEST[11]} <= set(s.test) and s.name == f"fewshot-k3-bike-seed{seed}"
