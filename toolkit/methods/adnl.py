"""``adnl``: the AAE with negative learning (the paper's Algorithm 1).

Normal samples minimise the reconstruction MSE (eq. 2); labelled anomalies, in the same loop
and on the same parameters, minimise -MSE (``naive``, eq. 3) or exp(-MSE) (``scaled``, eq. 4),
weighted by ``neg_weight``, after ``warmup_epochs`` of normal-only training.
"""

from __future__ import annotations

from toolkit.methods.base import AutoencoderMethod, register_method


@register_method("adnl")
class ADNL(AutoencoderMethod):
    """Adversarial autoencoder with negative learning on labelled anomalies."""

    adversarial = True
    uses_abnormal = True
