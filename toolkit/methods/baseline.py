"""``baseline``: the AAE trained on normal data only (the paper's unsupervised baseline)."""

from __future__ import annotations

from toolkit.methods.base import ADVERSARIAL_SETTINGS, AutoencoderMethod, register_method


@register_method("baseline")
class Baseline(AutoencoderMethod):
    """Adversarial autoencoder; labelled anomalies are ignored."""

    title = "AAE (baseline)"
    order = 0
    colour = "#264653"
    reference = True
    adversarial = True
    uses_abnormal = False
    settings = ADVERSARIAL_SETTINGS
    loss_keys = ("loss", "rec", "adv", "disc")
