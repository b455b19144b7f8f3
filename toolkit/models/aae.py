"""Adversarial autoencoder parts (nn.Modules only): DCGAN-style encoder and decoder, latent critic.

The encoder halves the image with 4x4 stride-2 convolutions (BatchNorm + ReLU after each) down
to 4x4, then a 4x4 valid convolution gives the latent code; the decoder mirrors it with
transposed convolutions and ends in tanh, so images live in [-1, 1]. The discriminator sees
latent codes only: it tells prior samples (standard Gaussian) from encoded ones, which is what
makes the autoencoder adversarial (Makhzani et al.'s AAE).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _depth(size: int) -> int:
    """Number of stride-2 stages from ``size`` down to 4x4."""
    depth = int(round(math.log2(size))) - 2
    if size < 8 or 4 * 2**depth != size:
        raise ValueError(f"image size must be a power of two >= 8, got {size}")
    return depth


class Encoder(nn.Module):
    """(B, C, S, S) in [-1, 1] -> (B, latent_dim).

    ``bias=False`` drops every additive term (BatchNorm's shift and the last layer's bias), as
    one-class objectives need: a network with biases can map every input to one point.
    """

    def __init__(
        self, in_channels: int, size: int, latent_dim: int, width: int = 32, bias: bool = True
    ) -> None:
        super().__init__()
        depth = _depth(size)
        layers: list[nn.Module] = []
        ch_in = in_channels
        for i in range(depth):
            ch_out = width * 2**i
            layers += [
                nn.Conv2d(ch_in, ch_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch_out, affine=bias),
                nn.ReLU(inplace=True),
            ]
            ch_in = ch_out
        layers.append(nn.Conv2d(ch_in, latent_dim, 4, 1, 0, bias=bias))  # (B, latent, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class Decoder(nn.Module):
    """(B, latent_dim) -> (B, C, S, S) in [-1, 1] (tanh)."""

    def __init__(self, out_channels: int, size: int, latent_dim: int, width: int = 32) -> None:
        super().__init__()
        depth = _depth(size)
        ch = width * 2 ** (depth - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False),  # (B, ch, 4, 4)
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        ]
        for _ in range(depth - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class LatentDiscriminator(nn.Module):
    """(B, latent_dim) -> (B,) logits: prior sample (1) vs encoded image (0)."""

    def __init__(self, latent_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


class AAE(nn.Module):
    """Encoder + decoder (+ latent discriminator when ``adversarial``)."""

    def __init__(
        self,
        in_channels: int,
        size: int,
        latent_dim: int = 16,
        width: int = 32,
        adversarial: bool = True,
        disc_hidden: int = 128,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = Encoder(in_channels, size, latent_dim, width, bias=bias)
        self.decoder = Decoder(in_channels, size, latent_dim, width)
        self.discriminator = LatentDiscriminator(latent_dim, disc_hidden) if adversarial else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (reconstruction (B, C, S, S), latent code (B, latent_dim))."""
        z = self.encoder(x)
        return self.decoder(z), z
