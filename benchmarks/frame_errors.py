"""Where a run's raw frame AUROC is lost: by what tops the normal frames, by abnormal clip.

Frame AUROC (micro) is one minus the share of (abnormal frame, normal frame) pairs that the
scores order wrongly (ties count half). This script splits that share, per finished run of
``adtk bench --frame-labels``:

- by the **normal** frame of each wrong pair, grouped by the frame's highest-scored crop:
  ``anomalous object`` (the crop's track holds a crop labelled abnormal on some other frame:
  e.g. a biker a few frames before the frame labels' interval starts), ``frame edge`` (its box
  within 2 px of the frame's border: objects half in view), ``other``, or ``no crop``;
- by the **abnormal** frame of each wrong pair, grouped by clip: a clip whose anomaly the
  scorer cannot see costs its whole length here;
- and the micro AUROC with the clips given by ``--leave-out`` removed (a diagnostic: which
  part of the gap one clip is; not a protocol to report).

Both splits add up to ``1 - micro``. The crops' boxes, tracks and labels come from the run's
data manifest (``config.json``'s ``data``); frame sizes from the source videos (found through
the manifests' metadata); where a video cannot be opened, only its left and top edges count.
No training: seconds per run.

    python benchmarks/frame_errors.py runs/ped2/*/ --leave-out test_10

Data credit when run on UCSD Ped2: Mahadevan et al., "Anomaly detection in crowded scenes",
CVPR 2010.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.data.manifest import read_manifest

EDGE_PX = 2


def frame_sizes(manifest: pd.DataFrame, data: Path) -> dict[str, tuple[float, float] | None]:
    """(width, height) per video, probed from the source videos that ``adtk extract`` read
    (found through the manifest's metadata, as the report's credits find them); None for a
    video that cannot be opened (then only its left and top edges can be told)."""
    from toolkit.eval.report import _source_inputs
    from toolkit.video.reader import probe

    roots = [Path(r) for r in _source_inputs(data)]
    out: dict[str, tuple[float, float] | None] = {}
    for video in manifest["video"].astype(str).unique():
        out[video] = None
        for root in roots:
            path = root / video if root.is_dir() else root
            try:
                info = probe(path)
            except Exception:  # noqa: BLE001 - moved or missing: try the next, else unknown
                continue
            out[video] = (float(info.width), float(info.height))
            break
    return out


def wrong_pairs(abnormal: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, its wrongly ordered pairs: for a normal frame the abnormal frames scored
    below it (ties half), for an abnormal frame the normal frames scored above it."""
    ab, no = np.sort(score[abnormal]), np.sort(score[~abnormal])
    below = np.searchsorted(ab, score, "left") + 0.5 * (
        np.searchsorted(ab, score, "right") - np.searchsorted(ab, score, "left"))
    above = len(no) - np.searchsorted(no, score, "right") + 0.5 * (
        np.searchsorted(no, score, "right") - np.searchsorted(no, score, "left"))
    return np.where(~abnormal, below, 0.0), np.where(abnormal, above, 0.0)


_DATA: dict[Path, tuple[pd.DataFrame, dict]] = {}  # per manifest: its rows and frame sizes


def _data_file(run: Path, data: str) -> Path:
    """The run's ``--data`` as bench stored it (as typed): as given, else relative to the
    folder above the runs folder, where bench was run from."""
    for p in (Path(data), run.parent.parent / data):
        if p.is_file():
            return p.resolve()
    raise SystemExit(f"{run}: its data manifest {data} is not found (from here or from "
                     f"{run.parent.parent})")


