"""Tiny generated crop sets and split manifests for the bench tests (real PNGs, real manifest)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from toolkit.data.manifest import SPLIT_COLUMNS, write_manifest

#: Network size of the tiny test methods.
TINY = dict(width=8, latent_dim=8)


def tiny_method(name: str, **params):
    """A small instance of registered method ``name``: TINY where it declares those settings,
    and a one-epoch pretraining where it has one (so two epochs reach its main objective)."""
    from toolkit.methods import create_method, get_method

    declared = {s.name for s in get_method(name).settings_spec()}
    kw = {k: v for k, v in {**TINY, "pretrain_epochs": 1}.items() if k in declared}
    return create_method(name, **{**kw, **params})


def crop_image(abnormal: bool, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """BGR uint8 (size, size, 3): normal = a grey horizontal bar, abnormal = a red vertical one."""
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
