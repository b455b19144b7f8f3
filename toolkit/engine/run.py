"""One whole ``adtk bench`` run into its folder (the run-folder contract, docs/run-folder.md).

:func:`resolve_bench_config` turns a preset plus flags into a complete :class:`BenchConfig`;
:func:`run_one` trains, scores and writes ``runs/RUN_ID/``, skipping a finished run (its
``metrics.json`` exists) unless ``force``, and resuming an interrupted one from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from toolkit.config import BenchConfig, build, load_yaml, to_dict
from toolkit.errors import AdtkError

PRESETS = ("quick", "paper")
#: preset -> data family -> engine settings. A method's own settings (network size, learning
#: rate, loss weights) and its presets are declared in its file under toolkit/methods/; a
#: method's preset may also override these. Digit values tuned on mnist-5k (README "adtk bench").
PRESET_VALUES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        # Measured on mnist-5k, anomaly digits 2/5/8 (2-core CPU): 15 epochs gained nothing
        # over 10 (per-digit table in README "adtk bench").
        "digits": dict(epochs=10, batch_size=256, augment="none"),
        # Crops: sized for minutes on 2 cores, not tuned (UCSD Ped2 end to end is in README).
        "crops": dict(epochs=20, batch_size=128, augment="hflip"),
    },
    "paper": {
        # The paper: MNIST 100 epochs at batch 256; crops 1000 epochs at batch 1024.
        "digits": dict(epochs=100, batch_size=256, augment="none"),
        "crops": dict(epochs=1000, batch_size=1024, augment="none"),
    },
}
CHOICES = {
    "crop": ("normal", "oversize"),
    "select": ("last", "best-val"),
    "augment": ("none", "hflip"),
    "tta": ("none", "hflip"),
}
_BENCH_FIELDS = frozenset(f.name for f in dataclasses.fields(BenchConfig))


def resolve_bench_config(
    yaml_path: str | os.PathLike | None = None, preset: str | None = None,
    chosen: dict[str, Any] | None = None, **overrides: Any
) -> BenchConfig:
    """A complete BenchConfig: defaults -> YAML (``bench:`` section) -> preset -> flags.

    Flags that are None are ignored; preset values fill every field that is still unset.
    Checks every choice (method against the registry) so bad input fails before any work.
    ``chosen``, when given, receives the method settings that ``auto`` resolved otherwise
    than it would with region labels, because the training labels are frame-level: name ->
    (value, the value with region labels), and ``"_source"``: where those labels came from.
    """
    from toolkit.data.datasets import CROP_SIZE, DATASETS, DIGIT_SETS, DIGIT_SIZES
    from toolkit.methods import all_settings, get_method, list_methods

    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(load_yaml(yaml_path, "bench"))
    values.update({k: v for k, v in overrides.items() if v is not None})
    if preset is not None:
        values["preset"] = preset
    # A method's own settings may come as top-level keys (flags, YAML): they go to params.
    known_settings = all_settings()
    params = dict(values.pop("params", None) or {})
    for k in [k for k in values if k in known_settings]:
        if k not in _BENCH_FIELDS:
            params[k] = values.pop(k)
        elif isinstance(values[k], str):
            values[k] = known_settings[k].parse(values[k])  # text from a generated flag
    cfg = build(BenchConfig, values, where=str(yaml_path) if yaml_path else "options")

    if cfg.preset not in PRESETS:
        raise AdtkError(f"unknown preset {cfg.preset!r}; use one of {', '.join(PRESETS)}")
    if cfg.method not in list_methods():
        raise AdtkError(f"unknown method {cfg.method!r}; known: {', '.join(list_methods())}")
    upd: dict[str, Any] = {}
    if cfg.data:
        from toolkit.data.manifest import manifest_file

        data = manifest_file(cfg.data)  # the folder adtk extract wrote stands for its manifest
        if not data.is_file():
            raise AdtkError(f"--data {cfg.data}: no such manifest file or folder")
        if str(data) != str(cfg.data):
            upd["data"] = str(data)
        from toolkit.data.datasets import split_label_counts
        from toolkit.io import sha256_file

        sha = sha256_file(data)
        # Read and checked now, so unreadable or unsplit input stops before any run folder.
        label_counts = split_label_counts(str(data), sha)
        upd.update(dataset="manifest", data_sha256=sha)
        upd.update(anomaly_digit=None, unseen_digit=None)
    elif cfg.dataset == "manifest":
        raise AdtkError("dataset 'manifest' needs --data PATH (a split manifest)")
    elif cfg.dataset not in DATASETS:
        raise AdtkError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(DATASETS)}")
    elif cfg.anomaly_digit is None:
        raise AdtkError(f"dataset {cfg.dataset!r} needs --anomaly-digit (0-9)")
    family = "crops" if (cfg.data or cfg.dataset == "manifest") else "digits"
    from toolkit.data.datasets import INPUTS

    if cfg.input not in INPUTS:
        raise AdtkError(f"unknown input {cfg.input!r}; use one of {', '.join(INPUTS)}")
    if family == "digits" and cfg.input != "appearance":
        raise AdtkError(f"--input {cfg.input} needs a crop manifest with motion channels (--data)")
    if not isinstance(cfg.train_every, int) or isinstance(cfg.train_every, bool) or (
        cfg.train_every < 1
    ):
        raise AdtkError(f"train_every must be an integer >= 1 (1 = every frame), got "
                        f"{cfg.train_every!r}")
    if family == "digits" and cfg.train_every != 1:
        raise AdtkError("--train-every subsamples the frames of video clips: it needs a crop "
                        "manifest (--data)")
    method_cls = get_method(cfg.method)
    method_preset = method_cls.preset_values(cfg.preset, family)
    for k, v in {**PRESET_VALUES[cfg.preset][family], **method_preset}.items():
        if k in _BENCH_FIELDS and getattr(cfg, k) is None:
            upd[k] = v
    # The method's settings: given > its preset > its declared default. A field the method
    # does not declare does not apply: None, so it neither shows nor splits its run ids.
    declared = {st.name: st for st in method_cls.settings_spec()}
    unknown = sorted(set(params) - set(known_settings))
    if unknown:
        raise AdtkError(f"unknown setting(s) {', '.join(unknown)}; method settings: "
                        f"{', '.join(sorted(known_settings))}")
    from toolkit.config import check_train_labels

    check_train_labels(cfg.train_labels)
    weak = False
    if family == "crops":
        from toolkit.data.datasets import train_label_source, weak_label_source

        # Checked now (--train-labels region on a manifest without region labels is one line
        # before any run folder); weak labels switch a method's auto settings (neg_select).
        source = train_label_source(str(data), sha, cfg.train_labels)
        weak = weak_label_source(source)
    elif cfg.train_labels != "auto":
        raise AdtkError(f"--train-labels {cfg.train_labels} applies to crop manifests (--data); "
                        "a digit set's labels are its classes")
    resolved = {}
    for name, st in declared.items():
        given = params.get(name, getattr(cfg, name, None) if name in _BENCH_FIELDS else None)
        resolved[name] = st.coerce(
            given if given is not None else method_preset.get(name, st.default))
    new_params = {}
    context = {"weak_labels": weak, "epochs": upd.get("epochs", cfg.epochs)}
    final = method_cls.resolve_settings(resolved, context)
    if weak and chosen is not None:
        strong = method_cls.resolve_settings(resolved, {**context, "weak_labels": False})
        auto = {k: (final[k], strong[k]) for k in final
                if resolved[k] == "auto" and final[k] != strong.get(k)}
        if auto:
            chosen.update(auto, _source=source)
    for name, value in final.items():
        if name in _BENCH_FIELDS:
            upd[name] = value
        else:
            new_params[name] = value
    for name in known_settings:
        if name in _BENCH_FIELDS and name not in declared:
            upd[name] = None
    upd["params"] = new_params
    if cfg.size is None:
        upd["size"] = CROP_SIZE if family == "crops" else DIGIT_SIZES[cfg.dataset]
    la = cfg.labelled_anomalies
    if isinstance(la, str) and la != "all":
        if not la.strip().isdigit():
            raise AdtkError(f"--labelled-anomalies must be a number or 'all', got {la!r}")
        upd["labelled_anomalies"] = int(la)
    if not method_cls.uses_abnormal:
        upd["labelled_anomalies"] = "all"  # it never looks at them: one run, not one per cap
    cfg = dataclasses.replace(cfg, **upd)
    for k, allowed in CHOICES.items():
        if getattr(cfg, k) not in allowed:
            raise AdtkError(f"unknown {k} {getattr(cfg, k)!r}; use one of {', '.join(allowed)}")
    if cfg.tta == "hflip" and cfg.augment != "hflip":
        raise AdtkError(
            "--tta hflip scores each image and its mirror image, which a model has learned as "
            f"normal only when trained with --augment hflip (this run: --augment {cfg.augment}; "
            "a mirrored digit is no digit)"
        )
    if cfg.select == "best-val" and cfg.data:
        val = [label_counts.get(("val", lab), 0) for lab in ("normal", "abnormal")]
        if not all(val):
            if not any(val):
                why = "has no val split (split with a val ratio of 0)"
                fix = "split again with a val ratio > 0"
            else:
                lacking = ("normal", "abnormal")[val.index(0)]
                why = f"has no {lacking} crops in its val split"
                fix = (f"split again with more {lacking} groups (more labelled footage: a "
                       "--group-by window only merges sequences)")
            raise AdtkError(f"--select best-val needs validation AUC, but {cfg.data} {why}; "
                            f"use --select last, or {fix}")
    if cfg.dataset in DIGIT_SETS and not 0 <= int(cfg.anomaly_digit) <= 9:
        raise AdtkError(f"--anomaly-digit must be 0-9, got {cfg.anomaly_digit}")
    for k in ("epochs", "batch_size"):
        if int(getattr(cfg, k)) < 1:
            raise AdtkError(f"{k} must be >= 1, got {getattr(cfg, k)}")
    # Checked here so that a bad value is one line before any data loads, not a failed run.
    if not 0 <= int(cfg.seed) < 2**32:
        raise AdtkError(f"seed must be in 0..{2**32 - 1}, got {cfg.seed}")
    if int(cfg.batch_size) < 2:
        raise AdtkError(f"batch_size must be >= 2 (BatchNorm), got {cfg.batch_size}")
    if cfg.neg_batch_size is not None and int(cfg.neg_batch_size) < 1:
        raise AdtkError(f"neg_batch_size must be >= 1, got {cfg.neg_batch_size}")
    if method_cls.needs_abnormal and str(cfg.labelled_anomalies) == "0":
        raise AdtkError(f"method {cfg.method!r} needs at least one labelled anomaly "
                        "(--labelled-anomalies 0 leaves none)")
    size = int(cfg.size)
    if size < 8 or size & (size - 1):
        raise AdtkError(f"size must be a power of two >= 8 (the encoder halves it), got {size}")
    if cfg.device != "auto":
        from toolkit.engine.train import resolve_device

        # An unknown device, or cuda without a GPU: one line now, not a failed run per point.
        resolve_device(cfg.device)
    return cfg


#: Held (flock) by the process writing a run folder; see toolkit.io.exclusive_lock.
LOCK_FILE = ".lock"


def run_dir(cfg: BenchConfig, out_root: str | os.PathLike) -> Path:
    """The folder of ``cfg``'s run: ``out_root / run_id``."""
    return Path(out_root) / cfg.run_id


