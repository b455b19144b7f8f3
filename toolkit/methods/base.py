"""The method registry, the settings a method declares, and the shared autoencoder method.

A method is one registered class in one file under ``toolkit/methods/``. It declares

- ``settings``: its hyper-parameters (:class:`Setting`: default, help, choices), inherited
  and extended along the class hierarchy; ``__init__`` accepts exactly these;
- ``presets``: values per preset (``quick`` / ``paper``) and data family (``digits`` /
  ``crops``) that differ from the defaults;
- ``title``, ``order`` and ``colour``: its name, place and fixed colour in tables and figures;
- ``uses_abnormal`` (it learns from labelled anomalies), ``needs_abnormal`` (it cannot train
  without at least one), ``reference`` (the unsupervised baseline others are compared to),
  ``reconstructs`` (its score is a reconstruction error, so reconstructions can be shown);
- ``build`` (networks and optimisers), ``train_step`` (one update; returns a dict of detached
  losses, whose keys become history columns: ``loss_keys`` first, others after) and
  ``score_batch`` (per-sample score, higher = more anomalous).

The loop around the step (device, data order, checkpoints, resume, validation) is
:func:`toolkit.engine.train.train`; methods never import the engine. Everything else (CLI
flags and choices, config fields, grid axes, table rows) is read from here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

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


@dataclass(frozen=True)
class Setting:
    """One hyper-parameter of a method: its default, its help text, its allowed values."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None  # inclusive lower bound of a number
    above: float | None = None  # exclusive lower bound of a number

    @property
    def type(self) -> type:
        return type(self.default)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def coerce(self, value: Any) -> Any:
        """``value`` (from YAML, a flag, JSON) as this setting's type, checked against its
        choices and bounds; a bad value is a one-line error naming the setting."""
        out = self.parse(value)
        t = self.type
        if self.choices is not None and out not in self.choices:
            raise AdtkError(
                f"unknown {self.name} {out!r}; use one of {', '.join(map(str, self.choices))}"
            )
        if t in (int, float):
            if self.minimum is not None and not (math.isfinite(out) and out >= self.minimum):
                raise AdtkError(f"{self.name} must be a number >= {self.minimum:g}, got {value!r}")
            if self.above is not None and not (math.isfinite(out) and out > self.above):
                raise AdtkError(f"{self.name} must be a number > {self.above:g}, got {value!r}")
            if not math.isfinite(out):
                raise AdtkError(f"{self.name} must be a finite number, got {value!r}")
        return out

    def parse(self, value: Any) -> Any:
        """``value`` as this setting's type (text from the command line: ``"2"`` -> 2.0)."""
        t = self.type
        try:
            if t is bool:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    value = value.lower() in ("true", "1", "yes")
                out = bool(value)
            elif t is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                out = int(value)
            elif t is float:
                out = float(value)
            else:
                out = t(value)
        except (TypeError, ValueError):
            kind = {int: "an integer", float: "a number", bool: "true or false"}.get(t, "text")
            raise AdtkError(f"{self.name} must be {kind}, got {value!r}") from None
        return out


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: make a method available by ``name`` (CLI choices come from here)."""
    return METHODS.register(name)


def list_methods() -> list[str]:
    """Registered method names in table order (``order``, then name)."""
    return sorted(METHODS.names(), key=lambda n: (METHODS.get(n).order, n))


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


def create_method(name: str, **params: Any) -> Method:
    """An unfitted method instance by registry name."""
    return get_method(name)(**params)


_ALL_SETTINGS: dict[tuple[str, ...], dict[str, Setting]] = {}


def all_settings() -> dict[str, Setting]:
    """Every setting any registered method declares, by name (first declaration wins)."""
    key = tuple(METHODS.names())  # tables ask per run and field: computed once per registry
    if key not in _ALL_SETTINGS:
        out: dict[str, Setting] = {}
        for n in list_methods():
            for s in get_method(n).settings_spec():
                out.setdefault(s.name, s)
        _ALL_SETTINGS.clear()
        _ALL_SETTINGS[key] = out
    return dict(_ALL_SETTINGS[key])


def method_from_config(cfg: Any) -> Method:
    """The unfitted method of a resolved bench config (dataclass or config.json dict).

    Each declared setting is read from the config field of that name, or from its ``params``.
    """
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    cls = get_method(get("method"))
    params = dict(get("params") or {})
    kwargs = {}
    for s in cls.settings_spec():
        v = params[s.name] if s.name in params else get(s.name)
        if v is not None:
            kwargs[s.name] = v
    return cls(**kwargs)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) in 0..255 -> float32 in [-1, 1] (the decoder's tanh range)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(127.5).sub_(1.0)
    return x.to(torch.float32)


class Method:
    """What every method has: declared settings, device handling, scoring, state, BatchNorm.

    Subclasses implement ``build`` (set ``model_``, an ``nn.Module`` holding every network, and
    ``optimizers_``), ``train_step`` and ``score_batch``. Learned state ends in ``_``.
    """

    name: ClassVar[str] = "method"
    title: ClassVar[str] = ""  # display name in tables; the registry name when empty
    order: ClassVar[int] = 50  # place in tables and figures (lower first)
    colour: ClassVar[str | None] = None  # its colour in every figure; None: one by its name
    uses_abnormal: ClassVar[bool] = False
    needs_abnormal: ClassVar[bool] = False
    reference: ClassVar[bool] = False
    reconstructs: ClassVar[bool] = False
    settings: ClassVar[tuple[Setting, ...]] = ()
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, **params: Any) -> None:
        spec = {s.name: s for s in self.settings_spec()}
        unknown = sorted(set(params) - set(spec))
        if unknown:
            raise AdtkError(
                f"method {self.name!r} has no setting {', '.join(unknown)}; "
                f"its settings: {', '.join(spec) or 'none'}"
            )
        for n, s in spec.items():
            setattr(self, n, s.coerce(params[n]) if n in params else s.default)

    # -- declarations ----------------------------------------------------------------------
    @classmethod
    def settings_spec(cls) -> tuple[Setting, ...]:
        """Declared settings along the class hierarchy (a subclass may redeclare one)."""
        cached = vars(cls).get("_settings_spec")
        if cached is None:
            out: dict[str, Setting] = {}
            for klass in reversed(cls.__mro__):
                for s in vars(klass).get("settings", ()):
                    out[s.name] = s
            cached = tuple(out.values())
            cls._settings_spec = cached  # per class (vars(), not inherited)
        return cached

    @classmethod
    def preset_values(cls, preset: str, family: str) -> dict[str, Any]:
        """This method's values for a preset and data family (subclasses override parents)."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("presets", {}).get(preset, {}).get(family, {}))
        return out

    @classmethod
    def display_name(cls) -> str:
        return cls.title or cls.name

    @classmethod
    def variant(cls, values: dict[str, Any]) -> str:
        """How resolved settings ``values`` depart from the method's published form, for its
        label in tables ("mil-once, margin 4"); '' where they do not (the default: a method
        with settings that change what it is overrides this)."""
        return ""

    @classmethod
    def choice_note(cls, name: str, value: Any, values: dict[str, Any]) -> str:
        """What to add where a note says that setting ``name`` was resolved to ``value`` (with
        the run's settings ``values``): the setting that goes with that choice; '' by default."""
        return ""

    # -- device -----------------------------------------------------------------------------
    def _set_device(self, device: torch.device | str) -> torch.device:
        device = torch.device(device)
        self.device_ = device
        self.cuda_ = device.type == "cuda"
        return device

    def _place(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.cuda_:
            model = model.to(self.device_, memory_format=torch.channels_last)
        return model.to(self.device_)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cuda_:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = to_unit_range(x.to(self.device_, non_blocking=True))
        if self.cuda_:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # -- the training loop's hooks ------------------------------------------------------------
    def build(self, in_channels: int, size: int, device: torch.device | str = "cpu") -> Method:
        raise NotImplementedError

    def train_step(
        self, x: torch.Tensor, x_abn: torch.Tensor | None = None, epoch: int = 1
    ) -> dict[str, torch.Tensor]:
        """One update on a normal batch (and labelled anomalies); returns detached losses.

        x, x_abn: (B, C, H, W) in [-1, 1] on the device.
        """
        raise NotImplementedError

    def start_epoch(self, epoch: int, normal_batches: Callable[[], Iterator[torch.Tensor]]) -> None:
        """Called before each epoch's steps; ``normal_batches()`` iterates the normal training
        data in a fixed order (each batch valid until the next). No-op by default."""

    def negative_active(self, epoch: int) -> bool:
        """Whether labelled anomalies enter the step in ``epoch`` (1-based)."""
        return self.uses_abnormal

    @classmethod
    def resolve_settings(cls, values: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """This method's resolved settings for the data a run trains on (``values``: every
        declared setting). ``context``: ``weak_labels`` (the training anomalies carry
        frame-level labels), ``epochs``. A method with a bounded negative term turns
        ``neg_bound auto`` into ``margin`` there and ``none`` elsewhere, and ``neg_select auto``
        into ``mil-once`` there (with at least 2 epochs: one to warm up, one to use the choice)
        and ``all`` elsewhere; ``mil-once`` turns ``mil_warmup 0`` into a third of ``epochs``
        (at least 1), and a warm-up that leaves no epoch for the negatives is an error. So the
        run's config says what ran (a method created directly, unresolved, treats ``auto`` as
        ``none`` and ``all``, and ``mil_warmup 0`` as a third of the epochs it trains)."""
        weak = bool(context.get("weak_labels"))
        epochs = int(context.get("epochs") or 0)  # 0: not known here
        if values.get("neg_bound") == "auto":
            values = {**values, "neg_bound": "margin" if weak else "none"}
        if values.get("neg_select") == "auto":
            once = weak and (epochs == 0 or epochs >= 2)
            values = {**values, "neg_select": "mil-once" if once else "all"}
        if values.get("neg_select") == "mil-once" and "mil_warmup" in values:
            warm = int(values.get("mil_warmup") or 0) or mil_once_warmup(epochs)
            if epochs and warm >= epochs:
                raise AdtkError(
                    f"--neg-select mil-once: a warm-up of {warm} normal-only epoch(s) leaves "
                    f"none of the {epochs} for the negatives; give more --epochs or a smaller "
                    "--mil-warmup")
            values = {**values, "mil_warmup": warm}
        return values

    def scores_negatives(self, epoch: int) -> bool:
        """Whether :meth:`select_negatives` scores the anomalies with the model at the start
        of ``epoch`` (the loop then makes the model's eval-mode statistics exact first)."""
        how = getattr(self, "neg_select", "all")
        if how == "mil-once" and getattr(self, "neg_chosen_", None) is not None:
            return False
        return how in ("mil", "mil-once") and self.negative_active(epoch)

    def select_negatives(
        self, x_abn: torch.Tensor, bags: np.ndarray | None, epoch: int
    ) -> torch.Tensor | None:
        """Indices of the labelled anomalies that serve in ``epoch`` (None = all of them).

        With ``neg_select mil``: per bag (a frame; see :func:`mil_select`), the ``mil_k`` the
        current model scores highest. With ``mil-once`` the same, chosen once by the model
        at the end of its normal-only warm-up (:meth:`negative_active`) and kept (in the
        checkpoint too) for the rest of training. ``x_abn``: uint8 (N, C, H, W) on the device.
        """
        how = getattr(self, "neg_select", "all")
        if how not in ("mil", "mil-once") or not len(x_abn):
            return None
        chosen = getattr(self, "neg_chosen_", None)
        if how == "mil-once" and chosen is not None:
            return chosen.to(x_abn.device)
        scores = self.score_samples(x_abn, batch_size=1024)
        keep = mil_select(scores, bags, int(getattr(self, "mil_k", 1)))
        keep = torch.as_tensor(keep, dtype=torch.long)
        if how == "mil-once":
            self.neg_chosen_ = keep
        return keep.to(x_abn.device)

    def check_data(self, n_available: int, n_labelled: int) -> None:
        """Stop before training when the data cannot train this method.

        ``n_available``: abnormal crops in the train split; ``n_labelled``: how many of them
        the run may use (after ``--labelled-anomalies``). A method that uses labelled anomalies
        needs some in the split; an explicit cap of 0 is allowed (it then trains as its
        normal-only variant: the origin of the label-efficiency curve) unless
        ``needs_abnormal``.
        """
        if self.uses_abnormal and n_available == 0:
            raise AdtkError(
                f"method {self.name!r} needs labelled anomalies in train (none in the train "
                "split)"
            )
        if self.needs_abnormal and n_labelled == 0:
            raise AdtkError(
                f"method {self.name!r} needs at least one labelled anomaly "
                "(--labelled-anomalies 0 leaves none)"
            )

    @torch.no_grad()
    def recalibrate_bn(self, batches: Iterable[torch.Tensor]) -> None:
        """Recompute BatchNorm running statistics as exact averages over ``batches``.

        Running averages lag behind weights that move fast (Adam at 1e-3, a few steps per
        epoch), and eval-mode scores then fail on normal data too; "precise BN" (Wu & Johnson,
        Rethinking BatchNorm) recomputes them with the final weights. The batches should mix
        normal and abnormal samples as training did.
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
        """(B,) anomaly scores of a prepared batch (higher = more anomalous), eval mode."""
        raise NotImplementedError

    def score_samples(self, X: torch.Tensor | np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Anomaly score per sample, float64 (higher = more anomalous, for every method).

        X: uint8 (N, C, H, W) in 0..255, or float in [-1, 1].
        """
        self._check_fitted()
        X = torch.as_tensor(X)
        out = [
            self.score_batch(self._prep(X[i : i + batch_size])).float().cpu()
            for i in range(0, len(X), batch_size)
        ]
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model and optimiser states (for checkpoints)."""
        self._check_fitted()
        state = {
            "model": self.model_.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers_.items()},
        }
        if getattr(self, "neg_chosen_", None) is not None:  # neg_select mil-once's choice
            state["neg_chosen"] = self.neg_chosen_
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model_.load_state_dict(state["model"])
        for k, o in self.optimizers_.items():
            o.load_state_dict(state["optimizers"][k])
        if "neg_chosen" in state:
            self.neg_chosen_ = state["neg_chosen"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise AdtkError(f"method {self.name!r} is not built or fitted yet")


#: The network size settings every method built on the AAE's encoder declares.
NETWORK_SETTINGS = (
    Setting("latent_dim", 16, "Size of the latent code (the encoder's output).", minimum=1),
    Setting("width", 16, "Channels of the first conv layer (doubling per layer).", minimum=1),
    Setting("lr", 1e-3, "Adam learning rate (Adam's default betas, as the paper).", above=0),
)


#: Network size per preset and data family, for every method on the AAE's encoder. Digit
#: values tuned on mnist-5k (README "adtk bench": width 32 gained nothing over 16, 2-4x slower).
NETWORK_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {"digits": dict(latent_dim=16, width=16), "crops": dict(latent_dim=32, width=16)},
    "paper": {"digits": dict(latent_dim=32, width=64), "crops": dict(latent_dim=64, width=64)},
}


class AutoencoderMethod(Method):
    """(Adversarial) autoencoder trained on normal data, optionally failing on anomalies.

    Subclasses set ``adversarial`` (latent discriminator on/off) and ``uses_abnormal``, and
    may replace :meth:`negative_term` (the loss on labelled anomalies' reconstructions).
    The score is the per-sample reconstruction MSE.
    """

    adversarial: ClassVar[bool] = True
    reconstructs = True
    settings = NETWORK_SETTINGS
    presets = NETWORK_PRESETS
    loss_keys = ("loss", "rec")

    def build(
        self, in_channels: int, size: int, device: torch.device | str = "cpu"
    ) -> AutoencoderMethod:
        """Create networks, losses and optimisers (seed torch first for a reproducible init)."""
        self._set_device(device)
        self.neg_chosen_ = None  # mil-once's choice belongs to one training, never carried over
        model = AAE(in_channels, size, self.latent_dim, self.width, adversarial=self.adversarial)
        self.model_ = model = self._place(model)
        self.in_channels_, self.size_ = in_channels, size
        self.rec_loss_ = ReconstructionLoss()
        if self.adversarial:
            self.adv_loss_ = AdversarialLoss(getattr(self, "adv_weight", 1.0))
            self.disc_loss_ = DiscriminatorLoss()
        # Adam with the Adam paper's defaults (betas 0.9/0.999, eps 1e-8), as the ADNL paper.
        ae_params = [*model.encoder.parameters(), *model.decoder.parameters()]
        self.optimizers_ = {"ae": torch.optim.Adam(ae_params, lr=self.lr)}
        if model.discriminator is not None:
            self.optimizers_["disc"] = torch.optim.Adam(
                model.discriminator.parameters(), lr=self.lr
            )
        return self

    def negative_active(self, epoch: int) -> bool:
        """Whether the negative term is on in ``epoch`` (1-based; off during warm-up).

        With ``neg_select mil`` the first epoch is normal-only whatever the warm-up: the
        selection ranks crops by the model's reconstruction error, which says nothing about
        them before the model has seen the normal crops once. With ``mil-once`` the first
        ``mil_warmup`` epochs are (0: a third of the epochs, at least 1), and so are the first
        ``warmup_epochs`` when that is longer.
        """
        warm = getattr(self, "warmup_epochs", 0)
        how = getattr(self, "neg_select", "all")
        if how in ("mil", "mil-once"):
            warm = max(warm, 1)
        if how == "mil-once":  # unresolved 0: a third of the epochs train() was asked for
            warm = max(warm, getattr(self, "mil_warmup", 0)
                       or mil_once_warmup(getattr(self, "epochs_", 0)))
        return self.uses_abnormal and epoch > warm

    def negative_term(
        self, x_abn: torch.Tensor, x_hat_abn: torch.Tensor, normal_mse: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss on labelled anomalies (scalar); subclasses that use them define it.

        ``normal_mse``: the batch's mean normal reconstruction error (detached)."""
        raise NotImplementedError

    def extra_terms(
        self, x: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor | None, Callable[[torch.Tensor], dict[str, torch.Tensor]] | None]:
        """Extra inputs to put through the network with the batch, and the loss on their
        outputs (name -> scalar). None, None by default."""
        return None, None

    # -- one training step ------------------------------------------------------------------
    def train_step(
        self, x: torch.Tensor, x_abn: torch.Tensor | None = None, epoch: int = 1
    ) -> dict[str, torch.Tensor]:
        """One update on a normal batch (and an abnormal one); returns detached loss values.

        Normal and abnormal samples go through the network in one batch, so BatchNorm
        statistics see the same mix as in every step.
        """
        model = self.model_
        model.train()
        use_neg = x_abn is not None and len(x_abn) > 0 and self.negative_active(epoch)
        extra_x, extra_loss = self.extra_terms(x, epoch)
        parts = [x, *([x_abn] if use_neg else []), *([extra_x] if extra_x is not None else [])]
        xb = torch.cat(parts) if len(parts) > 1 else x
        n = len(x)
        n_abn = len(x_abn) if use_neg else 0
        opt = self.optimizers_["ae"]
        opt.zero_grad(set_to_none=True)
        with self._autocast():
            x_hat, z = model(xb)
        rec = self.rec_loss_(x, x_hat[:n])
        loss = rec
        out: dict[str, torch.Tensor] = {"rec": rec.detach()}
        if use_neg:
            neg = self.negative_term(x_abn, x_hat[n : n + n_abn], normal_mse=rec.detach())
            loss = loss + neg
            out["neg"] = neg.detach()
        if extra_loss is not None:
            for k, v in extra_loss(x_hat[n + n_abn :]).items():
                loss = loss + v
                out[k] = v.detach()
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

    # -- scoring ----------------------------------------------------------------------------
    @torch.no_grad()
    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) reconstruction MSE of a prepared batch, in eval mode."""
        self.model_.eval()
        with self._autocast():
            x_hat, _ = self.model_(x)
        return per_sample_mse(x, x_hat)

    @torch.no_grad()
    def reconstruct(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Reconstructions in [-1, 1], (N, C, H, W) float32 on the CPU (for figures)."""
        self._check_fitted()
        self.model_.eval()
        with self._autocast():
            x_hat, _ = self.model_(self._prep(torch.as_tensor(X)))
        return x_hat.float().cpu().contiguous()


#: The negative-learning settings (ADNL's eq. 3 / 4), and the weak-label remedy.
#:
#: The weak-label default (frame-level training labels: interval, folder, or --train-labels
#: interval) is the bounded term (``neg_bound margin``) on negatives chosen once by
#: multiple-instance selection (``neg_select mil-once``): per abnormal frame, the crop the
#: model scores highest after a normal-only third of the epochs (``mil_warmup``). Why,
#: measured on Ped2's few-shot splits at the suite's settings (motion crops, 32 px, 15
#: epochs, every 8th training frame, scaled loss, region-labelled manifest trained with
#: --train-labels interval; frame AUROC micro raw / smoothed (track 5 + 9 frames), mean of
#: seeds 1-8; baseline 0.893 / 0.917):
#:
#: - the bound alone (every crop of an abnormal frame a negative): 0.893 / 0.914; unbounded:
#:   0.867 / 0.923, with the normal training error ending at 0.026 against 0.0038 bounded;
#: - mil-once + bound: 0.898 / 0.921 (macro 0.938 against 0.936, object 0.937 against 0.934):
#:   the chosen crops are the region-labelled object in 64-96 % of frames (mean 0.875), where
#:   all crops of those frames are 13-20 %; unbounded on the same choice: 0.882 / 0.911 (seed 7
#:   collapses to 0.789);
#: - chosen after the first epoch instead (the model barely trained), the chosen crops were
#:   the object in 1-11 % of frames (seeds 1-2), worse than all crops: frame AUROC 0.58-0.62;
#: - chosen with BatchNorm's running averages instead of statistics recomputed for the
#:   weights of the moment (``scores_negatives``): the object in 39 % of seed 2's frames
#:   against 93 %, frame AUROC 0.879 / 0.896 against 0.905 / 0.927;
#: - on 8 fresh splits afterwards (seeds 9-16): 0.936 / 0.958 against the baseline's
#:   0.930 / 0.951 (the bound alone: 0.930 / 0.944);
#: - the choice remade every epoch (``mil``, from epoch 2 on) lets the negative term feed
#:   back into it (a crop pushed away scores high, so it is chosen again): 0.790 / 0.830 on
#:   seeds 1-8 (0.786 / 0.817 before the loop recomputed BatchNorm statistics for it).
#:
#: Before that (when appearance crops were the input), the bound was the default and MIL
#: opt-in: measured on UCSD Ped2, few-shot protocol (3 labelled test clips), appearance crops
#: at 32 px, 8 epochs, training clips at every 3rd frame, test clips at every frame; frame
#: AUROC (micro), mean over seeds 1-4 ([2]) or 1-2 ([1], and the MIL rows); load average 7-15:
#:
#: ======================================  =============  ==============================
#:                                         interval-only  region-labelled manifest
#:                                         manifest [1]   trained on interval labels [2]
#: ======================================  =============  ==============================
#: baseline (AAE)                          0.436          0.478
#: ADNL, all, unbounded (the paper)        0.593          0.556
#: ADNL, mil, unbounded                    0.299          --
#: ADNL, all, margin 2 (then the default)  0.551          0.544
#: ADNL, mil, margin 2                     0.552          0.491
#: ADNL on region labels (for reference)   --             0.665
#: ======================================  =============  ==============================
#:
#: [1] the motion/HOG detector's crops, labels.csv only; [2] YOLOX ``--target object`` crops
#: with ``--regions``, ``--train-labels interval``. The bound does not raise frame AUROC
#: (within seed noise of unbounded); it is the default because unbounded, ADNL learns to fail
#: on the normal crops too: its reconstruction error on normal training crops rose from 0.33
#: to 0.43 over the 8 epochs ([2], mean of 4 seeds) while the baseline's fell from 0.090 to
#: 0.059; bounded, it fell (0.21 to 0.14), and object AUROC rose from 0.646 to 0.679.
#: MIL relies on the model ranking the anomalous object first within its frame, and these
#: appearance crops do not give it that: the baseline's highest-scored crop of an abnormal test
#: frame is the region object in 18-32 % of frames (a random crop: 13 %), so MIL mostly pushes
#: away the hardest walkers. On motion crops the trained baseline ranks it first in 80-94 % of
#: the abnormal test frames (seeds 1-16), which is what made mil-once pay.
#:
#: Why the margin is 4 (it was 2): measured later on the Ped2 suite's settings (motion crops,
#: 32 px, 15 epochs, every 8th training frame, scaled loss, ``--train-labels interval``, seeds
#: 1-8; frame AUROC micro raw / smoothed with track 5 + 9 frames): margin 2 gave 0.889 / 0.903,
#: margin 4 0.896 / 0.911, the baseline 0.891 / 0.912 on the same splits. With region labels
#: (seeds 1-3) margin 4 was above the baseline raw on all three (0.922 / 0.915 / 0.887 against
#: 0.914 / 0.908 / 0.859). A larger cap lets an anomaly's error rise further above the normal
#: error before the push stops, while still never rewarding a blow-up.
#:
#: Why region labels stay unbounded (``auto`` -> none there): on the suite's 8 few-shot splits
#: (same settings, region labels) margin 4 gave raw / smoothed micro 0.885 / 0.907 and margin
#: 16 0.885 / 0.906, against 0.863 / 0.954 unbounded and the baseline's 0.893 / 0.917; both
#: margins collapsed on seed 5 (raw 0.712, 0.733). The earlier 3-seed win did not hold over 8
#: (README, Table 2). A smooth margin (eq. 4 at the normal error's scale, s exp(-MSE / s) with
#: s = 4 x the normal error; an experiment, not an option) did the same: 0.892 / 0.912, seed 6
#: at 0.803. With interval labels on the same 8 splits, unbounded gave 0.867 / 0.923 with the
#: normal error ending at 0.026 (margin 4: 0.0038): margin 4 keeps the normal reconstruction
#: and, on interval labels, raw parity; the unbounded term the smoothed gain; no variant tried
#: gives both. Margin 16 on interval labels: 0.857 / 0.875, so 4 stays.
NEGATIVE_SETTINGS = (
    Setting("neg_loss", "naive", "Negative loss on labelled anomalies: naive = -MSE (eq. 3), "
            "scaled = exp(-MSE) (eq. 4).", choices=("naive", "scaled")),
    Setting("neg_weight", 1.0, "Weight of the loss on labelled anomalies.", minimum=0),
    Setting("warmup_epochs", 0, "Normal-only epochs before labelled anomalies are used.",
            minimum=0),
    Setting("neg_bound", "auto", "Bound on the negative term: margin = an anomaly's "
            "reconstruction error is pushed up only until it is --neg-margin times the batch's "
            "mean normal error (no gradient past it); none = unbounded (the paper); auto = "
            "margin where the training anomalies' labels are frame-level (interval or folder "
            "labels, or --train-labels interval), else none.", choices=("auto", "none", "margin")),
    Setting("neg_margin", 4.0, "neg_bound margin: the multiple of the normal error up to which "
            "an anomaly's error is pushed.", above=0),
)
ADVERSARIAL_SETTINGS = (
    Setting("adv_weight", 1.0, "Weight of the AAE's adversarial (latent prior) term.", minimum=0),
)


#: Which labelled anomalies serve as negatives (see :data:`NEGATIVE_SETTINGS` for why the
#: weak-label default is mil-once with the bounded term).
NEG_SELECT = ("auto", "all", "mil", "mil-once")
WEAK_LABEL_SETTINGS = (
    Setting("neg_select", "auto", "Which labelled anomalies serve as negatives: all of them; "
            "mil = per abnormal frame only the --mil-k crops the current model finds most "
            "anomalous (multiple-instance selection, chosen again every epoch; the first epoch "
            "is normal-only), for frame-level labels where most crops of an abnormal frame are "
            "normal objects; mil-once = that choice made once, after --mil-warmup normal-only "
            "epochs, and kept, so the negative term cannot feed back into it; auto = mil-once "
            "with frame-level (interval) training labels, all otherwise.", choices=NEG_SELECT),
    Setting("mil_k", 1, "neg_select mil / mil-once: crops per abnormal frame kept as negatives.",
            minimum=1),
    Setting("mil_warmup", 0, "neg_select mil-once: normal-only epochs before the choice (the "
            "model must rank by then; a longer --warmup-epochs wins); 0 = a third of the "
            "epochs, at least 1.", minimum=0),
)


def neg_select_variant(values: dict[str, Any]) -> str:
    """``neg_select`` in a method's :meth:`Method.variant` label ("mil-once"): '' for all of
    them (the published form), and for ``auto`` (not resolved, so not known)."""
    how = values.get("neg_select")
    return "" if how in (None, "auto", "all") else str(how)


def mil_once_warmup(epochs: int) -> int:
    """``neg_select mil-once``'s default warm-up: a third of ``epochs``, at least 1 (the choice
    needs a model that ranks; measured on Ped2, see :data:`NEGATIVE_SETTINGS`)."""
    return max(1, int(epochs or 0) // 3)


def mil_select(scores: np.ndarray, bags: np.ndarray | None, k: int = 1) -> np.ndarray:
    """Sorted indices of the ``k`` highest ``scores`` of each bag (all of a smaller bag).

    Multiple-instance learning's assumption: an abnormal bag holds at least one anomaly, not
    that all its instances are. A bag is a frame (``video``, ``frame_idx``;
    :func:`toolkit.data.datasets.abnormal_bags`), not a track: an interval label says that an
    anomaly is in view in that frame, which is exactly a bag with at least one positive;
    a walker's track inside an abnormal interval is abnormal-labelled from end to end while
    holding no anomaly at all, so a track bag breaks the assumption. ``bags`` None: each
    sample is its own bag (every index). Ties keep the lower index.
    """
    n = len(scores)
    if bags is None:
        return np.arange(n)
    bags = np.asarray(bags)
    if len(bags) != n:
        raise AdtkError(f"mil_select: {n} scores but {len(bags)} bag ids")
    # sort by bag, then by score descending (lexsort: last key first; stable for ties)
    order = np.lexsort((-np.asarray(scores, dtype=np.float64), bags))
    sb = bags[order]
    start = np.r_[0, np.flatnonzero(sb[1:] != sb[:-1]) + 1]
    rank = np.arange(n) - np.repeat(start, np.diff(np.r_[start, n]))
    return np.sort(order[rank < k])


class NegativeLearningMixin:
    """ADNL's negative term: -MSE or exp(-MSE) of labelled anomalies, weighted; with
    ``neg_bound margin`` each anomaly's MSE counts only up to ``neg_margin`` times the batch's
    mean normal MSE (a hinge: an anomaly already that far off gets no more push)."""

    def negative_term(
        self, x_abn: torch.Tensor, x_hat_abn: torch.Tensor, normal_mse: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not hasattr(self, "neg_loss_"):
            self.neg_loss_ = NegativeLoss(self.neg_loss, self.neg_weight)
        bounded = getattr(self, "neg_bound", "none") == "margin" and normal_mse is not None
        cap = self.neg_margin * normal_mse if bounded else None
        return self.neg_loss_(x_abn, x_hat_abn, cap)
