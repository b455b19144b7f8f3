"""Crop labels: folder names, interval CSV files (frame-level), matched to videos.

A label says how much is known about a crop: a folder named ``normal`` / ``abnormal`` on the
video's path, or an interval of a labels CSV (``video,start_s,end_s,label,event``: "something
anomalous is in view from start_s to end_s").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.errors import AdtkError

LABEL_COLUMNS = ("video", "start_s", "end_s", "label", "event")


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels CSV (video, start_s, end_s, label, event); errors name the row."""
    p = Path(path)
    if not p.is_file():
        raise AdtkError(f"{p}: labels file not found")
    try:
        df = pd.read_csv(p, dtype={"video": str, "label": str, "event": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise AdtkError(f"{p}: not a readable CSV ({str(e).splitlines()[0][:120]})") from None
    missing = [c for c in LABEL_COLUMNS if c not in df.columns and c != "event"]
    if missing:
        raise AdtkError(
            f"{p}: missing column(s) {', '.join(missing)}; need {', '.join(LABEL_COLUMNS)}"
        )
    if "event" not in df.columns:
        df["event"] = None
    for col in ("start_s", "end_s"):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 2
            raise AdtkError(f"{p}: line {row}: {col} is not a number ({df[col].iloc[row - 2]!r})")
        df[col] = vals.astype(float)
    bad = ~df["label"].isin(["normal", "abnormal"])
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise AdtkError(
            f"{p}: line {row}: label must be normal or abnormal, got {df['label'].iloc[row - 2]!r}"
        )
    bad = df["end_s"] <= df["start_s"]
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise AdtkError(f"{p}: line {row}: end_s must be greater than start_s")
    df["video"] = df["video"].astype(str).str.strip().str.replace("\\", "/", regex=False)
    df["event"] = df["event"].where(df["event"].notna() & (df["event"].astype(str) != ""), None)
    return df[list(LABEL_COLUMNS)].reset_index(drop=True)


def match_labels(
    labels: pd.DataFrame, root: Path, videos: list[str]
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Intervals per video (by relative path) and the label rows that match no video.

    A row's ``video`` matches the video whose path relative to the input root equals it (or,
    given as an absolute path, the one at that path), or else the one whose absolute path ends
    with it (so a single clip given on its own still
    finds its rows in a dataset-wide labels file). A row that would match several videos by
    that suffix (``cam1.mp4`` for ``day1/cam1.mp4`` and ``day2/cam1.mp4``) is an error, not a
    label silently given to all of them.
    """
    abs_paths = {v: (root / v).resolve().as_posix() for v in videos}
    per: dict[str, list[int]] = {v: [] for v in videos}
    matched = np.zeros(len(labels), bool)
    for i, name in enumerate(labels["video"]):
        while name.startswith("./"):
            name = name[2:]
        if name.startswith("/"):  # an absolute path names one file
            name = Path(name).resolve().as_posix()
            hits = [v for v in videos if abs_paths[v] == name]
        else:
            hits = [v for v in videos if v == name] or [
                v for v in videos if abs_paths[v].endswith("/" + name)
            ]
        if len(hits) > 1:
            shown = ", ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
            raise AdtkError(
                f"labels: line {i + 2}: video {name!r} matches {len(hits)} videos ({shown}); "
                "give its path relative to the input folder"
            )
        for v in hits:
            per[v].append(i)
            matched[i] = True
    return (
        {v: labels.iloc[idx].reset_index(drop=True) for v, idx in per.items() if idx},
        labels[~matched].reset_index(drop=True),
    )


def folder_label(rel: str) -> str | None:
    """``normal`` / ``abnormal`` when a folder on the video's path is named so (nearest wins)."""
    for part in reversed(Path(rel).parts[:-1]):
        if part.lower() in ("normal", "abnormal"):
            return part.lower()
    return None


def apply_labels(
    df: pd.DataFrame, intervals: pd.DataFrame | None, default: str | None
) -> pd.DataFrame:
    """Set ``label`` / ``event`` of one video's rows from intervals (start_s <= t < end_s),
    else the folder label, else ``unlabeled``.

    Where a normal and an abnormal interval overlap, abnormal wins whatever the rows' order
    (a whole-video ``normal`` row listed after the anomalies must not erase them).
    """
    df = df.copy()
    df["label"] = default or "unlabeled"
    df["event"] = pd.Series([None] * len(df), index=df.index, dtype=object)
    if intervals is not None and len(df):
        t = df["time_s"].to_numpy()
        rows = list(intervals.itertuples(index=False))
        for row in sorted(rows, key=lambda r: r.label == "abnormal"):  # stable: normal first
            inside = (t >= row.start_s) & (t < row.end_s)
            if inside.any():
                df.loc[inside, "label"] = row.label
                df.loc[inside, "event"] = row.event if isinstance(row.event, str) else None
    return df
