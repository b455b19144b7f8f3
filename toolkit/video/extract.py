"""``adtk extract``: person crops (normal + oversize) and a crop manifest, resumable per video
and, for long videos, per chunk.

Output layout under ``OUT`` (paths in the manifest are relative to ``OUT``)::

    manifest.parquet                     finished videos' rows (rewritten atomically, every
                                         few seconds and at the end)
    failures.json, failures.csv          videos that failed in the last run, with the reason,
                                         and truncated ones (status partial, crops kept)
    videos/<video_id>/box/*.png          the detection box resized to size x size
    videos/<video_id>/oversize/*.png     2.5 x its width, 1.5 x its height, same centre
    videos/<video_id>/part.parquet       that video's rows; its presence marks the video done
    videos/<video_id>/chunk-NNNN/        a long video's chunk: box/, oversize/, part.parquet
                                         (local track ids), tracks.parquet, lookback.parquet
    .staging/                            work in progress (never trusted, cleared on start)

A worker builds a video's (or a chunk's) crops and part manifest in ``.staging`` and renames
the folder into ``videos/`` when it is complete, so after a ``kill -9`` a video or chunk is
either entirely there or absent. A part counts as finished only if it was made with the same
extraction settings from a source file of the same size and modification time (a chunk: and
the same frame range).

Videos longer than ``chunk_s`` are cut into chunks (:func:`plan_spans`), each a work item of
its own; chunk k+1 starts ``chunk_warmup_s`` early, reading without emitting, and when the
last chunk is in the parent joins the tracks that cross boundaries by their boxes on those
shared frames (:func:`merge_chunks`, :mod:`toolkit.video.chunks`). Track ids are numbered by
first appearance in both cases, so a chunked video's manifest equals one pass's except for
the motion model's history (see the README's "Long videos").
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit import __version__
from toolkit.config import (
    EXTRACT_HASH_IF_SET,
    EXTRACT_RUNTIME_FIELDS,
    ExtractConfig,
    config_hash,
    to_dict,
)
from toolkit.data import manifest as mf
from toolkit.errors import AdtkError, ManifestError
from toolkit.io import atomic_write_json, atomic_write_text, writable_folder
from toolkit.video import findings as F
from toolkit.video.chunks import (
    Span,
    chunk_warmup_note,
    join_chunks,
    number_tracks,
    plan_spans,
    track_table,
)
from toolkit.video.geometry import OVERSIZE, crop, oversize_box  # noqa: F401 - public here too
from toolkit.video.labels import (
    LABEL_COLUMNS,
    LARGE_REGION_PX,
    REGION_IOU,
    apply_labels,
    folder_label,
    label_crops,
    label_notes,
    match_labels,
    read_labels,
    recall_text,
    region_recall_of_parts,
    region_rule,
    regions_for_videos,
)
from toolkit.video.reader import VIDEO_EXTENSIONS, is_video_name

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
    recursively for video extensions, then through links to folders outside it (cameras
    gathered by symlinks; each once; links into the input's own tree or to a folder holding
    it are not followed, so a video keeps its path and a loop ends); other files are listed
    in ``skipped``, and so are links that lead nowhere (named as such). Hidden folders and
    ``exclude`` (the output folder, if inside the input) are not searched.
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
    root_real = p.resolve()
    # The input's own tree first, as it is (a video keeps the path it has always had, whatever
    # links are added later); then each link to a folder outside it, once (a folder inside
    # the input, or one holding it, would be searched twice or without end).
    todo, seen = [p], {root_real}
    while todo:
        top = todo.pop(0)
        for dirpath, dirnames, filenames in os.walk(top):
            d = Path(dirpath)
            keep = []
            for n in sorted(dirnames):
                full = d / n
                real = full.resolve()
                if n.startswith(".") or real == excl:
                    continue  # hidden, or the output folder
                if full.is_symlink():
                    if not (real.is_relative_to(root_real) or root_real.is_relative_to(real)
                            or real in seen):
                        seen.add(real)
                        todo.append(full)
                    continue  # os.walk does not descend into links: searched after the tree
                keep.append(n)
            dirnames[:] = keep
            for name in sorted(filenames):
                rel = (d / name).relative_to(p).as_posix()
                if name.startswith("."):
                    continue
                if (d / name).is_symlink() and not (d / name).exists():
                    skipped.append(f"{rel} (a link to {os.readlink(d / name)}, which is not "
                                   "there)")
                    continue
                (videos if is_video_name(name) else skipped).append(rel)
    if not videos:
        exts = ", ".join(sorted(VIDEO_EXTENSIONS)[:8])
        raise AdtkError(f"{p}: folder has no videos (looked for {exts}, ... recursively)")
    return p, sorted(videos), skipped


# ----------------------------------------------------------------------------- one video


def source_stamp(path: str | os.PathLike) -> dict[str, int]:
    """Size and modification time: a finished part is trusted only for the same source file."""
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


#: The extractor's own revision, raised with every change of adtk that makes other crops from
#: the same video and settings (a detector or track rule, the tracker, the motion model, the
#: crop geometry). It is part of the extraction hash, so ``adtk extract`` into a folder made by
#: an earlier revision extracts its videos (and chunks) again instead of joining old and new
#: crops in one manifest, and says so. Parts made before revisions were recorded count as 0.
#: 1: the extractor of 2026-12-02 (camera registration, shot cuts, frozen frames, still
#: detections, colours in the tracker, static tracks by net displacement).
EXTRACTOR_REVISION = 1

#: a frozen frame whose pixels vary less than this in every channel (standard deviation,
#: 0-255) is blank: one colour, e.g. a camera or cable off (black, or a "no signal" blue)
#: rather than a stalled recorder
BLANK_STD = 2.0


def extraction_hash(cfg: ExtractConfig) -> str:
    """Hash of the settings that change a video's crops (not workers, labels, device), and of
    :data:`EXTRACTOR_REVISION`."""
    d = {k: v for k, v in to_dict(cfg).items() if k not in EXTRACT_RUNTIME_FIELDS}
    # settings added later count only when set, so older outputs keep their hash (not redone)
    for k, default in EXTRACT_HASH_IF_SET.items():
        if d.get(k) == default:
            d.pop(k, None)
    d["extractor_revision"] = EXTRACTOR_REVISION
    return config_hash(d)


def part_revision(out: Path, rel: str, src: Path) -> int | None:
    """The extractor revision of ``rel``'s committed part in ``out`` when it was made from this
    same source file (0: before revisions were recorded); None where there is no such part."""
    try:
        meta = mf.read_meta(out / "videos" / video_id_for(rel) / "part.parquet")
    except (AdtkError, OSError, ValueError):
        return None
    if meta.get("source") != source_stamp(src):
        return None
    return int(meta.get("extractor_revision") or 0)


def extract_video(
    src: str | os.PathLike,
    rel: str,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    intervals: pd.DataFrame | None = None,
    on_start: Callable[[int], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
    span: Span | None = None,
) -> dict[str, Any]:
    """Extract one video, or one chunk of it, atomically; return a summary dict.

    A whole video goes to ``out/videos/<video_id>``; chunk k of a long one to
    ``out/videos/<video_id>/chunk-000k`` (joined into the video's part by
    :func:`merge_chunks` once every chunk is there). A stream that stops decoding early keeps
    the rows of the frames before it and says where it stopped (``decode_stopped_at``).
    """
    from toolkit.video.detect import DetectionPipeline, create
    from toolkit.video.reader import (
        TruncatedVideo,
        iter_sampled,
        prefetched,
        probe,
        quiet_decoder,
    )
    from toolkit.video.sequences import CropSequences
    from toolkit.video.writer import PngWriter

    quiet_decoder(cfg.verbose)
    span = span or Span()
    t0 = time.perf_counter()
    out = Path(out)
    vid = video_id_for(rel)
    stamp = source_stamp(src)
    info = probe(src)
    end = info.frame_count if span.stop is None else min(span.stop, info.frame_count)
    if on_start is not None:
        on_start(max(0, end - span.warmup))
    hook = os.environ.get(CRASH_HOOK_ENV, "")
    if hook.startswith("hang:") and hook[5:] in rel:
        time.sleep(3600)  # a decoder stuck in a malformed stream
    elif hook and hook in rel and span.index == span.count - 1:
        os.abort()  # (chunked: the last chunk, so the ones before it can commit first)

    stage = out / ".staging" / f"{vid}.{span.name}.{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "box").mkdir(parents=True)
    (stage / "oversize").mkdir()
    # crop files are encoded and written in a thread of their own (toolkit.video.writer)
    crops = PngWriter(prefix=f"{src}: ", root=stage)
    try:
        detector = create(cfg.detector, cfg)
        rate = cfg.fps if cfg.fps > 0 else info.fps  # --fps 0: every frame of the source
        sample_fps = min(rate, info.fps)
        pipe = DetectionPipeline(cfg, (info.width, info.height), sample_fps, detector=detector)
        if pipe.motion is not None and cfg.motion_warmup_s > 0:
            # the background starts as the median of the first seconds' sampled frames (of
            # the span's warm-up, for a chunk)
            stop = span.warmup + max(2, int(round(cfg.motion_warmup_s * info.fps)))
            first: list[np.ndarray] = []
            with contextlib.suppress(TruncatedVideo):  # a short file: what there is
                first += [f for _, _, f in iter_sampled(src, rate, span.warmup, stop)]
            pipe.init_background(first)
        batch: list[tuple[int, float, np.ndarray, Any]] = []
        n_sampled = 0
        frozen = blank = cuts = shifted = restarts = 0
        stopped_at: int | None = None
        # the frame where most moved (the first one without a motion model), kept to look
        # for people in it turned on its side if the video gives no crop (_turned_people)
        busiest: list[Any] = [-1, None]

        def write(name: str, box_img: np.ndarray, over_img: np.ndarray) -> None:
            # a failed write (disk full, folder gone) is raised here or at crops.close(),
            # both before the part is committed: a part whose rows point at missing crops
            # must never be committed
            crops(stage / "box" / name, box_img)
            crops(stage / "oversize" / name, over_img)

        seqs = CropSequences(cfg, write, sample_fps, info.width * info.height * 3, span,
                             drain=crops.wait, motion=pipe.motion is not None)

        def flush() -> None:
            dets = pipe.process([f for _, _, f, _, _ in batch], [m for _, _, _, m, _ in batch])
            for (fi, t, frame, _, cut), det in zip(batch, dets, strict=True):
                seqs.add(fi, t, frame, det, cut=cut)
            batch.clear()

        parent = os.getppid()
        try:
            # decoded, and the motion model fed, in a thread a few frames ahead of detection;
            # closed on the way out, so an error here stops that thread and frees the file at
            # once (not whenever the traceback is dropped)
            sampled = prefetched(
                src, rate, span.warmup, span.stop, on_frame=on_frames, pre=pipe.view_step
            )
            with contextlib.closing(sampled):
                for fi, t, frame, (change, step) in sampled:
                    own = fi >= span.start  # not a chunk's warm-up (the chunk before counts it)
                    n_sampled += own
                    if change == "frozen":
                        # the stream repeated its last picture: nothing new to crop (a blank
                        # one, all one colour, is a camera or cable off rather than a stall)
                        frozen += own
                        thumb = frame[::4, ::4].reshape(-1, frame.shape[2] if frame.ndim == 3
                                                        else 1)
                        blank += own and float(thumb.std(axis=0).max()) < BLANK_STD
                        continue
                    cuts += own and change == "cut"
                    if step is not None:
                        shifted += own and step.shifted
                        restarts += own and step.restarted
                    moved = len(step.moving) if step is not None else 0
                    if own and cfg.target == "person" and moved > busiest[0]:
                        busiest[:] = [moved, frame.copy()]
                    batch.append((fi, t, frame, step, change == "cut"))
                    if len(batch) >= detector.batch_size:
                        flush()
                        if os.getppid() != parent:  # the run was killed: leave staging behind
                            os._exit(1)
        except TruncatedVideo as e:
            stopped_at = e.stopped_at  # keep what decoded; the part says where it stopped
        if batch:
            flush()
        df, counts = seqs.finish(stage)
        crops.close()  # every crop file on disk (or its error raised) before anything reads them
        df = df.assign(target=cfg.target)
        tracks = track_table(df, set(df["track_id"]), seqs.head)
        t_motion = time.perf_counter()
        motion = cfg.motion_channels != "none"
        meta = {
            "video": rel,
            "video_id": vid,
            "source": stamp,
            "extraction_hash": extraction_hash(cfg),
            "extractor_revision": EXTRACTOR_REVISION,
            "fps": info.fps,
            "frames": info.frame_count,
            "duration_s": info.duration_s,
            "sampled_frames": n_sampled,
            "gated_frames": pipe.frames_gated,
            "windowed_frames": pipe.frames_windowed,
            "camera_aligned_frames": shifted,
            "camera_restarts": restarts,
            "shot_cuts": cuts,
            "frozen_frames": frozen,
            "blank_frames": blank,
            "decode_stopped_at": stopped_at,
            "width": info.width,
            "height": info.height,
            "motion_channels": cfg.motion_channels,
            **counts,
            "turned": F.turned_people(detector, busiest[1], cfg) if not len(df) else None,
            "wall_s": time.perf_counter() - t0,
        }
        if span.whole:
            ids = number_tracks(tracks)
            df = df[df["track_id"].isin(ids)].copy()
            df["track_id"] = df["track_id"].map(ids)
            _motion_crops(src, df, stage, cfg, on_start, on_frames)
            part = _part_frame(df, rel, vid, intervals, f"videos/{vid}", motion)
            final = out / "videos" / vid
        else:
            meta["span"] = asdict(span)
            _motion_crops(src, df, stage, cfg, on_start, on_frames)
            part = _part_frame(df, rel, vid, intervals, f"videos/{vid}/{span.name}", motion)
            part["det"] = df["det"].astype("int64").to_numpy()  # for numbering after the join
            tracks.to_parquet(stage / "tracks.parquet", index=False)
            pd.DataFrame(
                seqs.lookback, columns=["frame_idx", "track_id", "x0", "y0", "x1", "y1"]
            ).to_parquet(stage / "lookback.parquet", index=False)
            final = out / "videos" / vid / span.name
        meta["motion_wall_s"] = time.perf_counter() - t_motion
        mf.write_manifest(part, stage / "part.parquet", meta=meta)
        if os.getppid() != parent:
            # killed while this video finished: a new run may have cleared .staging under
            # us (crops gone) and be redoing this video; never commit behind its back
            os._exit(1)
        _commit(stage, final)
    except BaseException:
        crops.abort()  # no write lands in the folder removed next
        shutil.rmtree(stage, ignore_errors=True)
        raise
    decoded_to = end if stopped_at is None else min(end, stopped_at)
    return {
        **meta,
        "crops": len(part),
        "sequences": int(part["sequence_id"].nunique()),
        "decoded_s": max(0, decoded_to - span.start) / info.fps,  # of this span
        "wall_s": time.perf_counter() - t0,
    }


def _motion_crops(src, df: pd.DataFrame, stage: Path, cfg: ExtractConfig, on_start,
                  on_frames) -> None:
    """The motion channels of the kept rows, beside their crops (``--motion-channels``)."""
    if cfg.motion_channels == "none":
        return
    from toolkit.video.channels import write_motion_crops

    if on_start is not None and len(df):
        on_start(int(df["frame_idx"].max()) + 2 - max(0, int(df["frame_idx"].min()) - 1))
    write_motion_crops(src, df, stage, cfg.motion_channels, cfg.size, oversize_box,
                       on_frame=on_frames)


def _part_frame(
    df: pd.DataFrame, rel: str, vid: str, intervals, base: str, motion: bool = False
) -> pd.DataFrame:
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
    if motion:
        names = df["name"].tolist()
        part["path_motion"] = pd.Series([f"{base}/motion/{n}" for n in names], dtype=object)
        part["path_motion_oversize"] = pd.Series(
            [f"{base}/motion_oversize/{n}" for n in names], dtype=object
        )
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


def finished_chunk(out: Path, rel: str, src: Path, ehash: str, span: Span) -> bool:
    """True when chunk ``span`` of ``rel`` is committed for this source, settings and range."""
    d = out / "videos" / video_id_for(rel) / span.name
    try:
        meta = mf.read_meta(d / "part.parquet")
    except (AdtkError, OSError, ValueError):
        return False
    return (
        meta.get("extraction_hash") == ehash
        and meta.get("source") == source_stamp(src)
        and meta.get("span") == asdict(span)
        and (d / "tracks.parquet").is_file()
        and (d / "lookback.parquet").is_file()
    )


def merge_chunks(
    out: Path, rel: str, spans: list[Span], cfg: ExtractConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Join a chunked video's committed chunks into its ``part.parquet``; return rows and meta.

    Tracks that cross a boundary are joined (:func:`join_tracks`), tracks shorter than
    ``cfg.min_track`` over all their chunks are dropped (their crops deleted), and the kept
    ones numbered by first appearance (:func:`number_tracks`), as one pass over the video does.
    """
    vid = video_id_for(rel)
    base = out / "videos" / vid
    parts, metas, tracks, looks = [], [], [], []
    for s in spans:
        d = base / s.name
        parts.append(mf.read_manifest(d / "part.parquet", kind="crop"))
        metas.append(mf.read_meta(d / "part.parquet"))
        tracks.append(pd.read_parquet(d / "tracks.parquet"))
        looks.append(pd.read_parquet(d / "lookback.parquet"))
    part, dropped, n_tracks, n_kept = join_chunks(parts, tracks, looks, cfg.min_track, vid)
    stops = [m.get("decode_stopped_at") for m in metas if m.get("decode_stopped_at") is not None]
    m0 = metas[0]
    meta = {
        "video": rel,
        "video_id": vid,
        "source": m0["source"],
        "extraction_hash": m0["extraction_hash"],
        "extractor_revision": EXTRACTOR_REVISION,
        "fps": m0["fps"],
        "frames": m0["frames"],
        "duration_s": m0["frames"] / m0["fps"] if m0["fps"] else 0.0,
        "sampled_frames": int(sum(m["sampled_frames"] for m in metas)),
        "gated_frames": int(sum(m["gated_frames"] for m in metas)),
        # counts added after chunked outputs existed: an older chunk has none
        **{k: int(sum(m.get(k, 0) for m in metas))
           for k in ("windowed_frames", "camera_aligned_frames", "camera_restarts",
                     "shot_cuts", "frozen_frames", "blank_frames")},
        # the hint only where the whole video gave no crop
        "turned": None if len(part) else next((m["turned"] for m in metas if m.get("turned")),
                                              None),
        "tracks_dropped": n_tracks - n_kept,
        "width": m0.get("width"),
        "height": m0.get("height"),
        "motion_channels": m0.get("motion_channels", "none"),
        "decode_stopped_at": stops[0] if stops else None,
        "chunks": len(spans),
        "chunk_s": cfg.chunk_s,
        "chunk_warmup_s": cfg.chunk_warmup_s,
        "wall_s": float(sum(m.get("wall_s", 0.0) for m in metas)),
    }
    mf.write_manifest(part, base / "part.parquet", meta=meta)
    # Only now, with the part that no longer lists them committed: short tracks' crops, and
    # what an earlier run with other settings left in the folder.
    paths = [c for c in ("path", "path_oversize", "path_motion", "path_motion_oversize")
             if c in dropped.columns]
    for p in (p for c in paths for p in dropped[c]):
        with contextlib.suppress(OSError):
            (out / p).unlink()
    names = {s.name for s in spans} | {"part.parquet"}
    for entry in base.iterdir():
        if entry.name not in names:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
    return part, meta


