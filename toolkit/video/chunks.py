"""Long videos in chunks: where to cut, and how to join what the chunks found.

A video longer than ``chunk_s`` becomes several work items (:class:`Span`), extracted in
parallel and committed one by one. Chunk k+1 starts ``chunk_warmup_s`` early and reads the
end of chunk k again without emitting crops: its motion model and tracker are warm at its
first frame, and its tracks on those shared frames are matched box by box with chunk k's
(:func:`join_tracks`), so a person crossing the boundary stays one sequence. Final track ids
are numbered by first appearance (:func:`number_tracks`), the same for one pass and for
chunks. Reading, detection and the files on disk stay in :mod:`toolkit.video.extract`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import ExtractConfig


@dataclass(frozen=True)
class Span:
    """The frames one work item extracts: a whole video, or one chunk of a long one.

    Rows are emitted for frames ``start <= frame_idx < stop`` (``stop`` None: to the end).
    Reading starts at ``warmup`` (<= ``start``): the frames before ``start`` warm the motion
    model and the tracker up and are matched against the previous chunk's rows, but give no
    crops. ``tail`` is where the next chunk's warm-up begins (None for the last chunk): tracks
    seen from there on may continue in the next chunk, so they are kept however short.
    """

    index: int = 0
    count: int = 1
    warmup: int = 0
    start: int = 0
    stop: int | None = None
    tail: int | None = None

    @property
    def name(self) -> str:
        """The chunk's folder name below ``videos/<video_id>/``."""
        return f"chunk-{self.index:04d}"

    @property
    def whole(self) -> bool:
        return self.count == 1


def plan_spans(info: Any, cfg: ExtractConfig) -> list[Span]:
    """Cut a video into chunks of about ``cfg.chunk_s`` seconds (one span when it is shorter).

    Boundaries fall on sampled frames whose sample number is a multiple of ``cfg.batch`` and
    so does each warm-up start, so the detector sees the same batches as in one pass over the
    whole video. A video whose frame count is unknown is never cut.
    """
    from toolkit.video.reader import sample_stride

    if cfg.chunk_s <= 0 or info.frame_count <= 0 or info.duration_s <= cfg.chunk_s:
        return [Span()]
    stride = sample_stride(info.fps, cfg.fps if cfg.fps > 0 else info.fps)  # 0: every frame
    rate = info.fps / stride  # sampled frames per second
    b = max(1, cfg.batch)
    per = max(b, int(round(cfg.chunk_s * rate / b)) * b)  # samples per chunk
    warm = int(math.ceil(cfg.chunk_warmup_s * rate / b)) * b
    n_samples = math.ceil(info.frame_count / stride)

    def frame(k: int) -> int:  # the frame of sample number k (see reader.iter_sampled)
        return math.ceil(k * stride - 1e-9)

    n = max(1, math.ceil(n_samples / per))
    if n == 1:
        return [Span()]
    spans = []
    for j in range(n):
        spans.append(
            Span(
                index=j,
                count=n,
                warmup=frame(max(0, j * per - warm)),
                start=frame(j * per),
                stop=frame((j + 1) * per) if j < n - 1 else None,
                tail=frame(max(0, (j + 1) * per - warm)) if j < n - 1 else None,
            )
        )
    return spans


def track_table(df: pd.DataFrame, kept: set[int], head: set[int]) -> pd.DataFrame:
    """One row per track with emitted rows: where it starts, how long it is, what is kept."""
    if not len(df):
        return pd.DataFrame(
            {c: pd.Series(dtype="int64") for c in ("track_id", "first_frame", "first_det", "n")}
            | {c: pd.Series(dtype=bool) for c in ("kept", "head")}
        )
    g = df.sort_values(["frame_idx", "det"]).groupby("track_id", sort=False)
    t = g.agg(first_frame=("frame_idx", "first"), first_det=("det", "first"), n=("det", "size"))
    t = t.reset_index().astype("int64")
    t["kept"] = t["track_id"].isin(kept)
    t["head"] = t["track_id"].isin(head)
    return t


def number_tracks(tracks: pd.DataFrame, min_track: int | None = None) -> dict[Any, int]:
    """Final track ids: the kept tracks (``min_track`` crops or more, if given) numbered
    0, 1, ... in order of their first crop (frame, then detection index).

    Numbering by first appearance, not by the tracker's own counter, makes the ids of a
    chunked video the same as those of one pass over it, and dense (no gaps where short tracks
    were dropped).
    """
    keep = tracks["kept"] if min_track is None else tracks["n"] >= min_track
    t = tracks[keep].sort_values(["first_frame", "first_det"], kind="stable")
    return {tid: i for i, tid in enumerate(t["track_id"])}


#: Two boxes on the same frame are the same person when their IoU reaches this.
JOIN_IOU = 0.5


