"""Paper-style tables (Table 1-4 and beyond) from run folders.

Tables read only ``config.json`` and ``metrics.json`` of each run (docs/run-folder.md) and never
recompute a metric from scores, so a table and its runs always agree. Cells keep the raw values
from ``metrics.json`` (AUC in 0-1); only the Markdown, LaTeX and HTML renderings scale AUC by 100
and round, as the paper prints it. CSV files keep full precision.

Where several runs fall into one cell (seeds), the cell is their mean with the sample standard
deviation (``toolkit.eval.metrics.mean_std``). The paper's reported numbers are kept in separate
rows flagged ``paper=True``; they are never mixed into measured rows or averages.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toolkit.config import saved_run_config
from toolkit.eval.metrics import FEW_SEQUENCES, mean_std
from toolkit.io import atomic_write_text

# --- runs -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run folder: its resolved config, and metrics (finished) or error (failed)."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.config.get("run_id") or self.path.name)

    @property
    def status(self) -> str:
        if self.metrics is not None:
            return "finished"
        return "failed" if self.error is not None else "incomplete"

    def get(self, key: str, default: Any = None) -> Any:
        """A setting or metric: metrics.json first (it repeats the identity keys), then config,
        then the method's own settings (config ``params``)."""
        if self.metrics is not None and self.metrics.get(key) is not None:
            return self.metrics[key]
        if key in self.config:
            return self.config[key]
        return (self.config.get("params") or {}).get(key, default)


#: :func:`no_auroc_reason` of a run whose test split is empty
NO_TEST_SAMPLES = "no test samples"


def no_auroc_reason(m: dict[str, Any]) -> str | None:
    """Why a run has no test AUROC, where its metrics.json tells; else None."""
    n, n_abn = m.get("test_n"), m.get("test_n_abnormal")
    if n is None or n_abn is None:
        return None
    if int(n) == 0:
        return NO_TEST_SAMPLES
    if int(n_abn) == 0:
        return f"its test split holds no abnormal sample, {n} normal"
    if int(n_abn) == int(n):
        return f"its test split holds no normal sample, {n} abnormal"
    return None


def no_auroc_why(m: dict[str, Any]) -> str:
    """'n/a' and, where a run's metrics.json tells, why it has no test AUROC."""
    why = no_auroc_reason(m)
    return f"n/a ({why})" if why else "n/a"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_runs(runs_dir: str | os.PathLike) -> list[Run]:
    """Every run folder under ``runs_dir`` (any depth): a folder holding ``config.json``.

    A folder with ``metrics.json`` is finished, one with ``error.json`` failed, else incomplete
    (running or killed). ``runs_dir`` may also be a single run folder. A run id found in two
    folders (a copied runs folder) counts once, finished first, so it is not pooled as two runs.
    """
    root = Path(runs_dir)
    by_id: dict[str, Run] = {}
    rank = {"finished": 0, "failed": 1, "incomplete": 2}
    for cfg_path in sorted(root.rglob("config.json")):
        folder = cfg_path.parent
        config = _read_json(cfg_path)
        if config is None:
            continue
        config = saved_run_config(config)  # settings added after the run: its defaults
        metrics = _read_json(folder / "metrics.json")
        error = _read_json(folder / "error.json") if metrics is None else None
        run = Run(folder, config, metrics, error)
        seen = by_id.get(run.run_id)
        if seen is None or rank[run.status] < rank[seen.status]:
            by_id[run.run_id] = run
    return sorted(by_id.values(), key=lambda r: r.path)


# --- cells, rows, tables ----------------------------------------------------------------------

# How a cell prints: "auc" = x100 with one decimal (the paper's style), "int", "sec" (seconds,
# one decimal), "float" (3 significant digits), "text".
AUC, INT, SEC, TEXT, FLOAT, PCT = "auc", "int", "sec", "text", "float", "pct"


@dataclass
class Cell:
    """A table cell: a value (raw, as in metrics.json), with std and n when it pools runs."""

    value: Any = None
    std: float | None = None
    n: int = 1
    ci: tuple[float, float] | None = None
    kind: str = AUC
    run_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.value is None or (isinstance(self.value, float) and math.isnan(self.value))

    def main(self) -> str:
        """The value as printed (AUC x100, one decimal)."""
        if self.empty:
            return "–"
        return _fmt(self.value, self.kind)

    def spread(self) -> str:
        """``± std`` when the cell pools more than one run, else ''."""
        if self.n > 1 and self.std is not None and not math.isnan(self.std):
            return "± " + _fmt(self.std, self.kind)
        return ""

    def ci_text(self) -> str:
        if self.ci is None or any(v is None or math.isnan(v) for v in self.ci):
            return ""
        return f"[{_fmt(self.ci[0], self.kind)}, {_fmt(self.ci[1], self.kind)}]"

    def text(self) -> str:
        s = self.spread()
        return f"{self.main()} {s}" if s else self.main()


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "–"
    if kind == TEXT:
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "–"
    if kind == AUC:
        return f"{f * 100:.1f}"
    if kind == INT:
        return f"{int(round(f)):d}"
    if kind == SEC:
        return f"{f:.1f}"
    if kind == PCT:
        return f"{f * 100:.0f}%"
    return f"{f:.3g}"


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell]
    paper: bool = False  # a number reported in the paper, not measured here


