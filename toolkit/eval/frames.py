"""Frame-level evaluation of a finished run folder (the video anomaly field's standard metric).

Reads the run's ``scores.parquet`` (one score per test crop) and a frame-labels CSV
(``video,frame_idx,time_s,abnormal``, one row per frame of each test clip, as UCSD Ped2's
``frame_labels.csv``), scores every listed frame of the run's test clips
(:func:`toolkit.eval.metrics.score_frames`), and writes

* ``frame_scores.parquet``: video, frame_idx, time_s, abnormal, n_crops, score
  (+ score_smoothed), its settings in the Parquet metadata;
* the ``frame_*`` and ``object_*`` keys of ``metrics.json`` (updated in place, atomically).

Evaluation settings do not change the trained model or its crop scores, so they are not part
of the run id: evaluating a finished run again with other settings rewrites these two outputs
only, and ``metrics.json['frame_eval']`` says which settings they come from.

Frames are those of the run's test clips. With a clip-protocol split (``--suite ped2``) a test
clip is wholly in test. With a split by sequence (``adtk split``) a video can hold training
crops too: its frames whose crops all went to train or val are left out
(``frame_n_excluded_trained``). Test crops labelled ``unlabeled`` are not scored by a run, so
their frames count as frames without crops.

Object-level AUROC ranks the test crops whose label came from an object region (the manifest's
``label_source`` column says ``region``) against those labels: the crop *is* the anomalous
object, not merely in a frame with one. Without region labels it is left out (null) with a note.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import AdtkError
from toolkit.eval import metrics as M

FRAME_LABEL_COLUMNS = ("video", "frame_idx", "abnormal")
FRAME_SCORES = "frame_scores.parquet"
#: metrics.json keys this module owns (removed before a re-evaluation writes its own).
_PREFIXES = ("frame_auroc_", "frame_n", "frame_with_crops", "frame_eval", "frame_clips",
             "object_", "protocol", "labelled_clips", "labelled_videos", "suite")


@dataclass(frozen=True)
class FrameEvalConfig:
    """How frames are scored: see ``adtk bench --help`` (``--frame-*`` options)."""

    labels: str
    aggregate: str = "max"  # max | mean | topk
    topk: int = 3
    smooth: int = 0  # moving-mean width in frames (0 or 1 = none), or the Gaussian's sigma
    track_smooth: int = 0  # moving-median width in crops of one track; 0 or 1 = none
    smooth_filter: str = "mean"  # mean | gaussian: what ``smooth`` means

    def __post_init__(self) -> None:
        if self.aggregate not in M.FRAME_AGGREGATES:
            raise AdtkError(
                f"--frame-score {self.aggregate!r}: use one of {', '.join(M.FRAME_AGGREGATES)}"
            )
        if int(self.topk) < 1:
            raise AdtkError(f"--frame-topk must be >= 1, got {self.topk}")
        if int(self.smooth) < 0:
            raise AdtkError(f"--frame-smooth must be >= 0 (frames; 0 = off), got {self.smooth}")
        if self.smooth_filter not in M.FRAME_FILTERS:
            raise AdtkError(f"--frame-smooth-filter {self.smooth_filter!r}: use one of "
                            f"{', '.join(M.FRAME_FILTERS)}")
        if int(self.track_smooth) < 0:
            raise AdtkError(
                f"--track-smooth must be >= 0 (crops of a track; 0 = off), got {self.track_smooth}"
            )


def read_frame_labels(path: str | os.PathLike) -> pd.DataFrame:
    """The frame-labels CSV, checked: one-line errors name the file and the row at fault."""
    path = Path(path)
    if not path.is_file():
        raise AdtkError(f"--frame-labels {path}: no such file")
    try:
        df = pd.read_csv(path, dtype={"video": "string"})
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise AdtkError(f"--frame-labels {path}: not a readable CSV ({e})") from None
    missing = [c for c in FRAME_LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise AdtkError(
            f"--frame-labels {path}: missing column(s) {', '.join(missing)} "
            "(expected video,frame_idx,time_s,abnormal)"
        )
    if not len(df):
        raise AdtkError(f"--frame-labels {path}: no rows")
    for col in ("frame_idx", "abnormal"):
        v = pd.to_numeric(df[col], errors="coerce")
        bad = v.isna() | (v != v.round()) | (v < 0)
        if col == "abnormal":
            bad |= ~v.isin([0, 1])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            want = "0 or 1" if col == "abnormal" else "an integer >= 0"
            raise AdtkError(
                f"--frame-labels {path}: row {i + 2}: {col} must be {want}, got {df[col].iloc[i]!r}"
            )
        df[col] = v.astype(np.int64)
    if df["video"].isna().any():
        i = int(np.flatnonzero(df["video"].isna().to_numpy())[0])
        raise AdtkError(f"--frame-labels {path}: row {i + 2}: empty video")
    dup = df.duplicated(["video", "frame_idx"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise AdtkError(
            f"--frame-labels {path}: row {i + 2}: frame {df['frame_idx'].iloc[i]} of "
            f"{df['video'].iloc[i]} listed twice"
        )
    df["video"] = df["video"].astype(str)
    if "time_s" not in df.columns:
        df["time_s"] = np.nan
    return df[["video", "frame_idx", "time_s", "abnormal"]]


def match_videos(label_videos: Iterable[str], crop_videos: Iterable[str]) -> dict[str, str]:
    """crop video name -> frame-labels video name.

    Exact names first; otherwise the two names match when one's path components end with the
    other's (``test_02.mp4`` extracted from the ``test/`` folder matches ``test/test_02.mp4``).
    A name that fits several is an error rather than a guess.
    """
    labels = sorted(set(map(str, label_videos)))
    out: dict[str, str] = {}
    for v in sorted(set(map(str, crop_videos))):
        if v in labels:
            out[v] = v
            continue
        pv = Path(v).parts
        hits = [
            lv for lv in labels
            if Path(lv).parts[-len(pv):] == pv or pv[-len(Path(lv).parts):] == Path(lv).parts
        ]
        if len(hits) > 1:
            raise AdtkError(
                f"video {v!r} of the manifest matches several frame-label videos "
                f"({', '.join(hits[:3])}); name the videos alike in both"
            )
        if hits:
            out[v] = hits[0]
    return out


def _region_labels(manifest: Path | None, crop_ids: pd.Series) -> tuple[np.ndarray | None, str]:
    """Mask of the crops (in ``crop_ids`` order) whose label came from an object region."""
    if manifest is None or not manifest.is_file():
        return None, "manifest not found; no object-level AUROC"
    import pyarrow.parquet as pq

    cols = pq.read_schema(manifest).names
    if "label_source" not in cols:
        return None, "the manifest has no region labels (no label_source column)"
    tab = pq.read_table(manifest, columns=["crop_id", "label_source"]).to_pandas()
    src = crop_ids.map(dict(zip(tab["crop_id"], tab["label_source"], strict=True)))
    mask = (src.astype("string") == "region").fillna(False).to_numpy()
    if not mask.any():
        return None, "no test crop has a region label (label_source)"
    return mask, ""


#: Keys of a protocol split manifest's metadata copied into metrics.json (tables group by them).
PROTOCOL_KEYS = ("protocol", "protocol_name", "labelled_clips", "protocol_seed",
                 "labelled_videos", "protocol_events", "suite")


def _test_videos(
    cfg: dict[str, Any], test: pd.DataFrame
) -> tuple[list[str], Path | None, dict[str, Any]]:
    """The run's test clips: the protocol's list when the manifest has one, else the clips of
    its test crops (all of them, including crops the run did not score); the path of the
    manifest; its protocol metadata."""
    data = cfg.get("data")
    path = Path(data) if data else None
    if path is not None and path.is_file():
        from toolkit.data.manifest import read_meta

        meta = read_meta(path)
        proto = {k: meta[k] for k in PROTOCOL_KEYS if k in meta}
        if meta.get("test_videos"):
            return list(meta["test_videos"]), path, proto
        import pyarrow.parquet as pq

        t = pq.read_table(path, columns=["video", "split"]).to_pandas()
        return sorted(t.loc[t["split"] == "test", "video"].unique().tolist()), path, proto
    # the manifest is gone (moved, deleted): what the scores say, and no manifest
    return sorted(test["video"].astype(str).unique().tolist()), None, {}


def _trained_frames(manifest: Path) -> pd.MultiIndex:
    """(video, frame_idx) of frames whose crops are all in the train or val split."""
    import pyarrow.parquet as pq

    t = pq.read_table(manifest, columns=["video", "frame_idx", "split"]).to_pandas()
    t["video"] = t["video"].astype(str)
    test = t.groupby(["video", "frame_idx"])["split"].agg(lambda s: (s == "test").any())
    return test.index[~test.to_numpy()]


def evaluate_run(
    folder: str | os.PathLike,
    fcfg: FrameEvalConfig,
    labels: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Frame-level (and object-level) metrics of one finished run; writes its two outputs."""
    from toolkit.io import atomic_path, atomic_write_json, json_clean, sha256_file

    folder = Path(folder)
    mpath = folder / "metrics.json"
    if not mpath.is_file():
        raise AdtkError(f"{folder}: not a finished run (no metrics.json)")
    cfg = json.loads((folder / "config.json").read_text())
    scores = pd.read_parquet(folder / "scores.parquet")
    if not {"video", "frame_idx"} <= set(scores.columns):
        raise AdtkError(
            f"{folder}: its scores have no video / frame_idx (not a crop manifest run); "
            "frame-level evaluation needs crops from videos"
        )
    test = scores[scores["split"] == "test"].copy()
    test["video"] = test["video"].astype(str)
    labels = read_frame_labels(fcfg.labels) if labels is None else labels
    videos, manifest, proto = _test_videos(cfg, test)
    names = match_videos(labels["video"], videos)
    unlabelled = sorted(set(videos) - set(names))
    if not names:
        raise AdtkError(
            f"--frame-labels {fcfg.labels}: none of the run's {len(videos)} test clips is "
            f"listed (e.g. {videos[0] if videos else '?'!r} vs "
            f"{labels['video'].iloc[0]!r} in the file)"
        )
    # Frame labels are renamed to the manifest's video names, so every output uses those.
    back = {lv: v for v, lv in names.items()}
    fl = labels[labels["video"].isin(back)].copy()
    fl["video"] = fl["video"].map(back)
    n_trained = 0
    if manifest is not None and not proto:
        # A split by sequence (adtk split) shares videos between train and test: frames whose
        # crops all went to train or val were seen in training, so they are left out.
        seen = _trained_frames(manifest)
        if len(seen):
            keep = ~pd.MultiIndex.from_frame(fl[["video", "frame_idx"]]).isin(seen)
            n_trained = int((~keep).sum())
            fl = fl[keep]
    crops = test[["video", "frame_idx", "score"]]
    if int(fcfg.track_smooth) > 1:
        crops = crops.assign(track=_crop_tracks(manifest, test["sample_id"].astype(str)))
    frames = M.score_frames(
        crops, fl, fcfg.aggregate, fcfg.topk, fcfg.smooth, track_smooth=fcfg.track_smooth,
        smooth_filter=fcfg.smooth_filter,
    )
    raw = M.frame_metrics(frames, "score")
    sm = M.frame_metrics(frames, "score_smoothed") if "score_smoothed" in frames else None
    settings = {
        **asdict(fcfg),
        "labels": str(Path(fcfg.labels).resolve()),
        "labels_sha256": sha256_file(fcfg.labels),
        "missing_frames": "lowest frame score of the evaluation",
        "smooth_kind": smooth_kind(fcfg.smooth, fcfg.track_smooth, fcfg.smooth_filter),
        "videos": sorted(names),
        "videos_without_frame_labels": unlabelled,
    }
    out: dict[str, Any] = {
        "frame_auroc_micro": raw["micro"],
        "frame_auroc_macro": raw["macro"],
        "frame_auroc_by_clip": raw["by_clip"],
        "frame_auroc_micro_clipnorm": raw["micro_clipnorm"],
        "frame_auroc_micro_smoothed": sm["micro"] if sm else None,
        "frame_auroc_micro_clipnorm_smoothed": sm["micro_clipnorm"] if sm else None,
        "frame_auroc_macro_smoothed": sm["macro"] if sm else None,
        "frame_auroc_by_clip_smoothed": sm["by_clip"] if sm else None,
        # the raw frame scores smoothed as published evaluations do (whatever --frame-smooth)
        **M.published_smoothing(frames),
        "frame_n": len(frames),
        "frame_n_abnormal": int(frames["abnormal"].sum()),
        "frame_n_clips": raw["n_clips"],
        "frame_n_clips_macro": raw["n_clips_macro"],
        "frame_n_excluded_trained": n_trained,
        "frame_with_crops": float((frames["n_crops"] > 0).mean()) if len(frames) else math.nan,
        "frame_eval": settings,
        "protocol": proto.get("protocol"),
        "protocol_name": proto.get("protocol_name"),
        "labelled_clips": proto.get("labelled_clips"),
        "labelled_videos": proto.get("labelled_videos"),
        "protocol_events": proto.get("protocol_events"),
        "suite": proto.get("suite"),
    }
    # which test crops carry object-region labels: read from the manifest once, for both
    region = _region_labels(manifest, test["sample_id"].astype(str))
    out.update(_object_metrics(test, region))
    out.update(_event_metrics(frames, test, region[0]))

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frames, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"adtk": json.dumps(settings).encode()}
    )
    with atomic_path(folder / FRAME_SCORES, suffix=".tmp.parquet") as tmp:
        pq.write_table(table, tmp)
    m = json.loads(mpath.read_text())
    m = {k: v for k, v in m.items() if not k.startswith(_PREFIXES)}
    m.update(out)
    atomic_write_json(mpath, json_clean(m))
    return out


