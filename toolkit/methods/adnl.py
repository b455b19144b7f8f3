"""``adnl``: the AAE with negative learning (the paper's Algorithm 1), optionally with
pseudo-anomalies made from normal training images.

Normal samples minimise the reconstruction MSE (eq. 2); labelled anomalies, in the same loop
and on the same parameters, minimise -MSE (``naive``, eq. 3) or exp(-MSE) (``scaled``, eq. 4),
weighted by ``neg_weight``, after ``warmup_epochs`` of normal-only training.

``pseudo`` adds negatives made from the normal batch itself, after Astrid et al., "Learning
Not to Reconstruct Anomalies" (BMVC 2021): a quarter of each batch is corrupted (``patch``: a
square from another image of the batch pasted at a random place; ``noise``: strong Gaussian
noise) and the network must output the *clean* image for it, so it learns not to reproduce
what does not belong to a normal image. This works with no labelled anomaly at all
(``--labelled-anomalies 0``). The target-is-clean form is the paper's; maximising the error
of near-normal inputs (ADNL's negative term) would fight the normal term directly.
"""

from __future__ import annotations

from typing import Any

import torch

from toolkit.errors import AdtkError
from toolkit.methods.base import (
    ADVERSARIAL_SETTINGS,
    NEGATIVE_SETTINGS,
    WEAK_LABEL_SETTINGS,
    AutoencoderMethod,
    NegativeLearningMixin,
    Setting,
    neg_select_variant,
    register_method,
)
from toolkit.models.losses import per_sample_mse

PSEUDO_KINDS = ("none", "patch", "noise")


def patch_swap(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, C, H, W) -> a copy where each image holds a ``side`` x ``side`` square cut from the
    next image of the batch (another normal sample) at a random place, pasted at another."""
    b, _, h, w = x.shape
    out = x.clone()
    src = x.roll(1, 0)
    pos = torch.randint(0, max(1, h - side + 1), (b, 4)).tolist()  # global RNG: resumable
    for i, (y0, x0, y1, x1) in enumerate(pos):
        x0, x1 = min(x0, w - side), min(x1, w - side)
        out[i, :, y1 : y1 + side, x1 : x1 + side] = src[i, :, y0 : y0 + side, x0 : x0 + side]
    return out


def strong_noise(x: torch.Tensor, std: float = 0.5) -> torch.Tensor:
    noise = torch.randn(x.shape).to(x.device, x.dtype)  # drawn on the CPU: same on any device
    return (x + std * noise).clamp_(-1, 1)


@register_method("adnl")
class ADNL(NegativeLearningMixin, AutoencoderMethod):
    """Adversarial autoencoder with negative learning on labelled anomalies."""

    title = "ADNL"
    order = 20
    colour = "#e76f51"
    adversarial = True
    uses_abnormal = True
    settings = (
        *ADVERSARIAL_SETTINGS,
        *NEGATIVE_SETTINGS,
        *WEAK_LABEL_SETTINGS,
        Setting("pseudo", "none", "Pseudo-anomalies made from normal training images (Astrid "
                "et al. 2021): patch = a square of another image pasted in, noise = strong "
                "Gaussian noise; the network learns to output the clean image. Works with "
                "--labelled-anomalies 0.", choices=PSEUDO_KINDS),
        Setting("pseudo_weight", 1.0, "Weight of the pseudo-anomaly loss.", minimum=0),
    )
    _keys = ("loss", "rec", "adv", "neg", "pseudo", "disc")

    @classmethod
    def variant(cls, values: dict[str, Any]) -> str:
        """Only the negatives' selection and bound count: with them it is not the paper's
        ADNL ("mil-once, margin 4")."""
        parts = [neg_select_variant(values)]
        if values.get("neg_bound") == "margin":
            margin = values.get("neg_margin")
            parts.append(f"margin {float(margin):g}" if margin is not None else "margin")
        return ", ".join(p for p in parts if p)

    @classmethod
    def choice_note(cls, name: str, value: Any, values: dict[str, Any]) -> str:
        """``neg_bound margin`` goes with its ``neg_margin``: " (--neg-margin 4)"."""
        margin = values.get("neg_margin")
        if name == "neg_bound" and value == "margin" and margin is not None:
            flag = next(s.flag for s in cls.settings_spec() if s.name == "neg_margin")
            return f" ({flag} {float(margin):g})"
        return ""

    @property
    def loss_keys(self) -> tuple[str, ...]:  # the pseudo column only where it is used
        return tuple(k for k in self._keys if k != "pseudo" or self.pseudo != "none")

    def check_data(self, n_available: int, n_labelled: int) -> None:
        if self.pseudo == "none":
            super().check_data(n_available, n_labelled)

    def extra_terms(self, x, epoch):
        if self.pseudo == "none" or epoch <= self.warmup_epochs:
            return None, None
        k = max(1, len(x) // 4)
        clean = x[:k].clone()  # the batch buffer is reused by the loop after this step
        if self.pseudo == "patch":
            fake = patch_swap(clean, max(2, x.shape[-1] // 2))
        elif self.pseudo == "noise":
            fake = strong_noise(clean)
        else:
            raise AdtkError(f"unknown pseudo {self.pseudo!r}")

        def loss(x_hat):
            return {"pseudo": self.pseudo_weight * per_sample_mse(clean, x_hat).mean()}

        return fake, loss