@dataclass
class Table:
    """A rendered-ready table: label columns, value columns, measured rows, paper rows."""

    key: str  # file stem: table1, table2, label_efficiency, ...
    title: str
    label_columns: list[str]
    columns: list[str]
    rows: list[Row]
    paper_rows: list[Row] = field(default_factory=list)
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    #: where the reported rows come from: "paper" (the ADNL paper) or e.g. "elsewhere"
    reported_in: str = "paper"

    @property
    def reported_heading(self) -> str:
        where = "in the paper" if self.reported_in == "paper" else self.reported_in
        return f"Reported {where}, not measured here"

    def all_rows(self) -> list[Row]:
        return self.rows + self.paper_rows

    # -- renderings --

    def to_csv(self) -> str:
        """Wide CSV with raw values; ``<col> std`` / ``<col> n`` columns where cells pool runs."""
        pooled = [
            any(r.cells[j].n > 1 for r in self.all_rows()) for j in range(len(self.columns))
        ]
        header = ["source", *self.label_columns]
        for j, c in enumerate(self.columns):
            header.append(c)
            if pooled[j]:
                header += [f"{c} std", f"{c} n"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in self.all_rows():
            line: list[Any] = [f"{self.reported_in} (reported)" if r.paper else "measured",
                               *r.labels]
            for j, c in enumerate(r.cells):
                line.append(_raw(c.value))
                if pooled[j]:
                    line += [_raw(c.std) if c.n > 1 else "", c.n if not c.empty else ""]
            w.writerow(line)
        return buf.getvalue()

    def to_markdown(self) -> str:
        head = [*self.label_columns, *self.columns]
        out = [f"**{self.title}**", ""]
        if self.caption:
            out += [self.caption, ""]
        out.append("| " + " | ".join(_md(h) for h in head) + " |")
        align = ["---"] * len(self.label_columns) + ["---:"] * len(self.columns)
        out.append("| " + " | ".join(align) + " |")
        for r in self.rows:
            cells = [*map(_md, r.labels), *(c.text() for c in r.cells)]
            out.append("| " + " | ".join(cells) + " |")
        for r in self.paper_rows:
            labels = [f"*{_md(r.labels[0])} ({self.reported_in}, reported)*",
                      *map(_md, r.labels[1:])]
            out.append("| " + " | ".join([*labels, *(f"*{c.text()}*" for c in r.cells)]) + " |")
        for n in self.notes:
            out += ["", f"_{_md(n)}_"]
        return "\n".join(out) + "\n"

    def to_latex(self) -> str:
        spec = "l" * len(self.label_columns) + "r" * len(self.columns)
        lines = [
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{_tex(self.title)}{('. ' + _tex(self.caption)) if self.caption else ''}}}",
            f"\\label{{tab:{self.key}}}",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            " & ".join(_tex(h) for h in [*self.label_columns, *self.columns]) + " \\\\",
            "\\midrule",
        ]
        for r in self.rows:
            cells = [_tex_cell(c) for c in r.cells]
            lines.append(" & ".join([*map(_tex, r.labels), *cells]) + " \\\\")
        if self.paper_rows:
            lines.append("\\midrule")
            n = len(self.label_columns) + len(self.columns)
            head = _tex(self.reported_heading)
            lines.append(f"\\multicolumn{{{n}}}{{l}}{{\\emph{{{head}}}}} \\\\")
            for r in self.paper_rows:
                cells = [_tex_cell(c) for c in r.cells]
                lines.append(" & ".join([*map(_tex, r.labels), *cells]) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        lines += [f"\\par\\footnotesize {_tex(n)}" for n in self.notes]
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"


def _raw(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else v


def _md(s: Any) -> str:
    return str(s).replace("|", "\\|")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "±": r"$\pm$", "–": "--", "→": r"$\to$"}


def _tex(s: Any) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def _tex_cell(c: Cell) -> str:
    s = c.spread()
    return f"{c.main()} $\\pm$ {s[2:]}" if s else _tex(c.main())


# --- grouping -------------------------------------------------------------------------------

# Settings that define an experiment's variant (everything in the config hash but the seed).
DESIGN_FIELDS = (
    "method", "dataset", "data", "crop", "anomaly_digit", "unseen_digit", "neg_loss",
    "neg_weight", "warmup_epochs", "labelled_anomalies", "preset", "epochs", "batch_size",
    "lr", "latent_dim", "width", "select", "adv_weight", "neg_batch_size", "size", "augment",
    "val_fraction", "data_sha256", "input", "train_every", "train_labels", "tta",
)
FIELD_TITLES = {
    "method": "Method", "dataset": "Dataset", "data": "Data", "crop": "Crop",
    "anomaly_digit": "Anomaly digit", "unseen_digit": "Unseen digit", "neg_loss": "Neg. loss",
    "neg_weight": "Neg. weight", "warmup_epochs": "Warm-up", "labelled_anomalies": "Labelled",
    "preset": "Preset", "epochs": "Epochs", "batch_size": "Batch", "lr": "LR",
    "latent_dim": "Latent", "width": "Width", "select": "Select", "seed": "Seed",
    "adv_weight": "Adv. weight", "neg_batch_size": "Neg. batch", "size": "Size",
    "augment": "Augment", "val_fraction": "Val. fraction", "data_sha256": "Data sha256",
    "input": "Input", "train_every": "Train every", "train_labels": "Train labels",
    "tta": "Test-time aug.",
}
METRIC_TITLES = {"test_auroc": "AUROC", "test_aupr": "AUPR"}


def method_class(m: Any) -> Any:
    """The registered method class named ``m``, or None (a run of a method not installed)."""
    from toolkit.methods import METHODS

    return METHODS.get(str(m)) if str(m) in METHODS else None


#: A fused run (:mod:`toolkit.engine.fuse`, ``method: fusion``) is no registered method, and
#: eval does not import engine: its display name and fixed colour are here.
FUSION = "fusion"
FUSION_TITLE = "Fusion (geometric mean)"
FUSION_COLOUR = "#8d5fd3"


def method_name(m: Any) -> str:
    """A method's display name, from the registry (the raw name for an unknown method; a
    fused run is :data:`FUSION_TITLE`)."""
    cls = method_class(m)
    if cls is None and str(m) == FUSION:
        return FUSION_TITLE
    return cls.display_name() if cls is not None else str(m)


def method_colour(m: Any) -> str | None:
    """A method's fixed colour in figures, from the registry (``colour``; a fused run's is
    :data:`FUSION_COLOUR`); None for an unknown method or one without."""
    cls = method_class(m)
    if cls is None and str(m) == FUSION:
        return FUSION_COLOUR
    return getattr(cls, "colour", None)


def weak_labels(r: Run) -> bool:
    """Whether run ``r``'s training anomalies carried frame-level (interval, folder) labels, as
    its metrics.json says (``train_label_source``); False where it does not say."""
    src = r.get("train_label_source")
    return src is not None and str(src) not in ("region", "none")


def method_label(r: Run, shown: Iterable[str] = ()) -> str:
    """The method's display name and, where the run departs from the method's published form
    (ADNL's weak-label remedy: negatives chosen per frame, a bounded term), how: a table row
    of such a run never reads as the paper's plain "ADNL", even when it is the only ADNL run.
    Settings in ``shown`` (a table's own columns) are left to those columns."""
    name = method_name(r.get("method"))
    cls = method_class(r.get("method"))
    if cls is None:
        return name
    skip = set(shown)
    params = {k: v for k, v in (r.config.get("params") or {}).items()
              if k not in skip or k == "neg_margin"}
    if "neg_bound" in skip:
        params.pop("neg_margin", None)
    how = cls.variant(params)
    if not how:
        return name
    return f"{name} ({'weak labels: ' if weak_labels(r) else ''}{how})"


def _labels(fields: Sequence[str], vals: Sequence[Any], group: Sequence[Run]) -> list[str]:
    """A row's labels: ``_label`` of each value, the method as :func:`method_label` says."""
    return [method_label(group[0], fields) if f == "method" and group else _label(f, v)
            for f, v in zip(fields, vals, strict=True)]


def method_order(m: Any) -> int:
    cls = method_class(m)
    return cls.order if cls is not None else 99


def design_fields() -> tuple[str, ...]:
    """:data:`DESIGN_FIELDS` and every setting a registered method declares."""
    from toolkit.methods import all_settings

    return (*DESIGN_FIELDS, *(k for k in all_settings() if k not in DESIGN_FIELDS))


def field_title(f: str) -> str:
    return FIELD_TITLES.get(f) or f.replace("_", " ").capitalize()


def applies(r: Run, f: str) -> bool:
    """Whether setting ``f`` means anything for run ``r``: not a method setting, or one its
    method declares (unknown methods: always)."""
    from toolkit.methods import all_settings

    cls = method_class(r.get("method"))
    if cls is None or f not in all_settings():
        return True
    return f in {s.name for s in cls.settings_spec()}


def sort_key(v: Any) -> tuple:
    """Natural order of setting values: None, numbers (also "5"), "all", then text."""
    if v is None:
        return (0, 0, "")
    if v == NO_ANOMALIES:  # before every count of labelled anomalies
        return (0, 1, "")
    if isinstance(v, bool):
        return (1, int(v), "")
    if isinstance(v, int | float):
        return (1, float(v), "")
    if isinstance(v, str) and v.isdigit():
        return (1, float(v), "")
    if v == "all":  # "all" labelled anomalies sorts after every count
        return (2, 0, "")
    return (3, method_order(v), str(v))


def value_key(v: Any) -> str:
    """A hashable, type-faithful key of a setting value (1 and "1" stay apart)."""
    return json.dumps(v, sort_keys=True, default=str)


def varying(runs: Sequence[Run], fields: Iterable[str] | None = None) -> list[str]:
    """The fields among ``fields`` (default :func:`design_fields`) whose value differs between
    the runs it applies to (a setting of one method does not split the others' rows).

    ``data_sha256`` counts only where one manifest path held different contents (a re-split
    under the same name): runs on different data never pool, and the hash shows only then.
    """
    fields = design_fields() if fields is None else fields
    out = [f for f in fields if len({value_key(r.get(f)) for r in runs if applies(r, f)}) > 1]
    if "data_sha256" in out:
        paths = {value_key(r.get("data")) for r in runs}
        if len({(value_key(r.get("data")), value_key(r.get("data_sha256"))) for r in runs}) == len(
            paths
        ):
            out.remove("data_sha256")
    return out


def _label(f: str, v: Any) -> str:
    if f == "method":
        return method_name(v)
    if f == "data" and v:
        return Path(str(v)).stem
    if f == "data_sha256" and v:
        return str(v)[:8]
    return "–" if v is None else str(v)


def pooled_cell(runs: Sequence[Run], metric: str, kind: str = AUC) -> Cell:
    """One run: its value and CI as stored. Several: mean +- sample std over them."""
    ids = tuple(r.run_id for r in runs)
    if not runs:
        return Cell(kind=kind)
    if len(runs) == 1:
        r = runs[0]
        ci = r.get(metric + "_ci95") if metric == "test_auroc" else None
        return Cell(r.get(metric), kind=kind, ci=tuple(ci) if ci else None, run_ids=ids)
    vals = [r.get(metric) for r in runs]
    m, s = mean_std(vals)
    n = sum(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in vals)
    return Cell(None if math.isnan(m) else m, s, n, kind=kind, run_ids=ids)


def group_runs(runs: Sequence[Run], fields: Sequence[str]) -> list[tuple[tuple, list[Run]]]:
    """Runs grouped by their values of ``fields``, groups in natural order."""
    out: dict[str, tuple[tuple, list[Run]]] = {}
    for r in runs:
        vals = tuple(r.get(f) for f in fields)
        out.setdefault(value_key(vals), (vals, []))[1].append(r)
    return sorted(out.values(), key=lambda kv: tuple(sort_key(v) for v in kv[0]))


def pivot(
    runs: Sequence[Run],
    row_fields: Sequence[str],
    col_field: str,
    metric: str = "test_auroc",
    pool: Sequence[str] = ("seed",),
    col_title: Callable[[Any], str] = str,
    average: str | None = "Avg",
) -> tuple[list[str], list[str], list[Row]]:
    """Rows = ``row_fields`` plus any other design field that varies (so different settings
    never share a row), columns = values of ``col_field``, cells pool the ``pool`` fields.

    The ``average`` column is the mean over columns per pooled unit (e.g. per seed), then mean
    +- std over units: for Table 1 with 3 seeds, the std of the three per-seed averages.
    """
    extra = [f for f in varying(runs) if f not in (*row_fields, col_field, *pool)]
    fields = [*row_fields, *extra]
    cols = sorted({value_key(r.get(col_field)): r.get(col_field) for r in runs}.values(),
                  key=sort_key)
    rows = []
    for vals, group in group_runs(runs, fields):
        cells = []
        for c in cols:
            sel = [r for r in group if value_key(r.get(col_field)) == value_key(c)]
            cells.append(pooled_cell(sel, metric))
        if average:
            cells.append(_average_cell(group, col_field, pool, metric, len(cols)))
        rows.append(Row(_labels(fields, vals, group), cells))
    colnames = [col_title(c) for c in cols] + ([average] if average else [])
    return [field_title(f) for f in fields], colnames, rows


def _average_cell(
    group: Sequence[Run], col_field: str, pool: Sequence[str], metric: str, n_cols: int
) -> Cell:
    units: dict[str, list[float]] = {}
    for r in group:
        v = r.get(metric)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        units.setdefault(value_key([r.get(p) for p in pool]), []).append(float(v))
    # Only units that cover every column count, so an unfinished digit cannot bias an average.
    per_unit = [sum(v) / len(v) for v in units.values() if len(v) == n_cols]
    if not per_unit:
        return Cell(None)
    if len(per_unit) == 1:
        return Cell(per_unit[0], run_ids=tuple(r.run_id for r in group))
    m, s = mean_std(per_unit)
    return Cell(m, s, len(per_unit), run_ids=tuple(r.run_id for r in group))


# --- the paper's reported numbers -----------------------------------------------------------

# Only what we could verify: Table 1's averages (full MNIST, as quoted in the project's issues).
# Per-digit values and Tables 2-4 are not reproduced here rather than guessed.
PAPER_TABLE1_AVG = {"baseline": 0.497, "adnl": 0.991}
PAPER_NOTE = (
    "Paper rows: numbers reported in 'Deep Visual Anomaly Detection with Negative Learning' "
    "(full MNIST, paper settings); only the averages are reproduced here. They are not measured "
    "by this run and are never mixed into measured rows."
)


# --- the tables -----------------------------------------------------------------------------


def finished(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if r.status == "finished"]


def _is_digits(r: Run) -> bool:
    return r.get("dataset") not in (None, "manifest") and r.get("anomaly_digit") is not None


def _is_manifest(r: Run) -> bool:
    return r.get("dataset") == "manifest" or (r.get("data") is not None and not _is_digits(r))


#: How the tables show the labelled anomalies of a run that trained on none (the baseline).
NO_ANOMALIES = "none (baseline)"
def trains_no_anomalies(r: Run) -> bool:
    """True for a run that used no labelled anomalies: a normal-only method (the registry's
    ``uses_abnormal``), or none used."""
    cls = method_class(r.get("method"))
    return (cls is not None and not cls.uses_abnormal) or r.get("n_train_abnormal") == 0


def _shown_labelled(runs: Sequence[Run]) -> list[Run]:
    """``runs`` with ``labelled_anomalies`` as a table shows it: :data:`NO_ANOMALIES` where the
    run trained on no anomalies (its config says 'all', the default, which it never used). An
    explicit 0 (ADNL trained as its AAE) stays 0. Metrics are untouched."""
    out = []
    for r in runs:
        la = r.get("labelled_anomalies")
        if trains_no_anomalies(r) and str(la) != "0":
            shown = {"labelled_anomalies": NO_ANOMALIES}
            r = replace(r, config={**r.config, **shown},
                                    metrics=None if r.metrics is None else {**r.metrics, **shown})
        out.append(r)
    return out


def _default_labelled(r: Run) -> bool:
    return r.get("labelled_anomalies") in (None, "all")


def _metric_suffix(metric: str) -> str:
    return "" if metric == "test_auroc" else f" ({METRIC_TITLES.get(metric, metric)})"


def _mname(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric)


def table1(runs: Sequence[Run], metric: str = "test_auroc") -> list[Table]:
    """Table 1: test AUC x100 per anomaly digit and the average, one row per method.

    One table per dataset; runs with an unseen digit or a label cap belong to other tables.
    """
    sel = [
        r for r in finished(runs)
        if _is_digits(r) and r.get("unseen_digit") is None and _default_labelled(r)
    ]
    tables = []
    for (dataset,), group in group_runs(sel, ["dataset"]):
        digits = {value_key(r.get("anomaly_digit")) for r in group}
        # An average over some digits is not the paper's average over all ten: say so in the
        # column's name, not only in a note.
        avg = "Avg" if len(digits) >= 10 else f"Avg ({len(digits)} digit{'s' * (len(digits) > 1)})"
        labels, cols, rows = pivot(group, ["method"], "anomaly_digit", metric, average=avg)
        seeds = sorted({r.get("seed") for r in group}, key=sort_key)
        paper = []
        notes = []
        # The paper's numbers are for MNIST: compare only MNIST-family tables with them.
        if metric == "test_auroc" and labels == ["Method"] and dataset in ("mnist", "mnist-5k"):
            methods = {r.get("method") for r in group}
            for m, avg_value in PAPER_TABLE1_AVG.items():
                if m in methods:
                    cells = [Cell(None) for _ in cols[:-1]] + [Cell(avg_value)]
                    paper.append(Row([f"{method_name(m)}, avg of 10 digits"], cells, paper=True))
            if paper:
                notes.append(PAPER_NOTE)
            if paper and len(digits) < 10:
                notes.append(
                    f"The measured average is over the {len(digits)} anomaly digits run here "
                    f"({', '.join(cols[:-1])}); the paper's is over all ten, so the two are not "
                    "comparable (run --anomaly-digit all for the full average).")
        tables.append(Table(
            key=f"table1_{_slug(dataset)}" + _slug_metric(metric),
            title=f"Table 1{_metric_suffix(metric)}: test {_mname(metric)} x100 per anomaly digit, "
            f"{dataset}",
            label_columns=labels,
            columns=cols,
            rows=rows,
            paper_rows=paper,
            caption=(
                "Each column: that digit is the anomaly, the other nine are normal. "
                + _seed_caption(seeds)
            ),
            notes=notes,
        ))
    return tables


def _slug(s: Any) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(s)).strip("_").lower()


