"""Tables of a clip-protocol suite's parts (``adtk bench --suite ped2``), in the paper's form.

``adtk bench --suite ped2`` writes ``suite_plan.json`` beside its run folders: every part
(Table 2, Table 3, Table 4, inputs, unseen kinds, label strength), the setting it varies, its
seeds and the ids of its runs, or why it was skipped. Each part that ran becomes one table per
metric: one row per method and value of the part's setting, one column per seed, then the
average and the standard deviation (the paper's Tables 2-4); the baseline's row is scored on
the same test clips as ADNL's, since both share each seed's split manifest. A composition
table says which parts ran, with how many seeds, and which were skipped and why.

Like the other tables, these read only ``metrics.json`` / ``config.json`` (via
:class:`toolkit.eval.tables.Run`) and never recompute a metric.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolkit.eval import tables as T
from toolkit.eval.metrics import mean_std

#: The plan file ``adtk bench --suite ped2`` writes into its ``--out`` folder.
PLAN_FILE = "suite_plan.json"

#: (label, metrics.json key) per part; Table 2 also shows macro and clip min-max AUROC.
#: Smoothed micro AUROC where the runs were evaluated with smoothing (else left out).
_METRICS = {
    "table2": (("frame AUROC (micro), raw", "frame_auroc_micro"),
               ("frame AUROC (micro), smoothed", "frame_auroc_micro_smoothed"),
               ("frame AUROC (macro)", "frame_auroc_macro"),
               ("frame AUROC (micro), clip min-max", "frame_auroc_micro_clipnorm"),
               ("frame AUROC (micro), median 17 as HF2-VAD's evaluation",
                "frame_auroc_micro_hf2vad"),
               ("frame AUROC (micro), Gaussian 3 as Reiss and Hoshen's evaluation",
                "frame_auroc_micro_gauss3"),
               ("object AUROC", "object_auroc")),
    "default": (("frame AUROC (micro), raw", "frame_auroc_micro"),
                ("frame AUROC (micro), smoothed", "frame_auroc_micro_smoothed"),
                ("object AUROC", "object_auroc")),
    "unseen": (("frame AUROC (micro) per kind", "frame_auroc_by_event"),
               ("object AUROC per kind", "object_auroc_by_event")),
}


_SLUGS = {"frame_auroc_micro": "micro", "frame_auroc_macro": "macro", "object_auroc": "object",
          "frame_auroc_micro_smoothed": "micro_smoothed",
          "frame_auroc_micro_clipnorm": "micro_clipnorm",
          "frame_auroc_micro_hf2vad": "micro_hf2vad", "frame_auroc_micro_gauss3": "micro_gauss3",
          "frame_auroc_by_event": "micro", "object_auroc_by_event": "object"}


def read_plan(runs_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The suite plan in ``runs_dir`` (None when there is none or it is unreadable)."""
    p = Path(runs_dir) / PLAN_FILE
    try:
        plan = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and isinstance(plan.get("parts"), list) else None


def figure_runs(runs: Sequence[T.Run], plan: dict[str, Any] | None) -> list[T.Run]:
    """The runs the frame figures draw: with a suite plan, those of the official protocol and
    Table 2 (the ablations are tables; a figure of every run of a seed would be unreadable)."""
    if plan is None:
        return list(runs)
    keep = {i for p in plan["parts"] if p["name"] in ("official", "table2")
            for i in p.get("run_ids") or []}
    return [r for r in runs if r.run_id in keep]


def _value(r: T.Run, metric: str, kind: str | None) -> Any:
    v = r.get(metric)
    if kind is not None:
        v = (v or {}).get(kind) if isinstance(v, dict) else None
    return v


