"""Frame-level tables and figures of video runs (UCSD Ped2 style), for the HTML report.

Reads what :mod:`toolkit.eval.frames` wrote into each run folder (``metrics.json``'s
``frame_*`` keys, ``frame_scores.parquet``); never recomputes a metric. Runs without frame-level
evaluation are ignored, so the report of a digit grid is unchanged.

* Tables: the official protocol (every method's micro and macro frame AUROC, smoothed when
  evaluated so, object AUROC), with published Ped2 numbers in rows marked as reported elsewhere;
  the few-shot protocol in the paper's Table 2 form (per seed, average, std).
* Figures: frame-level ROC curves (all test frames pooled, i.e. micro) and per-clip score
  timelines (frame score against time, abnormal frames shaded, one panel per test clip).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit.eval import plots as P
from toolkit.eval import tables as T
from toolkit.eval.metrics import mean_std, roc_points

#: Published frame-level AUROC on UCSD Ped2 (unsupervised: trained on the 16 normal training
#: clips, scored on all 12 test clips), as quoted by the dataset's README in ../shared/data and
#: by this project's issue tracker; the kind where the source or its public evaluation code
#: shows it. (method and source, AUROC 0-1, "micro" / "macro" / "clipnorm" / "hf2vad" /
#: "gauss3" (micro of frame scores smoothed as that code does:
#: :data:`toolkit.eval.metrics.PUBLISHED_SMOOTHING`) / None where the kind is not known)
PED2_PUBLISHED: tuple[tuple[str, float, str | None], ...] = (
    # MNAD's public evaluation code min-max scales each test clip's scores, then pools them.
    ("MNAD, memory-guided autoencoder (Park et al., CVPR 2020)", 0.9697, "clipnorm"),
    # these two as the dataset's README quotes them: the papers were not read here
    ("Pseudo-anomaly autoencoder, the ADNL authors' group (as quoted by the dataset's "
     "README; paper not checked)", 0.9650, None),
    ("STMSVADnet (as quoted by the dataset's README; paper not checked)", 0.983, None),
    # VEC's test.py: a frame's score is its highest box score, all test frames in one ROC,
    # no smoothing.
    ("VEC (Yu et al., ACM MM 2020)", 0.973, "micro"),
    # SSMTL: micro and macro as the literature (and the issue tracker) quote them; no public
    # evaluation code was read, so whether its frame scores are smoothed is not known: not in
    # the raw columns, but with the numbers whose protocol is not known
    ("SSMTL (Georgescu et al., CVPR 2021), micro, smoothing not known", 0.975, None),
    ("SSMTL (Georgescu et al., CVPR 2021), macro, smoothing not known", 0.998, None),
    # HF2-VAD's eval.py and utils/eval_utils.py: each clip's frame scores (highest box score)
    # without its first 4 frames, through a 17-frame median filter, then one ROC over all.
    ("HF2-VAD (Liu et al., ICCV 2021)", 0.993, "hf2vad"),
    # Reiss and Hoshen's evaluate.py (Accurate-Interpretable-VAD): each clip's frame scores
    # (highest object score) through a Gaussian of sigma 3 frames (the value its README gives
    # for Ped2), then one ROC over all; the README's 99.1 is the first, micro, AUC it prints.
    ("Attribute-based VAD (Reiss and Hoshen, 2022)", 0.991, "gauss3"),
)
_PER_SEED_IGNORE = ("data", "data_sha256", "seed")


def frame_runs(runs: Sequence[T.Run]) -> list[T.Run]:
    """Finished runs evaluated frame by frame."""
    return [r for r in T.finished(runs) if r.get("frame_auroc_micro") is not None
            or (r.metrics or {}).get("frame_eval")]


def _protocol(r: T.Run) -> str:
    return str(r.get("protocol") or "other")


def _is_ped2(runs: Sequence[T.Run]) -> bool:
    """Runs of ``adtk bench --suite ped2`` (their split manifests say so)."""
    return bool(runs) and all(r.get("suite") == "ped2" for r in runs)


def _cell(group: Sequence[T.Run], metric: str) -> T.Cell:
    vals = [r.get(metric) for r in group]
    vals = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
    m, sd = mean_std(vals)
    return T.Cell(None if math.isnan(m) else m, None if len(vals) < 2 else sd, max(len(vals), 1),
                  run_ids=tuple(r.run_id for r in group))


def _method_order(runs: Sequence[T.Run]) -> list[str]:
    order = {"baseline": 0, "ae": 1, "adnl": 2}
    return sorted({str(r.get("method")) for r in runs}, key=lambda m: (order.get(m, 9), m))


def smooth_kind_of(run: T.Run) -> str:
    """How a run's smoothed frame scores were made, in words."""
    from toolkit.eval.frames import smooth_kind

    fe = run.get("frame_eval") or {}
    return smooth_kind(int(fe.get("smooth") or 0), int(fe.get("track_smooth") or 0),
                       fe.get("smooth_filter") or "mean")


