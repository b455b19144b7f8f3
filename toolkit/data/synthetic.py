"""Generated crop manifests (no images) for tests and benchmarks of the split stage.

Vectorised, so a million rows take about a second: sequences of log-normal length, a few
sequences per video, some abnormal (optionally only after an onset, so their groups mix
labels) with an event kind, some unlabeled.
"""

from __future__ import annotations

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
