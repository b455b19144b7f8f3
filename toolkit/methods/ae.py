"""``ae``: the plain convolutional autoencoder (no latent discriminator), as a reference."""

from __future__ import annotations

from toolkit.methods.base import AutoencoderMethod, register_method


@register_method("ae")
class PlainAE(AutoencoderMethod):
    """Same encoder/decoder as the AAE, reconstruction loss only, normal data only."""

    title = "AE"
    order = 10
    colour = "#457b9d"
    adversarial = False
    uses_abnormal = False