def smooth_kind(smooth: int, track_smooth: int, smooth_filter: str = "mean") -> str:
    """How the smoothed frame score is made, in words (metrics.json, tables)."""
    steps = []
    if int(track_smooth) > 1:
        steps.append(f"moving median of {int(track_smooth)} crops along each track")
    if M.smooths(smooth, smooth_filter):
        steps.append(f"Gaussian of sigma {int(smooth)} frames per clip"
                     if smooth_filter == "gaussian"
                     else f"centred moving mean of {int(smooth)} frames per clip")
    return ", then ".join(steps) or "none"


def smooth_label(frame_eval: dict[str, Any] | None) -> str:
    """Short name of a run's smoothing for table headers: '9 fr.', 'track 5 + 9 fr.',
    'Gauss. 3 fr.'."""
    fe = frame_eval or {}
    w, t = int(fe.get("smooth") or 0), int(fe.get("track_smooth") or 0)
    kind = fe.get("smooth_filter") or "mean"
    frames = ([f"Gauss. {w} fr." if kind == "gaussian" else f"{w} fr."]
              if M.smooths(w, kind) else [])
    return " + ".join(([f"track {t}"] if t > 1 else []) + frames)


def runs_smooth_label(frame_evals: Iterable[dict[str, Any] | None]) -> str:
    """The smoothing of several runs for one header ('track 5 + 9 fr.', two differing ones
    joined by ' / '); '' when none of them was smoothed."""
    return " / ".join(sorted({smooth_label(fe) for fe in frame_evals} - {""}))


