"""Ray's overhead against the local executor, side by side on the same machine.

Two workloads, each run with ``--executor local`` and ``--executor ray`` (in alternating
order, ``--rounds`` times), wall time per run and the ratio ray / local:

- extraction of the 28 UCSD Ped2 clips with their labels (local: 2 worker processes; Ray:
  one task per video, 1 CPU each);
- a 4-run digit grid (baseline and ADNL on two anomaly digits; local ``--jobs 2``, one thread
  per run; Ray: one task per run, 1 CPU each).

Ray runs on a local cluster of ``--cpus`` CPUs that the script starts once (as a lab's
running cluster would be) and measures separately: the time to start and stop it is what a
command pays that starts its own Ray (no ``ray start --head`` beforehand). The outputs of the
two executors are compared as well (manifest rows and crop files; run metrics), so a fast
but wrong executor cannot pass. State the load average (printed) with any number.

    python benchmarks/ray_overhead.py [--ped2 ../shared/data/ucsd-ped2] [--rounds 1] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest
from toolkit.engine import grid as G
from toolkit.executor import ExecutorConfig
from toolkit.video.extract import run_extract

PED2 = Path(__file__).resolve().parents[1].parent / "shared/data/ucsd-ped2"
GRID_FLAGS = {"dataset": "digits", "epochs": 3, "width": 8, "latent_dim": 8, "device": "cpu"}
SPEED_KEYS = ("_time_s", "per_s", "time", "finished")


def extract_once(ped2: Path, out: Path, ex: ExecutorConfig, cpus: int) -> float:
    cfg = ExtractConfig(labels=str(ped2 / "labels.csv"), workers=cpus)
    t = time.perf_counter()
    res = run_extract(ped2, out, cfg, progress=False, executor=ex)
    wall = time.perf_counter() - t
    assert not res.failed and res.done == 28, res.summary()
    return wall


def grid_once(out: Path, ex: ExecutorConfig, cpus: int) -> float:
    cfgs = G.plan(GRID_FLAGS, {"method": ["baseline", "adnl"], "anomaly_digit": [3, 5]})
    assert len(cfgs) == 4
    t = time.perf_counter()
    res = G.run_grid(cfgs, out, jobs=cpus, executor=ex)
    wall = time.perf_counter() - t
    assert len(res.finished) == 4, res.summary()
    return wall


def same_extraction(a: Path, b: Path) -> bool:
    ma = read_manifest(a / "manifest.parquet").sort_values("crop_id", ignore_index=True)
    mb = read_manifest(b / "manifest.parquet").sort_values("crop_id", ignore_index=True)
    if not ma.equals(mb):
        return False
    return all((a / p).read_bytes() == (b / p).read_bytes()
               for col in ("path", "path_oversize") for p in ma[col])


def same_runs(a: Path, b: Path) -> bool:
    def results(folder: Path) -> dict[str, dict]:
        out = {}
        for m in sorted(folder.glob("*/metrics.json")):
            d = json.loads(m.read_text())
            out[m.parent.name] = {k: v for k, v in d.items()
                                  if not any(s in k for s in SPEED_KEYS)}
            out[m.parent.name]["scores"] = pd.read_parquet(m.parent / "scores.parquet"
                                                           ).to_dict("list")
        return out

    return results(a) == results(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ped2", type=Path, default=PED2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--cpus", type=int, default=2, help="local workers = Ray cluster CPUs")
    ap.add_argument("--skip-extract", action="store_true")
    ap.add_argument("--skip-grid", action="store_true")
    args = ap.parse_args()
    import ray

    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    start_s = time.perf_counter() - t
    local, on_ray = ExecutorConfig("local"), ExecutorConfig("ray")
    work = tempfile.mkdtemp(prefix="adtk-ray-bench-")
    rows = []
    try:
        jobs = []
        if not args.skip_extract:
            jobs.append(("extract 28 Ped2 clips", lambda out, ex: extract_once(
                args.ped2, out, ex, args.cpus), same_extraction))
        if not args.skip_grid:
            jobs.append(("4-run digit grid", lambda out, ex: grid_once(out, ex, args.cpus),
                         same_runs))
        for name, fn, same in jobs:
            for r in range(args.rounds):
                order = [("local", local), ("ray", on_ray)]
                if r % 2:
                    order.reverse()
                walls = {}
                for label, ex in order:
                    out = Path(work) / f"{name[:7]}-{label}-{r}"
                    walls[label] = fn(out, ex)
                ok = same(Path(work) / f"{name[:7]}-local-{r}", Path(work) / f"{name[:7]}-ray-{r}")
                rows.append((name, r, walls["local"], walls["ray"], ok))
                print(f"{name}, round {r + 1}: local {walls['local']:.1f} s, ray "
                      f"{walls['ray']:.1f} s, ratio {walls['ray'] / walls['local']:.2f}; "
                      f"identical outputs: {ok}", flush=True)
                for label in ("local", "ray"):
                    shutil.rmtree(Path(work) / f"{name[:7]}-{label}-{r}", ignore_errors=True)
    finally:
        t = time.perf_counter()
        ray.shutdown()
        stop_s = time.perf_counter() - t
        shutil.rmtree(work, ignore_errors=True)
    print(f"starting a local Ray ({args.cpus} CPUs): {start_s:.1f} s; stopping it: "
          f"{stop_s:.1f} s (paid by a command that starts its own Ray)")
    for name in dict.fromkeys(r[0] for r in rows):
        lw = sum(r[2] for r in rows if r[0] == name)
        rw = sum(r[3] for r in rows if r[0] == name)
        print(f"{name}: ray / local = {rw / lw:.2f} (target <= 1.2), with Ray's start and stop "
              f"per command {(rw + (start_s + stop_s) * args.rounds) / lw:.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
