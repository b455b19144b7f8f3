"""Figures render headless to real PNGs, with the labels and legends a reader needs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from toolkit.eval import plots as P


def _png_ok(fig, min_colours: int = 20) -> Image.Image:
    img = Image.open(io.BytesIO(P.to_png(fig)))
    assert img.format == "PNG" and img.width > 300 and img.height > 200
    arr = np.asarray(img.convert("RGB"))
    assert len(np.unique(arr.reshape(-1, 3), axis=0)) >= min_colours  # not blank
    return img


def test_roc_legend_holds_auc_and_axes_are_labelled():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(50), np.ones(50)]
    curves = []
    for name, shift, auc in (("baseline", 0.2, 0.55), ("ADNL", 2.5, 0.97)):
        s = rng.normal(0, 1, 100) + shift * y
        scores = pd.DataFrame({"sample_id": [str(i) for i in range(100)], "split": "test",
                               "label": np.where(y == 1, "abnormal", "normal"), "score": s})
        curves.append(P.roc_curve_of(name, scores, auc))
    fig = P.roc_figure(curves)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "baseline (AUC 0.550)" in labels and "ADNL (AUC 0.970)" in labels
    assert ax.get_xlabel() == "False positive rate" and ax.get_ylabel() == "True positive rate"
    _png_ok(fig)


def test_histogram_scales_scores_to_unit_interval():
    fig = P.score_histogram(np.array([10.0, 11.0, 12.0]), np.array([20.0, 30.0]))
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 1.0)
    # patches of both histograms live inside [0, 1]
    xs = [p.get_x() for p in ax.patches] + [p.get_x() + p.get_width() for p in ax.patches]
    assert min(xs) >= -1e-9 and max(xs) <= 1 + 1e-9
    assert "scaled to 0-1" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "normal (n=3)", "abnormal (n=2)"]
    _png_ok(fig, min_colours=5)


def test_val_auc_figure_skips_runs_without_validation():
    h = pd.DataFrame({"epoch": [1, 2, 3], "val_auc": [0.7, 0.8, 0.9]})
    none = pd.DataFrame({"epoch": [1, 2], "val_auc": [np.nan, np.nan]})
    fig = P.val_auc_figure([("adnl", h), ("no-val", none)])
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["adnl"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [0.7, 0.8, 0.9])
    assert ax.get_xlabel() == "Epoch"
    _png_ok(fig, min_colours=5)


def test_one_epoch_val_auc_is_a_visible_point_on_a_readable_axis():
    h = pd.DataFrame({"epoch": [1], "val_auc": [0.7]})
    for fig in (P.val_auc_figure([("adnl", h)]), P.val_auc_grid([("d0", [("ADNL", h)])] * 3)):
        fig.canvas.draw()
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        assert hi - lo >= 1.5 and lo < 1 < hi  # not zoomed into 0.96-1.04
        assert list(ax.get_xticks()) == [1]  # one integer tick, no fractional epochs
        line = ax.get_lines()[0]
        assert line.get_marker() == "o" and line.get_markersize() >= 3  # a lone point shows
        _png_ok(fig)


@pytest.mark.parametrize("shape", [(4, 1, 28, 28), (4, 28, 28), (4, 3, 16, 16), (4, 16, 16, 3)])
def test_to_display_layouts_and_ranges(shape):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    d = P.to_display(a)
    assert d.shape[0] == 4 and d.min() >= 0 and d.max() <= 1
    assert d.ndim == 3 or d.shape[-1] == 3
    u = (rng.uniform(0, 255, shape)).astype(np.uint8)
    np.testing.assert_allclose(P.to_display(u).max(), u.max() / 255)


def test_recon_grid_input_above_output_and_colour_marks_label():
    x = np.zeros((3, 1, 8, 8), np.float32)
    x[:, :, 2:6, 2:6] = 1
    out = x * 0.5
    fig = P.recon_grid(x, out, [False, True, False], errors=[0.1, 0.5, 0.2])
    axes = [a for a in fig.axes]
    assert len(axes) == 6
    top, bottom = axes[:3], axes[3:]
    np.testing.assert_allclose(top[0].images[0].get_array(), x[0, 0])
    np.testing.assert_allclose(bottom[0].images[0].get_array(), out[0, 0])
    edge = [tuple(round(c, 3) for c in a.spines["left"].get_edgecolor()[:3]) for a in top]
    assert edge[0] == edge[2] != edge[1]
    assert top[0].get_ylabel() == "input" and bottom[0].get_ylabel() == "output"
    _png_ok(fig, min_colours=5)
    with pytest.raises(ValueError, match="differ in length"):
        P.recon_grid(x, out[:2], [False, True, False])


def test_extremes_ranks_by_score():
    scores = pd.DataFrame({"sample_id": list("abcdef"), "split": ["test"] * 5 + ["val"],
                           "label": ["normal"] * 3 + ["abnormal"] * 3,
                           "score": [0.1, 0.5, 0.2, 0.9, 0.7, 5.0]})
    most, least = P.extremes(scores, k=2)
    assert list(most["sample_id"]) == ["d", "e"]  # the val row (5.0) is not a test sample
    assert list(least["sample_id"]) == ["a", "c"]
    imgs = np.random.default_rng(0).uniform(0, 1, (2, 8, 8))
    fig = P.extremes_figure(imgs, most["score"].tolist(), [True, True],
                            imgs, least["score"].tolist(), [False, False])
    assert fig.axes[0].get_title() == "0.9"
    _png_ok(fig, min_colours=5)


def test_small_multiples_one_panel_per_comparison():
    rng = np.random.default_rng(1)
    fpr = np.linspace(0, 1, 20)
    panels = [(f"anomaly {d}", [("AAE", fpr, fpr ** 0.5, 0.6 + d / 100),
                                ("ADNL", fpr, fpr ** 0.1, 0.9 + d / 100)]) for d in range(7)]
    fig = P.roc_grid(panels, ncols=5)
    shown = [a for a in fig.axes if a.get_visible()]
    assert len(shown) == 7 and len(fig.axes) == 10  # 2 rows x 5, 3 hidden
    assert shown[6].get_title() == "anomaly 6"
    assert [t.get_text() for t in shown[6].get_legend().get_texts()] == ["0.660", "0.960"]
    # the same method has the same colour in every panel
    assert shown[0].get_lines()[1].get_color() == shown[6].get_lines()[1].get_color()
    _png_ok(fig)
    h = pd.DataFrame({"epoch": [1, 2, 3], "val_auc": rng.uniform(0.5, 1, 3)})
    fig = P.val_auc_grid([(f"d{d}", [("AAE", h), ("ADNL", h)]) for d in range(3)])
    assert sum(a.get_visible() for a in fig.axes) == 3
    _png_ok(fig)


def test_long_panel_titles_stay_within_their_panel():
    fpr = np.linspace(0, 1, 5)
    name = "anomaly 0, seed 1 (labelled_anomalies=all, neg_loss=scaled)"
    panels = [(name, [("ADNL", fpr, fpr, 0.5)]) for _ in range(5)]
    h = pd.DataFrame({"epoch": [1, 2], "val_auc": [0.5, 0.6]})
    for fig in (P.roc_grid(panels), P.val_auc_grid([(name, [("ADNL", h)])] * 5)):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        for ax in fig.axes:
            assert ax.title.get_window_extent(r).width <= ax.get_window_extent(r).width * 1.1
        assert fig.axes[0].get_title().replace("\n", " ") == name


def test_reconstructions_are_shown_in_the_tanh_range(tmp_path, monkeypatch):
    """A reconstruction of all zeros (mid-grey in [-1, 1]) shows as 0.5, not as black."""
    import json

    import torch

    from toolkit.engine.run import resolve_bench_config, run_one
    from toolkit.methods.base import AutoencoderMethod

    cfg = resolve_bench_config(method="baseline", dataset="digits", anomaly_digit=1, epochs=1,
                               width=8, latent_dim=8, device="cpu", num_threads=1)
    folder = run_one(cfg, tmp_path)
    monkeypatch.setattr(AutoencoderMethod, "reconstruct",
                        lambda self, X: torch.zeros(torch.as_tensor(X).shape))
    figs = dict(P.run_image_figures(folder, json.loads((folder / "config.json").read_text()),
                                    pd.read_parquet(folder / "scores.parquet")))
    fig = figs["Reconstructions (input above output)"]
    n = len(fig.axes) // 2
    out = np.asarray(fig.axes[n].images[0].get_array())  # first output (bottom row)
    assert np.allclose(out, 0.5)


def test_a_name_keeps_its_colour_from_figure_to_figure():
    from toolkit.eval.plots import PALETTE, _colours

    a = _colours(["AAE (motion)", "ADNL", "Fusion (geometric mean)"])
    b = _colours(["ADNL", "AAE (appearance)", "AAE (motion)"])  # another set, another order
    assert a["AAE (motion)"] == b["AAE (motion)"] and a["ADNL"] == b["ADNL"]
    assert list(b) == ["ADNL", "AAE (appearance)", "AAE (motion)"]  # legend order kept
    many = _colours([f"run {i}" for i in range(len(PALETTE))])
    assert sorted(many.values()) == sorted(PALETTE)  # distinct while the palette lasts


def test_a_legend_of_long_names_wraps_inside_the_figure():
    from toolkit.eval.plots import _figure, legend_columns

    fig = _figure(6.0, 3.0)
    assert legend_columns(fig, ["AAE", "ADNL"]) == 2
    long = [f"ADNL (neg_select=mil-once, neg_bound=margin, run {i})" for i in range(4)]
    assert legend_columns(fig, long) == 1


def test_a_method_keeps_its_colour_beside_other_variants():
    from toolkit.eval.plots import _colours

    frame = _colours(["AAE (baseline) (both)", "AAE (baseline) (motion)",
                      "AAE (baseline) (appearance)", "AAE (baseline)", "ADNL",
                      "Fusion (geometric mean)"])
    crop = _colours(["AAE (baseline)", "ADNL", "ADNL (neg_loss=naive)",
                     "ADNL (neg_loss=scaled)", "Fusion (geometric mean)"])
    for name in ("AAE (baseline)", "ADNL"):
        assert frame[name] == crop[name], name


def test_a_known_method_has_its_own_colour_in_every_report():
    """A report without ADNL must not draw the baseline in ADNL's colour (it did: colours
    were chosen per figure from the names present). The colour is the method's own (its
    class's ``colour``), the same as before it moved there, so reports look the same."""
    from toolkit.eval.plots import _colours
    from toolkit.eval.tables import FUSION, FUSION_COLOUR, method_name
    from toolkit.methods import get_method, list_methods

    colours = {m: get_method(m).colour for m in list_methods()}
    assert {k: colours.get(k) for k in ("baseline", "ae", "adnl", "deepsad", "classifier",
                                         "abc")} == {
        "baseline": "#264653", "ae": "#457b9d", "adnl": "#e76f51", "deepsad": "#2a9d8f",
        "classifier": "#e9c46a", "abc": "#6a994e"}
    assert FUSION_COLOUR == "#8d5fd3"
    colours = {m: c for m, c in {**colours, FUSION: FUSION_COLOUR}.items() if c is not None}
    names = {m: method_name(m) for m in colours}
    assert len(set(colours.values())) == len(colours)
    for m, name in names.items():
        assert _colours([name])[name] == colours[m]
    alone = _colours([names["baseline"], names["deepsad"]])
    assert alone[names["baseline"]] == colours["baseline"] != colours["adnl"]
    # ADNL's only curve, a variant, keeps ADNL's colour; other names avoid the methods' ones
    weak = "ADNL (weak labels: mil-once, margin 4)"
    assert _colours([names["baseline"], weak])[weak] == colours["adnl"]
    assert _colours(["run 7"])["run 7"] not in colours.values()


def test_a_methods_colour_is_read_from_its_class(monkeypatch):
    """Plots name no method: a new colour on a method's class is the one its curves get."""
    from toolkit.eval.plots import _colours
    from toolkit.eval.tables import method_name
    from toolkit.methods import get_method

    monkeypatch.setattr(get_method("deepsad"), "colour", "#123456")
    name = method_name("deepsad")
    assert _colours([name, method_name("baseline")])[name] == "#123456"