def _smooth_width(runs: Sequence[T.Run]) -> str:
    """The runs' smoothing for column headers ('9 fr.', 'track 5 + 9 fr.'); '' when none."""
    from toolkit.eval.frames import runs_smooth_label

    return runs_smooth_label(r.get("frame_eval") for r in runs)


def official_table(runs: Sequence[T.Run]) -> T.Table | None:
    """Frame AUROC of the official protocol per method, published numbers beside it."""
    sel = [r for r in frame_runs(runs) if _protocol(r) == "official"]
    if not sel:
        return None
    w = _smooth_width(sel)
    metrics = [("Frame micro", "frame_auroc_micro"), ("Frame macro", "frame_auroc_macro"),
               ("Micro, clip min-max", "frame_auroc_micro_clipnorm")]
    if w:  # short headers; the note says how the scores were smoothed
        metrics += [("Micro, smoothed", "frame_auroc_micro_smoothed"),
                    ("Macro, smoothed", "frame_auroc_macro_smoothed"),
                    ("Clip min-max, smoothed", "frame_auroc_micro_clipnorm_smoothed")]
    # as HF2-VAD's and Reiss and Hoshen's evaluation code smooth (runs evaluated since)
    metrics += [(c, k) for c, k in (("Micro, median 17 (HF2-VAD)", "frame_auroc_micro_hf2vad"),
                                    ("Micro, Gaussian 3 (Reiss)", "frame_auroc_micro_gauss3"))
                if any(r.get(k) is not None for r in sel)]
    metrics += [("Object", "object_auroc")]
    columns = [c for c, _ in metrics] + ["Frame, kind not stated"]
    rows = []
    # Inputs (appearance, motion, both) are rows of their own, never pooled as seeds.
    extra = [f for f in ("input", "crop") if len({T.value_key(r.get(f)) for r in sel}) > 1]
    for m in _method_order(sel):
        group = [r for r in sel if str(r.get("method")) == m]
        for vals, g in T.group_runs(group, extra):
            cells = [_cell(g, k) for _, k in metrics] + [T.Cell(None)]
            rows.append(T.Row([T.method_label(g[0], extra), *map(str, vals)], cells))
    seeds = sorted({str(r.get("seed")) for r in sel})
    ped2 = _is_ped2(sel)
    paper_rows = []
    moved: dict[str, str] = {}  # smoothing-protocol rows not in a column of their own
    if ped2:
        where = {"micro": "Frame micro", "macro": "Frame macro",
                 "clipnorm": "Micro, clip min-max", "hf2vad": "Micro, median 17 (HF2-VAD)",
                 "gauss3": "Micro, Gaussian 3 (Reiss)"}
        for name, auc, kind in PED2_PUBLISHED:
            cells = [T.Cell(None) for _ in columns]
            col = where.get(kind)
            if col not in columns and kind in ("hf2vad", "gauss3"):
                # no run has that AUROC (evaluated before it existed, or undefined there)
                col = "Micro, smoothed" if "Micro, smoothed" in columns else columns[-1]
                moved[name.split(" (")[0]] = col
            # a kind without its column here: the last column
            j = columns.index(col) if col in columns else len(columns) - 1
            cells[j] = T.Cell(auc)
            paper_rows.append(T.Row([name], cells, paper=True))
    notes = [
        "Micro: one ROC over every test frame of every clip. Macro: the mean of the per-clip "
        "AUROCs over the clips holding both classes. A frame's score is its crops' "
        f"{_aggregate(sel)}; frames without crops get the lowest frame score.",
        "Clip min-max: micro after scaling each test clip's frame scores to 0-1, as the "
        "public evaluation code of Liu et al. (CVPR 2018) and MNAD does; it uses each clip's "
        "whole score range, so it is not a score a live camera could give.",
        "Object: test crops whose label came from an object region, against that label "
        "(empty when the manifest has no region labels).",
    ]
    if w:
        notes.insert(1, f"Smoothed ({w}): " + "; ".join(sorted({
            smooth_kind_of(r) for r in sel} - {"none"})) + ".")
    if ped2:
        agg = _aggregate(sel)
        notes.append(
            "Rows in italics are reported elsewhere: each method's own published number, not "
            "measured here (rounded to one decimal; exact values in the CSV). Where the "
            "number's source does not say whether it is micro or macro, it is in the last "
            "column; MNAD's is in the clip min-max column, as its evaluation code computes it; "
            "HF2-VAD's and Reiss and Hoshen's each in the column of its own protocol: the runs' "
            "frame scores smoothed as that method's evaluation code does (HF2-VAD: each clip's "
            "first 4 frames left out, a 17-frame median filter on the rest; Reiss and Hoshen: "
            "a Gaussian of sigma 3 frames per clip), then one ROC over all frames. SSMTL's "
            "micro and macro are in the last column: they are quoted as micro and macro, but "
            "no evaluation code of it was read, so whether it smooths its frame scores is not "
            "known"
            + ("." if agg == "highest score" else
               f"; both papers take a frame's highest score, these runs its crops' {agg}.")
            + "".join(f" {n}'s number is in the column '{c}' instead: no run here has an AUROC "
                      "under its protocol (evaluated before adtk computed it, or undefined on "
                      "these clips), and that column's protocol differs." for n, c in
                      sorted(moved.items())))
    return T.Table(
        key="ped2_official" if ped2 else "frames_official",
        title=("UCSD Ped2" if ped2 else "Video") + ", official protocol: frame AUROC x100",
        label_columns=["Method", *(T.field_title(f) for f in extra)],
        columns=columns,
        rows=rows,
        paper_rows=[T.Row(r.labels + [""] * len(extra), r.cells, paper=True)
                    for r in paper_rows],
        reported_in="elsewhere",
        caption=("Trained on the training clips (normal only), every frame of every test clip "
                 f"scored; {'seed ' if len(seeds) == 1 else 'mean ± std over seeds '}"
                 f"{', '.join(seeds)}."),
        notes=notes,
    )