def join_tracks(lookback: pd.DataFrame, prev: pd.DataFrame) -> list[tuple[int, int]]:
    """Pairs (track of this chunk, track of the previous chunk) that are one person.

    ``lookback`` holds this chunk's boxes on its warm-up frames, which the previous chunk
    emitted (``prev``, its rows). Each frame where two tracks have boxes with IoU >= JOIN_IOU
    is a vote; the pairing with the most votes in total wins (an assignment, so no track is
    joined twice).
    """
    from scipy.optimize import linear_sum_assignment

    from toolkit.video.geometry import iou_matrix

    if not len(lookback) or not len(prev):
        return []
    a_ids = np.unique(lookback["track_id"].to_numpy())
    b_ids = np.unique(prev["track_id"].to_numpy())
    votes = np.zeros((len(a_ids), len(b_ids)))
    pb = prev.assign(x1=prev["x"] + prev["w"], y1=prev["y"] + prev["h"])
    by_frame = {f: g for f, g in pb.groupby("frame_idx")}
    for f, ga in lookback.groupby("frame_idx"):
        gb = by_frame.get(f)
        if gb is None:
            continue
        iou = iou_matrix(
            ga[["x0", "y0", "x1", "y1"]].to_numpy(np.float32),
            gb[["x", "y", "x1", "y1"]].to_numpy(np.float32),
        )
        r, c = np.nonzero(iou >= JOIN_IOU)
        np.add.at(
            votes,
            (np.searchsorted(a_ids, ga["track_id"].to_numpy()[r]),
             np.searchsorted(b_ids, gb["track_id"].to_numpy()[c])),
            1,
        )
    rows, cols = linear_sum_assignment(-votes)
    return [(int(a_ids[r]), int(b_ids[c])) for r, c in zip(rows, cols, strict=True)
            if votes[r, c] > 0]


def join_chunks(
    parts: list[pd.DataFrame],
    tracks: list[pd.DataFrame],
    looks: list[pd.DataFrame],
    min_track: int,
    vid: str,
) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """Join the chunks of one video: ``(rows, dropped rows, tracks in all, tracks kept)``.

    ``parts[k]`` are chunk k's rows (local ``track_id``, and ``det``: the detection's index on
    its frame), ``tracks[k]`` its :func:`track_table`, ``looks[k]`` its boxes on its warm-up
    frames. Tracks joined across boundaries count as one for ``min_track``; the rows of the
    kept ones get their final ``track_id`` and ``sequence_id``.
    """
    root: dict[tuple[int, int], tuple[int, int]] = {}

    def find(x: tuple[int, int]) -> tuple[int, int]:
        while root.get(x, x) != x:
            x = root[x]
        return x

    for k in range(1, len(parts)):
        emitted = set(tracks[k].loc[tracks[k]["head"], "track_id"])
        look = looks[k][looks[k]["track_id"].isin(emitted)]
        for a, b in join_tracks(look, parts[k - 1]):
            root[find((k, a))] = find((k - 1, b))

    def key(k: int, tid: Any) -> str:  # the joined track's id: "chunk:local id" of its start
        r = find((k, int(tid)))
        return f"{r[0]}:{r[1]}"

    glob = pd.concat(
        [t.assign(key=[key(k, i) for i in t["track_id"]]) for k, t in enumerate(tracks)],
        ignore_index=True,
    )
    glob = (
        glob.sort_values(["first_frame", "first_det"], kind="stable")
        .groupby("key", sort=False)
        .agg(first_frame=("first_frame", "first"), first_det=("first_det", "first"),
             n=("n", "sum"))
        .reset_index()
        .rename(columns={"key": "track_id"})
    )
    ids = number_tracks(glob, min_track=min_track)
    rows = pd.concat(
        [p.assign(key=[key(k, i) for i in p["track_id"]]) for k, p in enumerate(parts)],
        ignore_index=True,
    )
    keep = rows["key"].isin(list(ids)).to_numpy(bool)
    part = rows[keep].copy()
    part["track_id"] = part["key"].map(ids).astype("int64")
    part["sequence_id"] = [f"{vid}:{t}" for t in part["track_id"]]
    part = part.drop(columns=["key", "det"], errors="ignore").reset_index(drop=True)
    return part, rows[~keep], len(glob), len(ids)


def _duration_text(s: float) -> str:
    """600 -> 10m, 90 -> 90s: a duration as the --chunk options take it."""
    for unit, n in (("h", 3600), ("m", 60)):
        if s >= n and s % n == 0:
            return f"{s / n:g}{unit}"
    return f"{s:g}s"


def chunk_warmup_note(cfg: ExtractConfig, spans: dict[Any, list[Span]],
                      frames: dict[Any, int]) -> str | None:
    """A note when --chunk-warmup is longer than --chunk: every chunk then reads more warm-up
    than it emits, and the chunked videos are decoded several times over (``spans`` and
    ``frames`` per video; videos in one span are not chunked)."""
    chunked = [k for k, ss in spans.items() if len(ss) > 1 and frames.get(k)]
    if cfg.chunk_s <= 0 or cfg.chunk_warmup_s <= cfg.chunk_s or not chunked:
        return None
    total = sum(frames[k] for k in chunked)
    warm = sum(s.start - s.warmup for k in chunked for s in spans[k])
    return (
        f"--chunk {_duration_text(cfg.chunk_s)} with --chunk-warmup "
        f"{_duration_text(cfg.chunk_warmup_s)}: each chunk decodes more warm-up than its own "
        f"span, so the {len(chunked)} chunked video(s) are decoded {(total + warm) / total:.1f}x "
        "(--chunk 0: once); a longer --chunk or a shorter --chunk-warmup costs less"
    )
