"""``adtk extract``: person crops (normal + oversize) and a crop manifest, resumable per video.

Output layout under ``OUT`` (paths in the manifest are relative to ``OUT``)::

    manifest.parquet                     finished videos' rows (rewritten atomically, every
                                         few seconds and at the end)
    failures.json, failures.csv          videos that failed in the last run, with the reason
    videos/<video_id>/box/*.png          the detection box resized to size x size
    videos/<video_id>/oversize/*.png     2.5 x its width, 1.5 x its height, same centre
    videos/<video_id>/part.parquet       that video's rows; its presence marks the video done
    .staging/                            work in progress (never trusted, cleared on start)

A worker builds a video's crops and part manifest in ``.staging`` and renames the folder into
``videos/`` when the video is complete, so after a ``kill -9`` a video is either entirely
there or absent. A part counts as finished only if it was made with the same extraction
settings from a source file of the same size and modification time.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import shutil
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import EXTRACT_RUNTIME_FIELDS, ExtractConfig, config_hash, to_dict
from toolkit.data import manifest as mf
from toolkit.errors import AdtkError
from toolkit.io import atomic_write_json, atomic_write_text
from toolkit.video.geometry import OVERSIZE, crop, oversize_box  # noqa: F401 - public here too
from toolkit.video.reader import VIDEO_EXTENSIONS, is_video_name

LABEL_COLUMNS = ("video", "start_s", "end_s", "label", "event")
#: test hook: a worker aborts (SIGABRT, like a crashing decoder) on videos whose relative path
#: contains this string, or hangs when it reads "hang:<string>"; used by the test suite to
#: prove that one crash or stall fails one video only
CRASH_HOOK_ENV = "ADTK_TEST_CRASH_ON"


# ----------------------------------------------------------------------------- inputs


def video_id_for(rel: str) -> str:
    """A stable, readable id for a video's path relative to the input root."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", str(Path(rel).with_suffix(""))).strip("_")[:48]
    digest = hashlib.sha1(rel.encode()).hexdigest()[:8]
    return f"{stem or 'video'}-{digest}"


