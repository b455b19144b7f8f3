"""Grouped, stratified, seeded train / val / test assignment of crop manifests (``adtk split``).

Whole groups go to one split, so one scene never shows up in two splits. A group is every crop
sharing a value of a column (default ``sequence_id``), or, with ``window:300s``, every sequence
of a video that *starts* within one 300-second window (a track that crosses a window's edge
stays whole, so the same person is never in two splits). Within each label the *crop* counts
follow the ratios (sequences differ in length, so balancing group counts would not do).

How a group is placed (:func:`assign_groups`):

1. Groups holding a ``--holdout-event`` go to test, fixed, on top of its share: the ratios
   apply to the other groups, so test also holds its share of the anomaly kinds that train
   sees (needed to compare seen and unseen kinds).
2. The other groups are ordered largest first, with a seeded jitter: a group's size is the
   largest fraction of any label's crops it holds, multiplied by a random factor in [1, 2), so
   groups within a factor two of each other come in random order. Then each group goes to the
   split that is least full *after* taking it, per label: fill = (crops of the label placed
   there + the group's) / that split's target for the label. A single-label group thus goes to
   the split least filled for its label, relative to its target (stratification by label); a
   mixed group averages the fills of its labels, weighted by its share of each label's crops
   (see :func:`_greedy` for why fill and not absolute deficit). Large groups come first and
   small ones last, so the small ones fine-tune the balance; for a label of >= 100
   similar-sized groups each split ends well within 2 percentage points of its target.
3. Fix-ups, moving the smallest spare group: every split with a non-zero ratio gets at
   least one group, then one *abnormal group* (a group with any abnormal crop) when there are
   enough of them (with fewer: test first, then train, then val; a split's last group is
   swapped, not taken), then a group with normal crops.

Why not scikit-learn: ``GroupShuffleSplit`` picks a number of *groups* per split and ignores
both crop counts and labels; ``StratifiedGroupKFold`` stratifies into k equal folds only (7:1:2
needs ten merged folds) and balances label proportions within a fold, not each split's share of
a label's crops; neither can pin groups to one split (holdout). The greedy above is a few lines
and does all three.

Determinism: groups are numbered in sorted key order and the jitter is drawn per group number
from ``numpy.random.default_rng(seed)``, so the assignment depends on the data and the seed,
not on row order; the output file is byte-identical for the same inputs and seed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from toolkit import __version__
from toolkit.config import SplitConfig, to_dict
from toolkit.data import manifest as mf
from toolkit.errors import AdtkError, ManifestError
from toolkit.io import sha256_file

LABELS = mf.LABELS
SPLITS = mf.SPLITS
NORMAL = LABELS.index("normal")
ABNORMAL = LABELS.index("abnormal")
TEST = SPLITS.index("test")
#: which split gets an abnormal group first when there are fewer than splits
COVER_ORDER = (TEST, SPLITS.index("train"), SPLITS.index("val"))
#: ... and a group with normal crops (bench trains on train's normal crops)
NORMAL_ORDER = (SPLITS.index("train"), TEST, SPLITS.index("val"))
#: A label needs this many groups before its crop shares are expected within TOLERANCE_PP.
MIN_GROUPS_FOR_TOLERANCE = 100
TOLERANCE_PP = 2.0
#: with fewer groups than that, a note when a split's share of all crops misses its target by
#: more than this many pp (whole groups cannot meet the ratios)
FEW_GROUPS_PP = 10.0

_WINDOW = re.compile(r"^window:\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?$", re.IGNORECASE)
_UNIT_S = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


# --- grouping -----------------------------------------------------------------------------


def parse_window(group_by: str) -> float | None:
    """Seconds of a ``window:300s`` spec (``s``, ``m`` or ``h``; seconds by default), else None."""
    if not group_by.lower().startswith("window:"):
        return None
    m = _WINDOW.match(group_by.strip())
    if not m or float(m.group(1)) <= 0:
        raise AdtkError(
            f"--group-by {group_by!r}: expected window:SECONDS with a positive number, "
            "e.g. window:300s, window:5m"
        )
    return float(m.group(1)) * _UNIT_S[(m.group(2) or "s").lower()]


def check_group_by(table: pa.Table, group_by: str) -> None:
    """Raise unless ``group_by`` is a valid ``window:`` spec or a column of ``table``."""
    if parse_window(group_by) is None and group_by not in table.column_names:
        raise ManifestError(
            f"--group-by {group_by!r}: no such column; columns: {', '.join(table.column_names)}"
        )


def group_codes(table: pa.Table, group_by: str) -> np.ndarray:
    """Group number per row, 0..G-1, numbered in sorted order of the group key."""
    check_group_by(table, group_by)
    window = parse_window(group_by)
    if window is None:
        col = table.column(group_by)
        if col.null_count:
            raise ManifestError(
                f"--group-by {group_by!r}: column has {col.null_count} missing value(s); "
                "every crop needs a group"
            )
        codes = _factorize(col)
        if len(codes) and codes.min() < 0:  # NaN in a float column: not null, still no key
            n_bad = int((codes < 0).sum())
            raise ManifestError(f"--group-by {group_by!r}: column has {n_bad} NaN value(s)")
        return codes
    for name in ("video_id", "time_s"):
        if name not in table.column_names:
            raise ManifestError(f"--group-by {group_by}: needs column {name!r}")
    video = _factorize(table.column("video_id"))
    time_s = table.column("time_s").to_numpy()
    if not np.isfinite(time_s).all():
        bad = int((~np.isfinite(time_s)).sum())
        raise ManifestError(f"--group-by {group_by}: column 'time_s' has {bad} NaN/inf value(s)")
    # A sequence belongs to the window it starts in: cutting tracks at window edges would put
    # the same person into two splits. (video, sequence) keys, since another tool's track ids
    # may repeat across videos.
    if "sequence_id" in table.column_names:
        seq = pd.DataFrame({"v": video, "s": _factorize(table.column("sequence_id")), "t": time_s})
        time_s = seq.groupby(["v", "s"], sort=False)["t"].transform("min").to_numpy()
    win = np.floor(time_s / window).astype(np.int64)
    win -= win.min()
    # (video, window) pairs -> one integer, renumbered densely; order: video key, then time.
    _, codes = np.unique(video * (int(win.max()) + 1) + win, return_inverse=True)
    return codes.astype(np.int64)


def _factorize(col: pa.ChunkedArray) -> np.ndarray:
    codes, _ = pd.factorize(col.to_pandas(), sort=True)
    return codes.astype(np.int64)


def label_codes(table: pa.Table) -> np.ndarray:
    """Index into :data:`LABELS` per row (-1 for a value outside it)."""
    idx = pc.index_in(table.column("label"), value_set=pa.array(LABELS))
    return pc.fill_null(idx, -1).to_numpy().astype(np.int64)


def held_rows(table: pa.Table, events: Sequence[str]) -> np.ndarray:
    """True for rows whose ``event`` is one of ``events``."""
    if not events or "event" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    hit = pc.is_in(table.column("event"), value_set=pa.array(list(events), pa.string()))
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def group_label_counts(groups: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """(G, 3) crop counts per group and label (rows with an unknown label are not counted)."""
    ok = labels >= 0
    flat = np.bincount(groups[ok] * 3 + labels[ok], minlength=3 * n_groups)
    return flat.reshape(n_groups, 3)


# --- assignment ---------------------------------------------------------------------------


@dataclasses.dataclass
class Assignment:
    """The split of every group, and plain-language notes on what could not be met."""

    split: np.ndarray  # (G,) int8 index into SPLITS
    held: np.ndarray  # (G,) bool: pinned to test by a holdout event
    notes: list[str]


def assign_groups(
    counts: np.ndarray, held: np.ndarray, ratios: Sequence[float], seed: int
) -> Assignment:
    """Place each group (row of ``counts``, crops per label) in a split; see the module doc."""
    n_groups = len(counts)
    r = np.asarray(ratios, dtype=float) / float(sum(ratios))
    active = [k for k in range(3) if r[k] > 0]
    if n_groups < len(active):
        raise AdtkError(
            f"{n_groups} group(s) cannot fill {len(active)} splits with non-zero ratios; "
            "use a finer --group-by or fewer splits (a ratio of 0)"
        )
    if held.any() and r[TEST] == 0:
        raise AdtkError("--holdout-event sends groups to test, but the test ratio is 0")
    totals = counts[~held].sum(axis=0).astype(float)  # (3 labels,) held-out groups aside
    split = np.full(n_groups, -1, dtype=np.int8)
    split[held] = TEST
    # load[k][l]: crops of label l placed in split k so far; target[k][l]: its share of them.
    load = np.zeros((3, 3))
    target = r[:, None] * totals[None, :]

    rng = np.random.default_rng(seed)
    jitter = rng.random(n_groups)  # drawn for every group so a group's draw is its own
    frac = (counts / np.where(totals > 0, totals, 1.0)).max(axis=1)
    key = np.log(np.maximum(frac, 1e-300)) + math.log(2.0) * jitter
    free = np.flatnonzero(~held)
    order = free[np.argsort(-key[free], kind="stable")]
    split[order] = _greedy(counts[order].tolist(), load.tolist(), target.tolist(), active)

    notes: list[str] = []
    abnormal = counts[:, ABNORMAL] > 0
    sizes = counts.sum(axis=1)
    has_normal = counts[:, NORMAL] > 0
    every = np.ones(n_groups, bool)
    # Every split a group first; the covers below move a group only where its split keeps
    # another one, or swap two, so none is emptied again.
    _cover(split, every, ~held, sizes, active, keep=None, ordered=False)
    # Abnormal groups in the order they matter when there are too few for all: test (no
    # AUROC without one), then train (ADNL's labelled anomalies), then val (model selection).
    _cover(split, abnormal, ~held, sizes, [k for k in COVER_ORDER if k in active], keep=None)
    # Normal crops in every split, without taking a split's last abnormal group: a val or
    # test split of anomalies alone has no AUROC either.
    if has_normal.any():  # train first: bench needs its normal crops; then test, then val
        _cover(split, has_normal, ~held, sizes, [k for k in NORMAL_ORDER if k in active],
               keep=abnormal)
    empty = [SPLITS[k] for k in active if not (split == k).any()]
    if empty:
        raise AdtkError(
            f"no group left for {', '.join(empty)}: {int(held.sum())} of {n_groups} groups are "
            "held out for test; hold out fewer events or set those ratios to 0"
        )
    n_abn = int(abnormal.sum())
    lacking = [SPLITS[k] for k in active if not (abnormal & (split == k)).any()]
    if not has_normal.any() and n_abn == 0:
        notes.append("no labelled crops in the input (every crop unlabeled): adtk bench trains "
                     "on normal crops and scores against abnormal ones; label the footage "
                     "(adtk extract --labels FILE, or folders named normal/ and abnormal/)")
    elif n_abn == 0:
        notes.append("no abnormal crops in the input: every split holds normal/unlabeled only")
    elif lacking:
        why = f"there are only {n_abn} abnormal group(s)"
        if int((abnormal & held).sum()):
            why += f", {int((abnormal & held).sum())} of them held out for test"
        order = "test first, then train, then val" + (
            ", as far as the held-out groups allow" if held.any() else "")
        notes.append(f"{' and '.join(lacking)} {'gets' if len(lacking) == 1 else 'get'} no "
                     f"abnormal group: {why} (given to {order})")
    no_normal = [SPLITS[k] for k in active if not (has_normal & (split == k)).any()]
    if has_normal.any() and no_normal:
        notes.append(
            f"{' and '.join(no_normal)} {'gets' if len(no_normal) == 1 else 'get'} no normal "
            f"crops: only {int(has_normal.sum())} group(s) hold normal crops"
            + (f", {int((has_normal & held).sum())} of them held out for test"
               if (has_normal & held).any() else "")
            + " (bench trains on train's normal crops; an AUROC needs both classes)")
    return Assignment(split=split, held=held, notes=notes)


def _greedy(
    rows: list[list[int]], load: list[list[float]], target: list[list[float]], active: list[int]
) -> np.ndarray:
    # One pass over the groups in Python: per group, not per row (1M crops in ~30k sequences
    # is ~30k steps). A group goes to the split that is least full *after* taking it: fill =
    # (load + c) / target per label, averaged over the group's labels weighted by the group's
    # fraction of each label's crops. Fill, not absolute deficit: by deficit the largest
    # groups would all go to train (its deficit is largest), leaving val and test the short
    # sequences; by fill they are spread 7:1:2 like the rest. "After taking it" keeps a
    # group far larger than val's whole target out of val.
    out = np.empty(len(rows), dtype=np.int8)
    inv = [[1.0 / t if t > 0 else 0.0 for t in target[k]] for k in range(3)]
    totals = [sum(target[k][label] for k in range(3)) for label in range(3)]
    w = [1.0 / t if t > 0 else 0.0 for t in totals]
    for i, (c0, c1, c2) in enumerate(rows):
        best_k, best = active[0], math.inf
        for k in active:
            ld, iv = load[k], inv[k]
            fill = 0.0
            if c0:
                fill += c0 * w[0] * (ld[0] + c0) * iv[0]
            if c1:
                fill += c1 * w[1] * (ld[1] + c1) * iv[1]
            if c2:
                fill += c2 * w[2] * (ld[2] + c2) * iv[2]
            if fill < best:
                best_k, best = k, fill
        ld = load[best_k]
        ld[0] += c0
        ld[1] += c1
        ld[2] += c2
        out[i] = best_k
    return out


def _cover(
    split: np.ndarray,
    members: np.ndarray,
    movable: np.ndarray,
    sizes: np.ndarray,
    active: list[int],
    keep: np.ndarray | None,
    ordered: bool = True,
) -> None:
    """Give each active split one of ``members`` (in place), moving the smallest spare one.

    A donor split must keep at least one member, and (with ``keep``) at least one of ``keep``.
    Splits are served in the order of ``active`` (``ordered``), else smallest first (they are
    the ones a large group can starve). Ordered, a split served later may give up its last
    member to one served earlier: moved where the donor keeps another group, else the donor
    gets the smallest movable non-member back, from the split served (a swap) or from one
    that keeps another group, so that none is left empty.
    """
    order = active if ordered else sorted(active, key=lambda k: (split == k).sum())
    for n, k in enumerate(order):
        if (members & (split == k)).any():
            continue
        best = None  # (members the donor holds, group to move in, group to move back or -1)
        for j in active:
            in_j = members & (split == j)
            later = ordered and j in order[n + 1:]
            if j == k or in_j.sum() < (1 if later else 2):
                continue
            cand = in_j & movable
            if keep is not None and (keep & (split == j)).sum() < 2:
                cand &= ~keep
            if not cand.any():
                continue
            idx = np.flatnonzero(cand)
            g = int(idx[np.argmin(sizes[idx])])  # first smallest: deterministic
            back = -1
            if in_j.sum() < 2 and (split == j).sum() < 2:  # its last group: a swap
                # j gets another group back: from the split served (a plain swap), else from
                # a split that keeps one (held-out groups cannot move)
                for m in (k, *sorted((m for m in active if m not in (j, k)),
                                     key=lambda m: -(split == m).sum())):
                    pool = (split == m) & movable & ~members
                    if keep is not None and (keep & (split == m)).sum() < 2:
                        pool &= ~keep  # nor a split's last group of ``keep``
                    spare = np.flatnonzero(pool)
                    if len(spare) and (m == k or (split == m).sum() >= 2):
                        back = int(spare[np.argmin(sizes[spare])])
                        break
                if back < 0:
                    continue
            if best is None or in_j.sum() > best[0]:
                best = (int(in_j.sum()), g, back)
        if best is not None:
            _, g, back = best
            if back >= 0:
                split[back] = split[g]
            split[g] = k


# --- inputs -------------------------------------------------------------------------------


def load_inputs(
    paths: Sequence[str | os.PathLike], allow_incomplete: bool = False
) -> tuple[pa.Table, list[dict[str, Any]], Path]:
    """Read, validate and merge crop (or split) manifests; paths rewritten to one common root.

    Returns the merged table (any old ``split`` column dropped), one info dict per input
    (path, sha256, rows, crops root; ``incomplete`` where it came from an unfinished extract)
    and the common crops root (absolute). A manifest of an unfinished ``adtk extract`` is an
    error unless ``allow_incomplete``: a split of a third of the videos looks like a whole one.
    So is a split manifest made from one (``--allow-incomplete`` then): its inputs' marks carry
    on into this split's, or re-splitting would launder them.
    """
    if not paths:
        raise AdtkError("no input manifest given")
    tables, infos = [], []
    for p in paths:
        p = Path(p)
        table = mf.read_table(p)
        meta = mf.read_meta(p)
        own, carried = mf.incomplete_marks(meta)
        inc = own or _merged_marks([mark for _, mark in carried])
        if table.num_rows == 0:
            raise ManifestError(f"{p}: empty manifest (no rows)"
                                + (f": {mf.incomplete_text(inc)}" if inc else ""))
        if inc and not allow_incomplete:
            was = " (split with --allow-incomplete)" if "split" in table.column_names else ""
            raise AdtkError(
                f"{p}: INCOMPLETE{was}: {mf.incomplete_text(inc)}; or give --allow-incomplete "
                "to split the finished videos only"
            )
        if "split" in table.column_names:
            table = table.drop_columns(["split"])  # re-splitting a split manifest
        infos.append(
            {
                "path": str(p.resolve()),
                "sha256": sha256_file(p),
                "rows": table.num_rows,
                "crops_root": str(mf.crops_root(p)),
            }
        )
        if inc:
            infos[-1]["incomplete"] = inc
        motion = meta.get("motion_channels")
        if motion:  # how the motion crops were made: bench needs it (their flip)
            infos[-1]["motion_channels"] = motion
        tables.append(table.replace_schema_metadata(None))
    # One root for all: the inputs' common ancestor; each input's paths get its root's
    # position below it as a prefix (absolute paths are left alone).
    common = Path(os.path.commonpath([i["crops_root"] for i in infos]))
    for i, (info, table) in enumerate(zip(infos, tables, strict=True)):
        prefix = Path(info["crops_root"]).relative_to(common).as_posix()
        info["path_prefix"] = "" if prefix == "." else prefix + "/"
        if info["path_prefix"]:
            motion = [n for n in ("path_motion", "path_motion_oversize") if n in table.column_names]
            for name in ("path", "path_oversize", *motion):
                col = table.column(name)
                if pa.types.is_large_string(col.type):  # extra columns as pandas wrote them
                    col = col.cast(pa.string())
                joined = pc.binary_join_element_wise(info["path_prefix"], col, "")
                col = pc.if_else(pc.starts_with(col, "/"), col, joined)
                table = table.set_column(table.schema.get_field_index(name), name, col)
            tables[i] = table
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ManifestError(f"inputs cannot be merged: {str(e).splitlines()[0]}") from None
    _check_unique_ids(merged, [t.num_rows for t in tables], [Path(p) for p in paths])
    return merged, infos, common


def _merged_marks(marks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``incomplete`` marks of a split manifest's own inputs (a split made with
    ``--allow-incomplete``) as one mark: counts added, video lists joined; None where none."""
    if len(marks) <= 1:
        return marks[0] if marks else None

    def total(key: str) -> int | str:
        vals = [m.get(key) for m in marks]
        return sum(vals) if all(isinstance(v, int) for v in vals) else "?"

    return {"videos": total("videos"), "finished": total("finished"),
            "missing": [v for m in marks for v in m.get("missing") or []],
            "failed": [v for m in marks for v in m.get("failed") or []],
            "interrupted": any(m.get("interrupted") for m in marks)}