def is_finished(folder: Path) -> bool:
    return (folder / "metrics.json").is_file()


def run_one(
    cfg: BenchConfig,
    out_root: str | os.PathLike,
    force: bool = False,
    progress: bool | None = None,
    on_epoch: tuple = (),
) -> Path:
    """Train and score one resolved config into ``out_root/RUN_ID``; returns the folder.

    A finished run is returned untouched unless ``force``; an interrupted one resumes from
    its checkpoint. On failure ``error.json`` is written and the error re-raised.
    """
    folder = run_dir(cfg, out_root)
    if is_finished(folder) and not force:
        return folder
    from toolkit.io import exclusive_lock

    folder.mkdir(parents=True, exist_ok=True)
    # One writer per run folder: a second bench (or a worker orphaned by a killed one) on
    # the same run is refused before it touches a file.
    with exclusive_lock(folder / LOCK_FILE, f"{folder}: another adtk process is writing this "
                        "run folder; wait for it to finish (or stop it), then run the same "
                        "command again"):
        if is_finished(folder) and not force:  # another process finished it meanwhile
            return folder
        _run_locked(cfg, folder, force, progress, on_epoch)
    return folder


def _run_locked(
    cfg: BenchConfig, folder: Path, force: bool, progress: bool | str | None, on_epoch: tuple
) -> None:
    """:func:`run_one`'s work, with the folder's lock held."""
    if force:
        for child in folder.iterdir():  # everything but the lock we hold
            if child.is_dir():
                shutil.rmtree(child)
            elif child.name != LOCK_FILE:
                child.unlink()
    (folder / "error.json").unlink(missing_ok=True)
    from toolkit.io import atomic_write_json

    atomic_write_json(folder / "config.json", {**to_dict(cfg), "run_id": cfg.run_id})
    try:
        _run(cfg, folder, progress, on_epoch)
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt) and type(e).__name__ != "TrainingInterrupted":
            atomic_write_json(
                folder / "error.json",
                {
                    "run_id": cfg.run_id,
                    "error": (str(e).splitlines() or [type(e).__name__])[0],
                    "traceback": traceback.format_exc(),
                    "time": _now(),
                },
            )
        raise


