"""The training loop shared by every method: device, data order, validation, checkpoints, resume.

Data lives as uint8 tensors (N, C, H, W), moved to the device once; each step gathers a batch
by index and converts/augments it there, so no Python runs per sample. Data order comes from a
generator seeded by (seed, epoch), and the torch / numpy / python RNG states go into the
checkpoint, so a run killed after epoch k and resumed ends bit-identical to an uninterrupted
one (CPU, same seed).
"""

from __future__ import annotations

import copy
import io
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from toolkit.errors import AdtkError
from toolkit.eval.metrics import auroc
from toolkit.io import atomic_path

SELECT_CHOICES = ("last", "best-val")
AUGMENTS = ("none", "hflip")
#: history.parquet's fixed columns; the losses a method's step returns go between them.
HISTORY_FIXED = ("epoch", "val_auc", "time_s")
#: history columns that count things (printed as whole numbers in the epoch line)
HISTORY_COUNTS = frozenset({"neg_selected"})

#: A method as the loop sees it (toolkit.methods.base.Method): build, train_step, start_epoch,
#: negative_active, recalibrate_bn, score_samples, state_dict / load_state_dict, model_,
#: uses_abnormal, loss_keys. Typed loosely so the engine does not depend on one class.
Method = Any


class NonFiniteLossError(AdtkError):
    """A loss became NaN or inf; the message names epoch, step and loss."""


class TrainingInterrupted(Exception):
    """Raise from an ``on_epoch`` callback to stop after a finished (checkpointed) epoch."""


@dataclass
class TrainData:
    """uint8 image tensors (N, C, H, W) and validation labels (1 = abnormal)."""

    x: torch.Tensor
    x_abn: torch.Tensor | None = None
    val_x: torch.Tensor | None = None
    val_y: np.ndarray | None = None
    #: channels whose sign a horizontal flip reverses (flow's horizontal component)
    flip_negate: tuple[int, ...] = ()
    #: one bag id per anomaly (its frame) for the method's negative selection; None = each
    #: anomaly its own bag
    abn_bags: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, x, x_abn=None, val_x=None, val_y=None) -> TrainData:
        def t(a):
            return None if a is None else torch.as_tensor(a)

        return cls(t(x), t(x_abn), t(val_x), None if val_y is None else np.asarray(val_y))


