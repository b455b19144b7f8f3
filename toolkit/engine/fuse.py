"""Score fusion: one run folder whose scores combine two finished runs on the same crops.

A fused run's score of a crop is the geometric mean of the two runs' scores, sqrt(a * b): the
ranking of log a + log b, so it does not depend on either method's scale (a reconstruction
error of 0.002 or of 2 counts by its ratio to the others). No model is trained; the folder has
``config.json`` (``method: fusion``, the two runs' ids and methods), ``scores.parquet`` and
``metrics.json`` like any run, so frame evaluation, tables and the report treat it as one.

Why (measured on UCSD Ped2, the suite's few-shot splits, motion crops, quick preset; README,
Table 2): ADNL's crop scores have two modes. 75 % of the anomalous test crops end "flipped"
(an error near the largest a tanh output allows), and so do 2.8 % of the normal ones, which
puts a flipped crop in 32 % of the normal frames. A frame's highest score then ties among
them, and ADNL's raw frame AUROC (0.863) falls under the baseline AAE's (0.893), although
after smoothing over time it leads (0.954 against 0.881). The baseline's error does not flip:
it still ranks a biker above a walker the ADNL model happens to flip, so the product breaks
the ties. The fusion of the two (seeds 1-8) reached raw 0.920, above the baseline on 8 of 8,
and 0.957 under Reiss and Hoshen's Gaussian; on 8 seeds chosen afterwards (9-16) raw 0.944
against 0.930 (7 of 8), Gaussian 0.979 against ADNL's 0.973.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import AdtkError

#: the ``method`` of a fused run folder
FUSION = "fusion"
#: settings copied from the first run into the fused run's config (for tables' grouping)
_COPIED = ("dataset", "data", "data_sha256", "crop", "input", "seed", "preset", "size",
           "epochs", "train_every", "select", "augment", "val_fraction", "labelled_anomalies",
           "batch_size", "lr", "latent_dim", "width")
#: metrics.json keys of the first run that a fused run repeats (what tables group by)
_IDENTITY = ("dataset", "data", "crop", "input", "train_every", "seed", "preset", "select",
             "labelled_anomalies", "train_labels", "train_label_source")
#: a floor under scores before the logarithm (a zero error would swamp the other run)
_EPS = 1e-12


def _finished(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        cfg = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
    except FileNotFoundError:
        raise AdtkError(f"{folder}: not a finished run (config.json and metrics.json needed)"
                        ) from None
    except ValueError as e:
        raise AdtkError(f"{folder}: unreadable config.json or metrics.json ({e})") from None
    return cfg, metrics


def fused_scores(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """``a`` (its rows, order and columns) with its score replaced by sqrt(a * b) per sample;
    both must hold the same (sample_id, split) rows, else an AdtkError says how they differ."""
    key = ["sample_id", "split"]
    if a.duplicated(key).any() or b.duplicated(key).any():
        raise AdtkError("fusion: a run's scores list a sample twice")
    kb = b[[*key, "score"]].rename(columns={"score": "score_b"})
    m = a.merge(kb, on=key, how="left", validate="one_to_one")
    missing = m["score_b"].isna()
    extra = len(b) - int((~missing).sum())
    if missing.any() or extra:
        eg = (f"e.g. {m.loc[missing, 'sample_id'].iloc[0]!r} only in the first" if missing.any()
              else "the second has more")
        raise AdtkError(f"fusion: the two runs scored different samples ({int(missing.sum())} "
                        f"only in the first, {extra} only in the second; {eg}); fuse runs on "
                        "the same split manifest")
    s = np.sqrt(np.maximum(m["score"].to_numpy(np.float64), _EPS)
                * np.maximum(m["score_b"].to_numpy(np.float64), _EPS))
    return m.drop(columns=["score_b"]).assign(score=s)[list(a.columns)]


def fuse_runs(a: str | Path, b: str | Path, out_root: str | Path) -> Path:
    """Write the fused run of finished runs ``a`` and ``b`` under ``out_root``; its folder.

    The two must be scored on the same samples (the same split manifest: its content hash
    is compared). Idempotent: the same two runs give the same run id and the same files.
    """
    from toolkit.config import config_hash
    from toolkit.engine.score import compute_test_metrics
    from toolkit.io import atomic_path, atomic_write_json, json_clean

    a, b = Path(a), Path(b)
    (ca, ma), (cb, _) = _finished(a), _finished(b)
    if ca.get("data_sha256") != cb.get("data_sha256") or ca.get("dataset") != cb.get("dataset"):
        raise AdtkError(f"fusion: {a.name} and {b.name} were run on different data "
                        f"({ca.get('data')} and {cb.get('data')})")
    ids = [str(ca.get("run_id") or a.name), str(cb.get("run_id") or b.name)]
    cfg: dict[str, Any] = {k: ca.get(k) for k in _COPIED if k in ca}
    cfg.update(method=FUSION, fused_runs=ids,
               fused_methods=[str(ca.get("method")), str(cb.get("method"))],
               fusion="geometric mean of the two runs' scores")
    cfg["run_id"] = config_hash({k: v for k, v in cfg.items() if k != "data"})
    folder = Path(out_root) / cfg["run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    scores = fused_scores(pd.read_parquet(a / "scores.parquet"),
                          pd.read_parquet(b / "scores.parquet"))
    atomic_write_json(folder / "config.json", json_clean(cfg))
    with atomic_path(folder / "scores.parquet", suffix=".tmp.parquet") as tmp:
        scores.to_parquet(tmp, index=False)
    # the identity keys a trained run's metrics.json has, from the first run's
    m: dict[str, Any] = {k: ma.get(k) for k in _IDENTITY if k in ma}
    m.update(run_id=cfg["run_id"], method=FUSION, fused_runs=ids,
             fused_methods=cfg["fused_methods"])
    m.update(compute_test_metrics(scores, ma.get("unseen_events") or (), seed=int(ca.get("seed")
                                                                                    or 0)))
    m.update(epochs=ca.get("epochs"), n_train=ma.get("n_train"),
             n_train_abnormal=max(int(ma.get("n_train_abnormal") or 0),
                                  int(_finished(b)[1].get("n_train_abnormal") or 0)),
             wall_time_s=0.0, finished_at=ma.get("finished_at"))
    atomic_write_json(folder / "metrics.json", json_clean(m))  # last: the run is finished
    return folder


def fuse_pairs(pairs: Sequence[tuple[Path, Path]], out_root: str | Path) -> list[Path]:
    """:func:`fuse_runs` over several (a, b) pairs."""
    return [fuse_runs(a, b, out_root) for a, b in pairs]


def fuse_suite(out: str | Path, part: str = "table2") -> list[Path]:
    """For a ``--suite ped2`` folder: fuse the baseline and ADNL runs of each seed of ``part``
    (Table 2) and list the fused runs in that part of ``suite_plan.json``, so its tables get
    a fusion row. Seeds where either run has not finished are left out. Returns the folders."""
    from toolkit.eval.suite_tables import PLAN_FILE, read_plan
    from toolkit.io import atomic_write_json

    out = Path(out)
    plan = read_plan(out)
    if plan is None:
        return []
    target = next((p for p in plan["parts"] if p.get("name") == part), None)
    if target is None or target.get("skipped"):
        return []
    by_seed: dict[Any, dict[str, Path]] = {}
    for rid in target.get("run_ids") or []:
        folder = out / rid
        try:
            cfg = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if (folder / "metrics.json").is_file() and cfg.get("method") in ("baseline", "adnl"):
            by_seed.setdefault(cfg.get("seed"), {})[cfg["method"]] = folder
    made = [fuse_runs(r["baseline"], r["adnl"], out) for _, r in sorted(
        by_seed.items(), key=lambda kv: str(kv[0])) if {"baseline", "adnl"} <= set(r)]
    ids = [f.name for f in made]
    target["run_ids"] = list(dict.fromkeys([*target.get("run_ids", []), *ids]))
    atomic_write_json(out / PLAN_FILE, plan)
    return made
