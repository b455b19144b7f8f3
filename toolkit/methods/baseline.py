"""``baseline``: the AAE trained on normal data only (the paper's unsupervised baseline)."""

from __future__ import annotations

from toolkit.methods.base import AutoencoderMethod, register_method


@register_method("baseline")
class Baseline(AutoencoderMethod):
    """Adversarial autoencoder; labelled anomalies are ignored."""

    adversarial = True
    uses_abnormal = False
