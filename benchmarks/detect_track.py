"""Person detection and tracking against box ground truth (MOTChallenge 2015 sequences).

For each detector and tracker, on PETS09-S2L1 and TUD-Stadtmitte from ``../shared/data/mot``,
at every frame and at ``adtk extract``'s default sampling (2 frames per second): precision,
recall (one-to-one matching at IoU >= 0.5), MOTA, IDF1 and identity switches (py-motmetrics),
and the speed in video frames per second: wall clock, and per second of this process's CPU
time (all its threads; with ``--threads 1`` that is what one idle core would give, a fair
figure on a machine that other jobs load).

- ``extract`` rows run :func:`toolkit.video.extract.extract_video` end to end (decoding,
  motion model, detector, tracker, track filters, crop writing) and score the boxes of the
  crops it keeps: what a user gets.
- ``tracker`` rows feed the same per-frame detections (``--target person``, the default
  detector) to each tracker, then drop tracks shorter than 3 boxes as extract does (no gap
  bridging here): adtk's tracker with its velocity fitted over 1 s (the default), over the
  last step only, and without prediction; and each library tracker that is importable:
  supervision's ByteTrack (supervision <= 0.26), norfair, boxmot's ByteTrack and OC-SORT,
  ``trackers``' ByteTrack, SORT and OC-SORT. They are not dependencies of adtk (they need the
  full ``opencv-python``, or numpy < 2); to compare them, install them into a folder of
  their own and put it first on the path, e.g.

    pip install --no-deps --target /tmp/trk supervision==0.26.1 norfair==2.3.0 \
        boxmot==25.0.0 filterpy lapx rich
    PYTHONPATH=/tmp/trk python benchmarks/detect_track.py --only tracker

    python benchmarks/detect_track.py                 # everything (several minutes)
    python benchmarks/detect_track.py --only extract --detector yolox
    python benchmarks/detect_track.py --threads 2 --sequence PETS09-S2L1

Data: L. Leal-Taixe et al., "MOTChallenge 2015", arXiv:1504.01942; PETS 2009 (Ferryman and
Shahrokni); TUD-Stadtmitte (Andriluka, Roth, Schiele, CVPR 2010). Research use only.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest
from toolkit.eval.mot import evaluate, read_gt

MOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
SEQUENCES = ("PETS09-S2L1", "TUD-Stadtmitte")
#: every frame: a sampling rate above any video's frame rate
EVERY = 1000.0

#: the issue's table, measured with adtk before this work (every frame)
BEFORE = {
    ("PETS09-S2L1", "auto (old default)"): (0.569, 0.549, 0.110, 0.237, 106),
    ("PETS09-S2L1", "motion (old)"): (0.709, 0.691, 0.384, 0.297, 101),
    ("PETS09-S2L1", "hog (old)"): (0.003, 0.000, -0.160, 0.001, 0),
    ("TUD-Stadtmitte", "auto (old default)"): (0.128, 0.132, -0.791, 0.074, 31),
    ("TUD-Stadtmitte", "motion (old)"): (0.336, 0.424, -0.446, 0.202, 42),
    ("TUD-Stadtmitte", "hog (old)"): (0.012, 0.005, -0.420, 0.006, 0),
}

#: (label, settings) of the extract rows; the first is adtk extract's default
DETECTORS = {
    "yolox": ("yolox, person (default)", dict()),
    "yolox-windows": ("yolox, person, --yolox-windows", dict(yolox_windows=True)),
    "yolox-object": ("yolox, object", dict(target="object")),
    "hog": ("hog, person", dict(detector="hog")),
    "auto": ("auto (hog+motion), person", dict(detector="auto")),
    "motion": ("motion, object", dict(detector="motion", target="object")),
}


def sampled_frames(n: int, fps: float, target: float) -> list[int]:
    """The frame indices :func:`toolkit.video.reader.iter_sampled` yields."""
    stride = max(1.0, fps / target)
    out, k = [], 0
    for i in range(n):
        if i >= math.ceil(k * stride - 1e-9):
            out.append(i)
            k += 1
    return out


#: PETS09-S2L1 as a high-resolution camera (``--sequence PETS09-S2L1-2x2``, not run by
#: default): four stretches of it (frames 0, 200, 400 and 595 on, 200 frames each) side by
#: side in a 2x2 mosaic, 1536x1152: the same people at the same pixel size in a frame twice
#: as wide, as a wide-angle HD camera sees them; ground truth moved with each tile
MOSAIC = "PETS09-S2L1-2x2"
MOSAIC_OFFSETS = (0, 200, 400, 595)
MOSAIC_FRAMES = 200
#: sequences built in this run's temporary folder: name -> (video, ground truth)
_BUILT: dict[str, tuple[Path, pd.DataFrame]] = {}


def _video(seq: str) -> Path:
    return _BUILT[seq][0] if seq in _BUILT else MOT / seq / f"{seq}.mp4"


def _gt(seq: str) -> pd.DataFrame:
    return _BUILT[seq][1] if seq in _BUILT else read_gt(MOT / seq / "gt.csv")


def build_mosaic(tmp: Path) -> tuple[Path, pd.DataFrame]:
    """Write :data:`MOSAIC` (MJPG AVI, quality 95, 7 fps) and its ground truth."""
    import cv2

    src = MOT / "PETS09-S2L1"
    cap = cv2.VideoCapture(str(src / "PETS09-S2L1.mp4"))
    frames = []
    ok, f = cap.read()
    while ok:
        frames.append(f)
        ok, f = cap.read()
    cap.release()
    h, w = frames[0].shape[:2]
    path = tmp / f"{MOSAIC}.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7, (2 * w, 2 * h))
    out.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for i in range(MOSAIC_FRAMES):
        t = [frames[o + i] for o in MOSAIC_OFFSETS]
        out.write(np.vstack([np.hstack(t[:2]), np.hstack(t[2:])]))
    out.release()
    gt, parts = read_gt(src / "gt.csv"), []
    for k, o in enumerate(MOSAIC_OFFSETS):
        g = gt[(gt["frame_idx"] >= o) & (gt["frame_idx"] < o + MOSAIC_FRAMES)].copy()
        g["frame_idx"] -= o
        g["x"] += (k % 2) * w
        g["y"] += (k // 2) * h
        g["track_id"] += 1000 * k
        parts.append(g)
    return path, pd.concat(parts, ignore_index=True)


def run_extract_row(seq: str, gt: pd.DataFrame, settings: dict, fps: float, tmp: Path):
    from toolkit.video.extract import extract_video
    from toolkit.video.reader import probe

    info = probe(_video(seq))
    cfg = ExtractConfig(fps=fps, workers=1, **settings)
    out = tmp / f"{seq}-{abs(hash((str(settings), fps)))}"
    t0, c0 = time.perf_counter(), time.process_time()
    summary = extract_video(_video(seq), _video(seq).name, out, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    df = read_manifest(out / "videos" / summary["video_id"] / "part.parquet")
    hyp = df[["frame_idx", "track_id", "x", "y", "w", "h"]]
    frames = sampled_frames(info.frame_count, info.fps, fps)
    scores = evaluate(gt, hyp, frames=frames)
    return scores, (info.frame_count / wall, info.frame_count / cpu), summary


def detections(seq: str, fps: float, settings: dict | None = None):
    """Per sampled frame ``(frame_idx, time_s, boxes, scores)`` from the default pipeline."""
    from toolkit.video.detect import DetectionPipeline, create
    from toolkit.video.reader import iter_sampled, probe

    cfg = ExtractConfig(fps=fps, **(settings or {}))
    info = probe(_video(seq))
    sample_fps = min(fps, info.fps)
    pipe = DetectionPipeline(cfg, (info.width, info.height), sample_fps, create(cfg.detector, cfg))
    stop = max(2, int(round(cfg.motion_warmup_s * info.fps)))
    pipe.init_background([f for _, _, f in iter_sampled(_video(seq), fps, stop_frame=stop)])
    out, batch = [], []
    t0 = time.perf_counter()

    def flush():
        for (fi, t, _), d in zip(batch, pipe.process([f for *_, f in batch]), strict=True):
            out.append((fi, t, d.boxes, d.scores))
        batch.clear()

    for item in iter_sampled(_video(seq), fps):
        batch.append(item)
        if len(batch) >= pipe.detector.batch_size:
            flush()
    if batch:
        flush()
    return out, time.perf_counter() - t0


def trackers(sample_fps: float, max_gap: float):
    """name -> a function ``make() -> update(t, boxes, scores) -> ids`` (fresh state per make).

    Library trackers join when importable; each is given the same lost-track time
    (``max_gap`` seconds) and reports a track from its first box (``--min-track`` is applied
    afterwards to every tracker alike).
    """
    from toolkit.video.track import IouTracker

    def ours(predict: bool, window: float = 1.0):
        def make():
            tr = IouTracker(max_gap=max_gap, predict=predict, window=window)
            return lambda t, b, s: tr.update(t, b)

        return make

    out = {
        "adtk (velocity fitted over 1 s, default)": ours(True),
        "adtk (velocity from the last step)": ours(True, 0.0),
        "adtk (plain IoU)": ours(False),
    }
    lost_frames = max(1, int(round(max_gap * sample_fps)))
    for name, make in _library_trackers(sample_fps, max_gap, lost_frames).items():
        out[name] = make
    return out


def _library_trackers(fps: float, max_gap: float, lost: int) -> dict:
    out = {}
    try:
        import supervision as sv

        if hasattr(sv, "ByteTrack"):  # removed from supervision after 0.26

            def sv_bytetrack():
                # its buffer counts frames at 30 frames/s, scaled by frame_rate
                tr = sv.ByteTrack(track_activation_threshold=0.5, frame_rate=fps,
                                  lost_track_buffer=int(round(max_gap * 30)))

                def update(t, b, s):
                    d = sv.Detections(xyxy=b.astype(float).reshape(-1, 4),
                                      confidence=s.astype(float),
                                      class_id=np.zeros(len(b), int),
                                      data={"i": np.arange(len(b))})
                    o = tr.update_with_detections(d)
                    ids = np.full(len(b), -1)
                    if len(o):
                        ids[o.data["i"]] = o.tracker_id
                    return ids

                return update

            out[f"supervision {sv.__version__} ByteTrack"] = sv_bytetrack
    except ImportError:
        pass
    try:
        import norfair

        def norfair_iou():
            tr = norfair.Tracker(distance_function="iou", distance_threshold=0.7,
                                 hit_counter_max=lost, initialization_delay=0)

            def update(t, b, s):
                dets = [norfair.Detection(points=bb.reshape(2, 2).astype(float),
                                          scores=np.array([ss, ss]), data=i)
                        for i, (bb, ss) in enumerate(zip(b, s, strict=True))]
                now = {id(d) for d in dets}
                ids = np.full(len(b), -1)
                for o in tr.update(detections=dets):
                    # objects not seen on this frame are returned too, with an older box
                    if o.last_detection is not None and id(o.last_detection) in now:
                        ids[o.last_detection.data] = o.id
                return ids

            return update

        out["norfair (IoU, Kalman)"] = norfair_iou
    except ImportError:
        pass
    try:
        import boxmot

        def boxmot_tracker(name, **kw):
            def make():
                tr = getattr(boxmot, name)(min_conf=0.1, min_hits=1, **kw)
                blank = np.zeros((8, 8, 3), np.uint8)  # no appearance model: frame unused

                def update(t, b, s):
                    d = np.concatenate(
                        [b.reshape(-1, 4), s.reshape(-1, 1), np.zeros((len(b), 1))], axis=1
                    ).astype(np.float32)
                    o = np.asarray(tr.update(d, blank))
                    ids = np.full(len(b), -1)
                    if len(o):  # rows: x0 y0 x1 y1 id conf class detection-index
                        ids[o[:, 7].astype(int)] = o[:, 4].astype(int)
                    return ids

                return update

            return make

        v = boxmot.__version__
        out[f"boxmot {v} ByteTrack"] = boxmot_tracker(
            "ByteTrack", track_thresh=0.6, track_buffer=int(round(max_gap * 30)),
            frame_rate=max(1, int(round(fps))),
        )
        out[f"boxmot {v} OC-SORT"] = boxmot_tracker("OcSort", det_thresh=0.6, max_age=lost)
    except ImportError:
        pass
    try:
        import supervision as sv
        import trackers as trk
    except ImportError:
        return out

    def lib(cls, **kw):
        def make():
            tr = cls(frame_rate=fps, lost_track_buffer=lost, minimum_consecutive_frames=1, **kw)

            def update(t, b, s):
                d = sv.Detections(
                    xyxy=b.astype(float), confidence=s.astype(float),
                    data={"i": np.arange(len(b))},
                )
                o = tr.update(d)
                ids = np.full(len(b), -1)
                if len(o):
                    ids[o.data["i"]] = o.tracker_id
                return ids

            return update

        return make

    out["trackers ByteTrack"] = lib(trk.ByteTrackTracker, track_activation_threshold=0.6)
    out["trackers SORT"] = lib(trk.SORTTracker)
    out["trackers OC-SORT"] = lib(trk.OCSORTTracker)
    return out


def track_rows(seq, gt, fps, min_track=3, max_gap=2.0):
    from toolkit.video.reader import probe

    info = probe(_video(seq))
    dets, det_wall = detections(seq, fps)
    frames = [fi for fi, *_ in dets]
    rows = []
    for name, make in trackers(min(fps, info.fps), max_gap).items():
        update = make()
        recs = []
        t0 = time.perf_counter()
        for fi, t, boxes, scores in dets:
            ids = update(t, boxes, scores)
            for b, i in zip(boxes[ids >= 0], ids[ids >= 0], strict=True):
                recs.append((fi, int(i), b[0], b[1], b[2] - b[0], b[3] - b[1]))
        wall = time.perf_counter() - t0
        hyp = pd.DataFrame(recs, columns=["frame_idx", "track_id", "x", "y", "w", "h"])
        n = hyp.groupby("track_id").size()
        hyp = hyp[hyp["track_id"].isin(n[n >= min_track].index)]
        rows.append((name, evaluate(gt, hyp, frames=frames), len(frames) / max(wall, 1e-9)))
    return rows, len(frames) / det_wall


def _fmt(label, s, speed, unit):
    return (
        f"| {label} | {s.precision:.3f} | {s.recall:.3f} | {s.mota:.3f} | {s.idf1:.3f} | "
        f"{s.id_switches} | {speed:.0f} {unit} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=["extract", "tracker"], help="one kind of row")
    ap.add_argument("--detector", action="append", choices=list(DETECTORS),
                    help="extract rows for these detectors (default: all)")
    ap.add_argument("--sequence", action="append", choices=[*SEQUENCES, MOSAIC],
                    help=f"default: {', '.join(SEQUENCES)}; {MOSAIC}: PETS09-S2L1 as a "
                    "1536x1152 camera (a 2x2 mosaic of four stretches, 200 frames)")
    ap.add_argument("--sampling", choices=["every", "default", "both"], default="both")
    ap.add_argument("--threads", type=int, default=0,
                    help="OpenCV / onnxruntime threads (0: all cores)")
    ap.add_argument("--yolox-size", type=int, action="append",
                    help="extract rows at these YOLOX input sizes (default: adtk's default)")
    args = ap.parse_args()
    if not MOT.is_dir():
        sys.exit(f"{MOT}: not found (the MOTChallenge sequences of ../shared/data/mot)")
    if args.threads:
        import cv2

        cv2.setNumThreads(args.threads)
    rates = {"every": [EVERY], "default": [ExtractConfig().fps], "both": [EVERY, 2.0]}
    rates = rates[args.sampling]
    print(f"# load average before: {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for seq in args.sequence or SEQUENCES:
            if seq == MOSAIC and seq not in _BUILT:
                _BUILT[seq] = build_mosaic(Path(tmp))
            gt = _gt(seq)
            print(f"\n## {seq}\n")
            print("| run | precision | recall | MOTA | IDF1 | ID switches | speed |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for (s, label), v in BEFORE.items():
                if s == seq:
                    print(f"| before: {label}, every frame | {v[0]:.3f} | {v[1]:.3f} | "
                          f"{v[2]:.3f} | {v[3]:.3f} | {v[4]} | |")
            for fps in rates:
                when = "every frame" if fps == EVERY else f"{fps:g} fps"
                if args.only in (None, "extract"):
                    for key in args.detector or list(DETECTORS):
                        for size in args.yolox_size or [None]:
                            label, settings = DETECTORS[key]
                            if size is not None:
                                settings = {**settings, "yolox_size": size}
                                label = f"{label}, --yolox-size {size}"
                            scores, (speed, per_cpu), _ = run_extract_row(
                                seq, gt, settings, fps, Path(tmp)
                            )
                            unit = f"frames/s ({per_cpu:.0f} per CPU-second)"
                            print(_fmt(f"extract: {label}, {when}", scores, speed, unit),
                                  flush=True)
                if args.only in (None, "tracker"):
                    rows, det_speed = track_rows(seq, gt, fps)
                    for name, scores, speed in rows:
                        print(_fmt(f"tracker: {name}, {when}", scores, speed,
                                   "sampled frames/s (tracker alone)"), flush=True)
    print(f"\n# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
