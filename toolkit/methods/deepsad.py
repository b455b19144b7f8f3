"""``deepsad``: Deep SAD (Ruff et al., "Deep Semi-Supervised Anomaly Detection", ICLR 2020).

An autoencoder is pretrained on normal images for ``pretrain_epochs``; then the centre ``c``
is the mean code of the normal training images, and the encoder alone is trained so that
normal codes move towards ``c`` (squared distance) and labelled anomalies away from it
(``eta`` times the inverse squared distance). Score = squared distance to ``c``. As in the
paper the encoder has no bias terms and no BatchNorm affine shift, so it cannot map every
input to ``c`` by a constant output; codes too close to 0 in ``c`` are moved to +-``eps``.
During pretraining (no ``c`` yet) the score is the reconstruction error.
With ``--labelled-anomalies 0`` it is Deep SVDD (one-class).
"""

from __future__ import annotations

import torch

from toolkit.methods.base import AutoencoderMethod, Setting, register_method
from toolkit.models.aae import AAE
from toolkit.models.losses import ReconstructionLoss, per_sample_mse


class _SADNet(torch.nn.Module):
    """The bias-free autoencoder (its encoder is Deep SAD's network) and the centre ``c``."""

    def __init__(self, in_channels: int, size: int, latent_dim: int, width: int) -> None:
        super().__init__()
        ae = AAE(in_channels, size, latent_dim, width, adversarial=False, bias=False)
        self.encoder, self.decoder, self.discriminator = ae.encoder, ae.decoder, None
        self.register_buffer("c", torch.zeros(latent_dim))
        self.register_buffer("has_c", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z


@register_method("deepsad")
class DeepSAD(AutoencoderMethod):
    """Deep SAD: a hypersphere around normal codes, labelled anomalies pushed out."""

    title = "Deep SAD"
    order = 30
    colour = "#2a9d8f"
    adversarial = False
    uses_abnormal = True
    reconstructs = False  # the score is a distance in code space
    settings = (
        Setting("eta", 1.0, "Weight of the labelled anomalies' inverse-distance term.",
                minimum=0),
        Setting("pretrain_epochs", 3, "Autoencoder pretraining epochs (within --epochs) "
                "before the centre is fixed.", minimum=0),
        Setting("weight_decay", 1e-6, "Adam weight decay of the Deep SAD phase (as the "
                "paper).", minimum=0),
    )
    loss_keys = ("loss", "rec", "sad_normal", "sad_abnormal")
    eps = 0.1  # the paper's bound on |c_j|
    inv_eps = 1e-6  # keeps 1 / distance finite

    def build(self, in_channels, size, device="cpu"):
        self._set_device(device)
        self.model_ = self._place(_SADNet(in_channels, size, self.latent_dim, self.width))
        self.rec_loss_ = ReconstructionLoss()
        m = self.model_
        self.optimizers_ = {
            "ae": torch.optim.Adam([*m.encoder.parameters(), *m.decoder.parameters()],
                                   lr=self.lr),
            "sad": torch.optim.Adam(m.encoder.parameters(), lr=self.lr,
                                    weight_decay=self.weight_decay),
        }
        return self

    def negative_active(self, epoch: int) -> bool:
        return epoch > self.pretrain_epochs

    @torch.no_grad()
    def start_epoch(self, epoch, normal_batches):
        if epoch != self.pretrain_epochs + 1 or bool(self.model_.has_c):
            return
        # c = mean code of the normal training images, with the pretrained encoder.
        self.model_.eval()
        total, n = None, 0
        with self._autocast():
            for x in normal_batches():
                z = self.model_.encoder(x).float()
                total = z.sum(0) if total is None else total + z.sum(0)
                n += len(z)
        c = total / n
        small = c.abs() < self.eps
        c[small & (c < 0)] = -self.eps
        c[small & (c >= 0)] = self.eps
        self.model_.c.copy_(c)
        self.model_.has_c.fill_(True)

    def train_step(self, x, x_abn=None, epoch=1):
        m = self.model_
        m.train()
        if not self.negative_active(epoch):  # autoencoder pretraining on normals
            opt = self.optimizers_["ae"]
            opt.zero_grad(set_to_none=True)
            with self._autocast():
                x_hat, _ = m(x)
            rec = self.rec_loss_(x, x_hat)
            rec.backward()
            opt.step()
            return {"loss": rec.detach(), "rec": rec.detach()}
        use_abn = x_abn is not None and len(x_abn) > 0
        xb = torch.cat([x, x_abn]) if use_abn else x
        opt = self.optimizers_["sad"]
        opt.zero_grad(set_to_none=True)
        with self._autocast():
            z = m.encoder(xb)
        d = (z.float() - m.c).pow(2).sum(1)  # (B,) squared distance to the centre
        n = len(x)
        normal = d[:n].sum()
        out = {}
        total = normal
        if use_abn:
            abnormal = self.eta * (d[n:] + self.inv_eps).reciprocal().sum()
            total = total + abnormal
            out["sad_abnormal"] = (abnormal / (len(xb) - n)).detach()
        loss = total / len(xb)  # the paper's mean over all n + m samples
        loss.backward()
        opt.step()
        out.update(loss=loss.detach(), sad_normal=(normal / n).detach())
        return out

    @torch.no_grad()
    def score_batch(self, x):
        m = self.model_
        m.eval()
        with self._autocast():
            if not bool(m.has_c):
                x_hat, _ = m(x)
                return per_sample_mse(x, x_hat)
            z = m.encoder(x)
        return (z.float() - m.c).pow(2).sum(1)
