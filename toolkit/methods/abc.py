"""``abc``: the autoencoding binary classifier (Yamanaka et al., "Autoencoding Binary
Classifiers for Supervised Anomaly Detection", PRICAI 2019).

A plain autoencoder; normal samples minimise their reconstruction error e, labelled
anomalies minimise -log(1 - exp(-e)), which is large while an anomaly is reconstructed well
and fades to 0 as its error grows: a bounded push, unlike ADNL's -MSE. e is the per-sample
MSE (the score).
"""

from __future__ import annotations

from typing import Any

import torch

from toolkit.methods.base import (
    WEAK_LABEL_SETTINGS,
    AutoencoderMethod,
    Setting,
    neg_select_variant,
    register_method,
)
from toolkit.models.losses import per_sample_mse


@register_method("abc")
class ABC(AutoencoderMethod):
    """Autoencoder with the ABC loss on labelled anomalies."""

    title = "ABC"
    order = 50
    colour = "#6a994e"
    adversarial = False
    uses_abnormal = True
    settings = (Setting("neg_weight", 1.0, "Weight of the loss on labelled anomalies.",
                        minimum=0), *WEAK_LABEL_SETTINGS)
    loss_keys = ("loss", "rec", "neg")

    @classmethod
    def variant(cls, values: dict[str, Any]) -> str:
        """The negatives' selection ("mil-once"); its loss is bounded by design."""
        return neg_select_variant(values)

    def negative_term(
        self, x_abn: torch.Tensor, x_hat_abn: torch.Tensor, normal_mse: torch.Tensor | None = None
    ) -> torch.Tensor:
        e = per_sample_mse(x_abn, x_hat_abn).clamp_min(1e-6)
        return self.neg_weight * -torch.log(-torch.expm1(-e)).mean()  # -log(1 - exp(-e))