def _slug_metric(metric: str) -> str:
    return "" if metric == "test_auroc" else "_" + _slug(METRIC_TITLES.get(metric, metric))


def _seed_caption(seeds: Sequence[Any]) -> str:
    if len(seeds) > 1:
        return f"Mean ± std over {len(seeds)} seeds ({', '.join(map(str, seeds))})."
    return f"Seed {seeds[0]}." if seeds else ""


def seed_table(
    runs: Sequence[Run],
    row_fields: Sequence[str],
    key: str,
    title: str,
    metric: str = "test_auroc",
    caption: str = "",
) -> Table:
    """Tables 2-4 layout: one column per seed, then the average and the standard deviation."""
    extra = [f for f in varying(runs) if f not in (*row_fields, "seed")]
    fields = [*row_fields, *extra]
    seeds = sorted({value_key(r.get("seed")): r.get("seed") for r in runs}.values(), key=sort_key)
    rows = []
    for vals, group in group_runs(runs, fields):
        cells = [
            pooled_cell([r for r in group if value_key(r.get("seed")) == value_key(s)], metric)
            for s in seeds
        ]
        m, sd = mean_std([c.value for c in cells if not c.empty])
        n = sum(not c.empty for c in cells)
        ids = tuple(r.run_id for r in group)
        cells.append(Cell(None if math.isnan(m) else m, run_ids=ids))
        cells.append(Cell(None if n < 2 else sd, run_ids=ids))
        rows.append(Row(_labels(fields, vals, group), cells))
    return Table(
        key=key + _slug_metric(metric),
        title=title.replace("test AUC", f"test {_mname(metric)}"),
        label_columns=[field_title(f) for f in fields],
        columns=[f"Seed {s}" for s in seeds] + ["Average", "Std"],
        rows=rows,
        caption=caption,
    )


