"""Benchmark grids: several values per axis (or a paper suite) -> one run per resolved config.

Each run is keyed by its run id (the hash of its resolved config, docs/run-folder.md), so a
grid is idempotent: finished runs (``metrics.json`` present) are skipped, an interrupted run
resumes from its checkpoint (``run_one`` does that), and a killed grid picks up where it
stopped. A failing run is recorded (``error.json``, written by ``run_one``) and the rest go on;
the caller decides the exit code from :class:`GridResult`. ``jobs > 1`` runs configs in
separate processes that split the CPU cores (or GPUs) between them; with the Ray executor
each config is a Ray task (:mod:`toolkit.executor`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import AdtkError

#: Axes that take several values (comma lists, ranges like 1-8, or 'all' for digits).
AXES = ("method", "dataset", "data", "crop", "anomaly_digit", "unseen_digit", "seed",
        "neg_loss", "labelled_anomalies", "input", "train_labels")
_INT_AXES = ("anomaly_digit", "unseen_digit", "seed")
PAPER_SEEDS = list(range(1, 9))  # the paper's Tables 2-4 report eight seeds


def all_axes() -> tuple[str, ...]:
    """The grid axes: :data:`AXES` and every setting a registered method declares (a value
    list of a method's setting varies only the methods that declare it)."""
    from toolkit.methods import all_settings

    return (*AXES, *(k for k in all_settings() if k not in AXES))

#: The paper's experiments as axes. Axes given on the command line override these.
SUITES: dict[str, dict[str, list[Any]]] = {
    # Table 1: each MNIST digit in turn is the anomaly, baseline vs ADNL.
    "table1": {"method": ["baseline", "adnl"], "anomaly_digit": list(range(10))},
    # Table 2: baseline vs ADNL on a crop manifest, eight seeds.
    "table2": {"method": ["baseline", "adnl"], "crop": ["normal"], "seed": PAPER_SEEDS},
    # Table 3: ADNL on oversize vs normal crops.
    "table3": {"method": ["adnl"], "crop": ["normal", "oversize"], "seed": PAPER_SEEDS},
    # Table 4: ADNL with the scaled (exp(-MSE)) vs naive negative loss.
    "table4": {"method": ["adnl"], "neg_loss": ["naive", "scaled"], "seed": PAPER_SEEDS},
    # Unseen anomalies: every ordered pair (A labelled, B never in training) of the digits
    # given with --anomaly-digit (default all: 90 pairs), for every registered method (or
    # those given with --method). unseen_digit follows anomaly_digit (plan() fills it).
    "unseen": {"anomaly_digit": list(range(10))},
}
#: Suites that split a crop manifest by clip and score every frame (toolkit/engine/clip_suite.py).
CLIP_SUITES = ("ped2",)
SUITE_NAMES = (*SUITES, "paper", *CLIP_SUITES)
_MANIFEST_SUITES = ("table2", "table3", "table4")


def parse_axis(name: str, value: Any) -> list[Any] | None:
    """Values of one axis from a CLI string (``1-8``, ``0,3,5``, ``all``) or a list of them.

    Returns None when the axis is not given. ``anomaly_digit all`` means the ten digits;
    ``labelled_anomalies all`` stays the single value 'all' (every labelled anomaly).
    """
    if value is None:
        return None
    items = list(value) if isinstance(value, list | tuple) else [value]
    out: list[Any] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if name in _INT_AXES:
                out += _int_values(name, part)
            else:
                out.append(part)
    if not out:
        return None
    return list(dict.fromkeys(out))  # keep order, drop repeats


def _int_values(name: str, part: str) -> list[int]:
    flag = "--" + name.replace("_", "-")
    if part == "all" and name in ("anomaly_digit", "unseen_digit"):
        return list(range(10))
    lo, sep, hi = part.partition("-")
    try:
        if sep and lo:  # a range like 1-8 (a leading '-' is a negative number)
            a, b = int(lo), int(hi)
            if b < a:
                raise AdtkError(f"{flag} {part}: empty range")
            return list(range(a, b + 1))
        return [int(part)]
    except ValueError:
        raise AdtkError(f"{flag}: expected numbers, ranges like 1-8 or lists like 0,3,5; "
                        f"got {part!r}") from None


def expand(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The product of the axes, in a stable order (first axis slowest).

    Combinations where the unseen digit equals the anomaly digit are dropped (a digit cannot
    be both the labelled anomaly and the one never seen in training).
    """
    keys = [k for k in axes if axes[k]]
    combos = []
    for values in itertools.product(*(axes[k] for k in keys)):
        c = dict(zip(keys, values, strict=True))
        if c.get("unseen_digit") is not None and c.get("unseen_digit") == c.get("anomaly_digit"):
            continue
        combos.append(c)
    return combos


def suite_axes(suite: str, has_data: bool) -> list[dict[str, list[Any]]]:
    """The axis sets of a suite (``paper`` = Table 1 and, with a manifest, Tables 2-4)."""
    if suite not in SUITE_NAMES:
        raise AdtkError(f"unknown suite {suite!r}; use one of {', '.join(SUITE_NAMES)}")
    if suite in CLIP_SUITES:
        raise AdtkError(f"suite {suite} writes split manifests: plan it with plan(...)")
    names = [n for n in SUITES if n != "unseen"] if suite == "paper" else [suite]
    if suite == "paper" and not has_data:
        names = ["table1"]
    out = []
    for n in names:
        if n in _MANIFEST_SUITES and not has_data:
            raise AdtkError(f"suite {n} runs on a crop manifest: give --data "
                            "data_manifests/NAME.parquet")
        axes = dict(SUITES[n])
        if n == "unseen":
            from toolkit.methods import list_methods

            axes["method"] = list_methods()
            axes["data"] = [None]
        if n == "table1":
            axes["data"] = [None]  # Table 1 is MNIST even where a manifest is given
        out.append(axes)
    return out


def _clip_suite_parts(
    flags: dict[str, Any], given: dict[str, list[Any]], options: dict[str, Any],
    config: str | os.PathLike | None = None,
) -> tuple[Any, list[dict[str, list[Any]]], dict[str, list[Any]], dict[str, Any]]:
    """The plan of a clip-protocol suite, its axis sets, the given axes it leaves to override
    them, and the flags with the suite preset's settings filled in where none was given.

    The suite pairs each seed with its own split manifest, so seeds and methods given on the
    command line choose the suite's seeds and methods instead of overriding its pairs.
    """
    from toolkit.engine.clip_suite import plan_suite, suite_defaults

    data = given.get("data") or [flags.get("data")]
    if len(data) > 1:
        raise AdtkError("suite ped2 takes one crop manifest (--data)")
    preset, fill = suite_defaults(flags.get("preset"), flags, config)
    sp = plan_suite(
        data[0], flags.get("out") or "runs", options.get("frame_labels"),
        labelled_clips=options.get("labelled_clips"), seeds=given.get("seed"),
        methods=given.get("method"), preset=preset, settings=fill,
    )
    rest = {k: v for k, v in given.items() if k not in ("seed", "data", "method")}
    return sp, sp.axis_sets(), rest, {**flags, **fill}


def plan(
    flags: dict[str, Any],
    axes: dict[str, list[Any] | None] | None = None,
    suite: str | None = None,
    config: str | os.PathLike | None = None,
    suite_options: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> list:
    """Resolved, de-duplicated BenchConfigs of a grid: suite axes, overridden by given axes.

    Every config is resolved (and checked) before anything runs, so bad input stops the grid
    before any training. ``suite_options``: settings of a clip-protocol suite (``ped2``:
    ``frame_labels``, ``labelled_clips``). A method resolves every setting it does not declare
    away (the baseline ignores --labelled-anomalies and --neg-loss), so it trains once per grid
    cell, not once per value. Combinations a method cannot train (a method that needs labelled
    anomalies at --labelled-anomalies 0) are left out, with a line in ``notes``.
    """
    from toolkit.config import BenchConfig
    from toolkit.engine.run import resolve_bench_config
    from toolkit.methods import get_method

    given = {k: v for k, v in (axes or {}).items() if v}
    axis_names = all_axes()
    unknown = sorted(set(given) - set(axis_names))
    if unknown:
        raise AdtkError(f"not a grid axis: {', '.join(unknown)}; axes: {', '.join(axis_names)}")
    has_data = bool(flags.get("data") or given.get("data"))
    suite_plan = None
    if suite in CLIP_SUITES:
        suite_plan, parts, given, flags = _clip_suite_parts(flags, given, suite_options or {},
                                                            config)
        if notes is not None:
            notes += suite_plan.notes()
    else:
        parts = suite_axes(suite, has_data) if suite else [{}]
    cfgs, seen = [], set()
    weak_defaults: dict[str, None] = {}  # one note per method, data and choice (ordered)
    left_out: dict[str, int] = {}
    members: dict[str, list[str]] = {}  # suite part -> its run ids (shared runs in several)
    for part in parts:
        tag = (part.get("_part") or [None])[0]
        part = {k: v for k, v in part.items() if k != "_part"}
        merged = {**part, **given}
        if part.get("data") == [None]:  # Table 1 of the paper suite: never the manifest
            merged["data"] = [None]
        if suite == "unseen" and not given.get("unseen_digit"):
            merged["unseen_digit"] = list(merged["anomaly_digit"])  # every ordered pair
        combos = expand(merged)
        if not combos and any(merged.values()):
            # Every combination was dropped: each unseen digit equals its anomaly digit.
            raise AdtkError("--unseen-digit must differ from the anomaly digit (got "
                            f"{', '.join(map(str, merged.get('unseen_digit') or []))} for both)")
        for combo in combos or [{}]:
            values = {**flags, **combo}  # a None value means "not given" to the resolver
            if "data" in combo and combo["data"] is None and values.get("dataset") in (
                None, "manifest"
            ):
                values["dataset"] = "mnist-5k"
            method = values.get("method") or BenchConfig.method
            if get_method(method).needs_abnormal and str(values.get("labelled_anomalies")) == "0":
                left_out[method] = left_out.get(method, 0) + 1
                continue
            auto: dict[str, Any] = {}
            cfg = resolve_bench_config(config, chosen=auto, **values)
            if auto:
                weak_defaults.setdefault(_weak_note(cfg, auto), None)
            if tag is not None:
                members.setdefault(tag, []).append(cfg.run_id)
            if cfg.run_id not in seen:
                seen.add(cfg.run_id)
                cfgs.append(cfg)
    if left_out and not cfgs:
        raise AdtkError(f"method {', '.join(left_out)} needs at least one labelled anomaly "
                        "(--labelled-anomalies 0 leaves none)")
    if suite_plan is not None:
        suite_plan.write(members)
    if notes is not None:
        notes += [f"left out {n} run(s) of {m} with --labelled-anomalies 0 (it needs at least "
                  "one labelled anomaly)" for m, n in left_out.items()]
        notes += list(weak_defaults)
        notes += incomplete_notes(cfgs) + changed_input_notes(cfgs) + unlabeled_notes(cfgs)
    return cfgs


def _weak_note(cfg: Any, auto: dict[str, Any]) -> str:
    """One line: which settings ``auto`` chose for frame-level training labels, why, and the
    flags that give the paper's form (what they resolve to with region labels)."""
    from toolkit.methods import all_settings, get_method

    settings = all_settings()
    cls = get_method(cfg.method)
    choices = {k: v for k, v in auto.items() if k != "_source"}
    chose = " and ".join(
        f"{settings[k].flag} auto chose {new}" + cls.choice_note(k, new, dict(cfg.params))
        for k, (new, _) in choices.items())
    paper = " ".join(f"{settings[k].flag} {old}" for k, (_, old) in choices.items())
    unit = "video" if auto["_source"] == "folder" else "frame"
    return (f"{cfg.method} on {cfg.data}: its training anomalies have {auto['_source']} "
            f"labels (per {unit}, not per object), where an abnormal {unit}'s crops may be "
            f"normal objects beside the anomaly, so {chose}; the paper's unbounded form: {paper}")


def incomplete_notes(cfgs: Sequence) -> list[str]:
    """A line per split manifest made with ``adtk split --allow-incomplete``: its runs see only
    the videos an unfinished ``adtk extract`` had done, which bench says before training."""
    from toolkit.data import manifest as mf

    out = []
    for data in dict.fromkeys(str(c.data) for c in cfgs if c.data):
        try:
            _, inputs = mf.incomplete_marks(mf.read_meta(data))
        except (OSError, ValueError):
            continue  # the loader says what is wrong with it
        out += [f"{data}: split from an unfinished extraction (--allow-incomplete): {src}: "
                f"{mf.incomplete_text(mark)}" for src, mark in inputs]
    return out


def changed_input_notes(cfgs: Sequence) -> list[str]:
    """A line per split manifest whose input crop manifests changed since the split: its runs
    train and score on the labels and crops of the split, not on the relabelled ones."""
    from toolkit.data import manifest as mf

    out = []
    for data in dict.fromkeys(str(c.data) for c in cfgs if c.data):
        try:
            meta = mf.read_meta(data)
        except (OSError, ValueError):
            continue  # the loader says what is wrong with it
        out += [f"{data}: its input {c}" for c in mf.changed_inputs(meta, data)]
    return out


def unlabeled_notes(cfgs: Sequence) -> list[str]:
    """A line per manifest whose crops include ``unlabeled`` ones: those are left out of
    training (neither normal to learn from nor labelled anomalies) and of scoring, which bench
    says rather than drop them silently."""
    from toolkit.data.datasets import split_label_counts

    out = []
    runs = dict.fromkeys((c.data, c.data_sha256, c.train_labels) for c in cfgs if c.data)
    for data, sha in dict.fromkeys((d, s) for d, s, _ in runs):
        counts = split_label_counts(str(data), sha)
        parts = []
        for split in ("train", "test", "val"):
            n = sum(v for (s, _), v in counts.items() if s == split)
            unl = counts.get((split, "unlabeled"), 0)
            if split == "train":
                # by the labels each run trains on (--train-labels interval reads another
                # column); where runs differ, the most any of them leaves out
                unl = max(split_label_counts(str(data), sha, t).get((split, "unlabeled"), 0)
                          for d, s, t in runs if (d, s) == (data, sha))
            if unl:
                parts.append(f"{unl} of {n} {split} crops")
        if parts:
            listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
            out.append(f"{data}: {listed} are unlabeled and left out of training "
                       "and scoring (a crop counts only as normal or abnormal); label that "
                       "footage (adtk extract --labels) to use them")
    return out


# --- running -------------------------------------------------------------------------------


@dataclass
class Outcome:
    cfg: Any
    folder: Path
    status: str  # finished | skipped | failed | busy (another live process writes its folder)
    error: str = ""
    error_type: str = ""
    seconds: float = 0.0

    def metrics(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / "metrics.json").read_text())
        except (OSError, ValueError):
            return {}


@dataclass
class GridResult:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    def _with(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def finished(self) -> list[Outcome]:
        return self._with("finished")

    @property
    def skipped(self) -> list[Outcome]:
        return self._with("skipped")

    @property
    def failed(self) -> list[Outcome]:
        return self._with("failed")

    @property
    def busy(self) -> list[Outcome]:
        return self._with("busy")

    def summary(self) -> str:
        busy = f", {len(self.busy)} busy in another process" if self.busy else ""
        return (f"{len(self.outcomes)} runs: {len(self.finished)} trained, "
                f"{len(self.skipped)} already finished (skipped), {len(self.failed)} failed"
                f"{busy}; {self.wall_s:.1f} s")


def _assign_resources(cfgs: Sequence, jobs: int) -> list:
    """Split the cores between ``jobs`` workers; spread CUDA runs over the visible GPUs."""
    from toolkit.engine.train import available_cores

    threads = max(1, available_cores() // jobs)
    n_gpu = 0
    if jobs > 1 and any(c.device in ("auto", "cuda") for c in cfgs):
        import torch

        n_gpu = torch.cuda.device_count()
    out = []
    for i, c in enumerate(cfgs):
        upd: dict[str, Any] = {}
        if not c.num_threads:
            upd["num_threads"] = threads
        if n_gpu > 1 and c.device in ("auto", "cuda"):
            upd["device"] = f"cuda:{i % n_gpu}"  # device is not in the run id
        out.append(dataclasses.replace(c, **upd) if upd else c)
    return out


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run_grid(
    cfgs: Sequence,
    out: str | os.PathLike,
    jobs: int = 1,
    force: bool = False,
    echo: Callable[[Outcome], None] | None = None,
    progress: bool | None = None,
    executor: Any = None,
) -> GridResult:
    """Run every config not finished yet.

    ``executor`` (a :class:`toolkit.executor.ExecutorConfig`, default local): locally, ``jobs``
    worker processes when more than one, else in this process; on Ray, one task per run,
    each reserving its resources (:func:`ray_resources`), as many at once as the cluster fits.
    """
    from toolkit import executor as X
    from toolkit.engine.run import LOCK_FILE, is_finished, run_dir
    from toolkit.io import lock_holder

    ex = executor or X.ExecutorConfig()
    t0 = time.perf_counter()
    out = str(out)
    result = GridResult()
    todo = []
    for c in cfgs:
        folder = run_dir(c, out)
        o = None
        if is_finished(folder) and not force:
            o = Outcome(c, folder, "skipped")
        elif (holder := lock_holder(folder / LOCK_FILE)) is not None:
            # Refused here, before any worker starts; run_one's own lock covers the rest.
            o = Outcome(c, folder, "busy", f"another adtk process is writing this run folder "
                        f"(process {holder})", "AdtkError")
        if o is None:
            todo.append(c)
            continue
        result.outcomes.append(o)
        if echo:
            echo(o)

    def record(c: Any, err: str, etype: str, secs: float) -> None:
        o = Outcome(c, run_dir(c, out), "failed" if err else "finished", err, etype, secs)
        result.outcomes.append(o)
        if echo:
            echo(o)

    if ex.kind == "local":
        jobs = max(1, min(int(jobs), len(todo) or 1))
        todo = _assign_resources(todo, jobs)
        if jobs == 1:
            for c in todo:
                record(c, *_run_safely(c, out, force, progress))
        else:
            from toolkit.engine.train import available_cores

            threads = max(1, available_cores() // jobs)
            # Bars of several processes would draw over each other: workers print plain lines.
            _run_tasks(todo, out, force, record,
                       X.create(ex, workers=jobs, init=(_init_worker, (threads,))),
                       progress="off" if progress is False else "lines")
    elif todo:
        _run_tasks(todo, out, force, record, X.create(ex), ray_resources(todo, ex),
                   progress="off" if progress is False else "lines")
    result.wall_s = time.perf_counter() - t0
    return result


def ray_resources(cfgs: Sequence, ex: Any) -> list[tuple[Any, float, float, float]]:
    """(config, cpus, gpus, gpus if the cluster has any) of each run as a Ray task.

    A run asks for its CPU threads (``--threads``, else ``--ray-cpus``, else 1) and, when its
    device is CUDA, for one GPU (``--ray-gpus`` sets another share); device auto asks for a
    GPU only when the cluster has one. The threads are saved in the run's config (not in its id).
    """
    out = []
    for c in cfgs:
        cpus = float(c.num_threads) if c.num_threads else (
            ex.cpus if ex.cpus is not None else 1.0)
        if not c.num_threads:
            c = dataclasses.replace(c, num_threads=max(1, int(cpus)))
        cuda = str(c.device).startswith("cuda")
        gpus = ex.gpus if ex.gpus is not None else (1.0 if cuda else 0.0)
        if_any = 1.0 if ex.gpus is None and c.device == "auto" else 0.0
        out.append((c, cpus, gpus, if_any))
    return out


def grid_task(cfg: Any, out: str, force: bool, progress: bool | str | None = False, *,
              emit: Callable) -> tuple[str, str, float]:
    """One run as an executor task: (error, error type, seconds); never raises."""
    return _run_safely(cfg, out, force, progress)


def _run_tasks(todo: Sequence, out: str, force: bool, record: Callable, runner: Any,
               resources: Sequence | None = None, progress: bool | str | None = False) -> None:
    from toolkit.executor import Failure, Task

    resources = resources or [(c, 1.0, 0.0, 0.0) for c in todo]
    Path(out).mkdir(parents=True, exist_ok=True)  # the tasks check that they can see it
    tasks = [Task(key=k, fn=grid_task, args=(c, out, force, progress), name=c.run_id, cpus=cpus,
                  gpus=gpus, gpus_if_any=if_any,
                  paths=(out, *([c.data] if getattr(c, "data", None) else [])))
             for k, (c, cpus, gpus, if_any) in enumerate(resources)]

    def on_event(kind: str, k: int, payload: Any) -> None:
        c = tasks[k].args[0]
        if kind == "done":
            record(c, *payload)
        elif kind == "failed":
            f = payload if isinstance(payload, Failure) else Failure("error", str(payload))
            if f.kind == "died":
                tries = f"; tried {f.attempts} times" if f.attempts > 1 else ""
                how = f.signal or f.message or "out of memory or a crash"
                msg, etype = f"worker process died ({how}){tries}", "WorkerDied"
            else:
                msg, etype = str(f), f.error_type or "AdtkError"
            _write_error(c, out, msg)
            record(c, msg, etype, 0.0)

    runner.run(tasks, on_event)


def _run_safely(cfg: Any, out: str, force: bool,
                progress: bool | str | None) -> tuple[str, str, float]:
    """Run one config; never raises (except KeyboardInterrupt): returns (error, type, seconds)."""
    from toolkit.engine.run import run_one

    t0 = time.perf_counter()
    try:
        run_one(cfg, out, force=force, progress=progress)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001  (a failed run is recorded, the grid goes on)
        msg = (str(e).splitlines() or [type(e).__name__])[0]
        # Every user-facing error (ManifestError too) reads as AdtkError to the caller.
        etype = "AdtkError" if isinstance(e, AdtkError) else type(e).__name__
        return msg or type(e).__name__, etype, time.perf_counter() - t0
    return "", "", time.perf_counter() - t0


def _write_error(cfg: Any, out: str, msg: str) -> None:
    from toolkit.engine.run import is_finished, run_dir
    from toolkit.io import atomic_write_json

    folder = run_dir(cfg, out)
    if is_finished(folder):
        return
    atomic_write_json(folder / "error.json", {"run_id": cfg.run_id, "error": msg,
                                              "traceback": "", "time": time.strftime("%FT%T")})


def describe(cfgs: Iterable) -> str:
    """One line on what a grid holds: the axes that vary and their values."""
    cfgs = list(cfgs)
    parts = []
    from toolkit.methods import all_settings

    settings = all_settings()
    for k in all_axes():
        # A method setting counts only among the runs whose method declares it (not None).
        vals = list(dict.fromkeys(
            str(v) for v in (getattr(c, k) if hasattr(c, k) else c.params.get(k) for c in cfgs)
            if v is not None or k not in settings))
        if len(vals) > 1:
            parts.append(f"{k}={','.join(vals)}")
    return f"{len(cfgs)} run{'s' if len(cfgs) != 1 else ''}" + (
        f" over {'; '.join(parts)}" if parts else "")