def discover(
    path: str | os.PathLike, exclude: Path | None = None
) -> tuple[Path, list[str], list[str]]:
    """``(root, videos, skipped)``: video paths relative to ``root`` (sorted, posix).

    A file input is its own single video (its root is its folder). A folder is searched
    recursively for video extensions; other files are listed in ``skipped``. Hidden folders
    and ``exclude`` (the output folder, if inside the input) are not searched.
    """
    p = Path(path)
    if not p.exists():
        raise AdtkError(f"{p}: no such file or folder")
    if p.is_file():
        return p.parent, [p.name], []
    if not p.is_dir():
        raise AdtkError(f"{p}: not a file or folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise AdtkError(f"{p}: permission denied (cannot list the folder)")
    videos, skipped = [], []
    excl = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(p):
        d = Path(dirpath)
        dirnames[:] = sorted(
            n for n in dirnames if not n.startswith(".") and (d / n).resolve() != excl
        )
        for name in sorted(filenames):
            rel = (d / name).relative_to(p).as_posix()
            if name.startswith("."):
                continue
            (videos if is_video_name(name) else skipped).append(rel)
    if not videos:
        exts = ", ".join(sorted(VIDEO_EXTENSIONS)[:8])
        raise AdtkError(f"{p}: folder has no videos (looked for {exts}, ... recursively)")
    return p, sorted(videos), skipped


# ----------------------------------------------------------------------------- labels


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


# ----------------------------------------------------------------------------- one video


def source_stamp(path: str | os.PathLike) -> dict[str, int]:
    """Size and modification time: a finished part is trusted only for the same source file."""
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def extraction_hash(cfg: ExtractConfig) -> str:
    """Hash of the settings that change a video's crops (not workers, labels, device)."""
    d = {k: v for k, v in to_dict(cfg).items() if k not in EXTRACT_RUNTIME_FIELDS}
    return config_hash(d)


def extract_video(
    src: str | os.PathLike,
    rel: str,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    intervals: pd.DataFrame | None = None,
    on_start: Callable[[int], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Extract one video into ``out/videos/<video_id>`` (atomically); return a summary dict."""
    import cv2

    from toolkit.video.detect import DetectionPipeline, create
    from toolkit.video.reader import iter_sampled, probe
    from toolkit.video.sequences import CropSequences

    t0 = time.perf_counter()
    out = Path(out)
    vid = video_id_for(rel)
    stamp = source_stamp(src)
    info = probe(src)
    if on_start is not None:
        on_start(info.frame_count)
    hook = os.environ.get(CRASH_HOOK_ENV, "")
    if hook.startswith("hang:") and hook[5:] in rel:
        time.sleep(3600)  # a decoder stuck in a malformed stream
    elif hook and hook in rel:
        os.abort()

    stage = out / ".staging" / f"{vid}.{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "box").mkdir(parents=True)
    (stage / "oversize").mkdir()
    try:
        detector = create(cfg.detector, cfg)
        sample_fps = min(cfg.fps, info.fps)
        pipe = DetectionPipeline(cfg, (info.width, info.height), sample_fps, detector=detector)
        if pipe.motion is not None and cfg.motion_warmup_s > 0:
            # the background starts as the median of the first seconds' sampled frames
            stop = max(2, int(round(cfg.motion_warmup_s * info.fps)))
            pipe.init_background([f for _, _, f in iter_sampled(src, cfg.fps, stop_frame=stop)])
        png = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; crops are small anyway
        batch: list[tuple[int, float, np.ndarray]] = []
        n_sampled = 0

        def write(name: str, box_img: np.ndarray, over_img: np.ndarray) -> None:
            for sub, img in (("box", box_img), ("oversize", over_img)):
                # imwrite reports failure (disk full, folder gone) by returning False only:
                # a part whose rows point at missing crops must never be committed
                if not cv2.imwrite(str(stage / sub / name), img, png):
                    raise AdtkError(f"{src}: could not write crop {sub}/{name} (disk full?)")

        seqs = CropSequences(cfg, write, sample_fps, info.width * info.height * 3)

        def flush() -> None:
            dets = pipe.process([f for _, _, f in batch])
            for (fi, t, frame), det in zip(batch, dets, strict=True):
                seqs.add(fi, t, frame, det)
            batch.clear()

        parent = os.getppid()
        for fi, t, frame in iter_sampled(src, cfg.fps, on_frame=on_frames):
            batch.append((fi, t, frame))
            n_sampled += 1
            if len(batch) >= detector.batch_size:
                flush()
                if os.getppid() != parent:  # the run was killed: stop, leave staging behind
                    os._exit(1)
        if batch:
            flush()

        df, counts = seqs.finish(stage)
        df = df.assign(target=cfg.target)
        part = _part_frame(df, rel, vid, intervals)
        meta = {
            "video": rel,
            "video_id": vid,
            "source": stamp,
            "extraction_hash": extraction_hash(cfg),
            "fps": info.fps,
            "frames": info.frame_count,
            "duration_s": info.duration_s,
            "sampled_frames": n_sampled,
            "gated_frames": pipe.frames_gated,
            **counts,
            "wall_s": time.perf_counter() - t0,
        }
        mf.write_manifest(part, stage / "part.parquet", meta=meta)
        if os.getppid() != parent:
            # killed while this video finished: a new run may have cleared .staging under
            # us (crops gone) and be redoing this video; never commit behind its back
            os._exit(1)
        _commit(stage, out / "videos" / vid)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {
        **meta,
        "crops": len(part),
        "sequences": int(part["sequence_id"].nunique()),
        "wall_s": time.perf_counter() - t0,
    }


def _part_frame(df: pd.DataFrame, rel: str, vid: str, intervals) -> pd.DataFrame:
    base = f"videos/{vid}"
    part = pd.DataFrame(
        {
            "crop_id": [f"{vid}:{n[:-4]}" for n in df["name"]],
            "path": [f"{base}/box/{n}" for n in df["name"]],
            "path_oversize": [f"{base}/oversize/{n}" for n in df["name"]],
            "video": rel,
            "video_id": vid,
            "frame_idx": df["frame_idx"].astype("int64").to_numpy(),
            "time_s": df["time_s"].astype("float64").to_numpy(),
            "track_id": df["track_id"].astype("int64").to_numpy(),
            "sequence_id": [f"{vid}:{t}" for t in df["track_id"]],
            "x": df["x"].astype("int32").to_numpy(),
            "y": df["y"].astype("int32").to_numpy(),
            "w": df["w"].astype("int32").to_numpy(),
            "h": df["h"].astype("int32").to_numpy(),
            "det_score": df["det_score"].astype("float32").to_numpy(),
            "detector": df["detector"].astype(str).to_numpy(),
            "target": df["target"].astype(str).to_numpy() if "target" in df else None,
            "object_class": df["object_class"].astype(object).to_numpy()
            if "object_class" in df
            else None,
        }
    )
    if not len(part):
        part = mf.empty("crop").drop(columns=["label", "event"])
    return apply_labels(part, intervals, folder_label(rel))


def _commit(stage: Path, final: Path) -> None:
    """Move a finished staging folder into place; the old copy (if any) goes first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = stage.with_name(stage.name + ".old")
        os.replace(final, old)
        os.replace(stage, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, final)
    _fsync_dir(final.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def finished_part(
    out: Path, rel: str, src: Path, ehash: str
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The committed rows and metadata of ``rel`` if valid for this source and these settings."""
    part = out / "videos" / video_id_for(rel) / "part.parquet"
    if not part.is_file():
        return None
    try:
        meta = mf.read_meta(part)
        if meta.get("extraction_hash") != ehash or meta.get("source") != source_stamp(src):
            return None
        return mf.read_manifest(part, kind="crop"), meta
    except (AdtkError, OSError, ValueError):
        return None  # unreadable: redo the video rather than trust it


# ----------------------------------------------------------------------------- worker pool


def _worker_main(conn, threads: int) -> None:
    """Worker process: extract the videos sent over ``conn`` one at a time."""
    import cv2

    cv2.setNumThreads(threads)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        # idx: the task's position in run_pool's list (messages refer to it)
        idx, (_, src, rel, out, cfg_dict, intervals, crash_on) = task
        # the parent's value of the test hook, not the environment this process started with
        os.environ.pop(CRASH_HOOK_ENV, None)
        if crash_on:
            os.environ[CRASH_HOOK_ENV] = crash_on
        last = [time.monotonic(), 0]

        def frames(n: int, idx=idx, last=last) -> None:
            last[1] += n
            now = time.monotonic()
            if now - last[0] > 0.25:
                conn.send(("frames", idx, last[1]))
                last[0], last[1] = now, 0

        try:
            cfg = ExtractConfig(**cfg_dict)
            summary = extract_video(
                src,
                rel,
                out,
                cfg,
                intervals,
                on_start=lambda n, idx=idx: conn.send(("start", idx, n)),
                on_frames=frames,
            )
            if last[1]:
                conn.send(("frames", idx, last[1]))
            conn.send(("done", idx, summary))
        except AdtkError as e:
            conn.send(("failed", idx, str(e)))
        except MemoryError:
            conn.send(("failed", idx, f"{src}: out of memory"))
        except Exception as e:  # noqa: BLE001 - one bad video must not stop the others
            where = traceback.extract_tb(e.__traceback__)[-1]
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            conn.send(
                (
                    "failed",
                    idx,
                    f"{src}: {type(e).__name__}: {msg} "
                    f"({Path(where.filename).name}:{where.lineno})",
                )
            )


def _describe_death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the decoder crashed ({name}) while reading it"
    return f"the worker process exited unexpectedly (exit code {code})"


@dataclass
class _Slot:
    proc: Any
    conn: Any
    task: int | None = None
    last: float = 0.0
    started: bool = False  # the worker has reported on its current task
    stalled: bool = False


#: Seconds between rewrites of manifest.parquet while videos finish (and once at the end).
MERGE_EVERY_S = 5.0

#: Extra seconds a worker gets before its first report on a task: a fresh worker process
#: imports cv2 and numpy first, which on a loaded machine can take longer than ``stall_s``.
STARTUP_GRACE_S = 60.0


def _mp_context():
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        # workers fork from a server that imported the heavy modules once
        ctx.set_forkserver_preload(["toolkit.video.extract", "toolkit.video.detect", "cv2"])
        return ctx
    return mp.get_context("spawn")


def run_pool(
    tasks: list[tuple],
    workers: int,
    threads: int,
    on_message: Callable[[str, int, Any], None],
    stall_s: float = 600.0,
) -> None:
    """Run ``tasks`` in ``workers`` processes; a worker that dies fails only its task.

    ``on_message(kind, task_index, payload)`` receives start / frames / done / failed. A
    worker silent for ``stall_s`` seconds (a decoder stuck in a malformed stream) is killed
    and its video fails; workers report progress several times a second while they decode.
    """
    from multiprocessing.connection import wait

    ctx = _mp_context()
    pending = deque(range(len(tasks)))
    slots: list[_Slot] = []

    def spawn() -> _Slot:
        parent_conn, child_conn = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child_conn, threads), daemon=True)
        proc.start()
        child_conn.close()
        return _Slot(proc, parent_conn)

    def drain(slot: _Slot) -> None:
        while slot.conn.poll():
            try:
                kind, idx, payload = slot.conn.recv()
            except (EOFError, OSError):
                return
            slot.last = time.monotonic()
            slot.started = True
            on_message(kind, idx, payload)
            if kind in ("done", "failed"):
                slot.task = None

    try:
        for _ in range(min(workers, len(tasks))):
            slots.append(spawn())
        while pending or any(s.task is not None for s in slots):
            for s in list(slots):
                if s.task is None and not s.proc.is_alive():
                    slots.remove(s)  # died between videos: nothing lost, replace it
                    if pending:
                        slots.append(spawn())
            for s in slots:
                if s.task is None and pending:
                    s.task = pending.popleft()
                    s.last = time.monotonic()
                    s.started = False
                    s.conn.send((s.task, tasks[s.task]))
            busy = [s for s in slots if s.task is not None]
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=1.0)
            now = time.monotonic()
            for s in list(busy):
                if s.conn in ready:
                    drain(s)
                limit = stall_s if s.started else stall_s + STARTUP_GRACE_S
                if s.task is not None and now - s.last > limit and s.proc.is_alive():
                    s.proc.kill()
                    s.proc.join(5)
                    s.stalled = True
                if s.proc.sentinel in ready or not s.proc.is_alive():
                    drain(s)  # messages sent before it died
                    s.proc.join(1)
                    if s.task is not None:
                        rel = tasks[s.task][2]
                        why = (
                            f"no progress for {stall_s:g} s (decoder stuck?); stopped it"
                            if s.stalled
                            else _describe_death(s.proc.exitcode)
                        )
                        on_message("failed", s.task, f"{rel}: {why}")
                        s.task = None
                    slots.remove(s)
                    if pending:
                        slots.append(spawn())
    finally:
        for s in slots:
            with contextlib.suppress(OSError, BrokenPipeError):
                s.conn.send(None)
        for s in slots:
            s.proc.join(2)
            if s.proc.is_alive():
                s.proc.kill()
                s.proc.join(1)


# ----------------------------------------------------------------------------- the run


@dataclass
class ExtractResult:
    """What a run did; ``summary()`` is the text the CLI prints at the end."""

    out: Path
    manifest: Path
    videos: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    not_videos: list[str] = field(default_factory=list)
    unmatched_labels: list[dict[str, Any]] = field(default_factory=list)
    crops: int = 0
    sequences: int = 0
    tracks_dropped: int = 0  # tracks shorter than --min-track, over the manifest's videos
    video_seconds: float = 0.0
    processed_seconds: float = 0.0
    wall_s: float = 0.0

    @property
    def speed(self) -> float:
        """Seconds of video extracted in this run per second of wall time."""
        return self.processed_seconds / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        """The end-of-run report (several lines)."""
        lines = [
            f"videos: {self.done} extracted, {self.skipped} already done (skipped), "
            f"{len(self.failed)} failed, of {self.videos}",
            f"crops: {self.crops} in {self.sequences} sequences -> {self.manifest}"
            + (
                f" ({self.tracks_dropped} tracks shorter than --min-track dropped)"
                if self.tracks_dropped
                else ""
            ),
            f"video: {_hms(self.video_seconds)} in the manifest; {_hms(self.processed_seconds)} "
            f"processed in {self.wall_s:.1f} s wall = {self.speed:.1f}x real time",
        ]
        if self.not_videos:
            shown = ", ".join(self.not_videos[:5]) + (" ..." if len(self.not_videos) > 5 else "")
            lines.append(f"not videos (by extension), ignored: {len(self.not_videos)}: {shown}")
        if self.unmatched_labels:
            shown = ", ".join(
                f"{r['video']} [{r['start_s']}, {r['end_s']})" for r in self.unmatched_labels[:3]
            )
            more = " ..." if len(self.unmatched_labels) > 3 else ""
            lines.append(
                f"labels: {len(self.unmatched_labels)} row(s) match no video: {shown}{more}"
            )
        if self.failed:
            lines.append(f"FAILED ({len(self.failed)}, listed in {self.out / 'failures.csv'}):")
            lines += [f"  {f['video']}: {f['reason']}" for f in self.failed]
        return "\n".join(lines)


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def run_extract(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    progress: bool = True,
) -> ExtractResult:
    """Extract every video under ``input_path`` into ``out``; skip videos already finished."""
    from toolkit.video.detect import DETECTORS

    t0 = time.perf_counter()
    DETECTORS.get(cfg.detector)  # an unknown name fails here, before any video is opened
    out = Path(out)
    root, videos, not_videos = discover(input_path, exclude=out)
    labels = read_labels(cfg.labels) if cfg.labels else None
    if labels is not None:
        per_video, unmatched = match_labels(labels, root, videos)
    else:
        per_video, unmatched = {}, pd.DataFrame(columns=list(LABEL_COLUMNS))
    if out.exists() and not out.is_dir():
        raise AdtkError(f"{out}: exists and is not a folder; --out takes the output folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
        raise AdtkError(f"{out}: cannot create the output folder ({why})") from None
    if not os.access(out, os.W_OK):
        raise AdtkError(f"{out}: output folder is not writable")
    res = ExtractResult(out=out, manifest=out / "manifest.parquet", videos=len(videos))
    res.not_videos = not_videos
    res.unmatched_labels = (
        unmatched.astype(object).where(unmatched.notna(), None).to_dict("records")
    )

    with _lock(out):
        shutil.rmtree(out / ".staging", ignore_errors=True)  # a killed run's leftovers
        ehash = extraction_hash(cfg)
        parts: dict[int, pd.DataFrame] = {}
        part_meta: dict[int, dict[str, Any]] = {}  # each part's metadata, for the totals
        todo: list[int] = []
        for i, rel in enumerate(videos):
            src = root / rel
            found = finished_part(out, rel, src, ehash) if src.is_file() else None
            if found is not None:
                parts[i], part_meta[i] = found
                res.skipped += 1
            else:
                todo.append(i)

        labelled: dict[int, pd.DataFrame] = {}  # parts with this run's labels, made once
        # The input folder's own name counts for the folder label too: `adtk extract
        # videos/abnormal/` or a single file inside it must not give "unlabeled" crops.
        top = root.resolve().name or "."
        last_write = [0.0]

        def write_merged() -> pd.DataFrame:
            for i in parts:
                if i not in labelled:
                    labelled[i] = apply_labels(
                        parts[i], per_video.get(videos[i]), folder_label(f"{top}/{videos[i]}")
                    )
            merged = mf.concat([labelled[i] for i in sorted(parts)], "crop")
            meta = {
                "stage": "extract",
                "config": to_dict(cfg),
                "extraction_hash": ehash,
                "input": str(Path(input_path).resolve()),
                "videos": [videos[i] for i in sorted(parts)],
            }
            mf.write_manifest(merged, res.manifest, meta=meta)
            last_write[0] = time.monotonic()
            return merged

        write_merged()  # a valid manifest of what is finished, from the first second on
        if todo:
            _check_detector(cfg)
        workers = cfg.workers or os.cpu_count() or 1
        workers = max(1, min(workers, len(todo) or 1))
        threads = max(1, (os.cpu_count() or 1) // workers)
        tasks = [
            (
                i,
                str(root / videos[i]),
                videos[i],
                str(out),
                to_dict(cfg),
                per_video.get(videos[i]),
                os.environ.get(CRASH_HOOK_ENV),
            )
            for i in todo
        ]
        failures: dict[int, str] = {}
        durations: dict[int, float] = {}
        bars = _Bars(len(todo), enabled=progress)

        def on_message(kind: str, k: int, payload: Any) -> None:
            i = tasks[k][0]
            if kind == "start":
                bars.add_total(payload)
            elif kind == "frames":
                bars.frames(payload)
            elif kind == "done":
                parts[i] = mf.read_manifest(
                    out / "videos" / video_id_for(videos[i]) / "part.parquet"
                )
                part_meta[i] = payload  # the part's metadata, plus crop counts
                durations[i] = float(payload.get("duration_s", 0.0))
                res.done += 1
                # Rewriting the whole manifest per video is quadratic in the number of videos
                # (thousands of short clips: most of the parent's time). Every finished video
                # is safe in its part.parquet already; the next run merges what this one
                # did not get to, so a refresh every few seconds loses nothing.
                if time.monotonic() - last_write[0] >= MERGE_EVERY_S:
                    write_merged()
                bars.video_done()
            elif kind == "failed":
                reason = _one_line(payload)
                # the summary and failures.csv name the video already: "a.mp4: a.mp4: empty
                # file" said it twice
                for name in (tasks[k][1], videos[i]):
                    reason = reason.removeprefix(f"{name}: ")
                failures[i] = reason
                bars.video_done(failed=True)

        try:
            run_pool(tasks, workers, threads, on_message, stall_s=cfg.stall_s)
        except BaseException:
            write_merged()  # Ctrl-C: the manifest still lists every video finished so far
            raise
        finally:
            bars.close()
        res.failed = [{"video": videos[i], "reason": failures[i]} for i in sorted(failures)]
        _write_failures(out, res.failed)
        merged = write_merged()

    res.crops = len(merged)
    res.sequences = int(merged["sequence_id"].nunique())
    for i in parts:
        meta = part_meta[i]
        res.video_seconds += float(meta.get("duration_s", 0.0))
        res.tracks_dropped += int(meta.get("tracks_dropped", 0))
    res.processed_seconds = sum(durations.values())
    res.wall_s = time.perf_counter() - t0
    return res


def _check_detector(cfg: ExtractConfig) -> None:
    """Build the detector once before any worker starts.

    A setting that breaks it (a missing --weights file, no cached weights offline, an unknown
    --device) then stops the run with one message, instead of failing every video the same way
    (and every worker trying the download in turn).
    """
    from toolkit.video.detect import check_target, create

    check_target(cfg.target, cfg.detector)
    try:
        create(cfg.detector, cfg)
    except AdtkError:
        raise
    except (RuntimeError, ValueError) as e:
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise AdtkError(f"--detector {cfg.detector}: {msg}") from None


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())[:500]


def _write_failures(out: Path, failed: list[dict[str, str]]) -> None:
    atomic_write_json(out / "failures.json", failed)
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["video", "reason"], lineterminator="\n")
    w.writeheader()
    w.writerows(failed)
    atomic_write_text(out / "failures.csv", buf.getvalue())


@contextlib.contextmanager
def _lock(out: Path):
    """One ``adtk extract`` per output folder at a time (an flock, released on any exit)."""
    import fcntl

    fh = open(out / ".lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise AdtkError(f"{out}: another adtk extract is writing to this folder") from None
        yield
    finally:
        fh.close()


class _Bars:
    """tqdm bars for videos and source frames (frame totals arrive as workers open videos)."""

    def __init__(self, n_videos: int, enabled: bool):
        from tqdm import tqdm

        self.enabled = enabled and n_videos > 0
        if not self.enabled:
            return
        tqdm.monitor_interval = 0
        self.v = tqdm(total=n_videos, desc="videos", unit="video", position=0, file=sys.stderr)
        self.f = tqdm(
            total=0, desc="frames", unit="fr", unit_scale=True, position=1, file=sys.stderr
        )
        self.failed = 0

    def add_total(self, n: int) -> None:
        if self.enabled:
            self.f.total += int(n)
            self.f.refresh()

    def frames(self, n: int) -> None:
        if self.enabled:
            self.f.update(n)

    def video_done(self, failed: bool = False) -> None:
        if self.enabled:
            self.failed += failed
            if failed:
                self.v.set_postfix(failed=self.failed)
            self.v.update(1)

    def close(self) -> None:
        if self.enabled:
            self.f.close()
            self.v.close()