def _manifest_runs(runs: Sequence[Run]) -> list[Run]:
    # Runs on clip-protocol splits (suite ped2) are scored frame by frame; their tables are
    # toolkit.eval.frame_report's, per split and seed, not these crop-level ones.
    return [r for r in finished(runs) if _is_manifest(r) and _default_labelled(r)
            and not r.get("protocol")]


def _mode(runs: Sequence[Run], f: str) -> Any:
    """The most common value of ``f``; a tie goes to the first in natural order (normal before
    oversize, naive before scaled), not to whichever run folder sorts first."""
    counts: dict[str, tuple[int, Any]] = {}
    for r in runs:
        k = value_key(r.get(f))
        counts[k] = (counts.get(k, (0, None))[0] + 1, r.get(f))
    if not counts:
        return None
    top = max(c for c, _ in counts.values())
    return min((v for c, v in counts.values() if c == top), key=sort_key)


#: How a table title names the crop of a manifest's runs ("normal" is the box, not a label).
CROP_TEXT = {"normal": "crops of the detected box (--crop normal)",
             "oversize": "oversize crops (--crop oversize)"}


def table2(runs: Sequence[Run], metric: str = "test_auroc") -> list[Table]:
    """Table 2's layout: baseline vs ADNL on a crop manifest, per seed, average and std.

    The user's own data, so the title does not call it the paper's Table 2 (its key and
    files keep the name, ``table2.*``, as ``--suite table2`` does).

    ADNL ablations (another crop, another negative loss) belong to Tables 3 and 4: Table 2 keeps
    the most common crop and negative loss among the runs, so its rows compare methods only.
    """
    sel = _manifest_runs(runs)
    if not sel:
        return []
    crop = _mode(sel, "crop")
    adnl = [r for r in sel if r.get("method") == "adnl"]
    neg = _mode(adnl, "neg_loss") if adnl else None
    sel = [
        r for r in sel
        if value_key(r.get("crop")) == value_key(crop)
        and (r.get("method") != "adnl" or value_key(r.get("neg_loss")) == value_key(neg))
    ]
    t = seed_table(
        sel, ["method"], "table2",
        f"Methods compared{_metric_suffix(metric)}: test AUC x100 per seed, "
        f"{CROP_TEXT.get(str(crop), f'--crop {crop}')}",
        metric,
        caption="The methods on the split manifest's test split, laid out as the paper's "
        "Table 2 (per seed, average, std); measured on this data, not the paper's.",
    )
    return [t]


