"""Crop labels: folder names, interval CSV files (frame-level), matched to videos.

A label says how much is known about a crop: a folder named ``normal`` / ``abnormal`` on the
video's path, or an interval of a labels CSV (``video,start_s,end_s,label,event``: "something
anomalous is in view from start_s to end_s").
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.errors import AdtkError

LABEL_COLUMNS = ("video", "start_s", "end_s", "label", "event")
#: How a labels file's header should read (what the messages show).
LABEL_HEADER = "video,start_s,end_s,label,event (event optional)"


def parse_time(text: str) -> float | None:
    """Seconds from ``12.5``, ``m:ss`` / ``h:mm:ss`` (``3:05``, ``1:02:03.5``), or ``end`` /
    ``inf`` (the video's end); None when it is none of these."""
    t = text.strip().lower()
    if t in ("end", "inf", "+inf"):
        return float("inf")
    parts = t.split(":")
    if not 1 <= len(parts) <= 3:
        return None
    try:
        head = [int(x) for x in parts[:-1]]  # hours / minutes: whole numbers
        sec = float(parts[-1])
    except ValueError:
        return None
    if not np.isfinite(sec) or (head and (sec < 0 or sec >= 60 or min(head) < 0
                                          or any(x >= 60 for x in head[1:]))):
        return None  # 1:75 or 1:90:00 is a typo, not a time
    for k, x in enumerate(reversed(head)):
        sec += x * 60.0 ** (k + 1)
    return float(sec)


def _csv_rows(p: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of each record, blank lines and ``#`` comment lines left out.

    Read with the csv module rather than pandas: pandas skips blank lines and so cannot say on
    which line of the file a bad value is.
    """
    try:
        text = p.read_bytes().decode("utf-8-sig")  # a BOM (Excel's "CSV UTF-8") is no name
    except UnicodeDecodeError as e:
        raise AdtkError(f"{p}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, line = [], 1
    try:
        for cells in reader:
            first = line  # the record's first line (a quoted cell may span several)
            line = reader.line_num + 1
            cells = [c.strip() for c in cells]
            if not any(cells) or cells[0].startswith("#"):
                continue
            rows.append((first, cells))
    except csv.Error as e:
        raise AdtkError(f"{p}: line {reader.line_num}: not readable as CSV ({e})") from None
    return rows


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels CSV (video, start_s, end_s, label, event); errors name the file's line.

    Times are seconds or ``m:ss`` / ``h:mm:ss``; ``end`` (or ``inf``) as end_s is the video's
    end. The frame gets a ``line`` column: each row's line in the file, for later messages.
    """
    p = Path(path)
    if not p.is_file():
        raise AdtkError(f"{p}: labels file not found")
    rows = _csv_rows(p)
    if not rows:
        raise AdtkError(f"{p}: no rows (expected a header line {LABEL_HEADER}, then one "
                        "row per interval)")
    hline, header = rows[0]
    header = [h.lower() for h in header]
    missing = [c for c in LABEL_COLUMNS if c not in header and c != "event"]
    if missing:
        raw = p.read_bytes().decode("utf-8-sig").splitlines()[hline - 1]
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        sep = next((s for s in (";", "\t", "|") if len(header) == 1 and s in raw), None)
        hint = (f"; it looks separated by {sep!r}: use commas" if sep
                else "; the first line must name the columns" if len(header) >= 4
                and parse_time(header[1]) is not None else "")
        raise AdtkError(
            f"{p}: missing column(s) {', '.join(missing)} in the header (line {hline}: "
            f"{shown!r}); expected {LABEL_HEADER}{hint}"
        )
    col = {name: header.index(name) for name in LABEL_COLUMNS if name in header}
    records = []
    for line, cells in rows[1:]:
        if len(cells) > len(header) and any(cells[len(header):]):
            raise AdtkError(
                f"{p}: line {line}: {len(cells)} values, the header has {len(header)} "
                "(quote a name that holds a comma: \"a, b.mp4\")"
            )
        cells = cells + [""] * (len(header) - len(cells))
        rec = {name: cells[i] for name, i in col.items()}
        for name in ("video", "start_s", "end_s", "label"):
            if not rec[name]:
                what = " (normal or abnormal)" if name == "label" else ""
                raise AdtkError(f"{p}: line {line}: {name} is empty{what}")
        for name in ("start_s", "end_s"):
            t = parse_time(rec[name])
            if t is None or (name == "start_s" and t == float("inf")):
                raise AdtkError(
                    f"{p}: line {line}: {name} {rec[name]!r} is not a time (seconds or m:ss)"
                )
            rec[name] = t
        if rec["label"] not in ("normal", "abnormal"):
            raise AdtkError(
                f"{p}: line {line}: label must be normal or abnormal, got {rec['label']!r}"
            )
        if rec["end_s"] <= rec["start_s"]:
            raise AdtkError(f"{p}: line {line}: end_s must be greater than start_s")
        rec["video"] = rec["video"].replace("\\", "/")
        rec["event"] = rec.get("event") or None
        rec["line"] = line
        records.append(rec)
    if not records:  # a header alone labels nothing: every crop would be unlabeled, silently
        raise AdtkError(f"{p}: a header and no rows (one row per interval: video,start_s,"
                        "end_s,label[,event])")
    df = pd.DataFrame.from_records(records, columns=[*LABEL_COLUMNS, "line"])
    df["start_s"] = df["start_s"].astype(float)
    df["end_s"] = df["end_s"].astype(float)
    df["event"] = pd.Series([r["event"] for r in records], index=df.index, dtype=object)
    df["line"] = df["line"].astype("int64")
    return df


def match_labels(
    labels: pd.DataFrame, root: Path, videos: list[str]
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Intervals per video (by relative path) and the label rows that match no video.

    A row's ``video`` matches the video whose path relative to the input root equals it (or,
    given as an absolute path, the one at that path), or else the one whose absolute path ends
    with it (so a single clip given on its own still
    finds its rows in a dataset-wide labels file); names are compared in Unicode NFC form
    (macOS tools write NFD). A row that would match several videos by
    that suffix (``cam1.mp4`` for ``day1/cam1.mp4`` and ``day2/cam1.mp4``) is an error, not a
    label silently given to all of them. A file none of whose rows matches any video is an
    error (when some match, the others are returned for the run's report).
    """
    lines = labels.get("line")
    per, matched = match_rows(labels["video"], root, videos, "labels", lines)
    if len(labels) and not matched.any():
        # every crop would come out "unlabeled" with exit code 0: a mistyped path or the
        # wrong --labels file must not pass unnoticed
        first = int(lines.iloc[0]) if lines is not None else 2
        raise AdtkError(
            f"labels: none of the {len(labels)} row(s) matches a video under {root} "
            f"(line {first} names {labels['video'].iloc[0]!r}); give paths relative to the "
            "input folder"
        )
    return (
        {v: labels.iloc[idx].reset_index(drop=True) for v, idx in per.items() if idx},
        labels[~matched].reset_index(drop=True),
    )


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def match_rows(
    names: Iterable[str], root: Path, videos: list[str], what: str = "labels",
    lines: Iterable[int] | None = None,
) -> tuple[dict[str, list[int]], np.ndarray]:
    """Row indices per video and a mask of the rows that matched (rules: :func:`match_labels`).

    ``lines``: each row's line in its file, for the messages (default: row + 2).
    """
    # both sides NFC: "café" typed on Linux and written by macOS (NFD) is the same name
    rel = {v: _nfc(v) for v in videos}
    abs_paths = {v: _nfc((root / v).resolve().as_posix()) for v in videos}
    per: dict[str, list[int]] = {v: [] for v in videos}
    names = list(names)
    lines = list(lines) if lines is not None else [i + 2 for i in range(len(names))]
    matched = np.zeros(len(names), bool)
    for i, name in enumerate(names):
        name = _nfc(str(name))
        while name.startswith("./"):
            name = name[2:]
        if name.startswith("/"):  # an absolute path names one file
            name = _nfc(Path(name).resolve().as_posix())
            hits = [v for v in videos if abs_paths[v] == name]
        else:
            hits = [v for v in videos if rel[v] == name] or [
                v for v in videos if abs_paths[v].endswith("/" + name)
            ]
        if len(hits) > 1:
            shown = ", ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
            raise AdtkError(
                f"{what}: line {lines[i]}: video {name!r} matches {len(hits)} videos ({shown}); "
                "give its path relative to the input folder"
            )
        for v in hits:
            per[v].append(i)
            matched[i] = True
    return per, matched


def _row_text(video: str, start: str, end: str, label: str) -> str:
    """One labels CSV row, quoted where a name needs it (for the notes' examples)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([video, start, end, label])
    return buf.getvalue()


def _event(x) -> str | None:
    return x if isinstance(x, str) and x else None


def _shown(items: list[str], n: int = 3) -> str:
    return "; ".join(items[:n]) + (f"; ... ({len(items)} in all)" if len(items) > n else "")


#: An interval's end may pass the video's end by this much before a note says so (rounded
#: times, a container's duration a frame off).
PAST_END_S = 1.0


def _covers(g: pd.DataFrame, duration: float | None) -> bool:
    """Whether rows ``g`` (start_s, end_s) cover a video of ``duration`` seconds from its
    start to its end (gaps under a frame's worth, 0.05 s, ignored)."""
    if duration is None or not len(g):
        return False
    reach = 0.0
    for start, end in sorted(zip(g["start_s"], g["end_s"], strict=True)):
        if start > reach + 0.05:
            return False
        reach = max(reach, end)
    return reach >= duration - 0.05


def label_notes(
    per_video: dict[str, pd.DataFrame],
    videos: list[str],
    defaults: dict[str, str | None],
    durations: dict[str, float],
    region_videos: Iterable[str] = (),
) -> list[str]:
    """What a labels file leaves to chance, in words (notes, not errors).

    ``per_video``: each video's rows (:func:`match_labels`, with ``line``); ``defaults``: each
    video's folder label or None; ``durations``: seconds of the videos that could be probed;
    ``region_videos``: videos with region rows (``--regions``), whose every crop is labelled
    by its regions, so no interval leaves them unlabeled.
    Notes: videos no row covers (their crops are ``unlabeled`` without a folder label); videos
    with abnormal rows only (time outside their intervals is ``unlabeled``, not normal);
    abnormal intervals with different events that overlap (the later line's event wins);
    intervals that end past the video's end (a typo?) or start after it (they label nothing).
    """
    notes = []
    by_region = set(region_videos)
    bare = [v for v in videos
            if v not in per_video and defaults.get(v) is None and v not in by_region]
    if bare:
        shown = ", ".join(bare[:3]) + (" ..." if len(bare) > 3 else "")
        notes.append(
            f"labels: {len(bare)} of {len(videos)} video(s) have no row in the labels file: "
            f"{shown}; their crops are unlabeled (neither normal nor abnormal); to label one "
            f"normal add a row such as {_row_text(bare[0], '0', 'end', 'normal')}"
        )
    abn_only = [v for v, g in per_video.items()
                if (g["label"] == "abnormal").all() and defaults.get(v) is None
                and v not in by_region and not _covers(g, durations.get(v))]
    if abn_only:
        shown = ", ".join(abn_only[:3]) + (" ..." if len(abn_only) > 3 else "")
        notes.append(
            f"labels: {len(abn_only)} video(s) have abnormal rows only: {shown}; time outside "
            "their intervals is unlabeled, not normal; add a normal row covering the rest, "
            f"e.g. {_row_text(abn_only[0], '0', 'end', 'normal')} (abnormal intervals win "
            "where they overlap it)"
        )
    overlaps, past, after = [], [], []
    for v, g in per_video.items():
        # a sweep by start time (not every pair: a file may hold a row per frame); only the
        # first few overlaps are shown anyway
        abn = g[g["label"] == "abnormal"].sort_values(["start_s", "line"])
        active: list = []  # rows still open at the current start, all events
        for b in abn.itertuples(index=False):
            active = [a for a in active if a.end_s > b.start_s]
            for a in active:
                ea, eb = _event(a.event), _event(b.event)
                if ea != eb:
                    first, later = (a, b) if a.line < b.line else (b, a)
                    won = _event(later.event) or "no event"
                    overlaps.append(
                        f"lines {first.line} and {later.line} of {v} "
                        f"({_event(first.event) or 'no event'} {first.start_s:g}-"
                        f"{first.end_s:g} s, {_event(later.event) or 'no event'} "
                        f"{later.start_s:g}-{later.end_s:g} s): the overlap gets {won}"
                    )
                    break  # one pair per row is enough to say it
            active.append(b)
        d = durations.get(v)
        if d is None:
            continue
        for r in g.itertuples(index=False):
            if r.start_s >= d:
                after.append(f"line {r.line} ({v}, {r.start_s:g}-{r.end_s:g} s, the video is "
                             f"{d:.1f} s long)")
            elif np.isfinite(r.end_s) and r.end_s > d + PAST_END_S:
                past.append(f"line {r.line} ({v}, end_s {r.end_s:g}, the video is {d:.1f} s "
                            "long)")
    if overlaps:
        notes.append(
            f"labels: abnormal intervals with different events overlap, and crops in both get "
            f"the later line's event: {_shown(overlaps)}"
        )
    if past:
        notes.append(f"labels: interval(s) ending past the video's end (a typo?): {_shown(past)}")
    if after:
        notes.append(
            f"labels: interval(s) starting after the video's end label nothing: {_shown(after)}"
        )
    return notes


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


# ----------------------------------------------------------------------------- object regions
#
# A region file (``--regions``, the columns of UCSD Ped2's ``anomaly_regions.csv``) lists the
# anomalous objects of each frame as boxes. A video with region rows is region-labelled: each
# of its crops is abnormal when it overlaps one of its frame's regions by the rule below, and
# normal otherwise, even in a frame that an interval calls abnormal (the walker beside the
# biker). The interval (or folder) label is kept beside it in ``label_interval``.

REGION_COLUMNS = ("video", "frame_idx", "time_s", "x", "y", "w", "h", "area_px")
#: Columns a region file must have; ``time_s`` is informative (``frame_idx`` places a row) and
#: ``area_px`` (the object's mask area) defaults to the box area w * h when absent.
REGION_REQUIRED = ("video", "frame_idx", "x", "y", "w", "h")
#: A crop covers a region when their boxes' IoU is at least this: the criterion of the recall
#: figure, so a covered region's crop is exactly a crop labelled abnormal for it.
REGION_IOU = 0.3
#: A crop is also the anomalous object when at least this share of its box lies inside the
#: region's box: a detector that cuts a biker into rider and bike gives two boxes inside the
#: region, each with an IoU below REGION_IOU, and both show nothing but the anomalous object.
REGION_INSIDE = 0.5
#: Regions of at least this many pixels (mask area) get their own recall figure: smaller ones
#: are objects entering at the frame's border or hidden behind others.
LARGE_REGION_PX = 300
LABEL_SOURCES = ("region", "interval", "folder", "none")


def region_rule() -> str:
    """The region labelling rule in words (for the manifest's metadata and the docs)."""
    return (
        f"abnormal when the crop box's IoU with a region box of its frame is >= {REGION_IOU:g} "
        f"or >= {REGION_INSIDE:.0%} of the crop box lies inside one; else normal"
    )


def read_regions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a region file (video, frame_idx, x, y, w, h, area_px); errors name the line."""
    p = Path(path)
    if not p.is_file():
        raise AdtkError(f"{p}: regions file not found")
    try:
        df = pd.read_csv(p, dtype={"video": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise AdtkError(f"{p}: not a readable CSV ({str(e).splitlines()[0][:120]})") from None
    missing = [c for c in REGION_REQUIRED if c not in df.columns]
    if missing:
        raise AdtkError(
            f"{p}: missing column(s) {', '.join(missing)}; need {', '.join(REGION_COLUMNS)} "
            "(time_s and area_px optional)"
        )
    if "area_px" not in df.columns:
        df["area_px"] = pd.to_numeric(df["w"], errors="coerce") * pd.to_numeric(
            df["h"], errors="coerce"
        )
    for col in ("frame_idx", "x", "y", "w", "h", "area_px"):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() | (vals != vals.round())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AdtkError(f"{p}: line {i + 2}: {col} is not an integer ({df[col].iloc[i]!r})")
        df[col] = vals.astype("int64")
    for col, low in (("frame_idx", 0), ("x", 0), ("y", 0), ("w", 1), ("h", 1)):
        bad = df[col] < low
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AdtkError(f"{p}: line {i + 2}: {col} must be >= {low}, got {df[col].iloc[i]}")
    bad = df["video"].isna()
    if bad.any():
        raise AdtkError(f"{p}: line {int(np.flatnonzero(bad)[0]) + 2}: video is empty")
    df["video"] = df["video"].astype(str).str.strip().str.replace("\\", "/", regex=False)
    df["line"] = np.arange(len(df)) + 2  # errors found later (frame size) name the line
    return df[["video", "frame_idx", "x", "y", "w", "h", "area_px", "line"]]


def match_regions(
    regions: pd.DataFrame,
    root: Path,
    videos: list[str],
    where: str | os.PathLike = "regions",
) -> tuple[dict[str, pd.DataFrame], int]:
    """Region rows per video and the number of rows that name videos outside this input.

    Rows are matched to videos like label rows. A row that matches no video is fine when it
    names an existing file (beside the region file, or absolute): a dataset-wide region file
    used on some of its clips. Otherwise it is an error naming the line (a mistyped path).
    """
    per, matched = match_rows(regions["video"], root, videos, "regions")
    base = Path(where).parent
    outside = 0
    for i in np.flatnonzero(~matched):
        name = regions["video"].iloc[i]
        if (base / name).is_file() or (root / name).is_file():
            outside += 1
            continue
        raise AdtkError(
            f"{where}: line {int(regions['line'].iloc[i])}: video {name!r} matches no video "
            f"under {root} and no file beside the regions file"
        )
    return (
        {v: regions.iloc[idx].reset_index(drop=True) for v, idx in per.items() if idx},
        outside,
    )


def check_regions_inside(
    regions: pd.DataFrame, width: int, height: int, where: str | os.PathLike = "regions"
) -> None:
    """A box reaching outside the ``width`` x ``height`` frame is an error naming its line."""
    bad = (regions["x"] + regions["w"] > width) | (regions["y"] + regions["h"] > height)
    if bad.any():
        r = regions[bad].iloc[0]
        raise AdtkError(
            f"{where}: line {int(r['line'])}: box x={r['x']} y={r['y']} w={r['w']} h={r['h']} "
            f"lies outside the {width}x{height} frame of {r['video']}"
        )


def _xyxy(df: pd.DataFrame) -> np.ndarray:
    x, y = df["x"].to_numpy(np.float64), df["y"].to_numpy(np.float64)
    return np.stack([x, y, x + df["w"].to_numpy(np.float64), y + df["h"].to_numpy(np.float64)], 1)


def region_overlap(crops: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IoU, share of the crop box inside the region box), each (N crops, M regions)."""
    from toolkit.video.geometry import _inter, iou_matrix
    from toolkit.video.geometry import area as box_area

    inter = _inter(crops, regions)
    area = box_area(crops)[:, None]
    return iou_matrix(crops, regions), np.where(area > 0, inter / np.maximum(area, 1e-9), 0.0)


def region_hits(df: pd.DataFrame, regions: pd.DataFrame | None) -> np.ndarray:
    """Per crop of one video: True when it is an anomalous object by the region rule.

    The rule: the crop box's IoU with one of its frame's region boxes is at least REGION_IOU,
    or at least REGION_INSIDE of the crop box lies inside one of them.
    """
    hit = np.zeros(len(df), bool)
    if regions is None or not len(df) or not len(regions):
        return hit
    frames = df["frame_idx"].to_numpy()
    by_frame = {f: g for f, g in regions.groupby("frame_idx")}
    for f in np.unique(frames):
        g = by_frame.get(f)
        if g is None:
            continue
        rows = np.flatnonzero(frames == f)
        iou, inside = region_overlap(_xyxy(df.iloc[rows]), _xyxy(g))
        hit[rows] = ((iou >= REGION_IOU) | (inside >= REGION_INSIDE)).any(axis=1)
    return hit


def label_crops(
    df: pd.DataFrame,
    intervals: pd.DataFrame | None,
    default: str | None,
    regions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One video's rows with ``label``, ``event``, ``label_interval`` and ``label_source``.

    ``label_interval`` is the interval (else folder, else ``unlabeled``) label; ``label`` is
    the region label where the video is region-labelled (``regions`` given), else the same.
    ``event`` comes from the intervals; a region-labelled crop that is normal has none.
    """
    df = apply_labels(df, intervals, default)
    source = np.full(len(df), "folder" if default else "none", dtype=object)
    if intervals is not None and len(df):
        t = df["time_s"].to_numpy()
        for row in intervals.itertuples(index=False):
            source[(t >= row.start_s) & (t < row.end_s)] = "interval"
    df["label_interval"] = df["label"].astype(object)
    if regions is not None:
        hit = region_hits(df, regions)
        df["label"] = np.where(hit, "abnormal", "normal")
        df["event"] = df["event"].where(hit, None)
        source[:] = "region"
    df["label_source"] = source
    return df


def region_coverage(df: pd.DataFrame, regions: pd.DataFrame) -> np.ndarray:
    """Per region of one video: True when a crop of its frame has IoU >= REGION_IOU with it."""
    covered = np.zeros(len(regions), bool)
    if not len(regions) or not len(df):
        return covered
    rf = regions["frame_idx"].to_numpy()
    by_frame = {f: g.index.to_numpy() for f, g in df.groupby("frame_idx")}
    boxes = _xyxy(df)
    rboxes = _xyxy(regions)
    for f in np.unique(rf):
        rows = by_frame.get(f)
        if rows is None:
            continue
        idx = np.flatnonzero(rf == f)
        iou, _ = region_overlap(boxes[rows], rboxes[idx])
        covered[idx] = (iou >= REGION_IOU).any(axis=0)
    return covered


def recall_table(
    crops: pd.DataFrame,
    per_video: dict[str, pd.DataFrame],
    sampled: dict[str, np.ndarray],
    intervals: dict[str, pd.DataFrame] | None = None,
    fps: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Share of the anomalous regions covered by a crop, per event, on the sampled frames.

    ``crops``: the manifest (``video``, ``frame_idx``, x, y, w, h); ``per_video``: region rows
    per video; ``sampled``: the frame indices extracted per video (regions elsewhere could not
    have a crop); ``intervals`` / ``fps`` give each region's event (``-`` without one). Rows:
    one per event and ``all``; columns regions, covered, recall and the same for regions of
    at least LARGE_REGION_PX pixels.
    """
    parts = []
    for video, reg in per_video.items():
        frames = sampled.get(video)
        reg = reg[np.isin(reg["frame_idx"], frames)] if frames is not None else reg
        if not len(reg):
            continue
        reg = reg.reset_index(drop=True)
        mine = crops[crops["video"] == video].reset_index(drop=True)
        cov = region_coverage(mine, reg)
        event = np.full(len(reg), "-", dtype=object)
        ivs = (intervals or {}).get(video)
        rate = (fps or {}).get(video)
        if ivs is not None and rate:
            t = reg["frame_idx"].to_numpy() / rate
            ev = apply_labels(pd.DataFrame({"time_s": t}), ivs, None)["event"].to_numpy()
            event = np.where(pd.isna(ev), "-", ev).astype(object)
        large = reg["area_px"].to_numpy() >= LARGE_REGION_PX
        parts.append(pd.DataFrame({"event": event, "covered": cov, "large": large}))
    cols = ["event", "regions", "covered", "recall", "regions_large", "covered_large",
            "recall_large"]
    if not parts:
        return pd.DataFrame(columns=cols)
    allr = pd.concat(parts, ignore_index=True)
    out = []
    for name, g in [*sorted(allr.groupby("event")), ("all", allr)]:
        lg = g[g["large"]]
        out.append({
            "event": name,
            "regions": len(g),
            "covered": int(g["covered"].sum()),
            "recall": float(g["covered"].mean()) if len(g) else float("nan"),
            "regions_large": len(lg),
            "covered_large": int(lg["covered"].sum()),
            "recall_large": float(lg["covered"].mean()) if len(lg) else float("nan"),
        })
    return pd.DataFrame(out, columns=cols)


def recall_text(table: pd.DataFrame) -> list[str]:
    """The recall table as the lines ``adtk extract`` and ``adtk inspect`` print."""
    from toolkit.data.inspect import region_recall_lines

    if table is None or not len(table):
        return []
    return region_recall_lines(table.to_dict("records"), REGION_IOU, LARGE_REGION_PX)


def regions_for_videos(
    path: str | os.PathLike | None, root: Path, videos: list[str]
) -> tuple[dict[str, pd.DataFrame], int]:
    """The region file ``path`` read, its rows per video under ``root`` (each checked against
    its video's frame size), and how many rows name clips outside ``videos``. No file: none."""
    if not path:
        return {}, 0
    from toolkit.video.reader import probe

    regions, outside = match_regions(read_regions(path), root, videos, path)
    for rel, reg in regions.items():
        try:
            info = probe(root / rel)
        except AdtkError:
            continue  # the video fails on its own, named in failures.csv
        check_regions_inside(reg, info.width, info.height, path)
    return regions, outside


def region_recall_of_parts(
    merged: pd.DataFrame,
    regions: dict[str, pd.DataFrame],
    intervals: dict[str, pd.DataFrame],
    parts: dict[int, pd.DataFrame],
    part_meta: dict[int, dict],
    videos: list[str],
    sample_fps: float,
) -> pd.DataFrame:
    """:func:`recall_table` over the finished videos' sampled frames (``parts``: extracted
    videos by index into ``videos``; ``part_meta``: each one's fps and frame count;
    ``sample_fps``: the extraction's ``--fps``)."""
    from toolkit.video.reader import sampled_indices

    sampled, fps = {}, {}
    for i in parts:
        meta = part_meta.get(i, {})
        if videos[i] in regions and meta.get("fps"):
            fps[videos[i]] = float(meta["fps"])
            sampled[videos[i]] = sampled_indices(int(meta.get("frames", 0)), fps[videos[i]],
                                                 sample_fps)
    done = {v: r for v, r in regions.items() if v in sampled}
    return recall_table(merged, done, sampled, intervals, fps)
