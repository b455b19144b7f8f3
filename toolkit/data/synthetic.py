"""Generated manifests for tests and benchmarks, the toolkit's one home for them.

:func:`make_crop_manifest`: crop manifests without images for the split stage. Vectorised, so
a million rows take about a second: sequences of log-normal length, a few sequences per video,
some abnormal (optionally only after an onset, so their groups mix labels) with an event kind,
some unlabeled.

:func:`make_split_manifest`: a tiny split manifest with real PNG crops that a method can learn
(normal = a horizontal bar, abnormal = a vertical one), for the bench stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

EVENTS = ("fall", "running", "fight")


def make_crop_manifest(
    n_rows: int,
    seed: int = 0,
    mean_len: float = 30.0,
    abnormal: float = 0.1,
    unlabeled: float = 0.05,
    mixed: bool = False,
    seqs_per_video: int = 20,
    fps: float = 10.0,
    prefix: str = "",
) -> pd.DataFrame:
    """A crop manifest of exactly ``n_rows`` rows (``prefix`` starts every id and path).

    ``abnormal`` / ``unlabeled``: fraction of sequences with that label. ``mixed``: an
    abnormal sequence is normal up to a random onset, abnormal after it.
    """
    rng = np.random.default_rng(seed)
    sigma = 0.8
    lens = []
    total = 0
    while total < n_rows:  # a few vectorised draws; lengths vary, so the count is unknown
        draw = np.maximum(1, rng.lognormal(np.log(mean_len) - sigma**2 / 2, sigma, 4096))
        draw = draw.astype(np.int64)
        lens.append(draw)
        total += int(draw.sum())
    lens = np.concatenate(lens)
    n_seq = int(np.searchsorted(np.cumsum(lens), n_rows)) + 1
    lens = lens[:n_seq]
    lens[-1] -= int(lens.sum()) - n_rows  # trim the last sequence to hit n_rows exactly

    seq = np.repeat(np.arange(n_seq), lens)  # (n_rows,) sequence index per row
    step = np.arange(n_rows) - np.repeat(np.cumsum(lens) - lens, lens)  # position in sequence
    video = seq // seqs_per_video
    local = seq % seqs_per_video  # detection index: unique per video at any frame
    start = rng.integers(0, 20_000, n_seq)
    frame = start[seq] + step

    kind = rng.random(n_seq)
    seq_label = np.where(kind < abnormal, 1, np.where(kind < abnormal + unlabeled, 2, 0))
    label = seq_label[seq]
    if mixed:
        onset = (rng.random(n_seq) * lens).astype(np.int64)
        label = np.where((label == 1) & (step < onset[seq]), 0, label)
    seq_event = rng.integers(0, len(EVENTS), n_seq)

    vid = pc.binary_join_element_wise(prefix + "v", _num(video, 5), "")
    seq_id = pc.binary_join_element_wise(vid, "_t", _num(local, 3), "")
    crop_id = pc.binary_join_element_wise(vid, "_", _num(frame, 6), "_", _num(local, 2), "")
    path = pc.binary_join_element_wise("crops/", crop_id, ".png", "")
    events = pa.array(np.array(EVENTS, dtype=object)[seq_event[seq]])
    labels = pa.array(np.array(["normal", "abnormal", "unlabeled"], dtype=object)[label])
    return pd.DataFrame(
        {
            "crop_id": crop_id.to_pandas(),
            "path": path.to_pandas(),
            "path_oversize": pc.binary_join_element_wise(
                "crops/", crop_id, "_os.png", ""
            ).to_pandas(),
            "video": pc.binary_join_element_wise(vid, ".mp4", "").to_pandas(),
            "video_id": vid.to_pandas(),
            "frame_idx": frame.astype(np.int64),
            "time_s": frame / fps,
            "track_id": local.astype(np.int64),
            "sequence_id": seq_id.to_pandas(),
            "x": rng.integers(0, 600, n_rows).astype(np.int32),
            "y": rng.integers(0, 300, n_rows).astype(np.int32),
            "w": np.full(n_rows, 48, np.int32),
            "h": np.full(n_rows, 96, np.int32),
            "det_score": rng.random(n_rows).astype(np.float32),
            "detector": "synthetic",
            "label": labels.to_pandas(),
            "event": pd.Series(events.to_pandas()).where(label == 1, None),
            "target": "person",
            "object_class": "person",
        }
    )


def _num(values: np.ndarray, width: int) -> pa.Array:
    # Zero-padded decimal strings without a per-row Python format call.
    s = pc.cast(pa.array(values, pa.int64()), pa.string())
    return pc.utf8_lpad(s, width=width, padding="0")


def make_clip_manifest(
    videos: list[str], abnormal: tuple[str, ...] | list[str] = (), frames: int = 3,
    events: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A valid crop manifest (no images) with one crop on each of ``frames`` frames per clip;
    in the clips named in ``abnormal`` the crop of frame 1 is abnormal (event ``bike``, or the
    clip's kind in ``events``).

    For tests of clip-level protocols and frame-level evaluation, where what matters is which
    clip and frame each crop is on.
    """
    from toolkit.data import manifest as mf

    rows = []
    for v in videos:
        for f in range(frames):
            bad = v in abnormal and f == 1
            rows.append({
                "crop_id": f"{v}:{f}:0", "path": f"box/{v}/{f}.png",
                "path_oversize": f"oversize/{v}/{f}.png", "video": v, "video_id": v,
                "frame_idx": f, "time_s": f / 10, "track_id": 0, "sequence_id": f"{v}:0",
                "x": 0, "y": 0, "w": 10, "h": 20, "det_score": 1.0, "detector": "synthetic",
                "label": "abnormal" if bad else "normal",
                "event": (events or {}).get(v, "bike") if bad else None,
            })
    cols = mf.empty("crop")
    df = pd.DataFrame(rows, columns=list(cols.columns))
    return df.astype({c: cols[c].dtype for c in cols.columns if c != "event"})
