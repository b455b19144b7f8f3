"""Shapes and ranges of the AAE parts."""

from __future__ import annotations

import pytest
import torch

from toolkit.models.aae import AAE, Decoder, Encoder, LatentDiscriminator


@pytest.mark.parametrize("size,channels", [(8, 1), (16, 3), (32, 1), (64, 3)])
def test_autoencoder_shapes_and_tanh_range(size, channels):
    torch.manual_seed(0)
    model = AAE(channels, size, latent_dim=5, width=4)
    x = torch.rand(3, channels, size, size) * 2 - 1
    x_hat, z = model(x)
    assert x_hat.shape == x.shape  # (B, C, S, S)
    assert z.shape == (3, 5)
    assert x_hat.abs().max() <= 1.0  # tanh output
    assert model.discriminator(z).shape == (3,)


def test_batchnorm_after_every_hidden_conv_and_relu():
    enc, dec = Encoder(3, 64, 8, 4), Decoder(3, 64, 8, 4)
    n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules())
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())
    assert n_bn == n_conv - 1  # every conv but the one that emits the latent code
    n_tconv = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in dec.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in dec.modules()) == n_tconv - 1
    assert isinstance(list(dec.modules())[-1], torch.nn.Tanh)
    assert any(isinstance(m, torch.nn.ReLU) for m in enc.modules())


def test_plain_autoencoder_has_no_discriminator():
    assert AAE(1, 16, adversarial=False).discriminator is None


@pytest.mark.parametrize("size", [4, 12, 48])
def test_bad_sizes_are_rejected(size):
    with pytest.raises(ValueError, match="power of two"):
        Encoder(1, size, 4)


def test_discriminator_separates_after_training():
    # The latent critic can learn to tell the prior from a shifted code distribution.
    torch.manual_seed(0)
    d = LatentDiscriminator(2, 16)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    for _ in range(100):
        real, fake = torch.randn(64, 2), torch.randn(64, 2) + 3
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            torch.cat([d(real), d(fake)]), torch.cat([torch.ones(64), torch.zeros(64)])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert d(torch.randn(256, 2)).mean() > 0 > d(torch.randn(256, 2) + 3).mean()
