"""Why a crop manifest misses anomalous regions, and what its crops cost.

Input: a crop manifest (``adtk extract ... --regions FILE``) and the same region file (the
format of UCSD Ped2's ``anomaly_regions.csv``). Prints, for the regions of at least
``--min-area`` pixels on the extracted frames:

* recall per event (a crop box with IoU >= 0.3 covers the region, the rule of ``adtk extract``);
* why each missed region is missed, judged by the crop that overlaps it most:
  ``no crop`` (nothing on its frame touches it), ``merged`` (that crop is more than 1.5 times
  the region's area: the object boxed together with others), ``partial`` (less than 2/3 of it:
  a part, e.g. the rider without the bike), ``offset`` (about its size, but shifted);
* what the crops cost: crops per frame, by source (confident detector box, weak box below
  ``--strong``, motion blob, bridged), and duplicates (a crop with IoU >= 0.5 with a
  better-scored crop of its frame: the same object twice).

    python benchmarks/region_recall.py CROPS/manifest.parquet REGIONS.csv [--strong 0.6]
        [--misses misses.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.data.manifest import read_manifest
from toolkit.video.geometry import area, iou_matrix
from toolkit.video.labels import LARGE_REGION_PX, REGION_IOU, read_regions

CAUSES = ("covered", "no crop", "merged", "partial", "offset")


def _xyxy(df: pd.DataFrame) -> np.ndarray:
    x, y = df["x"].to_numpy(np.float64), df["y"].to_numpy(np.float64)
    return np.stack([x, y, x + df["w"].to_numpy(np.float64), y + df["h"].to_numpy(np.float64)], 1)


def miss_cause(crops: np.ndarray, region: np.ndarray) -> tuple[str, float]:
    """``(cause, best IoU)`` for one region box (4,) against its frame's crop boxes (N, 4)."""
    if not len(crops):
        return "no crop", 0.0
    iou = iou_matrix(crops, region[None])[:, 0]
    if iou.max() >= REGION_IOU:
        return "covered", float(iou.max())
    x0 = np.maximum(crops[:, 0], region[0])
    x1 = np.minimum(crops[:, 2], region[2])
    y0 = np.maximum(crops[:, 1], region[1])
    y1 = np.minimum(crops[:, 3], region[3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    if inter.max() <= 0:
        return "no crop", 0.0
    ratio = area(crops[int(inter.argmax())][None])[0] / max(area(region[None])[0], 1e-9)
    cause = "merged" if ratio > 1.5 else "partial" if ratio < 2 / 3 else "offset"
    return cause, float(iou.max())


def _video_key(manifest_videos: list[str], region_video: str) -> str | None:
    """The manifest video a region row names (paths may differ by a leading folder)."""
    for v in manifest_videos:
        if region_video == v or region_video.endswith("/" + v) or v.endswith("/" + region_video):
            return v
    return None


def analyse(crops: pd.DataFrame, regions: pd.DataFrame, min_area: int) -> pd.DataFrame:
    """One row per region on an extracted frame: its event, cause and best IoU."""
    videos = sorted(crops["video"].unique())
    regions = regions.assign(mvideo=[_video_key(videos, v) for v in regions["video"]])
    regions = regions[regions["mvideo"].notna() & (regions["area_px"] >= min_area)]
    by_frame = {k: g for k, g in crops.groupby(["video", "frame_idx"])}
    # the regions' event: the interval event of the crops of that video (Ped2: one per clip)
    events = crops.dropna(subset=["event"]).groupby("video")["event"].agg(
        lambda s: s.value_counts().index[0]
    )
    rows = []
    for r in regions.itertuples(index=False):
        g = by_frame.get((r.mvideo, r.frame_idx))
        box = np.asarray([r.x, r.y, r.x + r.w, r.y + r.h], np.float64)
        cause, best = miss_cause(_xyxy(g) if g is not None else np.zeros((0, 4)), box)
        rows.append((r.mvideo, r.frame_idx, r.x, r.y, r.w, r.h, r.area_px,
                     events.get(r.mvideo, "-"), cause, best))
    return pd.DataFrame(rows, columns=["video", "frame_idx", "x", "y", "w", "h", "area_px",
                                       "event", "cause", "best_iou"])


def crop_costs(crops: pd.DataFrame, strong: float) -> pd.DataFrame:
    """Crops per source and how many duplicate a better-scored crop of their frame."""
    src = np.where(
        crops["detector"] == "bridged", "bridged",
        np.where(crops["object_class"].isna(), "motion blob",
                 np.where(crops["det_score"] >= strong, "confident box", "weak box")),
    )
    boxes, scores = _xyxy(crops), crops["det_score"].to_numpy()
    dup = np.zeros(len(crops), bool)
    for idx in crops.groupby(["video", "frame_idx"]).indices.values():
        if len(idx) > 1:
            iou = iou_matrix(boxes[idx], boxes[idx])
            np.fill_diagonal(iou, 0.0)
            dup[idx] = ((iou >= 0.5) & (scores[idx][None, :] > scores[idx][:, None])).any(1)
    out = pd.DataFrame({"source": src, "duplicate": dup}).groupby("source").agg(
        crops=("duplicate", "size"), duplicates=("duplicate", "sum")
    )
    out.loc["all"] = out.sum()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("regions", type=Path)
    ap.add_argument("--min-area", type=int, default=LARGE_REGION_PX,
                    help="regions of at least this many pixels (default: %(default)s)")
    ap.add_argument("--strong", type=float, default=0.6,
                    help="detector scores from this up are 'confident' (default: yolox's 0.6)")
    ap.add_argument("--misses", type=Path, help="write the missed regions to this CSV")
    a = ap.parse_args()
    crops = read_manifest(a.manifest)
    res = analyse(crops, read_regions(a.regions), a.min_area)
    print(f"regions >= {a.min_area} px on extracted frames: {len(res)}; "
          f"covered {(res['cause'] == 'covered').mean():.1%}")
    tab = pd.crosstab(res["cause"], res["event"], margins=True, margins_name="all")
    print(tab.reindex([c for c in CAUSES if c in tab.index] + ["all"]).to_string())
    rec = res.assign(c=res["cause"] == "covered").groupby("event")["c"].mean()
    print("recall per event: " + ", ".join(f"{k} {v:.1%}" for k, v in rec.items()))
    n_frames = crops.groupby(["video", "frame_idx"]).ngroups
    print(f"\ncrops: {len(crops)} on {n_frames} frames with crops "
          f"({len(crops) / max(n_frames, 1):.1f} per frame)")
    print(crop_costs(crops, a.strong).to_string())
    if a.misses:
        res[res["cause"] != "covered"].to_csv(a.misses, index=False)


if __name__ == "__main__":
    main()
