"""Which motion channels tell UCSD Ped2's anomalous objects from its walkers, and at what cost.

Input: a crop manifest of Ped2's test clips extracted with ``--regions anomaly_regions.csv``
(so ``label`` is the object-level label). For each kind of motion channels (``flow``, ``diff``)
the script writes every crop's motion crop with the same code ``adtk extract
--motion-channels`` runs (timed: the extra cost per video), then measures how well the
channels separate abnormal from normal crops:

* scalar AUROC: one number per crop (flow: mean magnitude channel; diff: mean
  |I_t+1 - I_t-1|), no training at all;
* probe AUROC: a logistic regression on the channels downsampled to 16x16, out-of-fold over
  clips (GroupKFold by video, so no clip is in its own training fold);
* the same probe on the appearance crop (grey), for reference, and on appearance + motion.

    python benchmarks/motion_channels.py CROPS/manifest.parquet [--kinds flow,diff] [--folds 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.data.manifest import read_manifest, read_meta
from toolkit.video.channels import write_motion_crops
from toolkit.video.extract import oversize_box


def _small(paths: list[Path], grey: bool) -> np.ndarray:
    out = []
    for p in paths:
        img = cv2.imread(str(p))
        img = cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
        out.append((img[..., :1] if grey else img).reshape(-1))
    return np.stack(out)


def probe_auc(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int) -> float:
    """Out-of-fold AUROC of a logistic regression, folds by clip."""
    score = np.zeros(len(y))
    for tr, te in GroupKFold(folds).split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
        model.fit(x[tr], y[tr])
        score[te] = model.predict_proba(x[te])[:, 1]
    return roc_auc_score(y, score)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--kinds", default="flow,diff")
    ap.add_argument("--folds", type=int, default=4)
    args = ap.parse_args()
    df = read_manifest(args.manifest)
    meta = read_meta(args.manifest)
    if "label_source" not in df or not (df["label_source"] == "region").any():
        raise SystemExit("need a manifest extracted with --regions (object-level labels)")
    df = df[df["label_source"] == "region"].reset_index(drop=True)
    root = args.manifest.parent
    src_root = Path(meta["input"])
    src_root = src_root if src_root.is_dir() else src_root.parent
    y = (df["label"] == "abnormal").to_numpy().astype(int)
    groups = df["video"].to_numpy()
    size = int(meta["config"]["size"])
    print(f"{len(df)} crops of {df['video'].nunique()} clips, {y.sum()} abnormal (region label)")
    app = _small([root / p for p in df["path"]], grey=True)
    print(f"appearance (grey 16x16) probe AUROC: {probe_auc(app, y, groups, args.folds):.3f}")
    tmp = Path(tempfile.mkdtemp(prefix="adtk-motion-"))
    try:
        for kind in args.kinds.split(","):
            out = tmp / kind
            path_of: dict[int, Path] = {}
            secs = 0.0
            for video, g in df.groupby("video", sort=False):
                stage = out / str(g["video_id"].iloc[0])
                stage.mkdir(parents=True)
                rows = g.assign(name=[Path(p).name for p in g["path"]])
                t = time.perf_counter()
                write_motion_crops(src_root / video, rows, stage, kind, size, oversize_box)
                secs += time.perf_counter() - t
                made = [stage / "motion" / n for n in rows["name"]]
                path_of.update(zip(g.index, made, strict=True))
            mot = _small([path_of[i] for i in df.index], grey=False)
            # channels read back as written; the scalar: flow magnitude, or |I_t+1 - I_t-1|
            scalar = mot.reshape(len(df), 16, 16, 3)[..., 2].mean((1, 2))
            frames = df.groupby("video")["frame_idx"].max().add(1).sum()
            print(
                f"{kind}: scalar AUROC {roc_auc_score(y, scalar):.3f}, "
                f"probe AUROC {probe_auc(mot, y, groups, args.folds):.3f}, "
                f"appearance+{kind} probe AUROC "
                f"{probe_auc(np.concatenate([app, mot], 1), y, groups, args.folds):.3f}; "
                f"{secs:.1f} s for {len(df)} crops on {frames} frames "
                f"({frames / secs:.0f} frames/s)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
