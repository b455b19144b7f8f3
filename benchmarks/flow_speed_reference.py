"""A reference with no training: how far a crop's mean optical-flow speed alone ranks Ped2.

For every test crop of a crop manifest extracted with ``--motion-channels flow``, its score is
the mean of the flow-magnitude channel of its motion crop (frame heights per second, see
``toolkit.video.channels``); frames are then scored like any run (a frame's highest crop,
every listed frame, frames without crops the lowest score) and the frame AUROC printed,
micro and macro, raw and after a moving mean of ``--smooth`` frames, with the crop-level
(object) AUROC against the manifest's labels. It tells how much of a dataset's anomalies is
plain speed, the bar a trained motion model has to clear.

    python benchmarks/flow_speed_reference.py crops/manifest.parquet \
        ../shared/data/ucsd-ped2/frame_labels.csv

Data credit when run on UCSD Ped2: Mahadevan et al., "Anomaly detection in crowded scenes",
CVPR 2010.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from toolkit.data import manifest as mf
from toolkit.eval.frames import match_videos, read_frame_labels
from toolkit.eval.metrics import auroc, frame_metrics, score_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path, help="crop manifest with motion crops (flow)")
    ap.add_argument("frame_labels", type=Path, help="video,frame_idx,time_s,abnormal CSV")
    ap.add_argument("--smooth", type=int, default=9, help="moving-mean width in frames")
    args = ap.parse_args()
    t0 = time.perf_counter()
    meta = mf.read_meta(args.manifest)
    kind = (meta.get("motion_channels") or {}).get("kind")
    if kind != "flow":
        raise SystemExit(f"{args.manifest}: motion channels are {kind!r}, not flow")
    df = mf.read_manifest(args.manifest)
    root = mf.crops_root(args.manifest)
    labels = read_frame_labels(args.frame_labels)
    names = match_videos(labels["video"], df["video"].astype(str))
    test = df[df["video"].astype(str).isin(list(names))].copy()
    # the magnitude is the third channel written (BGR order on disk: the red plane)
    test["score"] = [float(cv2.imread(str(root / p))[..., 2].mean()) for p in test["path_motion"]]
    test["video"] = test["video"].astype(str).map(names)  # the frame labels' names
    frames = score_frames(test[["video", "frame_idx", "score"]], labels[labels["video"].isin(
        test["video"].unique())], "max", smooth=args.smooth)
    raw, sm = frame_metrics(frames), frame_metrics(frames, "score_smoothed")
    obj = auroc((test["label"] == "abnormal").to_numpy(), test["score"].to_numpy())
    print(f"# {len(test)} test crops of {len(names)} clips; load average "
          f"{os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.1f} s")
    print(f"frame AUROC micro {raw['micro']:.3f} / macro {raw['macro']:.3f}; "
          f"smoothed ({args.smooth} fr.) micro {sm['micro']:.3f} / macro {sm['macro']:.3f}; "
          f"object AUROC {obj:.3f}")
    for clip, a in raw["by_clip"].items():
        if not np.isnan(a):
            print(f"  {clip}: {a:.3f}")


if __name__ == "__main__":
    main()
