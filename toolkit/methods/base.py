"""The method registry and the shared autoencoder method (fit / score_samples, sklearn habits).

A method owns its networks, optimisers and training step; the loop around the step (device,
data order, checkpoints, resume, validation) lives in :mod:`toolkit.engine.train`, so every
method gets the same engine. Scores are higher-is-more-anomalous everywhere: the per-sample
reconstruction MSE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from toolkit.errors import AdtkError
from toolkit.models.aae import AAE
from toolkit.models.losses import (
    AdversarialLoss,
    DiscriminatorLoss,
    NegativeLoss,
    ReconstructionLoss,
    per_sample_mse,
)
from toolkit.registry import Registry

METHODS: Registry[type[AutoencoderMethod]] = Registry("method")

#: Keys of every training-step dict, in history.parquet column order (NaN where not used).
LOSS_KEYS = ("loss", "rec", "adv", "neg", "disc")


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: make a method available by ``name`` (CLI choices come from here)."""
    return METHODS.register(name)


def list_methods() -> list[str]:
    """Registered method names, in registration order."""
    return METHODS.names()


def get_method(name: str) -> type[AutoencoderMethod]:
    return METHODS.get(name)


def create_method(name: str, **params: Any) -> AutoencoderMethod:
    """An unfitted method instance by registry name."""
    return get_method(name)(**params)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) in 0..255 -> float32 in [-1, 1] (the decoder's tanh range)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(127.5).sub_(1.0)
    return x.to(torch.float32)


class AutoencoderMethod:
    """(Adversarial) autoencoder trained on normal data, optionally failing on anomalies.

    Subclasses set ``adversarial`` (latent discriminator on/off) and ``uses_abnormal``
    (negative learning on labelled anomalies on/off). Learned state ends in ``_``.
    """

    name = "autoencoder"
    adversarial = True
    uses_abnormal = False

    def __init__(
        self,
        latent_dim: int = 16,
        width: int = 32,
        lr: float = 1e-3,
        adv_weight: float = 1.0,
        neg_loss: str = "scaled",
        neg_weight: float = 1.0,
        warmup_epochs: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.width = width
        self.lr = lr
        self.adv_weight = adv_weight
        self.neg_loss = neg_loss
        self.neg_weight = neg_weight
        self.warmup_epochs = warmup_epochs

    # -- building ---------------------------------------------------------------------------
    def build(
        self, in_channels: int, size: int, device: torch.device | str = "cpu"
    ) -> AutoencoderMethod:
        """Create networks, losses and optimisers (seed torch first for a reproducible init)."""
        device = torch.device(device)
        self.device_ = device
        self.cuda_ = device.type == "cuda"
        model = AAE(in_channels, size, self.latent_dim, self.width, adversarial=self.adversarial)
        if self.cuda_:
            model = model.to(device, memory_format=torch.channels_last)
        self.model_ = model.to(device)
        self.in_channels_, self.size_ = in_channels, size
        self.rec_loss_ = ReconstructionLoss()
        self.adv_loss_ = AdversarialLoss(self.adv_weight)
        self.disc_loss_ = DiscriminatorLoss()
        self.neg_loss_ = NegativeLoss(self.neg_loss, self.neg_weight)
        # Adam with the Adam paper's defaults (betas 0.9/0.999, eps 1e-8), as the ADNL paper.
        ae_params = [*model.encoder.parameters(), *model.decoder.parameters()]
        self.optimizers_ = {"ae": torch.optim.Adam(ae_params, lr=self.lr)}
        if model.discriminator is not None:
            self.optimizers_["disc"] = torch.optim.Adam(
                model.discriminator.parameters(), lr=self.lr
            )
        return self

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cuda_:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = to_unit_range(x.to(self.device_, non_blocking=True))
        if self.cuda_:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def negative_active(self, epoch: int) -> bool:
        """Whether the negative term is on in ``epoch`` (1-based; off during warm-up)."""
        return self.uses_abnormal and epoch > self.warmup_epochs

    # -- one training step ------------------------------------------------------------------
    def train_step(
        self, x: torch.Tensor, x_abn: torch.Tensor | None = None, epoch: int = 1
    ) -> dict[str, torch.Tensor]:
        """One update on a normal batch (and an abnormal one); returns detached loss values.

        x, x_abn: (B, C, H, W) in [-1, 1] on the device. Normal and abnormal samples go through
        the network in one batch, so BatchNorm statistics see the same mix as in every step.
        """
        model = self.model_
        model.train()
        use_neg = x_abn is not None and len(x_abn) > 0 and self.negative_active(epoch)
        xb = torch.cat([x, x_abn]) if use_neg else x
        n = len(x)
        opt = self.optimizers_["ae"]
        opt.zero_grad(set_to_none=True)
        with self._autocast():
            x_hat, z = model(xb)
        rec = self.rec_loss_(x, x_hat[:n])
        loss = rec
        out: dict[str, torch.Tensor] = {"rec": rec.detach()}
        if use_neg:
            neg = self.neg_loss_(x_abn, x_hat[n:])
            loss = loss + neg
            out["neg"] = neg.detach()
        if model.discriminator is not None:
            z_norm = z[:n].float()
            with self._autocast():
                logits_fake = model.discriminator(z_norm)
            adv = self.adv_loss_(logits_fake)
            loss = loss + adv
            out["adv"] = adv.detach()
        loss.backward()
        opt.step()
        if model.discriminator is not None:
            d_opt = self.optimizers_["disc"]
            d_opt.zero_grad(set_to_none=True)
            prior = torch.randn_like(z_norm)  # the Gaussian prior the codes should match
            with self._autocast():
                lp = model.discriminator(prior)
                lf = model.discriminator(z_norm.detach())
            disc = self.disc_loss_(lp, lf)
            disc.backward()
            d_opt.step()
            out["disc"] = disc.detach()
        out["loss"] = loss.detach()
        return out

    @torch.no_grad()
    def recalibrate_bn(self, batches: Iterable[torch.Tensor]) -> None:
        """Recompute BatchNorm running statistics as exact averages over ``batches``.

        Running averages lag behind weights that move fast (Adam at 1e-3, a few steps per
        epoch), and eval-mode reconstructions then fail on normal data too; "precise BN"
        (Wu & Johnson, Rethinking BatchNorm) recomputes them with the final weights. The
        batches should mix normal and abnormal samples as training did.
        """
        bns = [
            m for m in self.model_.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        if not bns:
            return
        momenta = [b.momentum for b in bns]
        for b in bns:
            b.reset_running_stats()
            b.momentum = None  # cumulative average over the batches below
        self.model_.train()
        with self._autocast():
            for x in batches:
                self.model_(x)
        for b, mo in zip(bns, momenta, strict=True):
            b.momentum = mo

    # -- scoring ----------------------------------------------------------------------------
    @torch.no_grad()
    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) reconstruction MSE of a prepared batch, in eval mode."""
        self.model_.eval()
        with self._autocast():
            x_hat, _ = self.model_(x)
        return per_sample_mse(x, x_hat)

    def score_samples(self, X: torch.Tensor | np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Anomaly score per sample (reconstruction MSE; higher = more anomalous).

        X: uint8 (N, C, H, W) in 0..255, or float in [-1, 1].
        """
        self._check_fitted()
        X = torch.as_tensor(X)
        out = [
            self.score_batch(self._prep(X[i : i + batch_size])).cpu()
            for i in range(0, len(X), batch_size)
        ]
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    @torch.no_grad()
    def reconstruct(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Reconstructions in [-1, 1], (N, C, H, W) float32 on the CPU (for figures)."""
        self._check_fitted()
        self.model_.eval()
        with self._autocast():
            x_hat, _ = self.model_(self._prep(torch.as_tensor(X)))
        return x_hat.float().cpu().contiguous()

    # -- fit (sklearn style) ----------------------------------------------------------------
    def fit(
        self,
        X: torch.Tensor | np.ndarray,
        X_abn: torch.Tensor | np.ndarray | None = None,
        *,
        val: tuple[Any, Any] | None = None,
        epochs: int = 10,
        batch_size: int = 256,
        seed: int = 0,
        device: str = "cpu",
        **train_kwargs: Any,
    ) -> AutoencoderMethod:
        """Train on uint8 (N, C, H, W) normal images (and anomalies); returns self."""
        from toolkit.engine.train import TrainData, train

        if self.uses_abnormal and X_abn is None:
            # Forgetting the anomalies is an error; an explicit empty set trains the plain AAE.
            raise AdtkError(
                f"method {self.name!r} needs labelled anomalies (X_abn); pass an empty array "
                "to train without any"
            )
        data = TrainData.from_arrays(X, X_abn, *(val or (None, None)))
        self.result_ = train(
            self,
            data,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            device=device,
            **train_kwargs,
        )
        return self

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model and optimiser states (for checkpoints)."""
        self._check_fitted()
        return {
            "model": self.model_.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers_.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model_.load_state_dict(state["model"])
        for k, o in self.optimizers_.items():
            o.load_state_dict(state["optimizers"][k])

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise AdtkError(f"method {self.name!r} is not built or fitted yet")
