"""Throughput of ``adtk extract`` on the shared indoor clip, against decode-only and full HOG.

Prints: decode-only speed (grab every frame) and default-extract speed as multiples of real
time, their ratio, and the recall check of the issue: on how many sampled frames where a plain
full-frame HOG pass finds a person the default settings also find one (any box; and a box
overlapping HOG's). Clip: Intel IoT DevKit sample videos, CC-BY-4.0.

    python benchmarks/extract_throughput.py [--clip PATH] [--skip-hog] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest
from toolkit.video.detect import HogDetector, overlap_min
from toolkit.video.extract import run_extract
from toolkit.video.reader import iter_sampled, probe

CLIP = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/videos/one-by-one-person-detection.mp4"
)


def decode_only(path: Path) -> float:
    """Seconds to grab every frame."""
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    while cap.grab():
        pass
    cap.release()
    return time.perf_counter() - t


def timed_extract(clip: Path, cfg: ExtractConfig):
    """``adtk extract`` of ``clip`` into a temporary folder: (result, wall seconds including
    worker start-up, the manifest)."""
    out = Path(tempfile.mkdtemp(prefix="adtk-bench-"))
    try:
        t = time.perf_counter()
        res = run_extract(clip, out, cfg, progress=False)
        dt = time.perf_counter() - t
        return res, dt, read_manifest(out / "manifest.parquet")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def full_hog(path: Path, fps: float) -> tuple[dict[int, np.ndarray], float]:
    """Boxes of a plain full-frame HOG pass over every sampled frame, and its seconds."""
    hog = HogDetector(ExtractConfig())
    t = time.perf_counter()
    out = {fi: hog.detect_one(f, None).boxes for fi, _, f in iter_sampled(path, fps)}
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--skip-hog", action="store_true", help="skip the slow full-HOG reference")
    ap.add_argument("--repeat", type=int, default=0,
                    help="then time the defaults and --yolox-windows this many times each, "
                    "alternating (wall times on a shared machine vary; take the median)")
    args = ap.parse_args()
    info = probe(args.clip)
    dur = info.duration_s
    cfg = ExtractConfig()
    print(f"clip: {args.clip.name}, {info.width}x{info.height}, {info.fps:g} fps, {dur:.1f} s")
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")

    t_dec = decode_only(args.clip)
    print(f"decode only (grab every frame): {t_dec:.2f} s = {dur / t_dec:.1f}x real time")

    res, t_ext, df = timed_extract(args.clip, cfg)
    print(
        f"adtk extract (defaults: --fps {cfg.fps:g} --detector {cfg.detector}, motion gate on): "
        f"{t_ext:.2f} s wall incl. worker start = {dur / t_ext:.1f}x real time "
        f"({len(df)} crops, {df['sequence_id'].nunique()} sequences, failures: {len(res.failed)})"
    )
    print(f"ratio extract / decode-only wall time: {t_ext / t_dec:.1f}")
    for rep in range(args.repeat):
        for windows in (False, True):
            _, dt, df_rep = timed_extract(args.clip, ExtractConfig(yolox_windows=windows))
            print(f"repeat {rep + 1}, {'--yolox-windows' if windows else 'defaults':>15}: "
                  f"{dt:.2f} s = {dur / dt:.1f}x real time ({len(df_rep)} crops; load average "
                  f"{os.getloadavg()[0]:.2f})", flush=True)

    if args.skip_hog:
        return
    ref, t_hog = full_hog(args.clip, cfg.fps)
    print(
        f"full-frame HOG on all {len(ref)} sampled frames: {t_hog:.2f} s = "
        f"{dur / t_hog:.1f}x real time"
    )
    # rows dropped by --min-track are not in the manifest; recall is on what the user gets
    ours = {fi: g[["x", "y", "w", "h"]].to_numpy(float) for fi, g in df.groupby("frame_idx")}
    hog_frames = [fi for fi, b in ref.items() if len(b)]
    any_box = overlap = 0
    for fi in hog_frames:
        b = ours.get(fi)
        if b is None or not len(b):
            continue
        any_box += 1
        xyxy = np.c_[b[:, :2], b[:, :2] + b[:, 2:]]
        overlap += bool(overlap_min(xyxy, ref[fi]).max() > 0.3)
    n = len(hog_frames)
    print(
        f"recall vs full-frame HOG: HOG finds a person on {n} sampled frames; the default "
        f"finds one on {any_box} of them ({100 * any_box / max(n, 1):.1f}%), a box "
        f"overlapping HOG's on {overlap} ({100 * overlap / max(n, 1):.1f}%)"
    )


if __name__ == "__main__":
    main()