def _aggregate(runs: Sequence[T.Run]) -> str:
    e = (runs[0].metrics or {}).get("frame_eval") or {}
    how = e.get("aggregate", "max")
    return {"max": "highest score", "mean": "mean score"}.get(
        how, f"mean of the {e.get('topk')} highest scores")


def fewshot_tables(runs: Sequence[T.Run]) -> list[T.Table]:
    """Few-shot protocol in Table 2 form: per seed, average and std; one table per metric."""
    # Unseen-kind splits (labelled clips of some kinds only) have tables of their own.
    sel = [r for r in frame_runs(runs) if _protocol(r) == "fewshot"
           and not r.get("protocol_events")]
    out = []
    ped2 = _is_ped2(sel)
    for k in sorted({int(r.get("labelled_clips") or 0) for r in sel}):
        group = [r for r in sel if int(r.get("labelled_clips") or 0) == k]
        seeds = sorted({r.get("seed") for r in group}, key=T.sort_key)
        fields = ["method", *[f for f in T.varying(group) if f not in (*_PER_SEED_IGNORE,
                                                                       "method")]]
        for label, metric in (("frame AUROC (micro)", "frame_auroc_micro"),
                              ("frame AUROC (macro)", "frame_auroc_macro"),
                              ("object AUROC", "object_auroc")):
            if all(r.get(metric) is None for r in group):
                continue
            rows = []
            for vals, g in T.group_runs(group, fields):
                cells = [_cell([r for r in g if r.get("seed") == s], metric) for s in seeds]
                m, sd = mean_std([c.value for c in cells if not c.empty])
                n = sum(not c.empty for c in cells)
                cells += [T.Cell(None if math.isnan(m) else m),
                          T.Cell(None if n < 2 else sd)]
                rows.append(T.Row([T.method_label(g[0], fields), *map(str, vals[1:])], cells))
            rows.sort(key=lambda r: r.labels[0] != T.method_name("baseline"))
            out.append(T.Table(
                key=f"{'ped2' if ped2 else 'frames'}_fewshot_k{k}_{metric}",
                title=(f"{'UCSD Ped2' if ped2 else 'Video'}, few-shot protocol ({k} labelled "
                       f"test clips): {label} x100 per seed"),
                label_columns=["Method", *[T.FIELD_TITLES.get(f, f) for f in fields[1:]]],
                columns=[f"Seed {s}" for s in seeds] + ["Average", "Std"],
                rows=rows,
                caption=(f"Per seed, {k} test clips (a seeded choice) move into training with "
                         "their labels; every method of a seed is scored on the same remaining "
                         "test clips. Published numbers use all test clips and no labels, so "
                         "they are not comparable here (see the official protocol's table)."),
            ))
    return out


