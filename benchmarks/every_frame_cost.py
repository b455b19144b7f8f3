"""What extracting every frame costs against the default 2 fps, and what motion channels add.

Runs ``extract_video`` in this process (one core, no worker pool) on the given clips with each
setting and prints CPU seconds (``time.process_time``, robust to other jobs on a shared
machine), wall seconds, frames looked at and crops, per setting and per source frame.

    python benchmarks/every_frame_cost.py ../shared/data/ucsd-ped2/test/test_0{1,4,7}.mp4 \\
        [--detector auto] [--settings 2:none,0:none,0:flow,0:diff]
        [--target object] [--low-score 0.15]    # e.g. the Ped2 settings

All 28 Ped2 clips at the Ped2 settings, CPU time divided by the cores gives the wall time of
``adtk extract`` on an idle machine (one video per worker):

    python benchmarks/every_frame_cost.py ../shared/data/ucsd-ped2/*/*.mp4 --detector yolox \
        --target object --low-score 0.15 --settings 0:none
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from toolkit.config import ExtractConfig
from toolkit.video.extract import extract_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--target", default="person", choices=["person", "object"])
    ap.add_argument("--low-score", type=float, default=None,
                    help="keep weak boxes from this score up (extract --low-score)")
    ap.add_argument("--settings", default="2:none,0:none,0:flow,0:diff",
                    help="fps:motion_channels pairs (fps 0 = every frame)")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    frames_total = 0
    base = None
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    for setting in args.settings.split(","):
        fps, motion = setting.split(":")
        cfg = ExtractConfig(fps=float(fps), detector=args.detector, motion_channels=motion,
                            target=args.target, low_score=args.low_score)
        out = Path(tempfile.mkdtemp(prefix="adtk-cost-"))
        try:
            cpu, wall, crops, sampled, frames_total = 0.0, 0.0, 0, 0, 0
            for clip in args.clips:
                c0, w0 = time.process_time(), time.perf_counter()
                s = extract_video(clip, f"{clip.parent.name}/{clip.name}", out, cfg)
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
                crops += s["crops"]
                sampled += s["sampled_frames"]
                frames_total += s["frames"]
        finally:
            shutil.rmtree(out, ignore_errors=True)
        base = base or cpu
        print(
            f"fps {fps:>3} motion {motion:<5}: {cpu:6.1f} CPU s ({cpu / base:4.1f}x), "
            f"{wall:6.1f} wall s, {sampled} of {frames_total} frames looked at, {crops} crops; "
            f"{1000 * cpu / frames_total:5.1f} CPU ms per source frame"
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