def _check_unique_ids(table: pa.Table, sizes: list[int], paths: list[Path]) -> None:
    dup = mf.duplicate_ids(table)
    if not len(dup):
        return
    ids = table.column("crop_id").combine_chunks()
    first = dup[0].as_py()
    rows = np.flatnonzero(pc.equal(ids, first).to_numpy(zero_copy_only=False))
    source = np.searchsorted(np.cumsum(sizes), rows, side="right")
    where = [str(paths[s]) for s in source]
    where = " and ".join(where) if len(set(where)) > 1 else f"{where[0]} (given twice?)"
    raise ManifestError(
        f"duplicate crop_id value(s) across inputs: {len(dup)} id(s) repeated, e.g. {first!r} "
        f"in {where}"
    )


# --- the whole command ----------------------------------------------------------------------


@dataclasses.dataclass
class SplitResult:
    """What ``adtk split`` wrote and what it found."""

    out: Path
    rows: int
    meta: dict[str, Any]
    summary: Summary
    notes: list[str]
    #: What the split costs later stages (an empty split); the CLI prints them to stderr.
    warnings: list[str] = dataclasses.field(default_factory=list)

    def report(self) -> str:
        """The text the CLI prints: the summary table, notes, and where the file went."""
        lines = [self.summary.to_text()]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"wrote {self.out} ({self.rows} crops)")
        return "\n".join(lines)


