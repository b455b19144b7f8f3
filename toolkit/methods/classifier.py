"""``classifier``: a supervised binary CNN, normal vs labelled anomalies.

The AAE's encoder with a linear head on its code, trained with class-balanced binary cross
entropy (the normal and the anomaly half of the loss weigh the same, however few anomalies
there are). Score = the anomaly logit. The plain rival of every method that uses labels: it
should be strong on the anomaly kind it was shown and has no reason to flag others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from toolkit.errors import AdtkError
from toolkit.methods.base import NETWORK_PRESETS, NETWORK_SETTINGS, Method, register_method
from toolkit.models.aae import Encoder


class _Net(torch.nn.Module):
    def __init__(self, in_channels: int, size: int, latent_dim: int, width: int) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, size, latent_dim, width)
        self.head = torch.nn.Linear(latent_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x))).squeeze(1)  # (B,) anomaly logits


@register_method("classifier")
class Classifier(Method):
    """Binary CNN classifier (same encoder), class-balanced; score = anomaly logit."""

    title = "Classifier"
    order = 40
    colour = "#e9c46a"
    uses_abnormal = True
    needs_abnormal = True
    settings = NETWORK_SETTINGS
    presets = NETWORK_PRESETS
    loss_keys = ("loss", "bce_normal", "bce_abnormal")

    def build(self, in_channels, size, device="cpu"):
        self._set_device(device)
        self.model_ = self._place(_Net(in_channels, size, self.latent_dim, self.width))
        self.optimizers_ = {"net": torch.optim.Adam(self.model_.parameters(), lr=self.lr)}
        return self

    def train_step(self, x, x_abn=None, epoch=1):
        if x_abn is None or len(x_abn) == 0:
            raise AdtkError("method 'classifier' needs labelled anomalies in every step")
        self.model_.train()
        opt = self.optimizers_["net"]
        opt.zero_grad(set_to_none=True)
        n = len(x)
        with self._autocast():
            logits = self.model_(torch.cat([x, x_abn])).float()
        bce_n = F.binary_cross_entropy_with_logits(logits[:n], torch.zeros_like(logits[:n]))
        bce_a = F.binary_cross_entropy_with_logits(logits[n:], torch.ones_like(logits[n:]))
        loss = 0.5 * (bce_n + bce_a)  # class-balanced: each class weighs half
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "bce_normal": bce_n.detach(),
                "bce_abnormal": bce_a.detach()}

    @torch.no_grad()
    def score_batch(self, x):
        self.model_.eval()
        with self._autocast():
            return self.model_(x).float()
