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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.engine.fuse import PAIR_KEYS
from toolkit.eval.metrics import (
    HF2VAD_MEDIAN,
    REISS_SIGMA,
    frame_metrics,
    published_smoothing,
)


def protocols(frames: pd.DataFrame) -> dict[str, float]:
    """AUROC of one run's frame table (video, frame_idx, abnormal, score) per protocol, by the
    same functions as ``adtk bench --frame-labels`` (its metrics.json keys ``frame_auroc_micro``,
    ``frame_auroc_micro_clipnorm``, ``frame_auroc_micro_hf2vad``, ``frame_auroc_micro_gauss3``):
    runs evaluated before those keys existed are scored here the same way."""
    m = frame_metrics(frames)
    p = published_smoothing(frames)
    return {
        "raw micro (VEC)": m["micro"],
        "clip min-max (MNAD)": m["micro_clipnorm"],
        f"median {HF2VAD_MEDIAN} (HF2-VAD)": p["frame_auroc_micro_hf2vad"],
        f"gaussian {REISS_SIGMA} (Reiss)": p["frame_auroc_micro_gauss3"],
    }


def split_group(data: str) -> str:
    """The protocol of a split manifest's name: 'ped2-fewshot-k3-seed4.parquet' ->
    'ped2-fewshot-k3' (the few-shot seeds, each its own manifest, are one group)."""
    return re.sub(r"-seed\d+$", "", Path(data).name.removesuffix(".parquet"))


#: config keys that do not make runs different variants (one variant's runs differ in these)
NOT_VARIANT = {"seed", "data", "data_sha256", "run_id", "out", "device", "num_threads",
               "cache_dir", "data_root", "fused_runs"}


def variant(cfg: dict) -> dict:
    """The settings that make a run's variant: its config (the method's own settings, under
    ``params``, flattened in) less the seed, the split and where it ran (so Table 3's
    oversize crops or the 30-epoch runs are not pooled with Table 2's)."""
    v = {k: x for k, x in cfg.items() if k not in NOT_VARIANT and k != "params"}
    return {**v, **(cfg.get("params") or {})}


def split_key(cfg: dict) -> str:
    """The split a run read: its manifest's content, else its resolved path."""
    return str(cfg.get("data_sha256") or Path(cfg["data"]).resolve())


def pair_up(runs: list[tuple[dict, dict]], against: str) -> list[tuple[int, int | None]]:
    """For each run (config, protocols), the index of its ``against`` partner: the run of that
    method on the same split, seed and network settings (the ``PAIR_KEYS`` by which the
    suite's fusion pairs runs); None when there is no partner or more than one (ambiguous:
    then it is not counted)."""
    out = []
    for i, (cfg, _) in enumerate(runs):
        if cfg.get("method") == against:
            out.append((i, None))
            continue
        cand = [j for j, (c, _) in enumerate(runs) if c.get("method") == against
                and split_key(c) == split_key(cfg)
                and all(c.get(k) == cfg.get(k) for k in PAIR_KEYS)]
        out.append((i, cand[0] if len(cand) == 1 else None))
    return out


def summarise(runs: list[tuple[dict, dict]], against: str = "baseline") -> list[dict]:
    """One row per variant and protocol: method, label (what sets it apart), seeds, mean of
    each protocol, and per protocol (above, paired) against the partner runs."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (cfg, _) in enumerate(runs):
        groups[json.dumps([split_group(cfg["data"]), variant(cfg)], sort_keys=True,
                          default=str)].append(i)
    partner = dict(pair_up(runs, against))
    # what sets variants of one method apart: the variant keys whose values differ
    by_method: dict[str, list[dict]] = defaultdict(list)
    for idx in groups.values():
        by_method[runs[idx[0]][0].get("method")].append(variant(runs[idx[0]][0]))
    rows = []
    for idx in groups.values():
        cfg0 = runs[idx[0]][0]
        vs = by_method[cfg0.get("method")]
        differ = sorted(k for k in set().union(*vs) if len({json.dumps(v.get(k), default=str)
                                                            for v in vs}) > 1)
        v0 = variant(cfg0)
        label = " ".join(f"{k}={v0.get(k)}" for k in differ if k != "input")
        names = list(runs[idx[0]][1])
        pairs = [(runs[i][1], runs[partner[i]][1]) for i in idx if partner.get(i) is not None]
        rows.append({
            "method": cfg0.get("method"), "input": cfg0.get("input") or "appearance",
            "protocol": split_group(cfg0["data"]), "label": label,
            "seeds": sorted((runs[i][0].get("seed") for i in idx),
                            key=lambda s: (not isinstance(s, int), s if isinstance(s, int)
                                           else 0, str(s))),
            "mean": {k: float(np.mean([runs[i][1][k] for i in idx])) for k in names},
            "above": {k: (sum(a[k] > b[k] for a, b in pairs), len(pairs)) for k in names},
        })
    return sorted(rows, key=lambda r: (r["protocol"], str(r["method"]), r["input"], r["label"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (adtk bench --out ...)")
    ap.add_argument("--against", default="baseline",
                    help="method the others are compared with, seed by seed: its run on the "
                    "same split manifest and seed with the same crop, input, epochs and "
                    "network (default: baseline)")
    args = ap.parse_args()
    runs: list[tuple[dict, dict]] = []
    for run in args.runs:
        fs = run / "frame_scores.parquet"
        if not fs.is_file():
            print(f"{run}: no frame_scores.parquet (run adtk bench with --frame-labels); "
                  "skipped", file=sys.stderr)
            continue
        cfg = json.loads((run / "config.json").read_text())
        res = protocols(pd.read_parquet(fs, columns=["video", "frame_idx", "abnormal",
                                                     "score"]))
        runs.append((cfg, res))
        print(f"{run.name}  {cfg.get('method'):9s} {cfg.get('input') or 'appearance':10s} "
              f"seed {cfg.get('seed')}  " + "  ".join(f"{k} {v:.3f}" for k, v in res.items()))
    if not runs:
        raise SystemExit("no run with frame scores")
    print(f"\nmean over the seeds of each variant (above {args.against}: seeds where the run "
          "beats its partner on the same split):")
    for r in summarise(runs, args.against):
        print(f"{r['method']:9s} {r['input']:10s} {r['protocol']}"
              + (f" [{r['label']}]" if r["label"] else "")
              + f"  seeds {','.join(map(str, r['seeds']))}  "
              + "  ".join(f"{k} {v:.3f}" for k, v in r["mean"].items()))
        if any(n for _, n in r["above"].values()):
            print(f"    above {args.against}: " + "  ".join(
                f"{k} {a}/{n}" for k, (a, n) in r["above"].items()))


if __name__ == "__main__":
    main()