def split_manifests(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    cfg: SplitConfig | None = None,
    allow_incomplete: bool = False,
) -> SplitResult:
    """Merge ``inputs``, assign every group to train/val/test, write ``out`` atomically.

    All checks run before anything is written; on error no file is created or replaced.
    ``allow_incomplete``: split the manifest of an unfinished ``adtk extract`` (with a
    warning) instead of refusing it.
    """
    cfg = cfg or SplitConfig()
    out = Path(out)
    if out.is_dir():
        raise AdtkError(f"--out {out}: is a folder; give the manifest file to write")
    if any(Path(p).resolve() == out.resolve() for p in inputs):
        raise AdtkError(f"--out {out}: is one of the inputs; write the split to another file")
    table, infos, root = load_inputs(inputs, allow_incomplete)
    groups = group_codes(table, cfg.group_by)
    n_groups = int(groups.max()) + 1
    labels = label_codes(table)
    for event in cfg.holdout_events:
        if not pc.any(pc.equal(table.column("event"), event)).as_py():
            present = pc.unique(pc.drop_null(table.column("event"))).to_pylist()
            raise AdtkError(
                f"--holdout-event {event!r}: no crop has this event; events present: "
                f"{', '.join(sorted(present)) or 'none'}"
            )
    held_row = held_rows(table, cfg.holdout_events)
    held = np.bincount(groups, weights=held_row, minlength=n_groups) > 0
    counts = group_label_counts(groups, labels, n_groups)
    result = assign_groups(counts, held, cfg.ratios, cfg.seed)
    split_row = result.split[groups]

    split_col = pc.take(pa.array(SPLITS), pa.array(split_row))
    out_table = table.append_column("split", split_col)
    out_dir = out.resolve().parent
    meta = {
        "kind": "split",
        "adtk_version": __version__,
        "config": to_dict(cfg),
        "seed": cfg.seed,
        "ratios": list(cfg.ratios),
        "group_by": cfg.group_by,
        "holdout_events": list(cfg.holdout_events),
        "inputs": infos,
        # Relative first (moving data_manifests/ together with the crops keeps working), the
        # absolute path as fallback (moving the file alone keeps working): see crops_root().
        "crops_root": os.path.relpath(root, out_dir),
        "crops_root_abs": str(root),
        "groups": n_groups,
    }
    motions = [i.get("motion_channels") for i in infos]
    if motions[0] and all(m == motions[0] for m in motions):
        meta["motion_channels"] = motions[0]
    summary = summarize(
        split_row, groups, labels, held_row, cfg.group_by, cfg.ratios, cfg.holdout_events
    )
    if summary.leaked_groups:  # cannot happen by construction; never write a leaking split
        raise AdtkError(f"internal error: {summary.leaked_groups} group(s) in several splits")
    notes = result.notes + summary.tolerance_notes()
    try:
        mf.write_manifest(out_table, out, kind="split", meta=meta)
    except OSError as e:  # e.g. a parent "folder" that is a file; nothing was written
        from toolkit.io import os_error_text

        raise AdtkError(f"--out {out}: cannot write it ({os_error_text(e)})") from None
    unfinished = [
        f"{i['path']}: incomplete: {mf.incomplete_text(i['incomplete'])}; this split holds "
        "the finished videos only" for i in infos if i.get("incomplete")
    ]
    return SplitResult(out=out, rows=table.num_rows, meta=meta, summary=summary, notes=notes,
                       warnings=unfinished + ratio_warnings(cfg.ratios))