def _run(cfg: BenchConfig, folder: Path, progress: bool | None, on_epoch: tuple) -> None:
    import torch

    from toolkit.data.datasets import abnormal_bags, load_bench_data
    from toolkit.engine.score import compute_test_metrics, score_data
    from toolkit.engine.train import available_cores, resolve_device, train
    from toolkit.eval.tables import val_auc_at
    from toolkit.io import atomic_path, atomic_write_json, json_clean

    t0 = time.perf_counter()
    c0 = time.process_time()
    dev = resolve_device(cfg.device)
    if dev.type == "cpu":
        torch.set_num_threads(cfg.num_threads or available_cores())
    else:
        torch.backends.cudnn.benchmark = True
    from toolkit.methods import method_from_config

    method = method_from_config(cfg)
    data = load_bench_data(cfg)  # every data check happens here, before training
    # An explicit --labelled-anomalies 0 is allowed: ADNL then trains exactly as its AAE.
    method.check_data(data.n_abn_available, len(data.train_abn))

    from toolkit.engine.train import TrainData, history_frame

    hist_path = folder / "history.parquet"

    def on_epoch_history(epoch: int, row: dict) -> None:
        # history.parquet is rewritten (atomically) after every checkpointed epoch.
        rows.append(row)
        with atomic_path(hist_path, suffix=".tmp.parquet") as tmp:
            history_frame(rows, method.loss_keys).to_parquet(tmp, index=False)

    rows: list[dict] = []
    ckpt = folder / "checkpoint.pt"
    state = None
    if ckpt.exists():
        from toolkit.engine.train import load_checkpoint

        state = load_checkpoint(ckpt)  # loaded once: train() resumes from this same dict
        rows = list(state["history"])
        # said on the terminal and in the log, not only in metrics.json afterwards
        print(f"{cfg.method} {cfg.run_id}: resumed from epoch {state['epoch']} (of "
              f"{cfg.epochs})", file=sys.stderr, flush=True)
    result = train(
        method,
        TrainData(data.train.x, data.train_abn.x, data.val.x, data.val.y,
                  flip_negate=tuple(data.info.get("flip_negate", ())),
                  abn_bags=abnormal_bags(data.train_abn.meta)),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=dev,
        select=cfg.select,
        augment=cfg.augment,
        neg_batch_size=cfg.neg_batch_size,
        checkpoint=ckpt,
        resume_state=state,
        on_epoch=(on_epoch_history, *on_epoch),
        progress=progress,
        desc=f"{cfg.method} {cfg.run_id}",
    )
    with atomic_path(hist_path, suffix=".tmp.parquet") as tmp:
        result.history.to_parquet(tmp, index=False)

    scores = score_data(method, data, batch_size=max(cfg.batch_size, 1024), tta=cfg.tta)
    with atomic_path(folder / "scores.parquet", suffix=".tmp.parquet") as tmp:
        scores.to_parquet(tmp, index=False)
    with atomic_path(folder / "model.pt") as tmp:
        torch.save({k: v.detach().cpu() for k, v in method.model_.state_dict().items()}, tmp)

    m: dict[str, Any] = {
        "run_id": cfg.run_id,
        **{
            k: getattr(cfg, k)
            for k in (
                "method",
                "dataset",
                "data",
                "crop",
                "input",
                "train_every",
                "seed",
                "anomaly_digit",
                "unseen_digit",
                "neg_loss",
                "neg_weight",
                "labelled_anomalies",
                "preset",
                "select",
                "train_labels",
            )
        },
        # where the training anomalies' labels came from (region / interval / folder ...),
        # and how they were used (neg_bound resolved from auto with the config)
        "train_label_source": data.info.get("train_label_source"),
        "neg_select": (cfg.params or {}).get("neg_select"),
        "neg_bound": (cfg.params or {}).get("neg_bound"),
    }
    m.update(compute_test_metrics(scores, data.unseen_events, seed=cfg.seed))
    m.update(
        best_val_auc=result.best_val_auc,
        best_epoch=result.best_epoch,
        selected_epoch=result.selected_epoch,
        # the val AUC of the model kept and scored (with --select last, not the best's)
        selected_val_auc=val_auc_at(result.history, result.selected_epoch),
        epochs=result.epochs,
        n_train=len(data.train),
        n_train_abnormal=len(data.train_abn) if method.uses_abnormal else 0,
        n_val=len(data.val),
        wall_time_s=time.perf_counter() - t0 + _earlier_time(result),
        # CPU seconds of this process (every thread), counted like wall_time_s: this attempt
        # from start to end, plus the earlier attempts' training up to the checkpoint it
        # resumed from; on a shared machine the wall time says how busy it was, this what the
        # run itself cost
        cpu_time_s=time.process_time() - c0 + result.earlier_cpu_s,
        train_images_per_s=result.images_per_s,
        resumed_from_epoch=result.resumed_from,
        device=_device_name(dev),
        versions=_versions(),
        hardware=_hardware(),
        finished_at=_now(),
    )
    ckpt.unlink(missing_ok=True)
    atomic_write_json(folder / "metrics.json", json_clean(m))  # last: its presence = finished


def _earlier_time(result: Any) -> float:
    # Wall time spent in earlier, interrupted attempts (history time is cumulative).
    h = result.history
    if result.resumed_from and len(h) >= result.resumed_from:
        return float(h["time_s"].iloc[result.resumed_from - 1])
    return 0.0




def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _device_name(dev: Any) -> str:
    import torch

    if dev.type == "cuda":
        i = dev.index or 0
        return f"cuda:{i} {torch.cuda.get_device_name(i)}"
    return "cpu"


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from toolkit import __version__

    return {
        "adtk": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
    }


def _hardware() -> dict[str, Any]:
    import torch

    from toolkit.engine.train import available_cores

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": available_cores(),
        "gpu": gpu,
    }