def frame_tables(runs: Sequence[T.Run], plan: dict[str, Any] | None = None) -> list[T.Table]:
    """Official protocol, then the few-shot tables: a suite's parts where its plan
    (``suite_plan.json``, :mod:`toolkit.eval.suite_tables`) is given, else one Table 2 form
    per number of labelled clips."""
    from toolkit.eval import suite_tables as ST

    t = official_table(runs)
    head = [t] if t is not None else []
    if plan is None:
        return head + fewshot_tables(runs)
    return [ST.composition_table(runs, plan), *head, *ST.part_tables(runs, plan)]


# --- figures ---------------------------------------------------------------------------------


def read_frames(r: T.Run) -> pd.DataFrame | None:
    p = r.path / "frame_scores.parquet"
    try:
        return pd.read_parquet(p) if p.is_file() else None
    except (OSError, ValueError):
        return None


def _run_label(r: T.Run, group: Sequence[T.Run]) -> str:
    """The method's name, plus the settings that tell it from the other runs of its figure
    (input, crop, negative loss), so that no two curves share a legend entry."""
    extra = [str(r.get(f)) for f in ("input", "crop", "neg_loss")
             if r.get(f) is not None and len({T.value_key(x.get(f)) for x in group
                                              if x.get("method") == r.get("method")}) > 1]
    name = T.method_label(r)
    return f"{name} ({', '.join(extra)})" if extra else name


def _roc_curves(group: Sequence[T.Run]) -> list[tuple]:
    curves = []
    for r in sorted(group, key=lambda r: _method_order(group).index(str(r.get("method")))):
        f = read_frames(r)
        if f is None or r.get("frame_auroc_micro") is None:
            continue
        fpr, tpr = roc_points(f["abnormal"].to_numpy(), f["score"].to_numpy())
        curves.append((_run_label(r, group), fpr, tpr, float(r.get("frame_auroc_micro"))))
    return curves


def timeline_figure(
    series: Sequence[tuple[str, pd.DataFrame]], title: str, col: str = "score", ncols: int = 3,
    colours: dict[str, str] | None = None,
) -> Any:
    """One panel per clip: each run's frame score against time, abnormal frames shaded.

    Scores are min-max scaled per clip and run for display (the methods' score scales differ);
    the per-clip AUROC in each legend is rank-based and does not change with that scaling.
    """
    from matplotlib.patches import Patch

    from toolkit.eval.metrics import auroc

    clips = sorted({v for _, f in series for v in f["video"].unique()})
    fig, axes = P._grid_axes(len(clips), ncols, panel_h=1.9)
    fig.set_size_inches(3.6 * min(ncols, len(clips)) + 0.4, fig.get_size_inches()[1])
    colour = P.pick_colours([n for n, _ in series], colours)
    for ax, clip in zip(axes.flat, clips, strict=False):
        ref = None
        aucs = []
        for name, f in series:
            c = f[f["video"] == clip].sort_values("frame_idx")
            if not len(c):
                continue
            ref = c if ref is None else ref
            t = _time(c)
            s = c[col].to_numpy(dtype=np.float64)
            lo, hi = np.nanmin(s), np.nanmax(s)
            ax.plot(t, (s - lo) / (hi - lo) if hi > lo else s * 0, lw=1.0, color=colour[name])
            a = auroc(c["abnormal"].to_numpy(), s)
            aucs.append(f"{name} {a:.2f}" if not math.isnan(a) else f"{name} –")
        if ref is not None:
            _shade(ax, _time(ref), ref["abnormal"].to_numpy())
        ax.set_title(P._panel_title(f"{clip}: {'; '.join(aucs)}", 48), fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3, linewidth=0.5)
    fig = P._label_grid(fig, axes, colour, "Time (s)", "Frame score (scaled)", title)
    fig.legends[-1].remove()
    handles = [Patch(color=c, label=n) for n, c in colour.items()]
    handles.append(Patch(color=P.ABNORMAL_COLOUR, alpha=0.15, label="abnormal frames"))
    fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=9,
               ncols=P.legend_columns(fig, [h.get_label() for h in handles]))
    return fig