def ratio_warnings(ratios: Sequence[float]) -> list[str]:
    """What a ratio of 0 costs ``adtk bench`` later, said when the split is made."""
    cost = {
        "train": "adtk bench cannot train on this manifest",
        "val": "adtk bench records no validation AUC and refuses --select best-val on it",
        "test": "adtk bench reports no test AUROC from it",
    }
    return [f"the {name} ratio is 0, so there is no {name} split: {cost[name]}"
            for name, r in zip(SPLITS, ratios, strict=True) if float(r) == 0]


# --- summary ------------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """Per-split counts of a crop or split manifest; ``to_text`` renders the table."""

    names: tuple[str, ...]  # row names: SPLITS, or ("all",) for a crop manifest
    groups: np.ndarray  # (S,) distinct groups per split
    crops: np.ndarray  # (S,)
    label_crops: np.ndarray  # (S, 3) crops per label
    abnormal_groups: np.ndarray  # (S,) groups with an abnormal crop
    held_groups: np.ndarray  # (S,) groups with a held-out event
    held_label_crops: np.ndarray  # (S, 3) crops per label in those groups
    label_groups: np.ndarray  # (3,) groups with a crop of each label, held-out ones aside
    total_groups: int
    leaked_groups: int  # groups found in more than one split
    group_by: str
    targets: np.ndarray | None = None  # (S,) target share of crops, from the ratios
    holdout_events: tuple[str, ...] = ()

    @property
    def held_crops(self) -> np.ndarray:
        """(S,) crops in held-out groups."""
        return self.held_label_crops.sum(axis=1)

    def deviation_pp(self) -> np.ndarray:
        """(3,) per label: the largest |split's share of the label's crops - target|, in pp.

        Held-out groups are left aside: they go to test on top of its share.
        """
        if self.targets is None:
            return np.full(3, np.nan)
        crops = self.label_crops - self.held_label_crops
        tot = crops.sum(axis=0)
        share = crops / np.where(tot > 0, tot, 1)
        dev = np.abs(share - self.targets[:, None]).max(axis=0) * 100
        return np.where(tot > 0, dev, np.nan)

    def tolerance_notes(self) -> list[str]:
        """Labels with enough groups whose crop shares miss the target by more than 2 pp."""
        notes = []
        for label, dev, n in zip(LABELS, self.deviation_pp(), self.label_groups, strict=True):
            if n >= MIN_GROUPS_FOR_TOLERANCE and dev > TOLERANCE_PP:
                notes.append(
                    f"{label} crops miss the ratios by {dev:.1f} pp (> {TOLERANCE_PP:g}) "
                    f"over {n} groups: a few groups are very large; try a finer --group-by"
                )
        crops = self.crops - self.held_crops  # held-out groups go to test on top of its share
        total = float(crops.sum())
        if self.targets is not None and total and self.total_groups < MIN_GROUPS_FOR_TOLERANCE:
            share = crops / total
            dev = float(np.abs(share - self.targets).max()) * 100
            if dev > FEW_GROUPS_PP:
                got = "/".join(f"{100 * v:.0f}" for v in share)
                want = "/".join(f"{100 * v:.0f}" for v in self.targets)
                gb = str(self.group_by or "")
                if gb == "sequence_id":
                    how = ("more footage (more sequences) gets closer; a --group-by window "
                           "only merges sequences, so it cannot give more groups")
                elif parse_window(gb) is not None:
                    how = ("a shorter window gives more groups, at most one per sequence "
                           "(--group-by sequence_id)")
                else:
                    how = "more footage or a finer --group-by gets closer"
                notes.append(
                    f"only {self.total_groups} groups: whole groups give shares {got} % against "
                    f"{want} %; {how}"
                )
        return notes

    def to_text(self) -> str:
        """The table printed by ``adtk split`` and ``adtk inspect``."""
        total = max(int(self.crops.sum()), 1)
        head = ["split", "groups", "crops", "share"]
        head += ["target"] if self.targets is not None else []
        head += [*LABELS, "abn.groups"]
        held = bool(self.holdout_events) or bool(self.held_groups.sum())
        head += ["held-out groups"] if held else []
        rows = []
        for s, name in enumerate(self.names):
            row = [name, self.groups[s], self.crops[s], f"{100 * self.crops[s] / total:.1f}%"]
            row += [f"{100 * self.targets[s]:.1f}%"] if self.targets is not None else []
            row += [*self.label_crops[s], self.abnormal_groups[s]]
            row += [self.held_groups[s]] if held else []
            rows.append([str(v) for v in row])
        if len(self.names) > 1:
            row = ["total", self.total_groups, int(self.crops.sum()), "100.0%"]
            row += ["100.0%"] if self.targets is not None else []
            row += [*self.label_crops.sum(axis=0), int(self.abnormal_groups.sum())]
            row += [int(self.held_groups.sum())] if held else []
            rows.append([str(v) for v in row])
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in [head, *rows]
        ]
        if len(self.names) == 1:
            lines.append(
                f"leakage check: n/a (no split column); {self.total_groups} groups "
                f"by {self.group_by}"
            )
        elif self.leaked_groups:
            lines.append(
                f"leakage check: FAILED, {self.leaked_groups} {self.group_by} group(s) "
                "in more than one split"
            )
        else:
            lines.append(f"leakage check: ok, no {self.group_by} group in two splits")
        if self.targets is not None:
            parts = [
                f"{label} {d:.2f} pp ({n} groups)"
                for label, d, n in zip(LABELS, self.deviation_pp(), self.label_groups, strict=True)
                if n
            ]
            aside = " (held-out groups aside)" if self.held_groups.sum() else ""
            lines.append(
                f"largest gap to target, share of each label's crops{aside}: " + ", ".join(parts)
            )
        if self.holdout_events:
            lines.append(
                f"held out for test only: {', '.join(self.holdout_events)} "
                f"({int(self.held_groups.sum())} groups, {int(self.held_crops.sum())} crops)"
            )
        return "\n".join(lines)


