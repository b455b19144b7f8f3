"""Weak (frame-level) labels: which labels training takes (--train-labels) and the
multiple-instance selection of negatives (--neg-select mil)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from toolkit.data.datasets import (
    abnormal_bags,
    load_manifest_data,
    training_labels,
    weak_label_source,
)
from toolkit.data.manifest import read_manifest, write_manifest
from toolkit.data.synthetic import make_split_manifest
from toolkit.errors import AdtkError
from toolkit.methods import create_method
from toolkit.methods.base import mil_select

# --- the selection rule ---------------------------------------------------------------------


def test_mil_keeps_the_highest_scores_of_each_bag():
    scores = np.array([0.1, 0.5, 0.3, 0.9, 0.2, 0.2, 0.7])
    bags = np.array([0, 0, 0, 1, 2, 2, 0])
    assert mil_select(scores, bags, 1).tolist() == [3, 4, 6]  # tie in bag 2: lower index
    assert mil_select(scores, bags, 2).tolist() == [1, 3, 4, 5, 6]
    assert mil_select(scores, bags, 5).tolist() == list(range(7))  # k beyond a bag: all of it
    assert mil_select(scores, None, 1).tolist() == list(range(7))  # no bags: every sample
    with pytest.raises(AdtkError, match="bag ids"):
        mil_select(scores, bags[:3], 1)


def test_abnormal_bags_are_frames():
    meta = pd.DataFrame({"video": ["a", "a", "a", "b"], "frame_idx": [3, 3, 4, 3]})
    bags = abnormal_bags(meta)
    assert bags[0] == bags[1] and len(set(bags.tolist())) == 3
    assert abnormal_bags(pd.DataFrame({"sample_id": ["x"]})) is None


@pytest.fixture(scope="module")
def toy_bags(tiny_digits):
    """Bags like interval-labelled frames: each holds one true anomaly (an inverted digit:
    white background) and three normal digits (unseen in training), all labelled abnormal."""
    d = tiny_digits
    g = np.random.default_rng(0)
    normals = d.test.x[d.test.y == 0]
    odd = 255 - normals[-20:]
    pick = torch.as_tensor(g.choice(len(normals) - 20, size=60, replace=False))
    x_abn, bags, truth = [], [], []
    for b in range(20):
        members = [odd[b], *normals[pick[3 * b : 3 * b + 3]]]
        order = g.permutation(4)  # the anomaly at a random place in its bag
        for j in order:
            x_abn.append(members[j])
            bags.append(b)
            truth.append(j == 0)
    return d.train.x, torch.stack(x_abn), np.array(bags), np.array(truth)


def test_mil_picks_the_instance_that_is_different(toy_bags, capsys):
    from toolkit.engine.train import TrainData, train

    x, x_abn, bags, truth = toy_bags
    m = create_method("adnl", neg_select="mil", latent_dim=8, width=8, neg_loss="scaled")
    res = train(m, TrainData(x, x_abn, abn_bags=bags), epochs=4, batch_size=64, seed=0,
                progress="lines")
    hist = res.history
    # the epoch lines print the count of chosen negatives as a count, not 20.0000
    assert "neg_selected 20," in capsys.readouterr().err
    # epoch 1 is normal-only under mil; afterwards one negative per bag (frame)
    assert np.isnan(hist["neg_selected"].iloc[0]) and np.isnan(hist["neg"].iloc[0])
    assert (hist["neg_selected"].iloc[1:] == 20).all()
    chosen = m.select_negatives(x_abn, bags, epoch=5).cpu().numpy()
    assert len(chosen) == 20 and len(set(bags[chosen])) == 20
    assert truth[chosen].mean() >= 0.9  # the odd one of (nearly) every bag; chance: 0.25
    # all: every labelled anomaly, no selection
    m_all = create_method("adnl", neg_select="all", latent_dim=8, width=8)
    assert m_all.build(1, 16).select_negatives(x_abn, bags, 2) is None


def test_auto_bound_follows_the_label_strength():
    from toolkit.methods import get_method

    cls = get_method("adnl")
    assert cls.resolve_settings({"neg_bound": "auto"}, {"weak_labels": True}) == {
        "neg_bound": "margin"}
    assert cls.resolve_settings({"neg_bound": "auto"}, {"weak_labels": False}) == {
        "neg_bound": "none"}
    assert cls.resolve_settings({"neg_bound": "none"}, {"weak_labels": True}) == {
        "neg_bound": "none"}  # the user's choice stays


# --- which labels training takes ---------------------------------------------------------------


def _region_manifest(tmp_path, with_regions=True):
    """A split manifest as ``adtk extract --regions`` writes it: the train split's 8 abnormal
    crops are region-labelled objects, and 10 of its normal crops share their frames (abnormal
    by the interval label only)."""
    man = make_split_manifest(tmp_path)
    df = read_manifest(man)
    train = (df["split"] == "train").to_numpy()
    interval = df["label"].astype(object).copy()
    walkers = np.flatnonzero(train & (df["label"] == "normal").to_numpy())[-10:]
    interval.iloc[walkers] = "abnormal"
    if with_regions:
        df["label_interval"] = interval
        df["label_source"] = "region"
    else:  # interval labels only: label is the interval label
        df["label"] = interval
        df["label_source"] = "interval"
    return write_manifest(df, man, kind="split")


def test_training_labels_switch_only_the_train_split(tmp_path):
    man = _region_manifest(tmp_path)
    df = read_manifest(man)
    train = (df["split"] == "train").to_numpy()
    auto, src = training_labels(df, "auto")
    assert src == "region" and (auto == df["label"]).all()
    interval, src = training_labels(df, "interval")
    assert src == "interval" and not weak_label_source("region") and weak_label_source(src)
    assert (interval[train] == "abnormal").sum() == 18
    assert (interval[~train] == df["label"][~train]).all()  # val and test keep their labels
    assert (training_labels(df, "region")[0] == df["label"]).all()
    d = load_manifest_data(man, size=16, train_labels="interval")
    assert len(d.train_abn) == 18 and len(d.train) == 30
    assert d.info["train_label_source"] == "interval"
    assert (d.test.meta["label"] == "abnormal").sum() == 6  # test labels unchanged


def test_region_training_labels_need_region_labels(tmp_path):
    man = _region_manifest(tmp_path, with_regions=False)
    with pytest.raises(AdtkError, match="has no region labels"):
        training_labels(read_manifest(man), "region", where=str(man))
    df = read_manifest(man)
    df["label_source"] = np.where(df["split"] == "train", "interval", "region")
    with pytest.raises(AdtkError, match="18 abnormal train crop"):
        training_labels(df, "region")
    with pytest.raises(AdtkError, match="unknown train_labels"):
        training_labels(df, "object")


def test_train_labels_and_neg_select_reach_config_and_run_id(tmp_path):
    from toolkit.engine.run import resolve_bench_config

    man = _region_manifest(tmp_path / "r")
    weak = _region_manifest(tmp_path / "w", with_regions=False)

    def cfg(data, **kw):
        return resolve_bench_config(method="adnl", data=str(data), **{"epochs": 1, **kw})

    region_auto, region_int = cfg(man), cfg(man, train_labels="interval", epochs=3)
    # region labels: every anomaly, unbounded (the paper); interval labels: the choice made
    # once after a normal-only third of the epochs (at least one), and the bounded term
    assert (region_auto.params["neg_select"], region_auto.params["neg_bound"]) == ("all", "none")
    assert region_auto.params["mil_warmup"] == 0
    assert (region_int.params["neg_select"], region_int.params["neg_bound"]) == (
        "mil-once", "margin")
    assert region_int.params["mil_warmup"] == 1
    assert cfg(man, train_labels="interval", epochs=15).params["mil_warmup"] == 5
    given = cfg(man, train_labels="interval", epochs=15, mil_warmup=8)
    assert given.params["mil_warmup"] == 8  # the user's choice stays
    assert cfg(man, train_labels="interval", neg_select="all").params["mil_warmup"] == 0
    # one epoch leaves no room for a choice: auto takes every crop; asked for, it is an error
    assert cfg(man, train_labels="interval").params["neg_select"] == "all"
    with pytest.raises(AdtkError, match="leaves none of the 1 for the negatives"):
        cfg(man, train_labels="interval", neg_select="mil-once")
    with pytest.raises(AdtkError, match="warm-up of 15 normal-only"):
        cfg(man, train_labels="interval", epochs=15, mil_warmup=15)
    # the warm-up is part of the run id only where the once-made choice uses it
    assert "mil_warmup" in region_int.hash_dict()["params"]
    assert cfg(man, mil_warmup=3).run_id == region_auto.run_id
    assert region_int.warmup_epochs == 0  # ADNL's own warm-up (its negatives and pseudo) stays
    # ABC has the selection too, and no warm-up setting of its own
    abc = resolve_bench_config(method="abc", data=str(man), train_labels="interval", epochs=9)
    assert (abc.params["neg_select"], abc.params["mil_warmup"]) == ("mil-once", 3)
    assert region_auto.run_id != region_int.run_id
    assert "train_labels" not in region_auto.hash_dict()  # auto: earlier run ids kept
    assert region_int.hash_dict()["train_labels"] == "interval"
    # how anomalies were used before these settings: not hashed, earlier ids kept
    assert set(region_auto.hash_dict().get("params", {})).isdisjoint(
        {"neg_select", "mil_k", "neg_bound", "neg_margin"})
    assert cfg(weak).params["neg_bound"] == "margin"  # no region labels: auto -> margin
    forced = cfg(weak, neg_bound="none")  # the user overrides auto
    assert forced.params["neg_bound"] == "none" and forced.run_id != cfg(weak).run_id
    # the margin (default 4) is part of a bounded run's id; margin 2, the default before, is
    # not (those runs keep their ids); an unbounded run's id never holds it (unused there)
    assert cfg(weak).params["neg_margin"] == 4.0
    assert cfg(weak).hash_dict()["params"]["neg_margin"] == 4.0
    assert "neg_margin" not in cfg(weak, neg_margin=2.0).hash_dict().get("params", {})
    assert "neg_margin" not in forced.hash_dict().get("params", {})
    region_mil = cfg(man, neg_select="mil")
    assert region_mil.params["neg_select"] == "mil" and region_mil.run_id != region_auto.run_id
    with pytest.raises(AdtkError, match="has no region labels"):
        cfg(weak, train_labels="region")
    with pytest.raises(AdtkError, match="applies to crop manifests"):
        resolve_bench_config(method="adnl", anomaly_digit=1, train_labels="interval")
    # the baseline does not declare the selection: nothing of it in its config
    assert "neg_select" not in resolve_bench_config(method="baseline", data=str(weak)).params


def test_short_run_with_interval_labels(tmp_path):
    from toolkit.engine.run import resolve_bench_config, run_one

    man = _region_manifest(tmp_path)
    cfg = resolve_bench_config(method="adnl", data=str(man), epochs=3, batch_size=16, size=16,
                               train_labels="interval", neg_select="mil", device="cpu",
                               num_threads=1)
    folder = run_one(cfg, tmp_path / "runs", progress=False)
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert config["train_labels"] == "interval" and config["params"]["neg_select"] == "mil"
    assert config["params"]["neg_bound"] == "margin"  # the weak-label default, resolved
    assert metrics["train_label_source"] == "interval" and metrics["neg_select"] == "mil"
    assert metrics["neg_bound"] == "margin"
    assert metrics["n_train_abnormal"] == 18
    hist = pd.read_parquet(folder / "history.parquet")
    # frames of this manifest hold two crops: one negative per abnormal frame
    assert hist["neg_selected"].iloc[1:].tolist() == [9.0, 9.0]
    scores = pd.read_parquet(folder / "scores.parquet")
    assert (scores.query("split == 'test'")["label"] == "abnormal").sum() == 6


def test_bounded_negative_term_stops_pushing_past_the_cap():
    from toolkit.models.losses import NegativeLoss

    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.tensor([0.5, 2.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2).clone()
    x_hat.requires_grad_(True)
    loss = NegativeLoss("naive")(x, x_hat, cap=1.0)  # MSEs 0.25 (below the cap) and 4.0
    loss.backward()
    assert loss.item() == pytest.approx(-(0.25 + 1.0) / 2)
    g = x_hat.grad.flatten(1).abs().sum(1)
    assert g[0] > 0 and g[1] == 0  # the one already past the cap is left alone
    # ADNL: the cap is neg_margin times the batch's mean normal error
    m = create_method("adnl", neg_bound="margin", neg_margin=2.0, latent_dim=4, width=4)
    m.build(1, 8)
    xa = torch.zeros(3, 1, 8, 8)
    term = m.negative_term(xa, xa + 1.0, normal_mse=torch.tensor(0.1))  # MSE 1 -> capped 0.2
    assert term.item() == pytest.approx(-0.2)
    unbounded = create_method("adnl", neg_bound="none", latent_dim=4, width=4).build(1, 8)
    assert unbounded.negative_term(xa, xa + 1.0, torch.tensor(0.1)).item() == pytest.approx(-1)


def test_tables_keep_region_and_interval_runs_apart(tmp_path):
    from toolkit.eval.tables import Run, varying

    def run(tl, seed):
        return Run(tmp_path, {"method": "adnl", "seed": seed, "train_labels": tl,
                              "params": {"neg_bound": "none" if tl == "auto" else "margin"}})

    runs = [run("auto", 1), run("auto", 2), run("interval", 1), run("interval", 2)]
    assert "train_labels" in varying(runs)  # two rows, not one pooled over both
    assert "train_labels" not in varying(runs[:2])


def test_mil_and_bound_resume_bit_identical(toy_bags, tmp_path):
    """The selection is made from the model at the start of each epoch, so a run killed after
    epoch 2 and resumed chooses the same negatives and ends with the same weights."""
    from toolkit.engine.train import TrainData, TrainingInterrupted, load_checkpoint, train

    x, x_abn, bags, _ = toy_bags
    data = TrainData(x[:128], x_abn, abn_bags=bags)
    kw = dict(epochs=4, batch_size=32, seed=3)

    def make():
        return create_method("adnl", neg_select="mil", neg_bound="margin", latent_dim=4,
                             width=4)

    full = make()
    r_full = train(full, data, checkpoint=tmp_path / "a.pt", **kw)

    def stop(epoch, row):
        if epoch == 2:
            raise TrainingInterrupted("killed")

    with pytest.raises(TrainingInterrupted):
        train(make(), data, checkpoint=tmp_path / "b.pt", on_epoch=[stop], **kw)
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 2
    torch.manual_seed(999)
    second = make()
    r_res = train(second, data, checkpoint=tmp_path / "b.pt", **kw)
    for k, v in full.model_.state_dict().items():
        assert torch.equal(v, second.model_.state_dict()[k]), k
    cols = [c for c in r_full.history.columns if c != "time_s"]
    pd.testing.assert_frame_equal(r_full.history[cols], r_res.history[cols])
    assert (r_full.history["neg_selected"].iloc[1:] == 20).all()


def test_mil_once_chooses_once_after_the_warm_up_and_keeps_the_choice(toy_bags, tmp_path):
    """mil-once: no negative before the warm-up ends; then one choice, made by the model as it
    is then, kept for every later epoch and across a resume (it is in the checkpoint)."""
    from toolkit.engine.train import TrainData, TrainingInterrupted, train

    x, x_abn, bags, truth = toy_bags
    data = TrainData(x, x_abn, abn_bags=bags)
    kw = dict(epochs=5, batch_size=64, seed=0)

    def make():
        return create_method("adnl", neg_select="mil-once", mil_warmup=2, latent_dim=8,
                             width=8, neg_loss="scaled")

    m = make()
    res = train(m, data, checkpoint=tmp_path / "a.pt", **kw)
    hist = res.history
    assert hist["neg_selected"].iloc[:2].isna().all() and hist["neg"].iloc[:2].isna().all()
    assert (hist["neg_selected"].iloc[2:] == 20).all()
    chosen = m.neg_chosen_.numpy()
    assert len(set(bags[chosen])) == 20 and truth[chosen].mean() >= 0.9  # chance: 0.25
    # kept: the model has moved since, the choice has not
    assert torch.equal(m.select_negatives(x_abn, bags, epoch=9).cpu(), m.neg_chosen_)
    assert not m.scores_negatives(9)

    def stop(epoch, row):
        if epoch == 4:
            raise TrainingInterrupted("killed")

    with pytest.raises(TrainingInterrupted):
        train(make(), data, checkpoint=tmp_path / "b.pt", on_epoch=[stop], **kw)
    second = make()
    train(second, data, checkpoint=tmp_path / "b.pt", **kw)
    assert torch.equal(second.neg_chosen_, m.neg_chosen_)
    for k, v in m.model_.state_dict().items():
        assert torch.equal(v, second.model_.state_dict()[k]), k


def test_selection_scores_with_exact_batchnorm_statistics(toy_bags, monkeypatch):
    """The selection scores in eval mode, so the loop recomputes BatchNorm's statistics from
    the weights of the epoch before (as it does for validation); running averages lag behind
    and ranked the anomalies of Ped2's frames no better than chance."""
    from toolkit.engine.train import TrainData, train
    from toolkit.methods.base import AutoencoderMethod

    x, x_abn, bags, _ = toy_bags
    calls: list[int] = []
    orig = AutoencoderMethod.recalibrate_bn
    monkeypatch.setattr(AutoencoderMethod, "recalibrate_bn",
                        lambda self, b: (calls.append(1), orig(self, b))[1])
    data = TrainData(x[:128], x_abn, abn_bags=bags)
    for select, warm, expected in (("all", 0, 1), ("mil", 0, 3), ("mil-once", 1, 2)):
        calls.clear()
        m = create_method("adnl", neg_select=select, mil_warmup=warm, latent_dim=4, width=4)
        train(m, data, epochs=3, batch_size=32, seed=1)
        # all: the final model only; mil: before epochs 2 and 3, and the final model;
        # mil-once: before its one choice (epoch 2) and the final model
        assert len(calls) == expected, select


def test_mil_once_outside_bench_warms_up_a_third_and_forgets_an_old_choice(toy_bags):
    """Created directly (no bench resolution), mil_warmup 0 still means a third of the epochs
    train() runs; training the same object again makes a new choice for the new anomalies."""
    from toolkit.engine.train import TrainData, train

    x, x_abn, bags, _ = toy_bags
    m = create_method("adnl", neg_select="mil-once", latent_dim=4, width=4)
    hist = train(m, TrainData(x[:128], x_abn, abn_bags=bags), epochs=6, batch_size=32,
                 seed=0).history
    chosen = hist["neg_selected"]
    assert chosen.iloc[:2].isna().all() and (chosen.iloc[2:] == 20).all()  # 2 of 6 warm up
    first = m.neg_chosen_.clone()
    # fewer anomalies (5 bags) on the second training: the old indices would be out of range
    keep = np.flatnonzero(bags < 5)
    hist2 = train(m, TrainData(x[:128], x_abn[keep], abn_bags=bags[keep]), epochs=3,
                  batch_size=32, seed=0).history
    assert (hist2["neg_selected"].iloc[1:] == 5).all()
    assert int(m.neg_chosen_.max()) < len(keep) and not torch.equal(m.neg_chosen_, first)