def _seed_cells(group: Sequence[T.Run], seeds: Sequence[int], metric: str,
                kind: str | None = None) -> list[T.Cell]:
    cells = []
    for s in seeds:
        vals = [_value(r, metric, kind) for r in group if T.value_key(r.get("seed")) ==
                T.value_key(s)]
        vals = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
        m, sd = mean_std(vals)
        cells.append(T.Cell(None if math.isnan(m) else m, None if len(vals) < 2 else sd,
                            max(len(vals), 1)))
    m, sd = mean_std([c.value for c in cells if not c.empty])
    n = sum(not c.empty for c in cells)
    ids = tuple(r.run_id for r in group)
    return cells + [T.Cell(None if math.isnan(m) else m, run_ids=ids),
                    T.Cell(None if n < 2 else sd, run_ids=ids)]


def _rank(order: list[str], v: Any) -> tuple:
    """The part's own order of its values (appearance, motion, both), others after."""
    k = T.value_key(v)
    return (order.index(k) if k in order else len(order), T.sort_key(v))


def _method_rank(m: Any) -> tuple:
    return (str(m) != "baseline", T.method_order(m), str(m))


def part_tables(runs: Sequence[T.Run], plan: dict[str, Any]) -> list[T.Table]:
    """One table per part that ran (and per metric), in the plan's order; official excluded
    (the official protocol's table has the published numbers beside it)."""
    by_id = {r.run_id: r for r in T.finished(runs)}
    out: list[T.Table] = []
    preset = plan.get("preset", "")
    for part in plan["parts"]:
        if part.get("skipped") or part["name"] == "official":
            continue
        group = [by_id[i] for i in part.get("run_ids", []) if i in by_id]
        if not group:
            continue
        seeds = part.get("seeds") or sorted({r.get("seed") for r in group}, key=T.sort_key)
        axis = part.get("axis")
        metrics = _METRICS.get(part["name"], _METRICS["default"])
        for label, metric in metrics:
            if part["name"] == "unseen":
                rows = _unseen_rows(group, seeds, metric, part)
                label_cols = ["Method", "Kind"]
            else:
                if all(r.get(metric) is None for r in group):
                    continue
                rows = []
                order = [T.value_key(v) for v in part.get("values") or []]
                keys = sorted({(r.get("method"), r.get(axis) if axis else None) for r in group},
                              key=lambda k: (_method_rank(k[0]), _rank(order, k[1])))
                for m, v in keys:
                    g = [r for r in group if r.get("method") == m
                         and (not axis or T.value_key(r.get(axis)) == T.value_key(v))]
                    labels = ([T.method_label(g[0], [axis] if axis else [])]
                              + ([T._label(axis, v)] if axis else []))
                    rows.append(T.Row(labels, _seed_cells(g, seeds, metric)))
                label_cols = ["Method"] + ([T.field_title(axis)] if axis else [])
            if not rows or all(c.empty for r in rows for c in r.cells):
                continue
            slug = _SLUGS[metric]
            if metric.endswith("_smoothed"):
                from toolkit.eval.frames import runs_smooth_label

                how = runs_smooth_label(r.get("frame_eval") for r in group)
                label = f"{label} ({how})" if how else label
            out.append(T.Table(
                key=f"ped2_{part['name']}_{slug}",
                title=(f"UCSD Ped2, {part['title']}"
                       + (" (few-shot protocol)" if part.get("protocol") == "fewshot" else "")
                       + f": {label} x100 per seed"),
                label_columns=label_cols,
                columns=[f"Seed {s}" for s in seeds] + ["Average", "Std"],
                rows=rows,
                caption=(part.get("caption", "") + f" Preset {preset}; every method of a seed "
                         "is scored on the same test clips (one split manifest per seed)."
                         ).strip(),
                notes=_part_notes(part, group),
            ))
    return out


def _unseen_rows(group: Sequence[T.Run], seeds: Sequence[int], metric: str,
                 part: dict[str, Any]) -> list[T.Row]:
    extra = part.get("extra") or {}
    seen = list(extra.get("seen") or [])
    kinds = seen + [k for k in extra.get("unseen") or [] if k not in seen]
    rows = []
    for m in sorted({r.get("method") for r in group}, key=_method_rank):
        g = [r for r in group if r.get("method") == m]
        for kind in kinds:
            tag = "seen" if kind in seen else "unseen"
            rows.append(T.Row([T.method_name(m), f"{kind} ({tag})"],
                              _seed_cells(g, seeds, metric, kind)))
    return rows