def summarize(
    split: np.ndarray | None,
    groups: np.ndarray,
    labels: np.ndarray,
    held: np.ndarray | None = None,
    group_by: str = "sequence_id",
    ratios: Sequence[float] | None = None,
    holdout_events: Sequence[str] = (),
) -> Summary:
    """Counts per split (``split=None``: one row, "all") from per-row codes; vectorised."""
    n = len(groups)
    names = SPLITS if split is not None else ("all",)
    s = np.zeros(n, np.int64) if split is None else np.asarray(split, np.int64)
    n_s = len(names)
    n_groups = int(groups.max()) + 1 if n else 0
    held = np.zeros(n, bool) if held is None else held
    held = (np.bincount(groups[held], minlength=n_groups) > 0)[groups]  # whole groups

    def distinct(mask: np.ndarray) -> np.ndarray:  # distinct groups per split among rows
        pairs = np.unique(groups[mask] * n_s + s[mask])
        return np.bincount(pairs % n_s, minlength=n_s)

    pairs = np.unique(groups * n_s + s)
    per_group = np.bincount(pairs // n_s, minlength=n_groups)
    ok = labels >= 0
    label_crops = np.bincount(s[ok] * 3 + labels[ok], minlength=3 * n_s).reshape(n_s, 3)
    free = ok & ~held
    label_groups = np.bincount(np.unique(groups[free] * 3 + labels[free]) % 3, minlength=3)
    hl = ok & held
    held_label_crops = np.bincount(s[hl] * 3 + labels[hl], minlength=3 * n_s).reshape(n_s, 3)
    targets = None
    if ratios is not None and split is not None:
        targets = np.asarray(ratios, float) / float(sum(ratios))
    return Summary(
        names=tuple(names),
        groups=np.bincount(pairs % n_s, minlength=n_s),
        crops=np.bincount(s, minlength=n_s),
        label_crops=label_crops,
        abnormal_groups=distinct(labels == ABNORMAL),
        held_groups=distinct(held),
        held_label_crops=held_label_crops,
        label_groups=label_groups,
        total_groups=n_groups,
        leaked_groups=int((per_group > 1).sum()),
        group_by=group_by,
        targets=targets,
        holdout_events=tuple(holdout_events),
    )