def _crop_tracks(manifest: Path | None, crop_ids: pd.Series) -> np.ndarray:
    """Each crop's track (the manifest's ``sequence_id``), in ``crop_ids`` order."""
    import pyarrow.parquet as pq

    if manifest is None or not manifest.is_file():
        raise AdtkError("--track-smooth needs the run's crop manifest (its sequence_id column), "
                        "and the manifest in the run's config.json (data) is not there")
    if "sequence_id" not in pq.read_schema(manifest).names:
        raise AdtkError(f"--track-smooth: {manifest} has no sequence_id column (crops from "
                        "adtk extract carry their track's id)")
    tab = pq.read_table(manifest, columns=["crop_id", "sequence_id"]).to_pandas()
    seq = crop_ids.map(dict(zip(tab["crop_id"], tab["sequence_id"].astype(str), strict=True)))
    return seq.to_numpy(dtype=object)


def _object_metrics(test: pd.DataFrame, region: tuple[np.ndarray | None, str]) -> dict[str, Any]:
    """Object AUROC over the region-labelled test crops; ``region``: :func:`_region_labels`."""
    mask, note = region
    if mask is None:
        return {"object_auroc": None, "object_n": 0, "object_note": note}
    part = test[mask]
    y = (part["label"] == "abnormal").to_numpy().astype(np.int8)
    return {
        "object_auroc": M.auroc(y, part["score"].to_numpy()),
        "object_n": int(len(part)),
        "object_n_abnormal": int(y.sum()),
    }




