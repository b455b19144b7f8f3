"""Every registered method: two epochs on tiny digits, scores' shape and direction, its
settings, its history columns; negative learning and pseudo-anomalies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit.engine.train import NonFiniteLossError, fit
from toolkit.errors import AdtkError
from toolkit.eval.metrics import auroc
from toolkit.methods import create_method, get_method, list_methods


@pytest.fixture(scope="module")
def digits(tiny_digits):
    """conftest's tiny digit set: sklearn's digits at 16x16, 0 the anomaly, 400 normal train."""
    return tiny_digits


@pytest.fixture(scope="module")
def fitted(digits, tiny_method):
    """One two-epoch fit per registered method (shared by the checks below)."""
    out = {}
    for name in list_methods():
        m = tiny_method(name)
        assert fit(m, digits.train.x, digits.train_abn.x, epochs=2, batch_size=32, seed=1) is m
        out[name] = m
    return out


def test_registry_lists_the_methods():
    assert {"baseline", "adnl", "ae", "deepsad", "classifier", "abc"} <= set(list_methods())
    assert get_method("adnl").uses_abnormal and not get_method("baseline").uses_abnormal
    assert get_method("classifier").needs_abnormal and get_method("baseline").reference
    assert not get_method("ae").adversarial
    with pytest.raises(AdtkError, match="unknown method 'nope'.*baseline"):
        get_method("nope")
    with pytest.raises(AdtkError, match="has no setting eta"):
        create_method("baseline", eta=1.0)
    with pytest.raises(AdtkError, match="unknown pseudo 'x'"):
        create_method("adnl", pseudo="x")


@pytest.mark.parametrize("name", list_methods())
def test_two_epochs_score_the_anomaly_above_normals(name, digits, fitted):
    m = fitted[name]
    s = m.score_samples(digits.test.x)
    assert s.shape == (len(digits.test),) and s.dtype == np.float64 and np.isfinite(s).all()
    if m.uses_abnormal:
        # It saw labelled 0s: held-out 0s must score above held-out normals.
        assert auroc(digits.test.y, s) > 0.9, auroc(digits.test.y, s)
    else:
        # Normal data only: a clearly abnormal input (inverted: bright background) scores
        # above held-out normals.
        normal = digits.test.x[torch.as_tensor(digits.test.y == 0)]
        inv = m.score_samples(255 - normal)
        y = np.r_[np.zeros(len(normal)), np.ones(len(inv))]
        assert auroc(y, np.r_[m.score_samples(normal), inv]) > 0.95


@pytest.mark.parametrize("name", list_methods())
def test_history_columns_follow_the_loss_keys(name, fitted):
    m = fitted[name]
    h = m.result_.history
    assert h["epoch"].tolist() == [1, 2]
    losses = [c for c in h.columns if c not in ("epoch", "val_auc", "time_s")]
    assert losses[: len(m.loss_keys)] == list(m.loss_keys) and losses[0] == "loss"
    assert h["loss"].notna().all()


def test_negative_learning_raises_abnormal_error_relative_to_baseline(digits, fitted,
                                                                      tiny_method):
    def ratio(m):
        s, y = m.score_samples(digits.test.x), digits.test.y
        return s[y == 1].mean() / s[y == 0].mean()

    for kind in ("naive", "scaled"):
        adnl = fitted["adnl"] if kind == "naive" else tiny_method("adnl", neg_loss=kind)
        if kind != "naive":
            fit(adnl, digits.train.x, digits.train_abn.x, epochs=2, batch_size=32, seed=1)
        assert ratio(adnl) > 1.5 * ratio(fitted["baseline"]), kind
        assert np.isfinite(adnl.result_.history["neg"]).all()
    assert "neg" not in fitted["baseline"].result_.history  # it never looked at anomalies
    assert ratio(fitted["abc"]) > 1.5 * ratio(fitted["ae"])  # ABC vs its plain AE


@pytest.mark.parametrize("kind", ["patch", "noise"])
def test_pseudo_anomalies_train_without_labelled_ones(kind, digits, tiny_method):
    m = tiny_method("adnl", pseudo=kind)
    m.check_data(0, 0)  # no labelled anomaly needed
    fit(m, digits.train.x, digits.train_abn.x[:0], epochs=2, batch_size=32, seed=1)
    h = m.result_.history
    assert np.isfinite(h["pseudo"]).all() and "neg" in h and h["neg"].isna().all()
    normal = digits.test.x[torch.as_tensor(digits.test.y == 0)]
    inv = m.score_samples(255 - normal)
    assert np.median(inv) > np.median(m.score_samples(normal))
    with pytest.raises(AdtkError, match="needs labelled anomalies in train"):
        tiny_method("adnl").check_data(0, 0)


def test_deepsad_fixes_its_centre_after_pretraining(digits, tiny_method):
    m = tiny_method("deepsad", pretrain_epochs=1)
    fit(m, digits.train.x, digits.train_abn.x, epochs=2, batch_size=32, seed=1)
    c = m.model_.c
    assert bool(m.model_.has_c) and (c.abs() >= m.eps).all()
    h = m.result_.history
    assert np.isnan(h["sad_normal"][0]) and np.isfinite(h["sad_normal"][1])
    s = m.score_samples(digits.test.x[:4])  # eval mode
    with torch.no_grad():
        z = m.model_.encoder(m._prep(digits.test.x[:4]))
    assert np.allclose(s, (z.float() - c).pow(2).sum(1).numpy(), rtol=1e-4)


def test_classifier_needs_a_labelled_anomaly():
    with pytest.raises(AdtkError, match="at least one labelled anomaly"):
        create_method("classifier").check_data(10, 0)


def test_warmup_keeps_the_negative_term_off(digits, tiny_method):
    m = tiny_method("adnl", warmup_epochs=2)
    fit(m, digits.train.x, digits.train_abn.x, epochs=3, batch_size=32)
    neg = m.result_.history["neg"].to_numpy()
    assert np.isnan(neg[:2]).all() and np.isfinite(neg[2])


@pytest.mark.parametrize("name", list_methods())
def test_nan_guard_names_epoch_step_and_loss(name, digits, tiny_method):
    m = tiny_method(name, lr=1e30)  # weights blow up in a step or two
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss '\w+' .* at epoch \d, step \d+"):
        fit(m, digits.train.x, digits.train_abn.x, epochs=3, batch_size=64)


def test_score_before_fit_is_an_error():
    with pytest.raises(AdtkError, match="not built or fitted"):
        create_method("baseline").score_samples(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_adnl_fit_without_anomalies_is_an_error(digits, tiny_method):
    with pytest.raises(AdtkError, match="needs labelled anomalies"):
        fit(tiny_method("adnl"), digits.train.x, None, epochs=1)