def _adnl_ablation(
    runs: Sequence[Run], axis: str, fixed: str, key: str, title: str, metric: str, caption: str
) -> list[Table]:
    """ADNL manifest runs per seed, one row per value of ``axis`` (none unless it takes two or
    more), at the most common value of ``fixed`` (the other ablation)."""
    sel = [r for r in _manifest_runs(runs) if r.get("method") == "adnl"]
    if len({value_key(r.get(axis)) for r in sel}) < 2:
        return []
    keep = value_key(_mode(sel, fixed))
    sel = [r for r in sel if value_key(r.get(fixed)) == keep]
    return [seed_table(sel, [axis], key, title, metric, caption=caption)]


def table3(runs: Sequence[Run], metric: str = "test_auroc") -> list[Table]:
    """Table 3: ADNL with oversize vs normal crops, per seed and average."""
    return _adnl_ablation(
        runs, "crop", "neg_loss", "table3",
        f"ADNL by crop{_metric_suffix(metric)}: test AUC x100 per seed, the detected box "
        "(--crop normal) vs oversize", metric,
        caption="Laid out as the paper's Table 3. Oversize crop: 2.5x the box width, 1.5x its "
        "height, same centre.",
    )


def table4(runs: Sequence[Run], metric: str = "test_auroc") -> list[Table]:
    """Table 4: ADNL with the scaled (exp(-MSE)) vs naive negative loss, per seed and average."""
    return _adnl_ablation(
        runs, "neg_loss", "crop", "table4",
        f"ADNL by negative loss{_metric_suffix(metric)}: test AUC x100 per seed, naive vs "
        "scaled", metric, caption="Laid out as the paper's Table 4. naive: maximise the MSE; "
        "scaled: minimise exp(-MSE) (paper eq. 4).",
    )