def clip_kinds(test: pd.DataFrame) -> dict[str, list[str]]:
    """Anomaly kind (``event``) -> the test clips holding crops of it, from a run's test scores.

    The event comes from the interval labels, so a clip counts for a kind when any of its
    crops carries that event, whatever the crop's own (region) label."""
    ev = test[test["event"].notna()]
    ev = ev[ev["event"].astype(str) != ""]
    return {str(e): sorted(map(str, g.unique()))
            for e, g in ev.groupby(ev["event"].astype(str))["video"]}


def _event_metrics(
    frames: pd.DataFrame, test: pd.DataFrame, mask: np.ndarray | None
) -> dict[str, Any]:
    """Per anomaly kind: frame AUROC (micro) over the frames of the clips of that kind, and
    object AUROC over their region-labelled crops. Scores of kinds never seen in training
    (an unseen-kind protocol) are read from these, one number per kind. ``mask``: the
    region-labelled test crops (:func:`_region_labels`), None when there are none."""
    kinds = clip_kinds(test)
    if not kinds:
        return {"frame_auroc_by_event": {}, "object_auroc_by_event": {}, "frame_clips_by_event": {}}
    frame_by, obj_by = {}, {}
    for e, clips in kinds.items():
        f = frames[frames["video"].astype(str).isin(clips)]
        frame_by[e] = M.frame_metrics(f, "score")["micro"] if len(f) else math.nan
        obj_by[e] = None
        if mask is not None:
            part = test[mask & test["video"].astype(str).isin(clips).to_numpy()]
            y = (part["label"] == "abnormal").to_numpy().astype(np.int8)
            obj_by[e] = M.auroc(y, part["score"].to_numpy()) if len(part) else math.nan
    return {"frame_auroc_by_event": frame_by, "object_auroc_by_event": obj_by,
            "frame_clips_by_event": kinds}