@dataclass
class TrainResult:
    history: pd.DataFrame
    epochs: int
    selected_epoch: int
    best_epoch: int | None
    best_val_auc: float
    train_images: int
    train_time_s: float
    wall_time_s: float
    resumed_from: int = 0
    #: CPU seconds of the earlier, interrupted sessions up to the checkpoint this one resumed
    #: from (the counterpart of the cumulative ``time_s`` in the history)
    earlier_cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.train_images / self.train_time_s if self.train_time_s > 0 else math.nan


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AdtkError(f"--device {device}: no CUDA GPU is available here (use cpu or auto)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise AdtkError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # A fresh stream per (seed, epoch): data order does not depend on what ran before.
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def _rng_state() -> dict[str, Any]:
    st = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save atomically (a kill mid-write leaves the previous checkpoint intact)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    # Our own file with numpy RNG state inside, so not weights_only.
    return torch.load(path, map_location="cpu", weights_only=False)


def _batches(n: int, batch_size: int) -> list[slice]:
    """Batch slices over n items; a trailing batch of one joins the previous (BatchNorm)."""
    starts = list(range(0, n, batch_size))
    sl = [slice(s, min(s + batch_size, n)) for s in starts]
    if len(sl) > 1 and sl[-1].stop - sl[-1].start < 2:
        sl[-2] = slice(sl[-2].start, n)
        sl.pop()
    return sl


class _Batcher:
    """uint8 rows by index -> float batch in [-1, 1], gathered into buffers reused every step.

    Fresh multi-megabyte tensors per step cost page faults on every batch (measured: the
    convert step ran ~10x slower on a shared VM); the buffers are allocated once. A returned
    batch is valid until the next call (train_step is done with it by then).
    """

    def __init__(self, x: torch.Tensor, max_batch: int, negate: tuple[int, ...] = ()) -> None:
        self.x = x
        self.negate = negate
        shape = (min(max_batch, len(x)), *x.shape[1:])
        fmt = torch.channels_last if x.is_cuda else torch.contiguous_format
        self.u8 = torch.empty(shape, dtype=torch.uint8, device=x.device)
        self.f = torch.empty(shape, dtype=torch.float32, device=x.device, memory_format=fmt)

    def __call__(
        self, idx: torch.Tensor, augment: str = "none", g: torch.Generator | None = None
    ) -> torch.Tensor:
        n = len(idx)
        f = self.f[:n]
        if self.x.dtype != torch.uint8:  # float data is taken as already in [-1, 1]
            return _augment(f.copy_(self.x.index_select(0, idx)), augment, g, self.negate)
        u8 = self.u8[:n]
        torch.index_select(self.x, 0, idx, out=u8)  # several times faster than x[idx] on CPU
        _augment(u8, augment, g, self.negate)  # on uint8: a quarter of the bytes of the float batch
        f.copy_(u8)
        return f.div_(127.5).sub_(1.0)  # as to_unit_range, so scoring sees the same numbers


def _augment(
    x: torch.Tensor, kind: str, g: torch.Generator | None, negate: tuple[int, ...] = ()
) -> torch.Tensor:
    """On-device augmentation of a batch (B, C, H, W), in place.

    ``negate``: channels whose sign a horizontal flip reverses (a flow's horizontal component,
    stored around 128 in uint8, around 0 in float).
    """
    if kind == "hflip":
        idx = (torch.rand(len(x), generator=g) < 0.5).nonzero().squeeze(1).to(x.device)
        x.index_copy_(0, idx, mirror(x.index_select(0, idx), negate))  # flips half, in place
    return x


def mirror(x: torch.Tensor, negate: tuple[int, ...] = ()) -> torch.Tensor:
    """A new batch (B, C, H, W): each image mirrored left-right, the ``negate`` channels (a
    flow's horizontal component: 128 + a in uint8, a in float) with their sign reversed, as
    the mirrored scene would move."""
    out = x.flip(3)
    for c in negate:
        ch = out[:, c]
        if ch.dtype == torch.uint8:  # 128 + a -> 128 - a
            ch.copy_((256 - ch.to(torch.int16)).clamp_(0, 255))
        else:
            ch.neg_()
    return out


def evaluate(method: Method, x: torch.Tensor, y: np.ndarray, batch_size: int) -> float:
    """AUROC of the method's scores on (x, y); NaN when y has one class."""
    scores = method.score_samples(x, batch_size=max(batch_size, 512))
    if not np.isfinite(scores).all():
        raise NonFiniteLossError("non-finite validation scores")
    return auroc(y, scores)


def fit(
    method: Method,
    X: torch.Tensor | np.ndarray,
    X_abn: torch.Tensor | np.ndarray | None = None,
    *,
    val: tuple[Any, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    **train_kwargs: Any,
) -> Method:
    """Train ``method`` on uint8 (N, C, H, W) normal images (and anomalies); returns it, with
    the :class:`TrainResult` in ``method.result_`` (scikit-learn's ``fit`` habit)."""
    if method.uses_abnormal and X_abn is None:
        # Forgetting the anomalies is an error; an explicit empty set trains without any.
        raise AdtkError(
            f"method {method.name!r} needs labelled anomalies (X_abn); pass an empty array "
            "to train without any"
        )
    data = TrainData.from_arrays(X, X_abn, *(val or (None, None)))
    method.result_ = train(method, data, epochs=epochs, batch_size=batch_size, **train_kwargs)
    return method


def train(
    method: Method,
    data: TrainData,
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    select: str = "last",
    augment: str = "none",
    neg_batch_size: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume_state: dict[str, Any] | None = None,
    on_epoch: Sequence[Callable[[int, dict], None]] = (),
    progress: bool | str | None = None,
    desc: str = "train",
    bn_batches: int = 8,
) -> TrainResult:
    """Train ``method`` for ``epochs`` (resuming from ``checkpoint`` when it exists).

    ``on_epoch`` callbacks get (epoch, history row) after the epoch is checkpointed; raising
    :class:`TrainingInterrupted` there stops like a kill would. A NaN/inf loss raises
    :class:`NonFiniteLossError` and leaves the last good checkpoint in place. After an epoch
    whose model is used in eval mode next (validation, or the last epoch), BatchNorm statistics
    are recomputed on up to ``bn_batches`` of its batches. ``resume_state`` is the checkpoint
    already loaded by the caller (``load_checkpoint(checkpoint)``), so it is not read twice.
    """
    if select not in SELECT_CHOICES:
        raise AdtkError(f"unknown select {select!r}; use one of {', '.join(SELECT_CHOICES)}")
    if augment not in AUGMENTS:
        raise AdtkError(f"unknown augment {augment!r}; use one of {', '.join(AUGMENTS)}")
    if data.x is None or len(data.x) < 2:
        raise AdtkError("need at least 2 normal training images")
    # A negative-learning method given no anomalies trains as its plain autoencoder: that is
    # the origin of the label-efficiency curve (--labelled-anomalies 0). Whether the data
    # *should* have had anomalies is checked by the caller (run_one), which knows the split.
    dev = torch.device(device) if isinstance(device, torch.device) else resolve_device(device)
    t_wall = time.perf_counter()
    c_start = time.process_time()
    if dev.type == "cpu":
        # Denormal floats made CPU steps up to ~2x slower on noisy inputs (measured); flushing
        # them to zero changes nothing a reconstruction error can see.
        torch.set_flush_denormal(True)
    _, c, h, w = data.x.shape
    seed_everything(seed)
    method.build(c, h, dev)
    method.epochs_ = epochs  # schedules that depend on the length of training read it

    # Data moved to the device once, as uint8 (4x smaller than float).
    x_all = data.x.to(dev)
    x_abn = data.x_abn.to(dev) if data.x_abn is not None and len(data.x_abn) else None
    if not method.uses_abnormal:
        x_abn = None
    val_x = data.val_x.to(dev) if data.val_x is not None and len(data.val_x) else None
    n = len(x_all)
    batches = _batches(n, batch_size)  # the same slices every epoch; only the order changes
    if x_abn is not None:
        nb_abn = neg_batch_size or max(1, math.ceil(batch_size * len(x_abn) / n))
        nb_abn = min(nb_abn, len(x_abn))

    # A trailing batch of one joins the previous one (_batches), so a batch can hold one more.
    get_normal = _Batcher(x_all, max(s.stop - s.start for s in batches), data.flip_negate)
    if x_abn is not None:
        get_abn = _Batcher(x_abn, nb_abn, data.flip_negate)

    ckpt_path = Path(checkpoint) if checkpoint else None
    history: list[dict[str, float]] = []
    best_auc, best_epoch, best_state = -math.inf, None, None
    start, images, train_time = 1, 0, 0.0
    if resume_state is None and ckpt_path is not None and ckpt_path.exists():
        resume_state = load_checkpoint(ckpt_path)
    if resume_state is not None:
        ck = resume_state
        method.load_state_dict(ck["method"])
        history = ck["history"]
        best_auc, best_epoch, best_state = ck["best_auc"], ck["best_epoch"], ck["best_state"]
        images, train_time = ck["images"], ck["train_time"]
        _set_rng_state(ck["rng"])
        start = ck["epoch"] + 1
    # CPU seconds of earlier sessions (checkpoints written before this was kept: none)
    earlier_cpu = float(resume_state.get("cpu_time", 0.0)) if resume_state is not None else 0.0
    resumed_from = start - 1
    time_offset = history[-1]["time_s"] if history else 0.0

    from toolkit.progress import Progress

    # A bar on a terminal; where stderr is a log, a plain line per epoch (at most one per 10 s).
    bar = Progress(epochs, desc, "epochs", mode=progress, initial=start - 1, leave=False)
    try:
        for epoch in range(start, epochs + 1):
            g = _epoch_generator(seed, epoch)
            perm = torch.randperm(n, generator=g).to(dev)
            chosen = None  # the anomalies this epoch uses (None = all)
            if x_abn is not None and method.negative_active(epoch):
                # Weak labels: the method may keep only some anomalies, chosen by the model as
                # it is now (before this epoch's steps), so a resumed run chooses the same.
                chosen = method.select_negatives(x_abn, data.abn_bags, epoch)
            if x_abn is not None:
                n_abn, nb = len(x_abn), nb_abn
                if chosen is not None:
                    n_abn = len(chosen)
                    nb = min(neg_batch_size or max(1, math.ceil(batch_size * n_abn / n)), n_abn)
                # Enough abnormal indices for every step, cycling through shuffled passes.
                reps = math.ceil(len(batches) * nb / n_abn)
                perm_abn = torch.cat(
                    [torch.randperm(n_abn, generator=g) for _ in range(reps)]
                ).to(dev)
                if chosen is not None:
                    perm_abn = chosen[perm_abn]
            t0 = time.perf_counter()
            method.start_epoch(
                epoch, lambda: (get_normal(torch.arange(sl.start, sl.stop, device=dev))
                                for sl in batches)
            )
            logs: list[dict[str, torch.Tensor]] = []
            bn_data: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # (normal, abn) idx
            for step, sl in enumerate(batches):
                xb = get_normal(perm[sl], augment, g)  # (B, C, H, W) in [-1, 1]
                xa, ia = None, None
                if x_abn is not None:
                    ia = perm_abn[step * nb : (step + 1) * nb]
                    xa = get_abn(ia, augment, g)
                logs.append(method.train_step(xb, xa, epoch))
                images += len(xb) + (0 if xa is None else len(xa))
                if step < bn_batches:  # indices only: the batch buffers are reused
                    mixed = xa is not None and method.negative_active(epoch)
                    bn_data.append((perm[sl], ia if mixed else None))
            try:
                # one host sync per epoch, checks NaN/inf
                row = _epoch_row(logs, epoch, method.loss_keys)
                if chosen is not None:  # how many anomalies served this epoch
                    row["neg_selected"] = float(len(chosen))
            except NonFiniteLossError as e:
                if ckpt_path is None:
                    kept = "no checkpoint was asked for"
                elif epoch == 1:
                    kept = "no epoch finished, so there is no checkpoint yet"
                else:
                    kept = f"the last good checkpoint (epoch {epoch - 1}) is kept at {ckpt_path}"
                raise NonFiniteLossError(
                    f"{e}; training stopped, {kept}. Try a lower --lr or --neg-weight."
                ) from None
            # Eval-mode statistics from the final weights, on batches mixed as in training;
            # needed only where eval mode is used next: validation, the final model, or the
            # next epoch's choice of negatives (multiple-instance selection scores with it).
            scores_next = (x_abn is not None and epoch < epochs
                           and method.scores_negatives(epoch + 1))
            if val_x is not None or epoch == epochs or scores_next:
                method.recalibrate_bn(
                    get_normal(i).clone() if j is None else torch.cat([get_normal(i), get_abn(j)])
                    for i, j in bn_data
                )
            train_time += time.perf_counter() - t0

            val_auc = math.nan
            if val_x is not None:
                val_auc = evaluate(method, val_x, data.val_y, batch_size)
            row["val_auc"] = val_auc
            row["time_s"] = time_offset + (time.perf_counter() - t_wall)
            history.append(row)
            if not math.isnan(val_auc) and val_auc > best_auc:
                best_auc, best_epoch = val_auc, epoch
                if select == "best-val":
                    best_state = copy.deepcopy(method.model_.state_dict())
            if ckpt_path is not None:
                save_checkpoint(
                    ckpt_path,
                    {
                        "epoch": epoch,
                        "method": method.state_dict(),
                        "history": history,
                        "best_auc": best_auc,
                        "best_epoch": best_epoch,
                        "best_state": best_state,
                        "images": images,
                        "train_time": train_time,
                        "cpu_time": earlier_cpu + time.process_time() - c_start,
                        "rng": _rng_state(),
                    },
                )
            bar.update(1, ", ".join(
                [f"{k} {v:.0f}" if k in HISTORY_COUNTS else f"{k} {v:.4f}" for k, v in row.items()
                 if k not in HISTORY_FIXED and k != "loss" and not math.isnan(v)]
                + [f"val_auc {val_auc:.3f}", f"{row['time_s']:.0f} s"]))
            for cb in on_epoch:
                cb(epoch, row)
    finally:
        bar.close()

    selected = epochs
    if select == "best-val" and best_state is not None:
        method.model_.load_state_dict(best_state)
        selected = best_epoch
    return TrainResult(
        history=history_frame(history, method.loss_keys),
        epochs=epochs,
        selected_epoch=selected,
        best_epoch=best_epoch,
        best_val_auc=best_auc if best_epoch is not None else math.nan,
        train_images=images,
        train_time_s=train_time,
        wall_time_s=time_offset + time.perf_counter() - t_wall,
        resumed_from=resumed_from,
        earlier_cpu_s=earlier_cpu,
    )


def loss_columns(loss_keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    """The loss columns: the method's declared ``loss_keys``, then any other key its steps
    returned, in the order first seen."""
    cols = dict.fromkeys(loss_keys)
    for r in rows:
        cols.update(dict.fromkeys(k for k in r if k not in HISTORY_FIXED))
    return list(cols)


def _epoch_row(
    logs: list[dict[str, torch.Tensor]], epoch: int, loss_keys: Sequence[str] = ("loss",)
) -> dict[str, float]:
    """Mean of each loss over the epoch's steps (NaN for a declared key no step returned);
    NaN/inf anywhere raises with step and loss."""
    row: dict[str, float] = {"epoch": epoch}
    first_bad: tuple[int, int, str, float] | None = None  # (step, key order, key, value)
    keys = loss_columns(loss_keys, logs)
    for order, key in enumerate([k for k in keys if k != "loss"] + ["loss"]):  # a term first
        vals = [lg[key] for lg in logs if key in lg]
        if not vals:
            row[key] = math.nan
            continue
        v = torch.stack([t.float() for t in vals]).cpu()  # (steps,)
        bad = (~torch.isfinite(v)).nonzero()
        if len(bad):
            step = int(bad[0])
            if first_bad is None or (step, order) < first_bad[:2]:
                first_bad = (step, order, key, float(v[step]))
        row[key] = float(v.mean())
    if first_bad is not None:
        step, _, key, val = first_bad
        raise NonFiniteLossError(
            f"non-finite loss {key!r} ({val}) at epoch {epoch}, step {step + 1}"
        )
    return row


def history_frame(history: list[dict[str, float]], loss_keys: Sequence[str] = ()) -> pd.DataFrame:
    """history.parquet's frame: epoch int64, the loss columns (the method's ``loss_keys`` and
    any other key its steps returned), val_auc and time_s, all float64."""
    cols = ["epoch", *loss_columns(loss_keys, history), "val_auc", "time_s"]
    df = pd.DataFrame(history, columns=cols)
    df["epoch"] = df["epoch"].astype("int64")
    for c in cols[1:]:
        df[c] = df[c].astype("float64")
    return df