def _part_notes(part: dict[str, Any], group: Sequence[T.Run]) -> list[str]:
    def values(k: str) -> str:
        return "/".join(sorted({str(r.get(k)) for r in group if r.get(k) is not None}))

    notes = [f"Runs: {values('size')}-pixel crops, {values('epochs')} epochs; normal training "
             f"crops of every Nth frame of the training clips, N = {values('train_every') or 1} "
             "(labelled anomalies all kept); every test frame scored."]
    if part["name"] == "unseen":
        notes.append("Per kind: frame AUROC over every frame of the test clips holding that kind "
                     "(micro); object AUROC over their region-labelled crops.")
        clips: dict[str, set[str]] = {}
        for r in group:
            for kind, held in ((r.metrics or {}).get("frame_clips_by_event") or {}).items():
                clips.setdefault(kind, set()).update(held)
        if clips:
            one = sorted(k for k, v in clips.items() if len(v) == 1)
            notes.append(
                "Test clips holding each kind, over the seeds: " + "; ".join(
                    f"{k} {len(v)} ({', '.join(sorted(Path(c).stem for c in v))})"
                    if len(v) <= 3 else f"{k} {len(v)}" for k, v in sorted(clips.items()))
                + (f". {' and '.join(one)}: one clip, so the row is that clip's AUROC, with "
                   "everything else the clip shows (its interval labels name one kind per "
                   "stretch of time)" if one else "") + ".")
    if any(r.get("method") == "fusion" for r in group):
        notes.append("Fusion: no training; each crop's score is the geometric mean of the "
                     "baseline's and ADNL's scores of the same seed (adtk's, not the paper's: "
                     "the baseline's error breaks the ties among the crops ADNL scores at its "
                     "ceiling).")
    return notes


def composition_table(runs: Sequence[T.Run], plan: dict[str, Any]) -> T.Table:
    """Which parts the suite planned: seeds, runs finished of planned, or why skipped."""
    fin = {r.run_id for r in T.finished(runs)}
    rows = []
    for part in plan["parts"]:
        ids = part.get("run_ids") or []
        done = sum(i in fin for i in ids)
        status = f"skipped: {part['skipped']}" if part.get("skipped") else (
            f"{done} of {len(ids)} runs finished")
        seeds = part.get("seeds") or []
        rows.append(T.Row([part["name"], part["title"]], [
            T.Cell(len(seeds), kind=T.INT),
            T.Cell(", ".join(map(str, seeds)) or "–", kind=T.TEXT),
            T.Cell(part.get("axis") or "–", kind=T.TEXT),
            T.Cell(", ".join(map(str, part.get("values") or [])) or "–", kind=T.TEXT),
            T.Cell(status, kind=T.TEXT),
        ]))
    s = plan.get("settings") or {}
    planned = {i for part in plan["parts"] for i in part.get("run_ids") or []}
    other = sorted(r.run_id for r in runs if r.run_id not in planned)
    notes = [f"{len(other)} run folder(s) here belong to no part of the plan "
             f"({', '.join(other[:6])}{' ...' if len(other) > 6 else ''}): they appear in the "
             "run tables and figures of this report, in none of the suite's tables."] if other \
        else []
    return T.Table(
        key="ped2_suite_parts",
        notes=notes,
        title=f"UCSD Ped2 suite: parts (preset {plan.get('preset', '?')})",
        label_columns=["Part", "What"],
        columns=["Seeds", "Which seeds", "Varies", "Values", "Status"],
        rows=rows,
        caption=("A run shared by parts (same settings, seed and split) trained once. "
                 + (f"Preset settings: {', '.join(f'{k} {v}' for k, v in s.items())}."
                    if s else "")),
    )