def label_efficiency_table(runs: Sequence[Run], metric: str = "test_auroc") -> list[Table]:
    """AUC against the number of labelled anomalies ADNL may use, pooled over digits and seeds."""
    sel = [r for r in finished(runs) if r.get("unseen_digit") is None]
    if len({value_key(r.get("labelled_anomalies")) for r in sel}) < 2:
        return []
    # A run that trained on no anomalies gets its own column, not the "all" one.
    labels, cols, rows = pivot(
        _shown_labelled(sel), ["method"], "labelled_anomalies", metric,
        pool=("seed", "anomaly_digit"), average=None,
    )
    return [Table(
        key="label_efficiency" + _slug_metric(metric),
        title=f"Label efficiency{_metric_suffix(metric)}: test {_mname(metric)} x100 against the "
        "number of labelled anomalies",
        label_columns=labels,
        columns=cols,
        rows=rows,
        caption="Each cell: mean ± std over anomaly digits and seeds (n runs in the CSV). "
        f"{NO_ANOMALIES}: a method that trains on normal images only.",
    )]


def unseen_table(runs: Sequence[Run]) -> list[Table]:
    """AUROC against anomaly kinds seen in training vs held out of it (never in training)."""
    sel = [r for r in finished(runs) if r.get("test_auroc_unseen") is not None]
    if not sel:
        return []
    extra = [
        f for f in varying(sel)
        if f not in ("method", "anomaly_digit", "unseen_digit", "seed")
    ]
    fields = ["method", "anomaly_digit", "unseen_digit", *extra]
    rows = []
    for vals, group in group_runs(_shown_labelled(sel), fields):
        cells = [
            pooled_cell(group, "test_auroc_seen"),
            pooled_cell(group, "test_auroc_unseen"),
            pooled_cell(group, "test_auroc"),
        ]
        labels = _labels(fields, vals, group)
        if vals[1] is None:  # manifest holdout: name the held-out events instead of digits
            labels[1] = "seen events"
            labels[2] = ", ".join(_unseen_events(group)) or "held-out events"
        if all(trains_no_anomalies(r) for r in group):
            # It trained on no anomaly: "seen" is only the kind its test split calls seen.
            labels[1] = "none" + (f" (test: {labels[1]})" if vals[1] is not None else "")
        rows.append(Row(labels, cells))
    titles = ["Method", "Trained anomaly", "Held-out anomaly", *(field_title(f) for f in extra)]
    seeds = sorted({r.get("seed") for r in sel}, key=sort_key)
    return [Table(
        key="unseen",
        title="Unseen anomalies: test AUROC x100 on anomaly kinds seen vs never seen in training",
        label_columns=titles,
        columns=["AUROC seen", "AUROC unseen", "AUROC all"],
        rows=rows,
        caption=(
            "Seen: normal test samples vs the anomaly kind used in training; unseen: vs the kind "
            "held out of training (it appears only at test time). A method that trains on "
            "normal images only (the baseline) was trained on no anomaly: 'none (test: D)' "
            "names the kind scored as seen. " + _seed_caption(seeds)
        ),
    )]


