"""The engine: resume equality, NaN guard, selection, and run_one's run-folder contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from toolkit.data.synthetic import make_split_manifest
from toolkit.engine.run import resolve_bench_config, run_one
from toolkit.engine.train import (
    NonFiniteLossError,
    TrainData,
    TrainingInterrupted,
    fit,
    load_checkpoint,
    train,
)
from toolkit.errors import AdtkError
from toolkit.methods import create_method, list_methods

TINY = dict(width=8, latent_dim=8)
#: A tiny bench config: digits at 16x16, 3 epochs, one thread (fast and deterministic).
TINY_RUN = dict(
    dataset="digits", anomaly_digit=1, epochs=3, batch_size=64, width=8, latent_dim=8,
    device="cpu", num_threads=1,
)


@pytest.fixture(scope="module")
def data(tiny_digits):
    d = tiny_digits
    keep = np.arange(len(d.train)) < 300
    return TrainData(d.train.x[torch.as_tensor(keep)], d.train_abn.x, d.val.x, d.val.y)


def _stop_after(k):
    def cb(epoch, row):
        if epoch == k:
            raise TrainingInterrupted(f"killed after epoch {k}")

    return cb


@pytest.mark.parametrize("name", list_methods())
def test_resume_gives_the_same_result(name, data, tmp_path, tiny_method):
    kw = dict(epochs=4, batch_size=32, seed=3, select="best-val")
    full = tiny_method(name)
    r_full = train(full, data, checkpoint=tmp_path / "a.pt", **kw)

    first = tiny_method(name)
    with pytest.raises(TrainingInterrupted):
        train(first, data, checkpoint=tmp_path / "b.pt", on_epoch=[_stop_after(2)], **kw)
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 2
    torch.manual_seed(999)  # a new process would start from other RNG states
    np.random.seed(999)
    second = tiny_method(name)  # a fresh object, as after a restart
    r_res = train(second, data, checkpoint=tmp_path / "b.pt", **kw)

    assert r_res.resumed_from == 2 and r_full.resumed_from == 0
    a, b = full.model_.state_dict(), second.model_.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert np.array_equal(full.score_samples(data.val_x), second.score_samples(data.val_x))
    cols = [c for c in r_full.history.columns if c != "time_s"]
    assert list(r_res.history.columns) == list(r_full.history.columns)
    pd.testing.assert_frame_equal(r_full.history[cols], r_res.history[cols])
    assert r_full.selected_epoch == r_res.selected_epoch


def test_nan_guard_keeps_the_last_good_checkpoint(data, tmp_path):
    # A broken labelled anomaly (NaN pixels) enters once the warm-up ends, in epoch 2.
    bad_abn = torch.full((4, 1, 16, 16), float("nan"))
    broken = TrainData(data.x, bad_abn, data.val_x, data.val_y)
    m = create_method("adnl", warmup_epochs=1, **TINY)
    ck = tmp_path / "ck.pt"
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, step 1.*checkpoint \(epoch 1\)"):
        train(m, broken, epochs=3, batch_size=32, checkpoint=ck)
    state = load_checkpoint(ck)
    assert state["epoch"] == 1
    weights = [v for v in state["method"]["model"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)


def test_select_best_val_restores_the_best_epoch(data):
    m = create_method("adnl", **TINY)
    r = train(m, data, epochs=4, batch_size=32, select="best-val")
    h = r.history
    assert r.best_epoch == int(h.loc[h["val_auc"].idxmax(), "epoch"]) == r.selected_epoch
    assert r.best_val_auc == pytest.approx(h["val_auc"].max())
    from toolkit.eval.metrics import auroc

    # The model in hand is the best epoch's model: its val AUC is the recorded best.
    assert auroc(data.val_y, m.score_samples(data.val_x)) == pytest.approx(r.best_val_auc)


# --- run_one -----------------------------------------------------------------------------------


def test_run_folder_contract_and_skip(tmp_path):
    cfg = resolve_bench_config(method="adnl", unseen_digit=7, **TINY_RUN)
    folder = run_one(cfg, tmp_path)
    assert folder.name == cfg.run_id and len(cfg.run_id) == 12
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "history.parquet", "scores.parquet", "model.pt", "metrics.json"} <= names
    assert "checkpoint.pt" not in names and "error.json" not in names

    conf = json.loads((folder / "config.json").read_text())
    assert conf["run_id"] == cfg.run_id and conf["epochs"] == 3
    assert conf["neg_loss"] in ("naive", "scaled")
    assert all(v is not None for k, v in conf.items() if k in ("lr", "latent_dim", "width", "size"))

    h = pd.read_parquet(folder / "history.parquet")
    assert list(h.columns) == ["epoch", "loss", "rec", "adv", "neg", "disc", "val_auc", "time_s"]
    assert h["epoch"].dtype == "int64" and h["epoch"].tolist() == [1, 2, 3]

    s = pd.read_parquet(folder / "scores.parquet")
    assert set(s["split"]) == {"val", "test"} and set(s["label"]) == {"normal", "abnormal"}
    assert s["sample_id"].str.startswith("digits:").all() and s["sample_id"].is_unique
    assert {"event", "target"} <= set(s.columns) and s["score"].dtype == "float64"
    assert set(s.loc[s["label"] == "abnormal", "event"]) <= {"1", "7"}

    m = json.loads((folder / "metrics.json").read_text())
    for key in (
        "run_id", "method", "dataset", "data", "crop", "seed", "anomaly_digit", "unseen_digit",
        "neg_loss", "neg_weight", "labelled_anomalies", "preset", "test_auroc",
        "test_auroc_ci95", "test_aupr", "test_n", "test_n_abnormal", "best_val_auc",
        "best_epoch", "selected_epoch", "select", "test_auroc_seen", "test_auroc_unseen",
        "test_auroc_by_event", "test_frame_auroc", "epochs", "n_train", "n_train_abnormal",
        "wall_time_s", "train_images_per_s", "device", "versions", "hardware", "finished_at",
    ):
        assert key in m, key
    test = s[s["split"] == "test"]
    from toolkit.eval.metrics import auroc

    y = (test["label"] == "abnormal").to_numpy()
    assert m["test_auroc"] == pytest.approx(auroc(y, test["score"]))
    assert m["test_n"] == len(test) and m["test_auroc_unseen"] is not None
    assert set(m["test_auroc_by_event"]) == {"1", "7"}
    assert m["n_train_abnormal"] > 0 and m["train_images_per_s"] > 0

    sd = torch.load(folder / "model.pt", weights_only=True)
    assert any(k.startswith("encoder.") for k in sd)

    before = (folder / "metrics.json").stat().st_mtime_ns
    assert run_one(cfg, tmp_path) == folder  # finished: skipped
    assert (folder / "metrics.json").stat().st_mtime_ns == before
    run_one(cfg, tmp_path, force=True)  # --force re-trains
    assert (folder / "metrics.json").stat().st_mtime_ns != before


def test_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    cfg = resolve_bench_config(method="baseline", **TINY_RUN)
    ref = run_one(cfg, tmp_path / "a")
    with pytest.raises(TrainingInterrupted):
        run_one(cfg, tmp_path / "b", on_epoch=(_stop_after(1),))
    folder = tmp_path / "b" / cfg.run_id
    assert (folder / "checkpoint.pt").is_file() and not (folder / "metrics.json").exists()
    assert len(pd.read_parquet(folder / "history.parquet")) == 1
    loads = []
    real_load = torch.load

    def counting_load(f, *a, **k):
        loads.append(str(f))
        return real_load(f, *a, **k)

    monkeypatch.setattr(torch, "load", counting_load)
    run_one(cfg, tmp_path / "b")
    monkeypatch.undo()
    # The resume reads checkpoint.pt once (it was read twice: once for the history rows).
    assert [f for f in loads if f.endswith("checkpoint.pt")] == [str(folder / "checkpoint.pt")]
    assert pd.read_parquet(folder / "history.parquet")["epoch"].tolist() == [1, 2, 3]
    s_ref = pd.read_parquet(ref / "scores.parquet")
    s_res = pd.read_parquet(folder / "scores.parquet")
    pd.testing.assert_frame_equal(s_ref, s_res)
    m = json.loads((folder / "metrics.json").read_text())
    assert m["resumed_from_epoch"] == 1
    assert m["test_auroc"] == json.loads((ref / "metrics.json").read_text())["test_auroc"]


def test_run_id_ignores_device_and_paths():
    a = resolve_bench_config(method="adnl", **TINY_RUN)
    b = resolve_bench_config(method="adnl", **{**TINY_RUN, "device": "auto", "num_threads": 2})
    c = resolve_bench_config(method="adnl", out="elsewhere", **TINY_RUN)
    d = resolve_bench_config(method="adnl", **{**TINY_RUN, "seed": 1})
    assert a.run_id == b.run_id == c.run_id != d.run_id


def test_run_id_follows_the_manifest_content_not_its_path_spelling(tmp_path, monkeypatch):
    man = make_split_manifest(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    ids = {
        resolve_bench_config(method="adnl", data=d, size=16).run_id
        for d in ("a/tiny.parquet", "./a/tiny.parquet", str(man.resolve()))
    }
    assert len(ids) == 1
    other = make_split_manifest(tmp_path / "b", seed=1)  # other crops, other content
    assert resolve_bench_config(method="adnl", data=str(other), size=16).run_id not in ids


def test_presets_fill_every_field_and_flags_win():
    q = resolve_bench_config(dataset="mnist-5k", anomaly_digit=3)
    p = resolve_bench_config(preset="paper", dataset="mnist-5k", anomaly_digit=3)
    assert (p.epochs, p.batch_size) == (100, 256)
    assert q.epochs < p.epochs and q.size == 32
    flagged = resolve_bench_config(preset="paper", epochs=2, dataset="digits", anomaly_digit=1)
    assert flagged.epochs == 2


def test_paper_preset_for_crops(tmp_path):
    man = make_split_manifest(tmp_path)
    cfg = resolve_bench_config(preset="paper", data=str(man))
    assert (cfg.epochs, cfg.batch_size, cfg.dataset, cfg.size) == (1000, 1024, "manifest", 64)
    assert cfg.data_sha256 and cfg.anomaly_digit is None


@pytest.mark.parametrize(
    "flags,message",
    [
        (dict(method="nope"), "unknown method 'nope'"),
        (dict(dataset="cifar"), "unknown dataset 'cifar'"),
        (dict(dataset="mnist-5k"), "needs --anomaly-digit"),
        (dict(dataset="manifest"), "needs --data"),
        (dict(data="no/such.parquet"), "no such manifest"),
        (dict(anomaly_digit=1, labelled_anomalies="few"), "number or 'all'"),
        (dict(anomaly_digit=1, preset="huge"), "unknown preset"),
        (dict(anomaly_digit=1, neg_loss="log"), "unknown neg_loss"),
        (dict(anomaly_digit=1, bogus=1), "unknown setting"),
        (dict(anomaly_digit=1, batch_size=1), "batch_size must be >= 2"),
        (dict(anomaly_digit=1, warmup_epochs=-2), "warmup_epochs must be a number >= 0"),
        (dict(anomaly_digit=1, lr=-1.0), "lr must be a number > 0"),
        (dict(anomaly_digit=1, neg_weight=float("nan")), "neg_weight must be a number >= 0"),
        (dict(anomaly_digit=1, size=12), "size must be a power of two"),
        (dict(anomaly_digit=1, seed=-1), "seed must be in 0"),
    ],
)
def test_bad_settings_fail_before_training(flags, message):
    with pytest.raises(AdtkError, match=message):
        resolve_bench_config(**flags)


def test_cuda_without_a_gpu_fails_at_resolution(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AdtkError, match="no CUDA GPU is available"):
        resolve_bench_config(anomaly_digit=1, device="cuda")


def test_adnl_with_zero_labelled_anomalies_trains_exactly_as_the_baseline(tmp_path):
    """--labelled-anomalies 0 is the origin of the label-efficiency curve: ADNL with no
    negatives is the AAE, bit for bit (same seed, same data order)."""
    adnl = resolve_bench_config(method="adnl", **{**TINY_RUN, "labelled_anomalies": "0"})
    base = resolve_bench_config(method="baseline", **TINY_RUN)
    fa, fb = run_one(adnl, tmp_path), run_one(base, tmp_path)
    assert fa != fb
    ma, mb = (json.loads((f / "metrics.json").read_text()) for f in (fa, fb))
    assert ma["n_train_abnormal"] == 0
    assert ma["test_auroc"] == mb["test_auroc"]
    sa, sb = (pd.read_parquet(f / "scores.parquet") for f in (fa, fb))
    assert sa["score"].tolist() == sb["score"].tolist()


def test_adnl_without_anomalies_in_the_train_split_fails_before_training(tmp_path):
    man = make_split_manifest(tmp_path / "m", counts={"train": (20, 0), "test": (6, 3)})
    cfg = resolve_bench_config(method="adnl", data=str(man), size=16, epochs=1, device="cpu")
    with pytest.raises(AdtkError, match=r"needs labelled anomalies in train \(none in"):
        run_one(cfg, tmp_path)
    err = json.loads((tmp_path / cfg.run_id / "error.json").read_text())
    assert "labelled anomalies" in err["error"] and err["run_id"] == cfg.run_id
    assert not (tmp_path / cfg.run_id / "history.parquet").exists()  # nothing trained


def test_manifest_run_with_holdout_events(tmp_path):
    man = make_split_manifest(tmp_path, holdout_events=("running",))
    cfg = resolve_bench_config(
        method="adnl", data=str(man), size=16, epochs=3, batch_size=16, width=8,
        latent_dim=8, device="cpu", num_threads=1, select="best-val",
    )
    m = json.loads((run_one(cfg, tmp_path / "runs") / "metrics.json").read_text())
    assert m["dataset"] == "manifest" and m["data"] == str(man)
    assert set(m["test_auroc_by_event"]) == {"fall", "running"}
    assert m["test_auroc_seen"] is not None and m["test_auroc_unseen"] is not None
    assert m["unseen_events"] == ["running"]
    from toolkit.eval.tables import load_runs, unseen_table

    [t] = unseen_table(load_runs(tmp_path / "runs"))
    assert t.rows[0].labels[2] == "running"  # the held-out kind is named, not "held-out events"
    assert m["test_frame_auroc"] is not None and not math.isnan(m["test_frame_auroc"])
    s = pd.read_parquet(tmp_path / "runs" / cfg.run_id / "scores.parquet")
    assert {"video", "frame_idx"} <= set(s.columns) and s["sample_id"].str.contains("-").all()


@pytest.mark.parametrize("name", ["baseline", "adnl"])
def test_a_trailing_single_sample_joins_the_last_batch(name):
    """n = 2 * batch + 1: the last batch holds batch + 1 images (it was a shape error)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (9, 1, 8, 8), dtype=torch.uint8, generator=g)
    x_abn = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8, generator=g)
    m = create_method(name, width=4, latent_dim=4)
    fit(m, x, x_abn, epochs=1, batch_size=4, progress=False)
    assert m.result_.train_images >= 9 and m.score_samples(x).shape == (9,)