def evaluate_runs(
    folders: Sequence[str | os.PathLike], fcfg: FrameEvalConfig
) -> list[tuple[Path, dict[str, Any]]]:
    """:func:`evaluate_run` over several finished runs (the labels file is read once)."""
    labels = read_frame_labels(fcfg.labels)
    return [(Path(f), evaluate_run(f, fcfg, labels)) for f in folders]


def summary_line(m: dict[str, Any]) -> str:
    """'frame AUROC micro 0.912 / macro 0.874 (smoothed w=9: ...); object 0.95' for the CLI."""

    def f(v: Any) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

    s = (f"frame AUROC micro {f(m.get('frame_auroc_micro'))} / macro "
         f"{f(m.get('frame_auroc_macro'))} ({m.get('frame_n_clips_macro')} clips) / micro "
         f"per-clip min-max {f(m.get('frame_auroc_micro_clipnorm'))}")
    how = smooth_label(m.get("frame_eval"))
    if how:
        s += (f"; smoothed ({how}) micro {f(m.get('frame_auroc_micro_smoothed'))} / macro "
              f"{f(m.get('frame_auroc_macro_smoothed'))}")
    if m.get("frame_auroc_micro_hf2vad") is not None or m.get("frame_auroc_micro_gauss3"):
        s += (f"; micro as HF2-VAD's code {f(m.get('frame_auroc_micro_hf2vad'))} / as Reiss and "
              f"Hoshen's {f(m.get('frame_auroc_micro_gauss3'))}")
    s += f"; object AUROC {f(m.get('object_auroc'))}"
    return s