def unseen_summary_table(runs: Sequence[Run]) -> list[Table]:
    """Per method, over digit pairs (A labelled, B never in training): mean AUROC on the
    unseen B, the share of pairs where it beats the unsupervised reference method (the
    registry's ``reference``, the AAE baseline) on the same pair, and the worst pair."""
    sel = [r for r in finished(runs) if _is_digits(r) and r.get("unseen_digit") is not None
           and r.get("test_auroc_unseen") is not None]
    if not sel:
        return []
    pair_fields = ("dataset", "anomaly_digit", "unseen_digit")
    extra = [f for f in varying(sel) if f not in (*pair_fields, "method", "seed")]
    fields = ["method", *extra]

    def per_pair(group: Sequence[Run], metric: str) -> dict[tuple, float]:
        """(dataset, A, B) -> mean over seeds of ``metric``."""
        acc: dict[tuple, list[float]] = {}
        for r in group:
            v = r.get(metric)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                acc.setdefault(tuple(r.get(f) for f in pair_fields), []).append(float(v))
        return {k: sum(v) / len(v) for k, v in acc.items()}

    refs = [r for r in sel if getattr(method_class(r.get("method")), "reference", False)]
    ref = per_pair(refs, "test_auroc_unseen")
    ref_name = method_name(refs[0].get("method")) if refs else "the baseline"
    rows = []
    for vals, group in group_runs(sel, fields):
        unseen, seen = per_pair(group, "test_auroc_unseen"), per_pair(group, "test_auroc_seen")
        ids = tuple(r.run_id for r in group)
        mu, sdu = mean_std(list(unseen.values()))
        ms, sds = mean_std(list(seen.values()))
        is_ref = all(getattr(method_class(r.get("method")), "reference", False) for r in group)
        common = [k for k in unseen if k in ref]
        share = (sum(unseen[k] > ref[k] for k in common) / len(common)
                 if common and not is_ref else None)
        worst = min(unseen, key=unseen.get)
        rows.append(Row(_labels(fields, vals, group), [
            Cell(len(unseen), kind=INT, run_ids=ids),
            Cell(ms, sds, len(seen), run_ids=ids),
            Cell(mu, sdu, len(unseen), run_ids=ids),
            Cell(share, kind=PCT, n=len(common), run_ids=ids),
            Cell(f"{worst[1]} → {worst[2]}", kind=TEXT),
            Cell(unseen[worst]),
        ]))
    seeds = sorted({r.get("seed") for r in sel}, key=sort_key)
    return [Table(
        key="unseen_summary",
        title="Unseen anomalies over digit pairs: mean test AUROC x100 per method",
        label_columns=[field_title(f) for f in fields],
        columns=["Pairs", "AUROC seen", "AUROC unseen", f"Beats {ref_name} on unseen",
                 "Worst pair (A → B)", "Worst AUROC"],
        rows=rows,
        caption=(
            "Each pair: digit A is the labelled anomaly in training, digit B never enters "
            "training or validation; normal = the other eight digits. Seen: normal vs A, "
            "unseen: normal vs B (mean ± std over pairs). 'Beats': share of the pairs on which "
            f"the method's unseen AUROC is above {ref_name}'s on the same pair. "
            + _seed_caption(seeds)
        ),
    )]


def _unseen_events(group: Sequence[Run]) -> list[str]:
    """The held-out anomaly kinds, where metrics.json names them (``unseen_events``)."""
    events: set[str] = set()
    for r in group:
        events |= {str(e) for e in (r.get("unseen_events") or [])}
    return sorted(events)


def _data_kind(r: Run) -> str:
    """The kind of data a run used: its crop manifest, or its digit set."""
    return f"{Path(str(r.get('data'))).name} crops" if _is_manifest(r) else f"{r.get('dataset')}"