# ----------------------------------------------------------------------------- worker pool


#: Seconds between rewrites of manifest.parquet while videos finish (and once at the end).
MERGE_EVERY_S = 5.0

#: modules a local worker pool's fork server imports once, before the workers fork from it:
#: everything a worker imports for its first video (the tracker's scipy.optimize and
#: onnxruntime were 0.4 s of each worker's start, measured on the 2-core machine; a module
#: that is not installed is skipped by the fork server)
WORKER_PRELOAD = ("toolkit.video.extract", "toolkit.video.detect", "cv2",
                  "toolkit.video.track", "toolkit.video.sequences", "toolkit.video.writer",
                  "toolkit.video.yolox", "scipy.optimize", "onnxruntime")


def extract_task(
    src: str,
    rel: str,
    out: str,
    cfg_dict: dict[str, Any],
    intervals: pd.DataFrame | None,
    crash_on: str | None,
    threads: int,
    span: dict[str, Any] | None = None,
    *,
    emit: Callable[[str, Any], None],
) -> dict[str, Any]:
    """One video (or one chunk of it) as an executor task (any executor): extract it,
    reporting start / frames."""
    import cv2

    cv2.setNumThreads(threads)
    # the parent's value of the test hook, not the environment this worker started with
    os.environ.pop(CRASH_HOOK_ENV, None)
    if crash_on:
        os.environ[CRASH_HOOK_ENV] = crash_on
    last = [time.monotonic(), 0]

    def frames(n: int) -> None:
        last[1] += n
        now = time.monotonic()
        if now - last[0] > 0.25:
            emit("frames", last[1])
            last[0], last[1] = now, 0

    summary = extract_video(src, rel, out, ExtractConfig(**cfg_dict), intervals,
                            on_start=lambda n: emit("start", n), on_frames=frames,
                            span=Span(**span) if span else None)
    if last[1]:
        emit("frames", last[1])
    return summary


