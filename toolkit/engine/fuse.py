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
0.950 smoothed (track 5 + 9 frames) and 0.943 under Reiss and Hoshen's Gaussian; on 8 seeds
chosen afterwards (9-16) raw 0.944 against 0.930 (7 of 8), Gaussian 0.972 against 0.929.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import saved_run_config
from toolkit.errors import AdtkError

#: the ``method`` of a fused run folder
FUSION = "fusion"
#: settings copied from the first run into the fused run's config (for tables' grouping)
_COPIED = ("dataset", "data", "data_sha256", "crop", "input", "seed", "preset", "size",
           "epochs", "train_every", "select", "augment", "val_fraction", "labelled_anomalies",
           "batch_size", "lr", "latent_dim", "width", "tta")
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
    m = a.merge(kb, on=key, how="left", validate="one_to_one", indicator=True)
    missing = (m.pop("_merge") != "both").to_numpy()
    extra = len(b) - int((~missing).sum())
    if missing.any() or extra:
        eg = (f"e.g. {m['sample_id'][missing].iloc[0]!r} only in the first" if missing.any()
              else "the second has more")
        raise AdtkError(f"fusion: the two runs scored different samples ({int(missing.sum())} "
                        f"only in the first, {extra} only in the second; {eg}); fuse runs on "
                        "the same split manifest")
    for col, which in (("score", "first"), ("score_b", "second")):
        v = m[col].to_numpy(np.float64)
        if np.isnan(v).any() or (v < 0).any():
            raise AdtkError(f"fusion: the {which} run has NaN or negative scores; the geometric "
                            "mean fuses non-negative ones (reconstruction errors)")
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
    mb = _finished(b)[1]
    cfg.update(method=FUSION, fused_runs=ids,
               fused_methods=[str(ca.get("method")), str(cb.get("method"))],
               fusion="geometric mean of the two runs' scores")
    cfg["run_id"] = config_hash({k: v for k, v in cfg.items() if k != "data"})
    folder = Path(out_root) / cfg["run_id"]
    # the same two runs, finished at the same times: already fused (a resumed suite)
    sources = [ma.get("finished_at"), mb.get("finished_at")]
    try:
        done = json.loads((folder / "metrics.json").read_text())
        if done.get("fused_finished_at") == sources and None not in sources:
            return folder
    except (OSError, ValueError):
        pass
    scores = fused_scores(pd.read_parquet(a / "scores.parquet"),
                          pd.read_parquet(b / "scores.parquet"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").unlink(missing_ok=True)  # unfinished until rewritten
    atomic_write_json(folder / "config.json", json_clean(cfg))
    with atomic_path(folder / "scores.parquet", suffix=".tmp.parquet") as tmp:
        scores.to_parquet(tmp, index=False)
    # the identity keys a trained run's metrics.json has, from the first run's
    m: dict[str, Any] = {k: ma.get(k) for k in _IDENTITY if k in ma}
    m.update(run_id=cfg["run_id"], method=FUSION, fused_runs=ids,
             fused_methods=cfg["fused_methods"], fused_finished_at=sources)
    m.update(compute_test_metrics(scores, ma.get("unseen_events") or (), seed=int(ca.get("seed")
                                                                                    or 0)))
    m.update(epochs=ca.get("epochs"), n_train=ma.get("n_train"),
             n_train_abnormal=max(int(ma.get("n_train_abnormal") or 0),
                                  int(mb.get("n_train_abnormal") or 0)),
             wall_time_s=0.0, finished_at=ma.get("finished_at"))
    atomic_write_json(folder / "metrics.json", json_clean(m))  # last: the run is finished
    return folder


#: settings a baseline run and an ADNL run must share to be fused (besides the split)
PAIR_KEYS = ("seed", "data_sha256", "dataset", "input", "crop", "size", "epochs", "train_every",
             "preset", "batch_size", "lr", "latent_dim", "width", "augment", "select",
             "val_fraction", "tta")


def fuse_suite(out: str | Path, part: str = "table2") -> tuple[list[Path], list[str]]:
    """For a ``--suite ped2`` folder: fuse each ADNL run of ``part`` (Table 2) with the baseline
    run that shares its split, seed and network settings (:data:`PAIR_KEYS`), and list the
    fused runs in that part of ``suite_plan.json``, so its tables get a fusion row.

    Never raises for one pair: runs not finished, without a partner, or that cannot be fused
    (the reason) are reported in the returned notes and left out. Returns (folders, notes).
    """
    from toolkit.eval.suite_tables import PLAN_FILE, read_plan
    from toolkit.io import atomic_write_json

    out = Path(out)
    plan = read_plan(out)
    if plan is None:
        return [], []
    target = next((p for p in plan["parts"] if p.get("name") == part), None)
    if target is None or target.get("skipped"):
        return [], []
    runs: list[tuple[Path, dict[str, Any]]] = []
    for rid in target.get("run_ids") or []:
        folder = out / rid
        try:
            cfg = saved_run_config(json.loads((folder / "config.json").read_text()))
        except (OSError, ValueError):
            continue
        if (folder / "metrics.json").is_file() and cfg.get("method") in ("baseline", "adnl"):
            runs.append((folder, cfg))

    def key(cfg: dict[str, Any]) -> str:
        return json.dumps([cfg.get(k) for k in PAIR_KEYS], default=str)

    bases: dict[str, list[Path]] = {}
    for folder, cfg in runs:
        if cfg["method"] == "baseline":
            bases.setdefault(key(cfg), []).append(folder)
    made: list[Path] = []
    notes: list[str] = []
    for folder, cfg in runs:
        if cfg["method"] != "adnl":
            continue
        partner = bases.get(key(cfg), [])
        if len(partner) != 1:
            notes.append(f"fusion: ADNL run {folder.name} (seed {cfg.get('seed')}) has "
                         f"{len(partner)} baseline runs with its split and settings; not fused")
            continue
        try:
            made.append(fuse_runs(partner[0], folder, out))
        except (AdtkError, OSError, ValueError) as e:
            notes.append(f"fusion of {partner[0].name} and {folder.name} skipped: {e}")
    ids = [f.name for f in made]
    target["run_ids"] = list(dict.fromkeys([*target.get("run_ids", []), *ids]))
    atomic_write_json(out / PLAN_FILE, plan)
    return made, notes
