"""Finished runs' frame scores, scored the way published Ped2 numbers were computed.

Papers report "frame AUROC" on UCSD Ped2 computed in different ways; their public evaluation
code shows which (read there, not inferred from the papers):

- ``raw micro`` (VEC, Yu et al., ACM MM 2020, ``test.py``): a frame's highest box score, all
  test frames of all clips in one ROC. This is adtk's ``frame_auroc_micro``.
- ``clip min-max`` (MNAD, Park et al., CVPR 2020, ``utils.py``; ``ano_pred``, Liu et al.,
  CVPR 2018): each clip's frame scores scaled to 0-1, then one ROC. adtk's
  ``frame_auroc_micro_clipnorm``.
- ``median 17`` (HF2-VAD, Liu et al., ICCV 2021, ``eval.py`` and ``utils/eval_utils.py``):
  each clip's first 4 frames left out (the model needs 4 past frames), the rest through
  ``scipy.signal.medfilt(scores, 17)`` (a centred median of 17 frames, zeros past the clip's
  ends), then one ROC over all clips.
- ``gaussian 3`` (Reiss and Hoshen, "Attribute-based representations for accurate and
  interpretable video anomaly detection", 2022; ``talreiss/Accurate-Interpretable-VAD``,
  ``evaluate.py``, ``--sigma 3``, the value its README gives for Ped2): each clip's frame
  scores (the highest object score) through ``scipy.ndimage.gaussian_filter1d(scores, 3)``,
  then one ROC over all clips (its 99.1 on Ped2).

This script reads ``frame_scores.parquet`` (written by ``adtk bench --frame-labels``; its
``score`` column is the raw frame score, a frame's highest crop score unless the run chose
otherwise) of each run folder given, prints those AUROCs per run, their mean per method, input
and protocol (the few-shot seeds' manifests pooled), and on how many seeds each method beats
``--against`` (default: the baseline) on the same split. No training, no crops: seconds.

    python benchmarks/published_protocols.py runs/ped2/*/

Data credit when run on UCSD Ped2: Mahadevan et al., "Anomaly detection in crowded scenes",
CVPR 2010.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import medfilt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.eval.metrics import auroc, frame_metrics

#: HF2-VAD's filter width and the frames it leaves out at each clip's start
MEDIAN_WIDTH, SKIP_START = 17, 4
#: Reiss and Hoshen's Gaussian sigma for Ped2, in frames
GAUSS_SIGMA = 3


def protocols(frames: pd.DataFrame) -> dict[str, float]:
    """AUROC of one run's frame table (video, frame_idx, abnormal, score) per protocol."""
    frames = frames.sort_values(["video", "frame_idx"], kind="stable")
    m = frame_metrics(frames)  # raw micro and clip min-max, as adtk bench computes them
    # HF2-VAD's eval.py drops each clip's first frames, then eval_utils.py filters the rest
    ym, sm, yg, sg = [], [], [], []
    for _, g in frames.groupby("video", sort=True):
        y, s = g["abnormal"].to_numpy(np.int8), g["score"].to_numpy(np.float64)
        ym.append(y[SKIP_START:])
        sm.append(medfilt(s[SKIP_START:], MEDIAN_WIDTH))
        yg.append(y)
        sg.append(gaussian_filter1d(s, GAUSS_SIGMA))  # scipy's default edges (reflect)
    return {
        "raw micro (VEC)": m["micro"],
        "clip min-max (MNAD)": m["micro_clipnorm"],
        f"median {MEDIAN_WIDTH} (HF2-VAD)": auroc(np.concatenate(ym), np.concatenate(sm)),
        f"gaussian {GAUSS_SIGMA} (Reiss)": auroc(np.concatenate(yg), np.concatenate(sg)),
    }


def split_group(data: str) -> str:
    """The protocol of a split manifest's name: 'ped2-fewshot-k3-seed4.parquet' ->
    'ped2-fewshot-k3' (the few-shot seeds, each its own manifest, are one group)."""
    return re.sub(r"-seed\d+$", "", Path(data).name.removesuffix(".parquet"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (adtk bench --out ...)")
    ap.add_argument("--against", default="baseline",
                    help="method the others are compared with, seed by seed on the same split "
                    "manifest (default: baseline)")
    args = ap.parse_args()
    groups: dict[tuple, list[tuple[int, dict]]] = defaultdict(list)
    by_split: dict[tuple, dict] = {}  # (method, input, manifest name) -> protocols
    for run in args.runs:
        fs = run / "frame_scores.parquet"
        if not fs.is_file():
            print(f"{run}: no frame_scores.parquet (run adtk bench with --frame-labels); "
                  "skipped", file=sys.stderr)
            continue
        cfg = json.loads((run / "config.json").read_text())
        res = protocols(pd.read_parquet(fs, columns=["video", "frame_idx", "abnormal",
                                                     "score"]))
        inp = cfg.get("input") or "appearance"
        key = (cfg.get("method"), inp, split_group(cfg["data"]))
        groups[key].append((cfg.get("seed"), res))
        by_split[(cfg.get("method"), inp, Path(cfg["data"]).name, cfg.get("seed"))] = res
        print(f"{run.name}  {key[0]:9s} {key[1]:10s} seed {cfg.get('seed')}  " + "  ".join(
            f"{k} {v:.3f}" for k, v in res.items()))
    if not groups:
        raise SystemExit("no run with frame scores")
    print(f"\nmean over the runs of each method, input and protocol (above {args.against}: "
          "seeds where the run beats it on the same split manifest):")
    for (method, inp, proto), rows in sorted(groups.items(), key=lambda kv: str(kv[0])):
        names = list(rows[0][1])
        means = {k: float(np.mean([r[k] for _, r in rows])) for k in names}
        seeds = ",".join(str(s) for s, _ in sorted(
            rows, key=lambda r: (not isinstance(r[0], int), r[0] if isinstance(r[0], int)
                                 else 0, str(r[0]))))
        line = f"{method:9s} {inp:10s} {proto}  seeds {seeds}  " + "  ".join(
            f"{k} {v:.3f}" for k, v in means.items())
        pairs = [(res, by_split[(args.against, i, d, s)]) for (m, i, d, s), res in
                 by_split.items() if (m, i, split_group(d)) == (method, inp, proto)
                 and method != args.against and (args.against, i, d, s) in by_split]
        if pairs:
            line += "\n    above " + args.against + ": " + "  ".join(
                f"{k} {sum(a[k] > b[k] for a, b in pairs)}/{len(pairs)}" for k in names)
        print(line)


if __name__ == "__main__":
    main()