def _failure_reason(f: Any, stall_s: float) -> str:
    """A failed task's reason in the words of video extraction."""
    from toolkit.executor import Failure

    if not isinstance(f, Failure):
        return str(f)
    tries = f"; tried {f.attempts} times" if f.attempts > 1 else ""
    if f.kind == "died" and f.signal:
        return f"the decoder crashed ({f.signal}) while reading it{tries}"
    if f.kind == "died":
        return f"the worker process died ({f.message or 'unknown cause'}){tries}"
    if f.kind == "stalled":
        return f"no progress for {stall_s:g} s (decoder stuck?); stopped it"
    return str(f)


def task_resources(cfg: ExtractConfig, ex: Any) -> tuple[int, float, float, float]:
    """(threads, cpus, gpus, gpus when the cluster has any) of one video's task under ``ex``.

    One CPU per video; the torchvision detector on CUDA also asks for a share of a GPU (a
    quarter by default: its batches leave a GPU mostly idle between them).
    """
    cpus = ex.cpus if ex.cpus is not None else 1.0
    threads = max(1, int(cpus))
    tv = cfg.detector == "torchvision"
    gpus = ex.gpus if ex.gpus is not None else (0.25 if tv and cfg.device.startswith("cuda")
                                                else 0.0)
    if_any = 0.25 if ex.gpus is None and tv and cfg.device == "auto" else 0.0
    return threads, cpus, gpus, if_any


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
    partial: list[dict[str, Any]] = field(default_factory=list)  # truncated: crops kept
    chunks_done: int = 0  # chunks of long videos extracted in this run
    chunks_skipped: int = 0  # ... and committed by an earlier (killed) run, reused
    not_videos: list[str] = field(default_factory=list)
    #: finished videos that gave no crop, each with why where it can be told
    empty: list[str] = field(default_factory=list)
    #: videos whose camera moved (shake, drift, a pan or a cut), each with how often
    moving_camera: list[str] = field(default_factory=list)
    #: videos with a frozen picture, each with how long
    frozen: list[str] = field(default_factory=list)
    #: videos whose people are small in YOLOX's input, each with its size there
    small_in_yolox: list[str] = field(default_factory=list)
    #: videos whose container states an implausible frame rate, each with it
    odd_fps: list[str] = field(default_factory=list)
    unmatched_labels: list[dict[str, Any]] = field(default_factory=list)
    #: what the run noticed before extracting (labels that leave crops unlabeled, a costly
    #: chunk warm-up); given to ``on_note`` as found, not repeated in ``summary()``
    notes: list[str] = field(default_factory=list)
    #: share of the anomalous regions covered by a crop, per event (with --regions)
    recall: pd.DataFrame | None = None
    regions_outside: int = 0  # region rows naming videos outside this input
    crops: int = 0
    sequences: int = 0
    #: crops per label in the manifest (normal, abnormal, unlabeled): the labels a rerun with
    #: another labels file applies even when no video is extracted again
    labels: dict[str, int] = field(default_factory=dict)
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
                f" ({self.tracks_dropped} track(s) shorter than --min-track dropped)"
                if self.tracks_dropped
                else ""
            ),
            *([f"labels: {', '.join(f'{n} {k}' for k, n in self.labels.items())}"]
              if self.crops else []),
            f"video: {_hms(self.video_seconds)} in the manifest; {_hms(self.processed_seconds)} "
            f"processed in {self.wall_s:.1f} s wall"
            + (f" = {self.speed:.1f}x real time" if self.processed_seconds > 0 else ""),
        ]
        if self.chunks_done or self.chunks_skipped:
            lines.append(
                f"chunks of long videos: {self.chunks_done} extracted, {self.chunks_skipped} "
                "committed earlier (resumed)"
            )
        if self.empty:
            shown = F.some(self.empty)
            lines.append(f"no crops from {len(self.empty)} video(s): {shown}")
        if self.moving_camera:
            shown = F.some(self.moving_camera)
            lines.append(
                f"camera moved or cut in {len(self.moving_camera)} video(s): {shown}. adtk "
                "expects one fixed camera: frames were shifted back onto the background, the "
                "motion model restarted after larger moves, and every track ends at a shot "
                "cut; motion boxes there (--target object, the motion gate) are less "
                "reliable, more so where near and far things move apart (a camera that "
                "travels)"
            )
        if self.frozen:
            shown = F.some(self.frozen)
            lines.append(
                f"frozen picture in {len(self.frozen)} video(s): {shown}; those frames repeat "
                "the one before them (a stalled stream or recorder, or a blank picture: a "
                "camera or cable off) and gave no crops"
            )
        if self.small_in_yolox:
            shown = F.some(self.small_in_yolox)
            lines.append(
                f"small in YOLOX's input in {len(self.small_in_yolox)} video(s): {shown}. "
                "YOLOX misses more people this small: a larger --yolox-size (up to the "
                "frame's width) finds more of them, at about (size / 640)^2 times the "
                "detector's time (README, 'Measured against box ground truth')"
            )
        if self.odd_fps:
            shown = F.some(self.odd_fps)
            lines.append(
                f"implausible frame rate in {len(self.odd_fps)} video(s): {shown}. Times, "
                "--fps sampling and the labels' seconds all follow that rate; if it is wrong, "
                "--fps 0 samples every frame, and the times are frame numbers / that rate"
            )
        if self.not_videos:
            shown = F.some(self.not_videos, ", ")
            lines.append(f"ignored (not videos by extension, or broken links): "
                         f"{len(self.not_videos)}: {shown}")
        if self.unmatched_labels:
            shown = ", ".join(
                f"{r['video']} [{r['start_s']}, {r['end_s']})" for r in self.unmatched_labels[:3]
            )
            more = " ..." if len(self.unmatched_labels) > 3 else ""
            lines.append(
                f"labels: {len(self.unmatched_labels)} row(s) match no video: {shown}{more}"
            )
        if self.partial:
            lines.append(
                f"PARTIAL ({len(self.partial)}, crops of the frames that decoded are kept; "
                f"listed in {self.out / 'failures.csv'}):"
            )
            lines += [
                f"  {p['video']}: truncated or corrupt, decoding stopped at frame "
                f"{p['decode_stopped_at']} of {p['frames']}"
                for p in self.partial
            ]
        if self.recall is not None:
            lines += recall_text(self.recall)
        if self.regions_outside:
            lines.append(
                f"regions: {self.regions_outside} row(s) name videos outside this input (ignored)"
            )
        if self.failed:
            lines.append(
                f"FAILED ({len(self.failed)}, listed in {self.out / 'failures.csv'}; until a "
                "run extracts them the manifest is marked incomplete, and adtk split needs "
                "--allow-incomplete):"
            )
            lines += [f"  {f['video']}: {f['reason']}" for f in self.failed]
        return "\n".join(lines)


class ExtractInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during ``run_extract``: the manifest lists the finished videos and
    says it is incomplete; the message says what was kept and how to go on. ``code``: the
    exit code a shell expects (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, code: int = 130):
        super().__init__(message)
        self.code = code


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python would raise KeyboardInterrupt for Ctrl-C."""


def _exit_code(e: BaseException) -> int:
    return 128 + (signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (``kill``, a scheduler's stop) ends the run like Ctrl-C does: the manifest is
    written, marked incomplete, and the workers stopped (Python's default just dies)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise _Terminated

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        # None: the previous handler was not installed from Python; the default is closest
        signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _interrupts_explained(fn: Callable[..., ExtractResult]) -> Callable[..., ExtractResult]:
    """``fn`` (:func:`run_extract`) inside a SIGTERM handler; an interrupt before its body
    could write anything becomes :class:`ExtractInterrupted` too, saying so."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> ExtractResult:
        with _sigterm_interrupts():
            try:
                return fn(*args, **kwargs)
            except ExtractInterrupted:
                raise
            except KeyboardInterrupt as e:
                raise ExtractInterrupted(
                    "Interrupted before any video was extracted; run the same command to start "
                    "again", _exit_code(e)
                ) from None

    return wrapper


@_interrupts_explained
def run_extract(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    cfg: ExtractConfig,
    progress: bool | str | None = None,
    executor: Any = None,
    on_note: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Extract every video under ``input_path`` into ``out``; skip videos already finished.

    ``executor``: a :class:`toolkit.executor.ExecutorConfig` (default: local processes).
    ``on_note``: called with each note (``ExtractResult.notes``) as it is found, before the
    videos are extracted. Until every video is done the manifest's ``incomplete`` metadata
    lists the missing and failed ones. Ctrl-C or SIGTERM raises :class:`ExtractInterrupted`
    with what was kept (nothing, when it comes before the first video started).
    """
    from toolkit.video.detect import DETECTORS
    from toolkit.video.reader import quiet_decoder

    t0 = time.perf_counter()
    quiet_decoder(cfg.verbose)  # before this process (and the workers it starts) opens a video
    DETECTORS.get(cfg.detector)  # an unknown name fails here, before any video is opened
    out = Path(out)
    root, videos, not_videos = discover(input_path, exclude=out)
    labels = read_labels(cfg.labels) if cfg.labels else None
    if labels is not None:
        per_video, unmatched = match_labels(labels, root, videos)
    else:
        per_video, unmatched = {}, pd.DataFrame(columns=list(LABEL_COLUMNS))
    regions, regions_outside = regions_for_videos(cfg.regions, root, videos)
    writable_folder(out, "output folder (--out)")
    if videos and (executor is None or executor.kind == "local"):
        from toolkit.executor import prestart

        # the workers' fork server imports what they need while this process plans
        # (after quiet_decoder: the server keeps the environment it starts with)
        prestart(WORKER_PRELOAD)
    res = ExtractResult(out=out, manifest=out / "manifest.parquet", videos=len(videos))
    res.not_videos = not_videos
    res.regions_outside = regions_outside
    res.unmatched_labels = (
        unmatched.astype(object).where(unmatched.notna(), None).to_dict("records")
    )
    # The input folder's own name counts for the folder label too: `adtk extract
    # videos/abnormal/` or a single file inside it must not give "unlabeled" crops.
    top = root.resolve().name or "."
    defaults = {v: folder_label(f"{top}/{v}") for v in videos}

    def note(text: str) -> None:
        res.notes.append(text)
        if on_note is not None:
            on_note(text)

    with _lock(out):
        _check_same_input(out, input_path)  # under the lock: no other run writes it now
        dropped_labels = _labels_dropped(out, cfg)
        if dropped_labels:
            note(dropped_labels)
        shutil.rmtree(out / ".staging", ignore_errors=True)  # a killed run's leftovers
        ehash = extraction_hash(cfg)
        parts: dict[int, pd.DataFrame] = {}
        part_meta: dict[int, dict[str, Any]] = {}  # each part's metadata, for the totals
        todo: list[int] = []
        older: list[int] = []  # revisions of parts an earlier extractor made
        for i, rel in enumerate(videos):
            src = root / rel
            found = finished_part(out, rel, src, ehash) if src.is_file() else None
            if found is not None:
                parts[i], part_meta[i] = found
                res.skipped += 1
            else:
                todo.append(i)
                rev = part_revision(out, rel, src) if src.is_file() else None
                if rev is not None and rev != EXTRACTOR_REVISION:
                    older.append(rev)
        if older:
            when = "an earlier" if max(older) < EXTRACTOR_REVISION else "another"
            note(f"{len(older)} video(s) in {out} were extracted by {when} adtk (extractor "
                 f"revision {', '.join(map(str, sorted(set(older))))}, now "
                 f"{EXTRACTOR_REVISION}): extracting them again, so that one manifest never "
                 "mixes the crops of two extractors")
        labelled: dict[int, pd.DataFrame] = {}  # parts with this run's labels, made once
        failures: dict[int, str] = {}
        last_write = [0.0]

        def write_merged(interrupted: bool = False) -> pd.DataFrame:
            for i in parts:
                if i not in labelled:
                    labelled[i] = label_crops(
                        parts[i],
                        per_video.get(videos[i]),
                        defaults[videos[i]],
                        regions.get(videos[i]),
                    )
            left = [i for i in range(len(videos)) if i not in parts]
            merged = mf.concat([labelled[i] for i in sorted(parts)], "crop")
            meta = {
                "stage": "extract",
                "adtk_version": __version__,
                "config": to_dict(cfg),
                "extraction_hash": ehash,
                "input": str(Path(input_path).resolve()),
                "videos": [videos[i] for i in sorted(parts)],
                # videos whose stream stopped decoding early: their crops end at that frame
                "partial": {
                    videos[i]: {
                        "decode_stopped_at": part_meta[i]["decode_stopped_at"],
                        "frames": part_meta[i].get("frames"),
                    }
                    for i in sorted(parts)
                    if part_meta.get(i, {}).get("decode_stopped_at") is not None
                },
                # until every video is done (a run still going, killed, interrupted, or with
                # failed videos): which are missing, so that split and inspect can say so;
                # None once a run finishes them all
                "incomplete": {
                    "videos": len(videos),
                    "finished": len(parts),
                    "missing": [videos[i] for i in left if i not in failures],
                    "failed": [videos[i] for i in left if i in failures],
                    "interrupted": interrupted,
                } if left else None,
            }
            if cfg.motion_channels != "none":
                from toolkit.video.channels import describe

                meta["motion_channels"] = describe(cfg.motion_channels)
            if regions:
                res.recall = region_recall_of_parts(merged, regions, per_video, parts,
                                                    part_meta, videos, cfg.fps)
                meta["regions"] = {
                    "file": str(Path(cfg.regions).resolve()),
                    "rule": region_rule(),
                    "iou": REGION_IOU,
                    "large_px": LARGE_REGION_PX,
                    "recall": res.recall.to_dict("records"),
                }
            mf.write_manifest(merged, res.manifest, meta=meta)
            last_write[0] = time.monotonic()
            return merged

        def record_failures() -> None:
            """res.failed / res.partial, and failures.csv beside the manifest."""
            res.failed = [{"video": videos[i], "reason": failures[i]} for i in sorted(failures)]
            res.partial = [
                {
                    "video": videos[i],
                    "decode_stopped_at": int(part_meta[i]["decode_stopped_at"]),
                    "frames": int(part_meta[i].get("frames", 0)),
                }
                for i in sorted(parts)
                if part_meta[i].get("decode_stopped_at") is not None
            ]
            _write_failures(out, res.failed, res.partial)

        try:
            if todo:
                # before the manifest is rewritten: a setting that breaks the detector (a
                # missing --weights file) must leave a finished run's manifest as it was
                _check_detector(cfg)
            write_merged()  # a valid manifest of what is finished, from the first second on
            # Work items: whole videos, and the chunks of long ones not committed yet (a killed
            # run resumes from its last committed chunk).
            spans: dict[int, list[Span]] = {}
            n_frames: dict[int, int] = {}  # the container's frame count (0: unknown)
            # seconds of each video, for the labels' notes: finished ones from their parts,
            # the others from the probe that plans them
            seconds = {videos[i]: float(m.get("duration_s") or 0) for i, m in part_meta.items()}
            items: list[tuple[int, Span]] = []
            long_sides: dict[str, int] = {}  # each video's frame, for the input-size note
            for i in todo:
                src = root / videos[i]
                spans[i], info = _plan(src, cfg)
                n_frames[i] = max(0, int(info.frame_count)) if info is not None else 0
                if info is not None:
                    long_sides[videos[i]] = max(int(info.width), int(info.height))
                if n_frames[i] > 0 and info.duration_s > 0:
                    seconds[videos[i]] = float(info.duration_s)
                left = [
                    s for s in spans[i]
                    if s.whole or not finished_chunk(out, videos[i], src, ehash, s)
                ]
                res.chunks_skipped += len(spans[i]) - len(left)
                if left:
                    items += [(i, s) for s in left]
                else:  # killed after its last chunk, before the join
                    parts[i], part_meta[i] = merge_chunks(out, videos[i], spans[i], cfg)
                    res.done += 1
            left_per_video = {i: sum(1 for j, _ in items if j == i) for i in todo}
            if labels is not None:
                for text in label_notes(per_video, videos, defaults,
                                        {v: d for v, d in seconds.items() if d > 0}, regions):
                    note(text)
            size_note = F.yolox_size_note(cfg, long_sides)
            if size_note:
                note(size_note)
            warm_note = chunk_warmup_note(cfg, {i: spans[i] for i in todo}, n_frames)
            if warm_note:
                note(warm_note)
            from toolkit import executor as X

            ex = executor or X.ExecutorConfig()
            workers = cfg.workers or os.cpu_count() or 1
            workers = max(1, min(workers, len(items) or 1))
            if ex.kind == "local":
                threads = max(1, (os.cpu_count() or 1) // workers)
                cpus, gpus, if_any = 1.0, 0.0, 0.0
            else:
                threads, cpus, gpus, if_any = task_resources(cfg, ex)
            crash_on = os.environ.get(CRASH_HOOK_ENV)
            tasks = {
                k: X.Task(
                    key=k,
                    fn=extract_task,
                    args=(str(root / videos[i]), videos[i], str(out), to_dict(cfg),
                          per_video.get(videos[i]), crash_on, threads, asdict(span)),
                    name=videos[i] if span.whole else f"{videos[i]}#{span.index + 1}",
                    cpus=cpus,
                    gpus=gpus,
                    gpus_if_any=if_any,
                    paths=(str(root / videos[i]), str(out)),
                )
                for k, (i, span) in enumerate(items)
            }
            runner = X.create(ex, workers=workers, preload=WORKER_PRELOAD, stall_s=cfg.stall_s)
            durations: dict[int, float] = {}

            def on_message(kind: str, k: int, payload: Any) -> None:
                i, span = items[k]
                if kind == "start":
                    # a task's first start is its detection pass, counted in the total already
                    # (from the frame count probed when planning): correct it to the worker's own
                    # count; later starts (its motion pass) add theirs
                    bars.add_total(payload - expected.pop(k, 0))
                elif kind == "frames":
                    bars.frames(payload)
                elif kind == "done":
                    durations[k] = float(payload.get("decoded_s", 0.0))
                    left_per_video[i] -= 1
                    if not span.whole:
                        res.chunks_done += 1
                    if left_per_video[i] == 0 and i not in failures:
                        if span.whole:
                            parts[i] = mf.read_manifest(
                                out / "videos" / video_id_for(videos[i]) / "part.parquet"
                            )
                            part_meta[i] = payload  # the part's metadata, plus crop counts
                        else:
                            parts[i], part_meta[i] = merge_chunks(out, videos[i], spans[i], cfg)
                        res.done += 1
                        # Rewriting the whole manifest per video is quadratic in the number of
                        # videos (thousands of short clips: most of the parent's time). Every
                        # finished video is safe in its part.parquet already; the next run merges
                        # what this one did not get to, so a refresh every few seconds loses
                        # nothing.
                        if time.monotonic() - last_write[0] >= MERGE_EVERY_S:
                            write_merged()
                    if left_per_video[i] == 0:
                        bars.video_done(failed=i in failures)
                elif kind == "failed":
                    reason = _one_line(_failure_reason(payload, cfg.stall_s))
                    # the summary and failures.csv name the video already: "a.mp4: a.mp4: empty
                    # file" said it twice
                    for name in (tasks[k].args[0], videos[i]):
                        reason = reason.removeprefix(f"{name}: ")
                    if not span.whole:
                        reason = f"chunk {span.index + 1} of {span.count}: {reason}"
                    failures.setdefault(i, reason)
                    left_per_video[i] -= 1
                    if left_per_video[i] == 0:
                        bars.video_done(failed=True)

            # Ray: connect before the bars, so a connection error comes alone (and only if needed)
            with runner.session() if items else contextlib.nullcontext():
                from toolkit.progress import VideoBars

                bars = VideoBars(sum(1 for n in left_per_video.values() if n), enabled=progress)
                # the frames bar's total known from the start, not grown as workers open videos
                expected = {k: _span_frames(span, n_frames[i])
                            for k, (i, span) in enumerate(items) if n_frames[i] > 0}
                bars.add_total(sum(expected.values()))
                try:
                    runner.run(list(tasks.values()), on_message)
                except Exception:
                    write_merged()  # the manifest still lists every video finished so far
                    raise
                finally:
                    bars.close()
            record_failures()
            merged = write_merged()
        except KeyboardInterrupt as e:
            # Ctrl-C or SIGTERM at any point after planning: the manifest lists every video
            # finished so far and says which are missing; failures.csv lists the failed ones
            record_failures()
            write_merged(interrupted=True)
            chunks = f" (and {res.chunks_done} chunk(s) of longer ones)" if res.chunks_done else ""
            failed = f", {len(res.failed)} failed (failures.csv)" if res.failed else ""
            raise ExtractInterrupted(
                f"Interrupted: {len(parts)} of {len(videos)} videos finished{chunks} and kept in "
                f"{out}{failed}; run the same command to resume", _exit_code(e)
            ) from None

    res.crops = len(merged)
    res.sequences = int(merged["sequence_id"].nunique())
    counts = merged["label"].astype(str).value_counts()
    res.labels = {k: int(counts.get(k, 0)) for k in mf.LABELS}
    for i in parts:
        meta = part_meta[i]
        duration = float(meta.get("duration_s", 0.0))
        if meta.get("decode_stopped_at") is not None and meta.get("fps"):
            duration = min(duration, meta["decode_stopped_at"] / meta["fps"])
        res.video_seconds += duration
        res.tracks_dropped += int(meta.get("tracks_dropped", 0))
        if len(parts[i]) == 0:
            res.empty.append(F.why_empty(videos[i], meta, cfg))
        moved = F.camera_moved(meta)
        if moved:
            res.moving_camera.append(f"{videos[i]} ({moved})")
        frozen = F.frozen(meta, cfg)
        if frozen:
            res.frozen.append(f"{videos[i]} ({frozen})")
        small = F.small_in_yolox(parts[i], meta, cfg)
        if small:
            res.small_in_yolox.append(f"{videos[i]} ({small})")
        odd = F.odd_fps(meta)
        if odd:
            res.odd_fps.append(f"{videos[i]} ({odd})")
    res.processed_seconds = sum(durations.values())
    res.wall_s = time.perf_counter() - t0
    return res


def _labels_dropped(out: Path, cfg: ExtractConfig) -> str:
    """A note where the manifest in ``out`` was made with a labels or regions file and this
    run has neither: the rewritten manifest would lose them without a word."""
    if cfg.labels or cfg.regions:
        return ""
    path = out / "manifest.parquet"
    if not path.is_file():
        return ""
    try:
        before = mf.read_meta(path).get("config") or {}
    except (OSError, ValueError, AdtkError):
        return ""  # not one of ours: the checks that read it report that
    files = [f"--{k} {before[k]}" for k in ("labels", "regions") if before.get(k)]
    if not files:
        return ""
    return (f"labels: the manifest in {out} was made with {' and '.join(files)}; this run has "
            "none, so its crops are now unlabeled (run again with the same file(s) to keep "
            "the labels)")


def _check_same_input(out: Path, input_path: str | os.PathLike) -> None:
    """Refuse an ``--out`` whose manifest was made from another input.

    ``OUT/manifest.parquet`` lists the videos of one input (a file or folder); extracting
    another input into the same folder would replace that list, leave the first input's crops
    unlisted, and could reuse its video folders for other files of the same relative name.
    """
    m = out / "manifest.parquet"
    if not m.is_file():
        return
    try:
        before = mf.read_meta(m).get("input")
    except (OSError, ValueError, ManifestError):
        return  # not adtk's manifest, or unreadable: rewritten like before
    now = str(Path(input_path).resolve())
    if before and before != now:
        raise AdtkError(
            f"{out} holds the crops of another input ({before}); extract {now} into a folder "
            "of its own and merge the manifests with adtk split (it takes several), or extract "
            "a folder holding both into a new --out; if it is the same videos moved, delete "
            f"{m.name} in {out} and run again (finished videos are reused)"
        )


def _plan(src: Path, cfg: ExtractConfig) -> tuple[list[Span], Any]:
    """The work items of one video and what the container says of it (None where it cannot
    be probed: the file fails in its worker)."""
    from toolkit.video.reader import VideoError, probe

    try:
        info = probe(src)
    except VideoError:
        return [Span()], None
    return (plan_spans(info, cfg) if cfg.chunk_s > 0 else [Span()]), info


def _span_frames(span: Span, frame_count: int) -> int:
    """Source frames a work item decodes in its detection pass: what its worker reports when
    it starts (see :func:`extract_video`)."""
    end = frame_count if span.stop is None else min(span.stop, frame_count)
    return max(0, end - span.warmup)


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


def _write_failures(
    out: Path, failed: list[dict[str, str]], partial: list[dict[str, Any]] = ()
) -> None:
    """failures.json / .csv: one row per failed video (status ``failed``, no crops) and per
    truncated one (status ``partial``: crops up to ``decode_stopped_at``, the first frame that
    did not decode)."""
    import io

    rows = [{"video": f["video"], "status": "failed", "reason": f["reason"],
             "decode_stopped_at": None} for f in failed]
    rows += [
        {
            "video": p["video"],
            "status": "partial",
            "reason": f"truncated or corrupt: decoding stopped at frame {p['decode_stopped_at']} "
            f"of {p['frames']}; the crops before it are kept",
            "decode_stopped_at": p["decode_stopped_at"],
        }
        for p in partial
    ]
    atomic_write_json(out / "failures.json", rows)
    buf = io.StringIO()
    w = csv.DictWriter(
        buf, fieldnames=["video", "status", "reason", "decode_stopped_at"], lineterminator="\n"
    )
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "failures.csv", buf.getvalue())


def _lock(out: Path):
    """One ``adtk extract`` per output folder at a time (an flock, released on any exit)."""
    from toolkit.io import exclusive_lock

    return exclusive_lock(out / ".lock", f"{out}: another adtk extract is writing to this folder")