def crop_image(abnormal: bool, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """BGR uint8 (size, size, 3): normal = a grey horizontal bar, abnormal = a red vertical one."""
    import cv2

    img = np.full((size, size, 3), 20, np.uint8)
    k = int(rng.integers(2, size - 4))
    if abnormal:
        img[:, k : k + 3] = (30, 30, 230)
    else:
        img[k : k + 3, :] = (200, 200, 200)
    noise = rng.integers(0, 12, img.shape, dtype=np.uint8)
    return cv2.add(img, noise)


def make_split_manifest(
    root: Path,
    counts: dict[str, tuple[int, int]] | None = None,
    size: int = 16,
    name: str = "tiny.parquet",
    holdout_events: tuple[str, ...] = (),
    seed: int = 0,
) -> Path:
    """Write PNG crops under ``root/crops`` and a split manifest ``root/name``.

    counts: split -> (normal, abnormal). Abnormal crops alternate events fall / running;
    events in ``holdout_events`` occur in test only. Two crops share each frame.
    """
    import cv2

    from toolkit.data.manifest import SPLIT_COLUMNS, write_manifest

    counts = counts or {"train": (40, 8), "val": (8, 4), "test": (12, 6)}
    rng = np.random.default_rng(seed)
    crops = root / "crops"
    crops.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, (n_norm, n_abn) in counts.items():
        for i in range(n_norm + n_abn):
            abn = i >= n_norm
            event = None
            if abn:
                event = ("fall", "running")[i % 2]
                if event in holdout_events and split != "test":
                    event = "fall"
            cid = f"{split}-{i:04d}"
            cv2.imwrite(str(crops / f"{cid}.png"), crop_image(abn, rng, size))
            big = cv2.resize(crop_image(abn, rng, size), (size * 2, size * 2))
            cv2.imwrite(str(crops / f"{cid}-o.png"), big)
            rows.append(
                dict(
                    crop_id=cid, path=f"crops/{cid}.png", path_oversize=f"crops/{cid}-o.png",
                    video=f"{split}.mp4", video_id=split, frame_idx=i // 2, time_s=i / 10,
                    track_id=i, sequence_id=f"{split}:{i}", x=0, y=0, w=size, h=size,
                    det_score=1.0, detector="test", label="abnormal" if abn else "normal",
                    event=event, split=split,
                )
            )
    df = pd.DataFrame(rows)
    for col, (typ, _) in SPLIT_COLUMNS.items():
        if str(typ) == "int64":
            df[col] = df[col].astype("int64")
        elif str(typ) == "int32":
            df[col] = df[col].astype("int32")
        elif str(typ) == "float32":
            df[col] = df[col].astype("float32")
    meta = {"holdout_events": list(holdout_events)} if holdout_events else {}
    return write_manifest(df, root / name, kind="split", meta=meta)


def write_clip_crops(
    root: Path,
    videos: list[str],
    events: dict[str, str] | None = None,
    frames: int = 4,
    per_frame: int = 2,
    motion: bool = False,
    regions: bool = False,
    size: int = 16,
    seed: int = 0,
) -> Path:
    """A crop manifest of whole clips with real PNG crops (``root/manifest.parquet``).

    Every frame of every clip has ``per_frame`` crops. In the clips of ``events`` (clip ->
    anomaly kind) crop 0 of every odd frame is abnormal (a vertical bar, the event named),
    the others normal (a horizontal bar). ``motion``: motion crops beside them
    (``path_motion``, ``path_motion_oversize``; bright for abnormal crops, described as frame
    differences in the metadata). ``regions``: labels of abnormal clips' crops come from
    object regions (``label_source`` region, ``label_interval`` beside it).
    For tests of clip protocols and suites end to end; a method can learn the difference.
    """
    import cv2

    from toolkit.data import manifest as mf

    events = events or {}
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for v in videos:
        vid = v.replace("/", "_").replace(".", "_")
        for f in range(frames):
            for d in range(per_frame):
                bad = v in events and f % 2 == 1 and d == 0
                cid = f"{vid}_{f:05d}_{d:02d}"
                row = {
                    "crop_id": cid, "path": f"crops/{cid}.png",
                    "path_oversize": f"crops/{cid}_os.png", "video": v, "video_id": vid,
                    "frame_idx": f, "time_s": f / 10, "track_id": d, "sequence_id": f"{vid}_t{d}",
                    "x": 10 * d, "y": 0, "w": 10, "h": 20, "det_score": 1.0,
                    "detector": "synthetic", "label": "abnormal" if bad else "normal",
                    "event": events[v] if bad else None,
                }
                cv2.imwrite(str(root / row["path"]), crop_image(bad, rng, size))
                cv2.imwrite(str(root / row["path_oversize"]), crop_image(bad, rng, size))
                if motion:
                    for col, suffix in (("path_motion", "_m"), ("path_motion_oversize", "_mos")):
                        row[col] = f"crops/{cid}{suffix}.png"
                        level = 220 if bad else 30
                        img = np.full((size, size, 3), level, np.uint8)
                        img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
                        cv2.imwrite(str(root / row[col]), img)
                if regions:
                    in_abnormal_clip = v in events and f % 2 == 1
                    row["label_source"] = "region" if v in events else "interval"
                    row["label_interval"] = "abnormal" if in_abnormal_clip else "normal"
                rows.append(row)
    df = pd.DataFrame(rows)
    cols = mf.empty("crop")
    for c in cols.columns:
        if c not in df.columns:
            df[c] = None
    df = df.astype({c: cols[c].dtype for c in cols.columns
                    if c not in ("event", "target", "object_class")})
    meta = {"motion_channels": {"kind": "diff"}} if motion else None
    return mf.write_manifest(df, root / "manifest.parquet", meta=meta)


def clip_frame_labels(manifest: pd.DataFrame, path: Path) -> Path:
    """frame_labels.csv of the clips of ``manifest`` that hold an abnormal crop (the test
    clips), plus the normal clips named ``test``: a frame is abnormal when a crop in it is."""
    test = manifest[manifest["video"].str.contains("test")
                    | manifest["video"].isin(manifest.loc[manifest["label"] == "abnormal",
                                                          "video"])]
    fl = (test.assign(abnormal=(test["label"] == "abnormal").astype(int))
          .groupby(["video", "frame_idx"], as_index=False)
          .agg(time_s=("time_s", "first"), abnormal=("abnormal", "max")))
    fl[["video", "frame_idx", "time_s", "abnormal"]].to_csv(path, index=False)
    return path