def analyse(run: Path, leave_out: list[str]) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    data = _data_file(run, str(cfg["data"]))
    frames = pd.read_parquet(run / "frame_scores.parquet")
    scores = pd.read_parquet(run / "scores.parquet", columns=["sample_id", "split", "score"])
    scores = scores[scores.split == "test"]
    if data not in _DATA:
        man = read_manifest(data)
        _DATA[data] = man, frame_sizes(man[man.split == "test"] if "split" in man else man,
                                       data)
    man, sizes = _DATA[data]
    crops = scores.merge(
        man[["crop_id", "video", "frame_idx", "x", "y", "w", "h", "sequence_id", "label"]],
        left_on="sample_id", right_on="crop_id", validate="one_to_one")
    known = crops.video.map(lambda v: sizes.get(v) is not None).to_numpy()
    fw = crops.video.map(lambda v: (sizes.get(v) or (np.inf, np.inf))[0]).to_numpy()
    fh = crops.video.map(lambda v: (sizes.get(v) or (np.inf, np.inf))[1]).to_numpy()
    edge = ((crops.x <= EDGE_PX) | (crops.y <= EDGE_PX)
            | (crops.x + crops.w >= fw - EDGE_PX) | (crops.y + crops.h >= fh - EDGE_PX))
    anomalous = crops.sequence_id.isin(set(man.loc[man.label == "abnormal", "sequence_id"]))
    crops["kind"] = np.where(anomalous, "anomalous object", np.where(edge, "frame edge", "other"))
    top = crops.sort_values("score").groupby(["video", "frame_idx"]).tail(1)
    f = frames[["video", "frame_idx", "abnormal", "score"]].merge(
        top[["video", "frame_idx", "kind"]], on=["video", "frame_idx"], how="left")
    f["kind"] = f["kind"].fillna("no crop")
    abn = f.abnormal.to_numpy().astype(bool)
    if abn.all() or not abn.any():
        raise SystemExit(f"{run}: its scored frames are all of one class; no AUROC to split")
    by_normal, by_abnormal = wrong_pairs(abn, f.score.to_numpy(np.float64))
    pairs = abn.sum() * (~abn).sum()
    clip = f.video.map(lambda v: Path(v).stem)
    kept = ~clip.isin(leave_out)
    return {
        "run": run.name, "method": cfg["method"], "input": cfg.get("input"),
        "seed": cfg.get("seed"), "split": data.stem,
        "micro": roc_auc_score(abn, f.score),
        "micro_left_out": (roc_auc_score(abn[kept], f.score[kept])
                           if leave_out and len(set(abn[kept])) == 2 else None),
        "left_out_found": sorted(set(leave_out) & set(clip)),
        "frame_size_unknown": sorted({v for v, k in zip(crops.video, known, strict=True)
                                      if not k}),
        "by_normal_top_crop": (pd.Series(by_normal).groupby(f["kind"]).sum() / pairs).to_dict(),
        "by_abnormal_clip": (pd.Series(by_abnormal).groupby(clip).sum() / pairs)
        .loc[lambda s: s > 0].to_dict(),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders of adtk bench --frame-labels")
    ap.add_argument("--leave-out", nargs="*", default=[], metavar="CLIP",
                    help="clip names (file stems) to leave out of the extra micro column")
    ap.add_argument("--json", action="store_true", help="print one JSON object per run")
    args = ap.parse_args(argv)
    runs = [r for r in args.runs if (r / "frame_scores.parquet").exists()]
    if not runs:
        sys.exit("no run folder with frame_scores.parquet among the arguments")
    seen_clips: set[str] = set()
    for run in runs:
        r = analyse(run, args.leave_out)
        seen_clips |= set(r["left_out_found"])
        if r["frame_size_unknown"]:
            print(f"note: {run.name}: frame size unknown for {len(r['frame_size_unknown'])} "
                  "video(s) (source not found): only their left and top edges count as the "
                  "frame's edge", file=sys.stderr)
        if args.json:
            print(json.dumps(r))
            continue
        left = (f"  without {', '.join(args.leave_out)}: {r['micro_left_out']:.3f}"
                if r["micro_left_out"] is not None else "")
        print(f"{r['run']}  {r['method']} {r['input']} seed {r['seed']} ({r['split']}): "
              f"raw micro {r['micro']:.3f}{left}")
        print("  lost, by the normal frame's top crop: " + ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(r["by_normal_top_crop"].items())))
        clips = sorted(r["by_abnormal_clip"].items(), key=lambda kv: -kv[1])
        print("  lost, by abnormal clip: " + ", ".join(f"{k} {v:.3f}" for k, v in clips))
    missing = sorted(set(args.leave_out) - seen_clips)
    if missing:
        print(f"note: --leave-out {', '.join(missing)}: no such clip among the runs' test "
              "frames", file=sys.stderr)


if __name__ == "__main__":
    main()
