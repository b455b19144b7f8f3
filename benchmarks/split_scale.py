"""Scale benchmark of ``adtk split``: time and peak memory at 10k / 100k / 1M crops.

    python benchmarks/split_scale.py                      # 10k, 100k, 1M rows
    python benchmarks/split_scale.py --sizes 1000000 --repeat 3 --json split_scale.json

For each size it generates a crop manifest (log-normal sequence lengths, ~30 crops on average,
10% abnormal sequences, mixed labels), then measures, each in a fresh Python process so one
measurement's memory does not leak into the next:

- lib: ``split_manifests()`` called in-process (wall time around the call only);
- cli: ``python -m toolkit split ...`` as a user runs it (wall time including interpreter start
  and imports);
- inspect: ``python -m toolkit inspect`` on the result.

Peak memory is the process's maximum resident set size (``resource.getrusage``), imports
included. Target: 1M rows in under 10 s and under 2 GB on 2 cores. Numbers are noisy
when other work shares the cores: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs in a child process: the measured call, then its own wall time and peak RSS as JSON.
_LIB = """
import json, resource, sys, time
t0 = time.perf_counter()
from toolkit.data.split import split_manifests
from toolkit.config import SplitConfig
t1 = time.perf_counter()
res = split_manifests([sys.argv[1]], sys.argv[2], SplitConfig(seed=int(sys.argv[3])))
t2 = time.perf_counter()
dev = [None if d != d else round(float(d), 3) for d in res.summary.deviation_pp()]
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": t2 - t1, "import_s": t1 - t0, "groups": res.summary.total_groups,
                  "dev_pp": dev, "rss_mb": rss_mb}))
"""
# Runs the command as a grandchild, so RUSAGE_CHILDREN is that command's peak alone.
_CMD = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
t1 = time.perf_counter()
print(json.dumps({"s": t1 - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str, cpus: list[int] | None) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    pre = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=pre,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    # Fastest run for time; highest for memory (peak memory does not get luckier).
    best = dict(min(runs, key=lambda r: r["s"]))
    best["rss_mb"] = max(r["rss_mb"] for r in runs)
    return best


def main(argv: list[str] | None = None) -> int:
    """Generate the manifests, measure each size, print one row per size."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is shown)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpus", type=int, default=None, help="pin the children to this many cores")
    ap.add_argument("--workdir", default=None, help="where manifests go (default: a temp dir)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from toolkit.data import manifest as mf
    from toolkit.data.synthetic import make_crop_manifest

    cpus = sorted(os.sched_getaffinity(0))[: args.cpus] if args.cpus else None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="adtk-split-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cores available: {len(os.sched_getaffinity(0))}, pinned: {cpus or 'no'}")
    print(f"load before: {_load()}")
    head = f"{'rows':>9} {'groups':>7} {'lib s':>7} {'lib MB':>7} {'cli s':>7} {'cli MB':>7}"
    head += f" {'insp s':>7} {'gap pp (normal/abnormal/unlab.)':>33}"
    print(head)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        src = work / f"crops_{n}" / "manifest.parquet"
        if not src.exists():
            mf.write_manifest(make_crop_manifest(n, seed=args.seed, mixed=True), src)
        out = work / "data_manifests" / f"split_{n}.parquet"
        lib = _best(
            [
                _child(_LIB, str(src), str(out), str(args.seed), cpus=cpus)
                for _ in range(args.repeat)
            ]
        )
        cli_args = [sys.executable, "-m", "toolkit", "split", str(src), "-o", str(out)]
        cli = _best([_child(_CMD, *cli_args, cpus=cpus) for _ in range(args.repeat)])
        insp_args = [sys.executable, "-m", "toolkit", "inspect", str(out)]
        insp = _best([_child(_CMD, *insp_args, cpus=cpus) for _ in range(args.repeat)])
        dev = "/".join("-" if d is None else f"{d:.2f}" for d in lib["dev_pp"])
        print(
            f"{n:>9} {lib['groups']:>7} {lib['s']:>7.2f} {lib['rss_mb']:>7.0f} {cli['s']:>7.2f}"
            f" {cli['rss_mb']:>7.0f} {insp['s']:>7.2f} {dev:>33}",
            flush=True,
        )
        results.append({"rows": n, "lib": lib, "cli": cli, "inspect": insp})
    print(f"load after: {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": _load(), "results": results}, indent=2))
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
