"""The Parquet manifest contract: columns, dtypes, validation, atomic read/write.

One row per person crop (see DESIGN.md). Columns are declared once here and checked on every
read and write; a missing or mistyped column is a :class:`ManifestError` that names it.

Paths in ``path`` / ``path_oversize`` are relative to the manifest's *crops root*: the folder
named by the ``crops_root`` key of the file's adtk metadata (relative to the manifest's own
folder, or absolute), or the manifest's folder when that key is absent.
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
}
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
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {', '.join(missing)}")
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
    cols = _columns(kind)
    names = set(table.column_names)
    missing = [c for c in cols if c not in names]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {', '.join(missing)}")
    for name, (typ, nullable) in cols.items():
        got = table.schema.field(name).type
        if got != typ and not (pa.types.is_large_string(got) and pa.types.is_string(typ)):
            raise ManifestError(f"{where}: column {name!r} must be {typ}, got {got}")
        if not nullable and table.column(name).null_count:
            n = table.column(name).null_count
            raise ManifestError(f"{where}: column {name!r} has {n} missing value(s)")
    check_values(table, kind, where)


def check_values(table: pa.Table, kind: str, where: str) -> None:
    import pyarrow.compute as pc

    labels = table.column("label")
    bad = pc.unique(pc.filter(labels, pc.invert(pc.is_in(labels, pa.array(LABELS)))))
    if len(bad):
        shown = ", ".join(repr(v) for v in bad.to_pylist()[:5])
        raise ManifestError(
            f"{where}: column 'label' has value(s) {shown}; allowed: {', '.join(LABELS)}"
        )
    if kind == "split":
        splits = table.column("split")
        bad = pc.unique(pc.filter(splits, pc.invert(pc.is_in(splits, pa.array(SPLITS)))))
        if len(bad):
            shown = ", ".join(repr(v) for v in bad.to_pylist()[:5])
            raise ManifestError(
                f"{where}: column 'split' has value(s) {shown}; allowed: {', '.join(SPLITS)}"
            )
    ids = table.column("crop_id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = [v["values"] for v in counts.to_pylist() if v["counts"] > 1][:3]
        shown = ", ".join(map(repr, dup))
        raise ManifestError(f"{where}: duplicate crop_id value(s), e.g. {shown}")


def write_manifest(
    df: pd.DataFrame,
    path: str | os.PathLike,
    kind: str = "crop",
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Validate and write ``df`` atomically; ``meta`` goes into the adtk key-value metadata."""
    path = Path(path)
    table = to_table(df, kind, where=str(path))
    if meta is not None:
        md = dict(table.schema.metadata or {})
        md[META_KEY] = json.dumps(dict(meta), sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(md)
    with atomic_path(path, suffix=".tmp.parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_table(path: str | os.PathLike, kind: str | None = None) -> pa.Table:
    """Read and validate; ``kind=None`` means split when a ``split`` column exists, else crop."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ManifestError(f"{path}: not a readable Parquet file ({_short(e)})") from None
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
    return json.loads(raw) if raw else {}


def crops_root(path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """The folder that ``path`` / ``path_oversize`` values are relative to."""
    path = Path(path).resolve()
    meta = read_meta(path) if meta is None else meta
    root = meta.get("crops_root")
    if not root:
        return path.parent
    root = Path(root)
    return root if root.is_absolute() else (path.parent / root).resolve()


def concat(frames: Iterable[pd.DataFrame], kind: str = "crop") -> pd.DataFrame:
    """Concatenate manifests, keeping dtypes even when some frames are empty."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty(kind)
    return pd.concat(frames, ignore_index=True)


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__
