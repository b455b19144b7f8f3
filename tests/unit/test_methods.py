"""Every registered method: fit on tiny data, scores' shape and direction, negative learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit.engine.train import NonFiniteLossError
from toolkit.errors import AdtkError
from toolkit.eval.metrics import auroc
from toolkit.methods import create_method, get_method, list_methods

TINY = dict(width=8, latent_dim=8)


@pytest.fixture(scope="module")
def digits(tiny_digits):
    """conftest's tiny digit set: sklearn's digits at 16x16, 0 the anomaly, 400 normal train."""
    return tiny_digits


@pytest.fixture(scope="module")
def fitted(digits):
    """One quick fit per registered method (shared by the checks below)."""
    out = {}
    for name in list_methods():
        m = create_method(name, **TINY)
        assert m.fit(digits.train.x, digits.train_abn.x, epochs=4, batch_size=32, seed=1) is m
        out[name] = m
    return out


def test_registry_lists_the_paper_methods():
    assert {"baseline", "adnl", "ae"} <= set(list_methods())
    assert get_method("adnl").uses_abnormal and not get_method("baseline").uses_abnormal
    assert not get_method("ae").adversarial
    with pytest.raises(AdtkError, match="unknown method 'nope'.*baseline"):
        get_method("nope")


@pytest.mark.parametrize("name", list_methods())
def test_fit_scores_shape_and_direction(name, digits, fitted):
    m = fitted[name]
    test_normal = digits.test.x[torch.as_tensor(digits.test.y == 0)]
    normal = m.score_samples(test_normal)
    inverted = m.score_samples(255 - test_normal)  # a bright background: clearly abnormal
    assert normal.shape == inverted.shape == (len(test_normal),)
    assert normal.dtype == np.float64 and np.isfinite(normal).all()
    # Higher = more anomalous, and trained: held-out normals beat their inverted copies.
    y = np.r_[np.zeros(len(normal)), np.ones(len(inverted))]
    assert auroc(y, np.r_[normal, inverted]) > 0.95
    assert normal.mean() < m.result_.history["rec"].iloc[0]  # eval error below epoch-1 loss
    assert m.result_.history["epoch"].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("kind", ["naive", "scaled"])
def test_negative_loss_raises_abnormal_error_relative_to_baseline(kind, digits, fitted):
    def ratio(m):
        s, y = m.score_samples(digits.test.x), digits.test.y
        return s[y == 1].mean() / s[y == 0].mean()

    adnl = fitted["adnl"] if kind == "scaled" else create_method("adnl", neg_loss=kind, **TINY)
    if kind != "scaled":
        adnl.fit(digits.train.x, digits.train_abn.x, epochs=4, batch_size=32, seed=1)
    base, neg = ratio(fitted["baseline"]), ratio(adnl)
    assert neg > 1.5 * base, (base, neg)
    # The baseline never looked at the anomalies; ADNL used them.
    assert np.isnan(fitted["baseline"].result_.history["neg"]).all()
    assert np.isfinite(adnl.result_.history["neg"]).all()


def test_warmup_keeps_the_negative_term_off(digits):
    m = create_method("adnl", warmup_epochs=2, **TINY)
    m.fit(digits.train.x, digits.train_abn.x, epochs=3, batch_size=32)
    neg = m.result_.history["neg"].to_numpy()
    assert np.isnan(neg[:2]).all() and np.isfinite(neg[2])


@pytest.mark.parametrize("name", list_methods())
def test_nan_guard_names_epoch_step_and_loss(name, digits):
    m = create_method(name, lr=1e30, **TINY)  # weights blow up in a step or two
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss '\w+' .* at epoch 1, step \d+"):
        m.fit(digits.train.x, digits.train_abn.x, epochs=2, batch_size=64)


def test_score_before_fit_is_an_error():
    with pytest.raises(AdtkError, match="not built or fitted"):
        create_method("baseline").score_samples(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_adnl_fit_without_anomalies_is_an_error(digits):
    with pytest.raises(AdtkError, match="needs labelled anomalies"):
        create_method("adnl", **TINY).fit(digits.train.x, None, epochs=1)
