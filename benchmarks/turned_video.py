"""Does ``adtk extract`` name the right turn for a video on its side or upside down?

Every 10th frame of the shared MOTChallenge sequences (PETS09-S2L1, TUD-Stadtmitte; people
walking, official person boxes not needed here) is shown to the extractor's check
(``toolkit.video.extract._turned_people``, the default YOLOX person detector) as it is and
turned by 90 degrees either way and by 180: upright frames must get no hint, turned ones the
turn that makes them upright again. Prints, per sequence and turn, how many frames got the
right answer.

    python benchmarks/turned_video.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from toolkit.config import ExtractConfig
from toolkit.video.detect import create
from toolkit.video.findings import turned_people as _turned_people

#: how a video was turned (cv2 code; None: not at all) -> the turn that undoes it
CASES = {None: None, cv2.ROTATE_90_COUNTERCLOCKWISE: "90 clockwise",
         cv2.ROTATE_90_CLOCKWISE: "90 counter-clockwise", cv2.ROTATE_180: "180"}
NAMES = {None: "upright", cv2.ROTATE_90_COUNTERCLOCKWISE: "turned 90 counter-clockwise",
         cv2.ROTATE_90_CLOCKWISE: "turned 90 clockwise", cv2.ROTATE_180: "turned 180"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--data", type=Path, default=here.parent / "shared" / "data")
    ap.add_argument("--every", type=int, default=10, help="every Nth frame (default 10)")
    args = ap.parse_args()
    cfg = ExtractConfig()
    det = create("yolox", cfg)
    print("| sequence | video | right answer | frames |\n| --- | --- | ---: | ---: |")
    for seq in ("PETS09-S2L1", "TUD-Stadtmitte"):
        cap = cv2.VideoCapture(str(args.data / "mot" / seq / f"{seq}.mp4"))
        frames, i = [], 0
        while True:
            ok, f = cap.read()
            if not ok:
                break
            if i % args.every == 0:
                frames.append(f)
            i += 1
        t0 = time.perf_counter()
        for turned, fix in CASES.items():
            right = sum(_turned_people(det, f if turned is None else cv2.rotate(f, turned), cfg)
                        == fix for f in frames)
            print(f"| {seq} | {NAMES[turned]} | {right} | {len(frames)} |", flush=True)
        print(f"<!-- {seq}: {time.perf_counter() - t0:.1f} s -->")


if __name__ == "__main__":
    main()
