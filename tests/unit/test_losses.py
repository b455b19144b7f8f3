"""Loss modules: values on known inputs, weights, gradient directions."""

from __future__ import annotations

import math

import pytest
import torch

from toolkit.models.losses import (
    AdversarialLoss,
    DiscriminatorLoss,
    NegativeLoss,
    ReconstructionLoss,
    per_sample_mse,
)


def test_per_sample_mse_known_values():
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 2.0)])
    assert per_sample_mse(x, x_hat).tolist() == [0.0, 4.0]


def test_reconstruction_weight():
    x, x_hat = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert ReconstructionLoss()(x, x_hat).item() == 1.0
    assert ReconstructionLoss(weight=3.0)(x, x_hat).item() == 3.0


def test_negative_naive_and_scaled_values():
    x = torch.zeros(2, 1, 1, 1)
    x_hat = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)  # per-sample MSE 0 and 1
    assert NegativeLoss("naive")(x, x_hat).item() == pytest.approx(-0.5)
    assert NegativeLoss("scaled")(x, x_hat).item() == pytest.approx((1 + math.exp(-1)) / 2)
    assert NegativeLoss("naive", weight=10)(x, x_hat).item() == pytest.approx(-5.0)


@pytest.mark.parametrize("kind", ["naive", "scaled"])
def test_negative_loss_gradient_increases_error(kind):
    # A gradient step on the negative loss moves the reconstruction away from the input.
    x = torch.zeros(4, 1, 2, 2)
    x_hat = torch.full((4, 1, 2, 2), 0.3, requires_grad=True)
    NegativeLoss(kind)(x, x_hat).backward()
    stepped = x_hat - 0.1 * x_hat.grad
    assert per_sample_mse(x, stepped).mean() > per_sample_mse(x, x_hat).mean()


def test_unknown_negative_kind():
    with pytest.raises(ValueError, match="naive"):
        NegativeLoss("log")


def test_adversarial_and_discriminator_losses():
    big = torch.full((8,), 20.0)
    assert AdversarialLoss()(big).item() < 1e-6  # codes judged "prior": nothing to gain
    assert AdversarialLoss(weight=2)(-big).item() == pytest.approx(2 * 20.0, rel=1e-4)
    assert DiscriminatorLoss()(big, -big).item() < 1e-6  # a perfect critic
    assert DiscriminatorLoss()(-big, big).item() == pytest.approx(40.0, rel=1e-4)
