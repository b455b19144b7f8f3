"""``adtk inspect``: the split summary, schema problems and provenance of any manifest.

Reads leniently: a manifest that breaks the schema still gets its problems listed (all of
them, not just the first) and, where the needed columns are usable, its summary table.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.data import manifest as mf
from toolkit.data import split as sp
from toolkit.errors import AdtkError

#: How many image paths ``inspect`` checks on disk (a deterministic sample).
PATH_SAMPLE = 20


@dataclasses.dataclass
class Inspection:
    """What ``adtk inspect`` found; ``text`` is what it prints."""

    path: Path
    kind: str
    rows: int
    problems: list[str]
    summary: sp.Summary | None
    meta: dict
    lines: list[str]
    #: sampled crop image paths that are not on disk (moved or deleted crops)
    missing_images: int = 0
    #: the ``incomplete`` metadata of a crop manifest whose adtk extract has not finished
    incomplete: dict | None = None

    @property
    def stale(self) -> bool:
        """A split manifest whose input crop manifests changed since the split."""
        return any(line.startswith("CHANGED: ") for line in self.lines)

    @property
    def text(self) -> str:
        """The report, one line per entry."""
        return "\n".join(self.lines)


def inspect_manifest(path: str | os.PathLike, group_by: str | None = None) -> Inspection:
    """Summarise a crop or split manifest; ``group_by`` defaults to the one it was split by."""
    path = Path(path)
    table = mf.read_raw(path)
    kind = kind_of(table)
    problems = mf.problems(table, kind)
    try:
        meta = mf.read_meta(path)
    except AdtkError as e:  # listed with the other problems; the rest can still be shown
        meta = {}
        problems.append(str(e).removeprefix(f"{path}: "))
    if table.num_rows == 0 and meta.get("stage") == "extract":
        n = len(meta.get("videos") or [])
        problems.append(
            f"no crops: adtk extract kept none from its {n} video(s) (the summary of that run "
            "says why, e.g. every track shorter than --min-track, or nobody found); nothing "
            "to split")
    elif table.num_rows == 0:
        problems.append("empty manifest (no rows)")
    if group_by:
        # the user's own --group-by: a check they asked for and cannot get is an error
        sp.check_group_by(table, group_by)
    group_by = group_by or meta.get("group_by") or "sequence_id"

    lines = [f"{path}: {kind} manifest, {table.num_rows} crops"]
    incomplete, inputs = mf.incomplete_marks(meta)
    if incomplete:
        lines.append(f"INCOMPLETE: {mf.incomplete_text(incomplete)}")
    for src, mark in inputs:  # a split made with --allow-incomplete
        lines.append(f"note: input {src} was incomplete when split "
                     f"(--allow-incomplete): {mf.incomplete_text(mark)}")
    summary = None
    try:
        summary = _summary(table, kind, group_by, meta)
    except (AdtkError, pa.ArrowException, TypeError) as e:
        # a broken manifest still gets its schema problems listed below
        lines.append(f"summary: not available ({str(e).splitlines()[0]})")
    if summary is not None:
        lines.append(summary.to_text())
        lines += [f"note: {n}" for n in summary.tolerance_notes()]
    prov, missing = _provenance(path, table, meta)
    lines += prov
    lines += _label_sources(table)
    regions = meta.get("regions") if isinstance(meta.get("regions"), dict) else None
    if regions and regions.get("recall"):
        lines += region_recall_lines(
            regions["recall"], regions.get("iou", 0.3), regions.get("large_px", 300)
        )
    if problems:
        lines.append(f"schema problems ({len(problems)}):")
        lines += [f"  - {p}" for p in problems]
    else:
        lines.append("schema: ok")
    return Inspection(path, kind, table.num_rows, problems, summary, meta, lines, missing,
                      incomplete)


def _label_sources(table: pa.Table) -> list[str]:
    """Where the labels came from, and how far region labels narrow the interval ones."""
    if not (mf._is_str(table, "label_source") and mf._is_str(table, "label")):
        return []
    df = table.select(
        [c for c in ("label", "label_source", "label_interval") if c in table.column_names]
    ).to_pandas()
    counts = df["label_source"].value_counts()
    lines = ["label sources: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    if "label_interval" in df and (df["label_source"] == "region").any():
        reg = df[df["label_source"] == "region"]
        in_abn = reg["label_interval"] == "abnormal"
        lines.append(
            f"region labels: {int((reg['label'] == 'abnormal').sum())} abnormal crops; of the "
            f"{int(in_abn.sum())} crops in abnormal intervals, "
            f"{int((in_abn & (reg['label'] == 'normal')).sum())} are not the anomalous object"
        )
    return lines


def region_recall_lines(records: list[dict], iou: float, large_px: int) -> list[str]:
    """The share of anomalous regions covered by a crop, per event (``adtk extract --regions``),
    as printed by ``adtk extract`` and ``adtk inspect``."""
    lines = [
        f"anomalous regions covered by a crop (box IoU >= {iou:g}), on sampled frames:",
        f"  {'event':<12} {'regions':>8} {'covered':>8} {'recall':>7}   "
        f"regions >= {large_px} px: {'regions':>7} {'covered':>8} {'recall':>7}",
    ]
    pad = len(f"regions >= {large_px} px:")
    for r in records:
        rl = r.get("recall_large")
        shown = "-" if rl is None or rl != rl else f"{rl:.1%}"
        lines.append(
            f"  {str(r['event']):<12} {r['regions']:>8} {r['covered']:>8} {r['recall']:>7.1%}   "
            f"{'':>{pad}} {r['regions_large']:>7} {r['covered_large']:>8} {shown:>7}"
        )
    return lines


def _summary(table: pa.Table, kind: str, group_by: str, meta: dict) -> sp.Summary | None:
    if table.num_rows == 0:
        return None
    # string or large_string (what pandas >= 3 writes for str columns)
    if not mf._is_str(table, "label"):
        raise AdtkError("no usable 'label' column")
    groups = sp.group_codes(table, group_by)
    labels = sp.label_codes(table)
    split = None
    if kind == "split":
        if not mf._is_str(table, "split"):
            raise AdtkError("'split' column is not a string column")
        idx = pc.index_in(table.column("split"), value_set=pa.array(sp.SPLITS))
        if idx.null_count:
            raise AdtkError("'split' column has values outside train/val/test")
        split = idx.to_numpy().astype(np.int64)
    events = tuple(meta.get("holdout_events") or ())
    held = sp.held_rows(table, events)
    ratios = meta.get("ratios") if kind == "split" else None
    return sp.summarize(split, groups, labels, held, group_by, ratios, events)


def _extract_provenance(meta: dict) -> str:
    """One line: which adtk extract made a crop manifest, from what, with which settings."""
    c = meta["config"]
    version = meta.get("adtk_version") or "(version not recorded)"
    fps = float(c.get("fps") or 0)
    every = "every frame" if fps == 0 else f"{fps:g} frames/s"
    settings = [f"target {c.get('target', '?')}", f"detector {c.get('detector', '?')}"
                + (f" ({c['weights']})" if c.get("weights") else ""), every,
                f"crops {c.get('size', '?')} px",
                f"motion channels {c.get('motion_channels', 'none')}"]
    for key in ("labels", "regions"):
        if c.get(key):
            settings.append(f"{key} {c[key]}")
    n = len(meta.get("videos") or [])
    return (f"made by adtk extract {version} from {meta.get('input', '?')} ({n} video(s)): "
            + ", ".join(settings))


def kind_of(table: pa.Table) -> str:
    return "split" if "split" in table.column_names else "crop"


def _provenance(path: Path, table: pa.Table, meta: dict) -> tuple[list[str], int]:
    """Provenance lines, and how many of the sampled crop image paths are missing."""
    lines = []
    missing = 0
    if meta.get("seed") is not None:
        ratios = ":".join(f"{r:g}" for r in meta.get("ratios", []))
        lines.append(
            f"made by adtk {meta.get('adtk_version', '?')}: seed {meta['seed']}, ratios {ratios}, "
            f"group by {meta.get('group_by')}"
        )
        for i in meta.get("inputs", []):
            lines.append(f"  input {i['path']} ({i['rows']} rows, sha256 {i['sha256'][:12]}...)")

    if meta.get("stage") == "extract" and isinstance(meta.get("config"), dict):
        lines.append(_extract_provenance(meta))
    if kind_of(table) == "split":
        lines += [f"CHANGED: {c}" for c in mf.changed_inputs(meta, path)]
    partial = meta.get("partial") or {}
    if partial:
        shown = ", ".join(
            f"{v} (stopped at frame {p.get('decode_stopped_at')} of {p.get('frames')})"
            for v, p in list(partial.items())[:3]
        )
        lines.append(
            f"partial videos (decoding stopped early; crops end there): {len(partial)}: {shown}"
            + (" ..." if len(partial) > 3 else "")
        )
    root = mf.crops_root(path, meta)
    lines.append(f"crops root: {root}" + ("" if root.is_dir() else " (missing)"))
    if table.num_rows and mf._is_str(table, "path"):
        # An evenly spaced sample, so the same file always checks the same paths.
        idx = np.unique(np.linspace(0, table.num_rows - 1, PATH_SAMPLE).astype(np.int64))
        sample = table.column("path").take(pa.array(idx)).to_pylist()
        found = sum((root / p).is_file() for p in sample if p)
        missing = len(sample) - found
        lines.append(f"images: {found} of {len(sample)} sampled paths found under the crops root"
                     + (" (MISSING: crops moved or deleted? paths are relative to the crops "
                        "root)" if missing else ""))
    return lines, missing
