"""Digit protocol splits, the crop cache, and bad manifests (errors before any training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from toolkit.data.datasets import (
    cache_path,
    cap_anomalies,
    digit_protocol_split,
    load_crop_tensor,
    load_digit_data,
    load_digit_images,
    load_manifest_data,
)
from toolkit.data.manifest import read_manifest, write_manifest
from toolkit.data.synthetic import make_split_manifest
from toolkit.errors import AdtkError


@pytest.mark.parametrize("name,size", [("digits", 16), ("mnist-5k", 32)])
def test_digit_images_are_uint8_at_network_size(name, size):
    x, y = load_digit_images(name)
    assert x.dtype == torch.uint8 and x.shape[1:] == (1, size, size)
    assert len(x) == len(y) and set(np.unique(y)) == set(range(10))
    assert int(x.max()) > 200  # scaled to 0..255, not left at 0..16


def test_mnist_padding_keeps_the_digit():
    x, _ = load_digit_images("mnist-5k")
    assert x[:, :, :2].max() == 0 and x[:, :, -2:].max() == 0  # 2-pixel zero border: padded


@pytest.mark.parametrize("anomaly,unseen", [(3, None), (7, 1)])
def test_mnist_protocol_split(anomaly, unseen):
    d = load_digit_data("mnist-5k", anomaly_digit=anomaly, unseen_digit=unseen, seed=4)
    # The anomaly digit never reaches the normal training data (all the baseline sees);
    # the unseen digit reaches no training data and no validation data at all.
    assert anomaly not in set(d.train.meta["target"])
    assert set(d.train_abn.meta["target"]) == {anomaly}
    if unseen is not None:
        for part in (d.train, d.train_abn, d.val):
            assert unseen not in set(part.meta["target"])
        assert d.unseen_events == (str(unseen),)
    # Test holds every digit; labels follow the protocol.
    assert set(d.test.meta["target"]) == set(range(10))
    abn = d.test.meta["target"].isin([anomaly, unseen]).to_numpy()
    assert (d.test.y == abn).all()
    # 8:2 train:test, validation out of train, no sample in two parts.
    ids = [set(p.meta["sample_id"]) for p in (d.train, d.train_abn, d.val, d.test)]
    assert sum(map(len, ids)) == len(set().union(*ids))
    assert len(d.test) == 1000
    n_train_val = 4000 - (400 if unseen is not None else 0)
    assert len(d.train) + len(d.train_abn) + len(d.val) == n_train_val
    assert 0 < d.val.y.sum() < len(d.val)  # val has both classes: AUC is defined


def test_protocol_split_is_seeded_and_stratified():
    y = np.repeat(np.arange(10), 100)
    a, b, c = (digit_protocol_split(y, s) for s in (1, 1, 2))
    assert (a == b).all() and not (a == c).all()
    for k in range(10):
        assert (a[y == k] == "test").sum() == 20


def test_labelled_anomaly_cap_is_seeded():
    assert cap_anomalies(10, "all", 0).tolist() == list(range(10))
    assert len(cap_anomalies(10, 3, 0)) == 3
    assert cap_anomalies(10, 3, 0).tolist() == cap_anomalies(10, 3, 0).tolist()
    d = load_digit_data("digits", anomaly_digit=2, labelled_anomalies=5)
    assert len(d.train_abn) == 5 and d.n_abn_available > 5


def test_digit_set_errors():
    with pytest.raises(AdtkError, match="needs --anomaly-digit"):
        load_digit_data("digits", anomaly_digit=None)
    with pytest.raises(AdtkError, match="differ from the anomaly digit"):
        load_digit_data("digits", anomaly_digit=2, unseen_digit=2)


def test_offline_mnist_names_the_offline_set(tmp_path, monkeypatch):
    # No files under data_root, and every download goes to a closed local port: offline.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(AdtkError, match="use --dataset mnist-5k"):
        load_digit_images("fashion-mnist", data_root=str(tmp_path))


# --- manifests --------------------------------------------------------------------------------


def test_manifest_data_and_cache(tmp_path):
    man = make_split_manifest(tmp_path, holdout_events=("running",))
    d = load_manifest_data(man, size=16)
    assert d.train.x.shape == (40, 3, 16, 16) and d.train.x.dtype == torch.uint8
    assert len(d.train_abn) == 8 and (d.train.y == 0).all() and (d.train_abn.y == 1).all()
    assert d.unseen_events == ("running",)
    assert "running" not in set(d.train_abn.meta["event"].dropna())
    assert "running" in set(d.test.meta["event"].dropna())
    # Red vertical bars (abnormal) vs grey horizontal ones: channel order is RGB.
    assert d.train_abn.x[:, 0].float().mean() > d.train_abn.x[:, 2].float().mean()
    cp = cache_path(man, "normal", 16, None)
    assert cp.is_file() and cp.name.endswith(".cache.pt")

    df = read_manifest(man)
    mtime = cp.stat().st_mtime_ns
    again = load_crop_tensor(man, df, "normal", 16)
    assert cp.stat().st_mtime_ns == mtime  # reused, not rebuilt
    # Changing the manifest rebuilds the cache (keyed by its sha256).
    df.loc[0, "path"] = df.loc[1, "path"]
    write_manifest(df, man, kind="split")
    rebuilt = load_crop_tensor(man, df, "normal", 16)
    assert torch.equal(rebuilt[0], again[1]) and not torch.equal(rebuilt[0], again[0])
    oversize = load_manifest_data(man, crop="oversize", size=16)
    assert oversize.train.x.shape == (40, 3, 16, 16)
    assert cache_path(man, "oversize", 16, None).is_file()


def test_cache_is_rebuilt_when_a_crop_file_changes_under_the_same_manifest(tmp_path):
    import os

    import cv2

    man = make_split_manifest(tmp_path)
    df = read_manifest(man)
    first = load_crop_tensor(man, df, "normal", 16)
    # crops re-extracted under the same paths: the split manifest does not change
    img = tmp_path / df.loc[0, "path"]
    cv2.imwrite(str(img), np.full((16, 16, 3), 255, np.uint8))
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_crop_tensor(man, df, "normal", 16)
    assert (again[0] == 255).all() and not torch.equal(again[0], first[0])
    assert torch.equal(again[1:], first[1:])


def test_manifest_is_hashed_once_per_run_and_the_cache_key_is_unchanged(tmp_path, monkeypatch):
    import toolkit.data.datasets as ds
    import toolkit.io
    from toolkit.engine.run import resolve_bench_config

    man = make_split_manifest(tmp_path)
    calls = []
    real = toolkit.io.sha256_file

    def counting(path, *a, **k):
        calls.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(toolkit.io, "sha256_file", counting)
    monkeypatch.setattr(ds, "sha256_file", counting)
    cfg = resolve_bench_config(method="adnl", data=str(man), size=16, device="cpu")
    d = ds.load_bench_data(cfg)  # cold: decodes and writes the cache
    assert len(calls) == 1 and len(d.train) == 40  # resolution only; loading reuses its hash
    cp = cache_path(man, "normal", 16, None)
    mtime = cp.stat().st_mtime_ns
    # The same key as a cache written without a known hash: a plain call reuses it.
    again = load_crop_tensor(man, read_manifest(man), "normal", 16)
    assert len(calls) == 2 and cp.stat().st_mtime_ns == mtime
    assert again.shape[1:] == (3, 16, 16)


def _rewrite(man, fn):
    df = read_manifest(man)
    df = fn(df)
    write_manifest(df, man, kind="split")
    return man


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda df: df.assign(split="test"), "no rows in the train split"),
        (
            lambda df: df[~((df["split"] == "train") & (df["label"] == "normal"))],
            "no normal crops in the train split$",
        ),
        (
            lambda df: df.assign(label="unlabeled", event=None),
            r"no normal crops in the train split: \d+ of its crops are unlabeled; label the "
            "normal footage when extracting, with a folder named normal/",
        ),
        (  # the anomalies labelled, the rest not: the same advice
            lambda df: df.assign(label=df["label"].where(df["label"] != "normal", "unlabeled")),
            r"no normal crops in the train split: \d+ of its crops are unlabeled",
        ),
    ],
)
def test_bad_manifests(tmp_path, change, message):
    man = _rewrite(make_split_manifest(tmp_path), change)
    with pytest.raises(AdtkError, match=message):
        load_manifest_data(man, size=16)


def test_missing_crop_file_is_named(tmp_path):
    man = make_split_manifest(tmp_path)
    load_manifest_data(man, size=16)  # warm cache: the check must still see the missing file
    (tmp_path / "crops" / "val-0003.png").unlink()
    with pytest.raises(AdtkError, match=r"crop file missing on disk: .*val-0003\.png"):
        load_manifest_data(man, size=16)


def test_crop_manifest_without_split_column(tmp_path):
    man = make_split_manifest(tmp_path)
    df = read_manifest(man).drop(columns="split")
    write_manifest(df, tmp_path / "crops.parquet", kind="crop")
    with pytest.raises(AdtkError, match="split"):
        load_manifest_data(tmp_path / "crops.parquet", size=16)


def test_unlabeled_crops_are_left_out(tmp_path):
    man = _rewrite(
        make_split_manifest(tmp_path),
        lambda df: df.assign(label=np.where(df.index % 5 == 0, "unlabeled", df["label"])),
    )
    d = load_manifest_data(man, size=16)
    for part in (d.train, d.train_abn, d.val, d.test):
        assert "unlabeled" not in set(part.meta["label"])
    assert isinstance(d.test.meta, pd.DataFrame) and len(d.test) < 18