def _time(c: pd.DataFrame) -> np.ndarray:
    if "time_s" in c and c["time_s"].notna().all():
        return c["time_s"].to_numpy(dtype=np.float64)
    return c["frame_idx"].to_numpy(dtype=np.float64)


def _shade(ax: Any, t: np.ndarray, y: np.ndarray) -> None:
    """Shade each run of consecutive abnormal frames, half a frame step either side."""
    if not len(t):
        return
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], y.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        ax.axvspan(t[a] - step / 2, t[b - 1] + step / 2, color=P.ABNORMAL_COLOUR, alpha=0.15,
                   lw=0)


def frame_figures(runs: Sequence[T.Run], max_timelines: int = 2) -> list[tuple[str, Any, str]]:
    """(title, figure, caption) of the frame-level ROC curves and per-clip timelines."""
    sel = frame_runs(runs)
    out: list[tuple[str, Any, str]] = []
    if not sel:
        return out
    # (protocol, name, runs): one group per seed of a protocol (per data file and seed else)
    groups: list[tuple[str, str, list[T.Run]]] = []
    official = [r for r in sel if _protocol(r) == "official"]
    for s in sorted({r.get("seed") for r in official}, key=T.sort_key):
        groups.append(("official", f"official protocol, seed {s}",
                       [r for r in official if r.get("seed") == s]))
    few = [r for r in sel if _protocol(r) == "fewshot"]
    for name in sorted({str(r.get("protocol_name")) for r in few}):
        groups.append(("fewshot", f"few-shot {name.removeprefix('fewshot-')}",
                       [r for r in few if str(r.get("protocol_name")) == name]))
    other = [r for r in sel if _protocol(r) not in ("official", "fewshot")]
    for d in sorted({str(r.get("data")) for r in other}):
        for s in sorted({r.get("seed") for r in other}, key=T.sort_key):
            g = [r for r in other if str(r.get("data")) == d and r.get("seed") == s]
            if g:
                groups.append((f"other {d}", f"{d}, seed {s}", g))
    panels = [(name, c) for _, name, g in groups if (c := _roc_curves(g))]
    # one colour per run label across the ROC curves and the timelines
    shared = P._colours([*(c[0] for _, cs in panels for c in cs),
                         *(_run_label(r, g) for _, _, g in groups for r in g)])
    if len(panels) == 1:
        name, curves = panels[0]
        out.append((f"Frame-level ROC, {name}",
                    P.roc_figure(curves, f"Frame ROC: {name}", colours=shared),
                    "Every test frame of every test clip pooled (micro AUROC in the legend); "
                    "raw frame scores (a frame's crops aggregated, no smoothing)."))
    elif panels:
        out.append(("Frame-level ROC curves",
                    P.roc_grid(panels, "Frame-level ROC curves", colours=shared),
                    "One panel per protocol and seed; every test frame pooled (micro AUROC in "
                    "each legend); raw frame scores (a frame's crops aggregated, no "
                    "smoothing)."))
    # timelines: the first group of each protocol first (the official protocol's and the
    # few-shot Table 2's comparison), then the others, up to max_timelines
    kinds = [kind for kind, _, _ in groups]
    first = [kinds.index(k) for k in dict.fromkeys(kinds)]
    chosen = [*first, *(i for i in range(len(groups)) if i not in first)][:max_timelines]
    for _, name, g in [groups[i] for i in chosen]:
        order = _method_order(g)  # the same colours as in the ROC figure
        g = sorted(g, key=lambda r: order.index(str(r.get("method"))))
        series = [(_run_label(r, g), f) for r in g
                  if (f := read_frames(r)) is not None]
        if series:
            out.append((f"Frame scores per test clip, {name}",
                        timeline_figure(series, f"Frame score per test clip: {name}",
                                        colours=shared),
                        "Each method's raw frame score (no smoothing) against time, min-max "
                        "scaled per clip for display; abnormal frames (frame labels) shaded; "
                        "per-clip AUROC in each panel's title ('–' where a clip's frames are "
                        "all abnormal or all normal: an AUROC needs both)."))
    return out