def runs_tables(runs: Sequence[Run]) -> list[Table]:
    """:func:`runs_table`, once per kind of data when a folder mixes several (crop and digit
    runs): settings that differ only between the kinds would otherwise each add a column."""
    fin = finished(runs)
    kinds: dict[str, list[Run]] = {}
    for r in fin:
        kinds.setdefault(_data_kind(r), []).append(r)
    if len(kinds) <= 1:
        return [runs_table(fin)] if fin else []
    return [runs_table(group, kind) for kind, group in sorted(kinds.items())]


def val_auc_at(history: Any, epoch: int | None) -> float | None:
    """A run's history's val AUC at ``epoch``; None where it has none (no val split, or NaN).

    ``adtk bench`` records the kept epoch's with it (``selected_val_auc``); the report reads
    it back for runs written before that was recorded.
    """
    if epoch is None or history is None or "val_auc" not in history.columns:
        return None
    row = history.loc[history["epoch"] == epoch, "val_auc"]
    v = float(row.iloc[-1]) if len(row) else float("nan")
    return None if math.isnan(v) else v


def kept_val_auc(r: Run) -> float | None:
    """Val AUC of the kept model (``selected_val_auc``; for runs written before it was
    recorded, the best val AUC where the kept epoch is the best one, else unknown)."""
    v = r.get("selected_val_auc")
    if v is None and r.get("selected_epoch") is not None \
            and r.get("selected_epoch") == r.get("best_epoch"):
        v = r.get("best_val_auc")
    return v


def runs_table(runs: Sequence[Run], kind: str | None = None) -> Table:
    """Every finished run, one row each: the per-run numbers behind every other table."""
    fin = finished(runs)
    extra = [f for f in varying(fin, (*design_fields(), "seed")) if f not in ("method",)]
    rows = []
    for r in sorted(fin, key=lambda r: tuple(sort_key(r.get(f)) for f in ["method", *extra])):
        ci = r.get("test_auroc_ci95")
        rows.append(Row(
            [r.run_id, method_label(r, extra), *(_label(f, r.get(f)) for f in extra)],
            [
                Cell(r.get("test_auroc"), ci=tuple(ci) if ci else None),
                Cell(ci[0] if ci else None),
                Cell(ci[1] if ci else None),
                Cell(r.get("test_aupr")),
                Cell(kept_val_auc(r)),
                Cell(r.get("best_val_auc")),
                Cell(r.get("epochs"), kind=INT),
                Cell(r.get("wall_time_s"), kind=SEC),
            ],
        ))
    return Table(
        key="runs" + (f"_{_slug(kind)}" if kind else ""),
        title=f"All runs{f' on {kind}' if kind else ''}: test AUROC per sample (each crop or "
        "image scored alone) with its bootstrap 95% CI, AUPR and validation AUC (x100)",
        label_columns=["Run", "Method", *(field_title(f) for f in extra)],
        columns=["AUROC", "CI low", "CI high", "AUPR", "Val AUC, kept epoch", "Best val AUC",
                 "Epochs", "Wall s"],
        rows=rows,
        caption=_ci_caption(fin) + " Val AUC, kept "
        "epoch: of the model the run kept and scored (--select last: the last epoch; best-val: "
        "the best); best val AUC: the best epoch's, which may be another.",
    )


def _ci_caption(runs: Sequence[Run]) -> str:
    """How the runs' CIs were drawn (crop runs resample their tracks), and a warning where a
    test split's anomalies come from very few tracks."""
    how = {str(r.get("test_auroc_ci95_resamples") or "samples") for r in runs}
    text = {
        "samples": "95% CI: stratified bootstrap over test samples, 1000 resamples.",
        "sequences": "95% CI: cluster bootstrap over the test crops' sequences (tracks), "
                     "drawn within three strata (normal crops only, anomalies only, both), "
                     "1000 resamples: a track's crops are near copies, not independent "
                     "evidence; none where every resample would draw the same tracks on one "
                     "side (fewer than two per stratum). With interval "
                     "labels every track seen during an abnormal interval counts as holding "
                     "an anomaly, so few events can still look like many tracks.",
    }
    out = " ".join(text[h] for h in sorted(how) if h in text)
    few = sorted({int(n) for r in runs if r.get("test_auroc") is not None
                  and (n := r.get("test_n_sequences_abnormal")) is not None
                  and int(n) < FEW_SEQUENCES})
    if few:
        out += (f" Some runs' test anomalies come from only {'/'.join(map(str, few))} "
                "sequence(s): their AUROC and CI describe those tracks, not a kind of anomaly.")
    return out


def all_tables(runs: Sequence[Run]) -> list[Table]:
    """Every table the runs support, in reading order; AUPR tables follow their AUROC ones."""
    tables: list[Table] = []
    for fn in (table1, table2, table3, table4, label_efficiency_table):
        tables += fn(runs)
        tables += fn(runs, metric="test_aupr")
    tables += unseen_summary_table(runs)
    tables += unseen_table(runs)
    tables += runs_tables(runs)
    return tables


def write_tables(tables: Sequence[Table], out_dir: str | os.PathLike) -> list[Path]:
    """Each table as ``KEY.csv``, ``KEY.md`` and ``KEY.tex`` in ``out_dir`` (atomic writes)."""
    out = Path(out_dir)
    paths = []
    for t in tables:
        for ext, text in (("csv", t.to_csv()), ("md", t.to_markdown()), ("tex", t.to_latex())):
            p = out / f"{t.key}.{ext}"
            atomic_write_text(p, text)
            paths.append(p)
    return paths
