"""The Parquet manifest contract: columns, dtypes, validation, atomic read/write.

One row per person crop (see DESIGN.md). Columns are declared once here and checked on every
read and write; a missing or mistyped column is a :class:`ManifestError` that names it.

Paths in ``path`` / ``path_oversize`` are relative to the manifest's *crops root*: the folder
named by the ``crops_root`` key of the file's adtk metadata (relative to the manifest's own
folder, or absolute), or the manifest's folder when that key is absent. When that folder does
not exist and the metadata also holds ``crops_root_abs`` (split manifests do), that one is used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit.errors import ManifestError
from toolkit.io import atomic_path

#: Column name -> (arrow type, nullable). The order here is the order on disk.
CROP_COLUMNS: dict[str, tuple[pa.DataType, bool]] = {
    "crop_id": (pa.string(), False),
    "path": (pa.string(), False),
    "path_oversize": (pa.string(), False),
    "video": (pa.string(), False),
    "video_id": (pa.string(), False),
    "frame_idx": (pa.int64(), False),
    "time_s": (pa.float64(), False),
    "track_id": (pa.int64(), False),
    "sequence_id": (pa.string(), False),
    "x": (pa.int32(), False),
    "y": (pa.int32(), False),
    "w": (pa.int32(), False),
    "h": (pa.int32(), False),
    "det_score": (pa.float32(), False),
    "detector": (pa.string(), False),
    "label": (pa.string(), False),
    "event": (pa.string(), True),
    "target": (pa.string(), True),
    "object_class": (pa.string(), True),
}
#: Columns added after manifests were first written: a table without them is still valid
#: (they read as missing values) and gets them, empty, when written.
OPTIONAL_COLUMNS = frozenset({"target", "object_class"})
TARGETS = ("person", "object")
SPLIT_COLUMNS: dict[str, tuple[pa.DataType, bool]] = {
    **CROP_COLUMNS,
    "split": (pa.string(), False),
}
LABELS = ("normal", "abnormal", "unlabeled")
SPLITS = ("train", "val", "test")
#: Key under which adtk stores its JSON metadata in the Parquet key-value metadata.
META_KEY = b"adtk"


def schema(kind: str = "crop") -> pa.Schema:
    cols = _columns(kind)
    return pa.schema([pa.field(n, t, nullable=nl) for n, (t, nl) in cols.items()])


def _columns(kind: str) -> dict[str, tuple[pa.DataType, bool]]:
    if kind == "crop":
        return CROP_COLUMNS
    if kind == "split":
        return SPLIT_COLUMNS
    raise ValueError(f"unknown manifest kind {kind!r} (crop or split)")


def empty(kind: str = "crop") -> pd.DataFrame:
    """An empty frame with every column of ``kind`` at its dtype."""
    return schema(kind).empty_table().to_pandas()


def to_table(df: pd.DataFrame, kind: str = "crop", where: str = "manifest") -> pa.Table:
    """Convert ``df`` to an Arrow table of the exact schema; errors name the column at fault.

    Columns beyond the schema are kept after the declared ones (users may add their own).
    """
    cols = _columns(kind)
    missing = [c for c in cols if c not in df.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {', '.join(missing)}")
    absent = [c for c in cols if c not in df.columns]
    if absent:
        df = df.assign(**{c: pd.Series([None] * len(df), index=df.index, dtype=object)
                          for c in absent})
    arrays, fields = [], []
    for name, (typ, nullable) in cols.items():
        series = df[name]
        try:
            if pa.types.is_integer(typ) and not pd.api.types.is_integer_dtype(series.dtype):
                raise TypeError(f"dtype {series.dtype}")
            if pa.types.is_floating(typ) and not pd.api.types.is_numeric_dtype(series.dtype):
                raise TypeError(f"dtype {series.dtype}")
            arr = pa.array(series, type=typ, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
            raise ManifestError(
                f"{where}: column {name!r} must be {typ}, got {series.dtype} ({_short(e)})"
            ) from None
        if not nullable and arr.null_count:
            raise ManifestError(f"{where}: column {name!r} has {arr.null_count} missing value(s)")
        arrays.append(arr)
        fields.append(pa.field(name, typ, nullable=nullable))
    for name in df.columns:
        if name not in cols:
            arrays.append(pa.array(df[name], from_pandas=True))
            fields.append(pa.field(str(name), arrays[-1].type))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    check_values(table, kind, where)
    return table


def check_table(table: pa.Table, kind: str = "crop", where: str = "manifest") -> None:
    """Raise :class:`ManifestError` naming the first missing or mistyped column."""
    found = problems(table, kind)
    if found:
        raise ManifestError(f"{where}: {found[0]}")


def problems(table: pa.Table, kind: str = "crop") -> list[str]:
    """Every schema problem of ``table`` as a message ([] when it conforms).

    Missing, mistyped and null-holding columns first, then bad values (labels, splits,
    duplicate crop ids) in the columns that are present and well typed. ``adtk inspect``
    lists them all; :func:`check_table` raises the first.
    """
    cols = _columns(kind)
    names = set(table.column_names)
    found = []
    missing = [c for c in cols if c not in names and c not in OPTIONAL_COLUMNS]
    if missing:
        found.append(f"missing column(s) {', '.join(missing)}")
    for name, (typ, nullable) in cols.items():
        if name not in names:
            continue
        got = table.schema.field(name).type
        if got != typ and not (pa.types.is_large_string(got) and pa.types.is_string(typ)):
            found.append(f"column {name!r} must be {typ}, got {got}")
        elif not nullable and table.column(name).null_count:
            n = table.column(name).null_count
            found.append(f"column {name!r} has {n} missing value(s)")
    return found + _value_problems(table, kind)


def check_values(table: pa.Table, kind: str, where: str) -> None:
    found = _value_problems(table, kind)
    if found:
        raise ManifestError(f"{where}: {found[0]}")


def _is_str(table: pa.Table, name: str) -> bool:
    if name not in table.column_names:
        return False
    typ = table.schema.field(name).type
    return pa.types.is_string(typ) or pa.types.is_large_string(typ)


def _value_problems(table: pa.Table, kind: str) -> list[str]:
    import pyarrow.compute as pc

    found = []
    allowed = [("label", LABELS), ("target", TARGETS)]
    allowed += [("split", SPLITS)] if kind == "split" else []
    for name, values in allowed:
        if not _is_str(table, name):
            continue  # missing or mistyped: reported by problems()
        col = table.column(name)
        if name in OPTIONAL_COLUMNS:
            col = col.drop_null()
        bad = pc.unique(pc.filter(col, pc.invert(pc.is_in(col, pa.array(values)))))
        if len(bad):
            shown = ", ".join(repr(v) for v in bad.to_pylist()[:5])
            found.append(f"column {name!r} has value(s) {shown}; allowed: {', '.join(values)}")
    if _is_str(table, "crop_id"):
        dup = duplicate_ids(table)
        if len(dup):
            shown = ", ".join(map(repr, dup[:3].to_pylist()))
            found.append(f"duplicate crop_id value(s), e.g. {shown} ({len(dup)} id(s) repeated)")
    return found


def duplicate_ids(table: pa.Table) -> pa.Array:
    """The ``crop_id`` values that occur more than once (empty when all are unique)."""
    import pyarrow.compute as pc

    # unique() on one combined chunk: ~5x faster than count_distinct over many chunks.
    ids = table.column("crop_id").combine_chunks()
    if len(pc.unique(ids)) == len(ids):
        return ids.slice(0, 0)
    # Filter before to_pylist: a million-row value_counts as Python dicts takes seconds.
    counts = pc.value_counts(ids)
    return counts.field("values").filter(pc.greater(counts.field("counts"), 1))


def write_manifest(
    df: pd.DataFrame | pa.Table,
    path: str | os.PathLike,
    kind: str = "crop",
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Validate and write ``df`` atomically; ``meta`` goes into the adtk key-value metadata.

    ``df`` may also be an Arrow table (no pandas round trip for large manifests).
    """
    path = Path(path)
    if isinstance(df, pa.Table):
        table = _conform(df, kind, where=str(path))
    else:
        table = to_table(df, kind, where=str(path))
    if meta is not None:
        md = dict(table.schema.metadata or {})
        md[META_KEY] = json.dumps(dict(meta), sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(md)
    with atomic_path(path, suffix=".tmp.parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def _conform(table: pa.Table, kind: str, where: str) -> pa.Table:
    # Same layout as to_table gives: declared columns first, in order, at their exact types.
    check_table(table, kind, where)
    cols = _columns(kind)
    for name in cols:
        if name not in table.column_names:  # an optional column: added empty
            table = table.append_column(name, pa.nulls(len(table), cols[name][0]))
    extra = [n for n in table.column_names if n not in cols]
    fields = [pa.field(n, t, nullable=nl) for n, (t, nl) in cols.items()]
    fields += [table.schema.field(n) for n in extra]
    return table.select([*cols, *extra]).replace_schema_metadata(None).cast(pa.schema(fields))


def manifest_file(path: str | os.PathLike) -> Path:
    """``path``, or ``path/manifest.parquet`` where ``path`` is a folder (the one ``adtk
    extract --out`` wrote): every command that reads a crop manifest takes either. A folder
    without one is an error; anything else is returned as given, for the reader to judge."""
    p = Path(path)
    if not str(path) or not p.is_dir():
        return p
    m = p / "manifest.parquet"
    if not m.is_file():
        raise ManifestError(f"{path}: a folder without manifest.parquet (give a manifest "
                            "file, or the folder adtk extract --out wrote)")
    return m


def read_raw(path: str | os.PathLike) -> pa.Table:
    """Read a Parquet file without validating it; a missing or unreadable file is an error."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: no such file")
    if path.is_dir():
        # pyarrow would read a folder as a dataset of every file in it (crops/ holds the
        # manifest, every video's part.parquet and failures.csv)
        hint = path / "manifest.parquet"
        raise ManifestError(
            f"{path}: is a folder, not a manifest file"
            + (f"; did you mean {hint}?" if hint.is_file() else "")
        )
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ManifestError(f"{path}: not a readable Parquet file ({_short(e)})") from None


def read_table(path: str | os.PathLike, kind: str | None = None) -> pa.Table:
    """Read and validate; ``kind=None`` means split when a ``split`` column exists, else crop."""
    path = Path(path)
    table = read_raw(path)
    if kind is None:
        kind = "split" if "split" in table.column_names else "crop"
    check_table(table, kind, where=str(path))
    return table


def read_manifest(path: str | os.PathLike, kind: str | None = None) -> pd.DataFrame:
    """Read a crop or split manifest into pandas (validated)."""
    return read_table(path, kind).to_pandas()


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The adtk metadata dict of a manifest ({} when it has none)."""
    md = pq.read_schema(path).metadata or {}
    raw = md.get(META_KEY)
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise ManifestError(f"{path}: its adtk metadata is not a JSON object (written by hand?)")
    return meta


#: the columns that must agree between a split manifest's rows and its input's for the input
#: to count as unchanged (its file may differ in metadata only: a rerun with --workers 2)
CONTENT_COLUMNS = ("crop_id", "label", "label_interval", "event", "x", "y", "w", "h")


def changed_inputs(meta: dict, split_path: str | os.PathLike) -> list[str]:
    """The inputs of the split manifest ``split_path`` (its metadata ``meta``) whose crops or
    labels have changed since the split: re-extracted, or relabelled by a rerun of extract
    with another labels file. The split manifest keeps the rows it was made from, so its runs
    would not see the change. One line each. An input whose file hash differs is compared by
    content (:data:`CONTENT_COLUMNS`): extract rewrites its manifest with the run's settings
    in the metadata, so a rerun with other ``--workers`` changes the bytes, not the crops.
    Inputs no longer there are not counted (moved)."""
    from toolkit.io import sha256_file

    out = []
    split_rows = None
    for i in meta.get("inputs") or []:
        path, sha = i.get("path"), i.get("sha256")
        if not path or not sha:
            continue
        try:
            now = sha256_file(path)
        except OSError:
            continue
        if now == sha:
            continue
        try:
            cols = [c for c in CONTENT_COLUMNS if c in pq.read_schema(path).names]
            current = pq.read_table(path, columns=cols).to_pandas()
            if split_rows is None:  # every content column the split has, read once
                names = pq.read_schema(split_path).names
                split_rows = pq.read_table(
                    split_path, columns=[c for c in CONTENT_COLUMNS if c in names]).to_pandas()
        except (OSError, ValueError, pa.ArrowException):
            continue  # unreadable now: the loader says so where it matters
        # this input's own columns: another input may have more (label_interval)
        mine = split_rows.loc[split_rows["crop_id"].isin(current["crop_id"]),
                              [c for c in cols if c in split_rows.columns]]
        same = (len(mine) == len(current) == int(i.get("rows", len(current)))
                and mine.sort_values("crop_id").reset_index(drop=True)
                .astype("string").equals(current.sort_values("crop_id")
                                         .reset_index(drop=True).astype("string")))
        if not same:
            redo = (f"run adtk bench --suite {meta.get('suite') or 'ped2'} again: it makes "
                    "its split manifests anew" if meta.get("protocol") else "split again")
            out.append(f"{path} has changed since the split (its crops or labels: relabelled "
                       f"or extracted again); {redo} to use them")
    return out


def incomplete_marks(meta: Mapping[str, Any]) -> tuple[dict | None, list[tuple[str, dict]]]:
    """The ``incomplete`` mark of a manifest's own extraction (None once it finished), and
    ``(path, mark)`` of each input that carried one into a split (``--allow-incomplete``)."""
    own = meta.get("incomplete")
    inputs = [(str(i.get("path")), i["incomplete"]) for i in meta.get("inputs") or []
              if isinstance(i, dict) and isinstance(i.get("incomplete"), dict)]
    return (own if isinstance(own, dict) else None), inputs


def incomplete_text(inc: Mapping[str, Any]) -> str:
    """An unfinished ``adtk extract`` in words, from its manifest's ``incomplete`` metadata
    (what ``adtk inspect`` and ``adtk split`` say about it)."""

    def names(vs: list[str]) -> str:
        return ", ".join(vs[:3]) + (" ..." if len(vs) > 3 else "")

    missing, failed = list(inc.get("missing") or []), list(inc.get("failed") or [])
    what = []
    if missing:
        why = ", the run was interrupted" if inc.get("interrupted") else ""
        what.append(f"{len(missing)} not yet{why}: {names(missing)}")
    if failed:
        what.append(f"{len(failed)} failed (listed in failures.csv): {names(failed)}")
    # a failed video fails again: the rerun finishes only once the file is fixed or gone
    todo = ("run the same adtk extract command again to finish" if missing else
            "fix or remove the failed videos (failures.csv says why), then run the same adtk "
            "extract command again")
    return (
        f"{inc.get('finished', '?')} of {inc.get('videos', '?')} videos extracted"
        + (f" ({'; '.join(what)})" if what else "")
        + f"; {todo}"
    )


def crops_root(path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """The folder that ``path`` / ``path_oversize`` values are relative to."""
    path = Path(path).resolve()
    meta = read_meta(path) if meta is None else meta
    root = meta.get("crops_root")
    if not root:
        return path.parent
    root = Path(root)
    root = root if root.is_absolute() else (path.parent / root).resolve()
    # A split manifest also records the root's absolute path: when the file alone was moved
    # (the relative root no longer exists) the crops are still found where they were.
    fallback = meta.get("crops_root_abs")
    if not root.is_dir() and fallback and Path(fallback).is_dir():
        return Path(fallback)
    return root


def concat(frames: Iterable[pd.DataFrame], kind: str = "crop") -> pd.DataFrame:
    """Concatenate manifests, keeping dtypes even when some frames are empty."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty(kind)
    return pd.concat(frames, ignore_index=True)


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__
