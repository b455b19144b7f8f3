"""Stage configuration: frozen dataclasses, resolved as defaults -> YAML file -> CLI flags.

Each stage declares one frozen dataclass here (``ExtractConfig``, ``SplitConfig``,
``BenchConfig``...). :func:`resolve` builds it from the three layers, so the resolved config
saved beside results says exactly what ran. A YAML file may hold the stage's keys at top level
or under a section named after the stage (``extract:``, ``split:``, ``bench:``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from toolkit.errors import AdtkError

C = TypeVar("C")


def resolve(
    cls: type[C],
    yaml_path: str | os.PathLike | None = None,
    section: str | None = None,
    **flags: Any,
) -> C:
    """Defaults of ``cls``, then the YAML file's values, then the flags that are not None."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(load_yaml(yaml_path, section))
    values.update({k: v for k, v in flags.items() if v is not None})
    return build(cls, values, where=str(yaml_path) if yaml_path else None)


def build(cls: type[C], values: Mapping[str, Any], where: str | None = None) -> C:
    """Instantiate ``cls`` from ``values``; unknown keys are an error that names them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise AdtkError(
            f"{where or 'options'}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints.get(k), v, k, where) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        # Flag values need no prefix (the message names the setting); a YAML file is named.
        raise AdtkError(f"{where}: {e}" if where else str(e)) from None


_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _coerce(hint: Any, value: Any, name: str = "", where: str | None = None) -> Any:
    """Check a scalar setting against its annotation and normalise it.

    A YAML ``fps: abc`` or ``seed: 1.5`` is a one-line error naming the setting (not a
    comparison error from deep inside); an integer where a float is declared becomes a float,
    so ``fps: 5`` in YAML and ``--fps 5`` give the same resolved config and the same hash;
    paths become strings. Annotations other than scalars and their unions with None are left
    to the dataclass's own checks.
    """
    # YAML and JSON give lists where a frozen dataclass wants tuples (hashable, immutable).
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is None:
        return value
    options = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    scalars = [t for t in options if t is not type(None)]
    if not scalars or any(t not in _SCALARS for t in scalars):
        return value
    if str in scalars and isinstance(value, os.PathLike):
        return os.fspath(value)
    for t in scalars:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            return value
    want = " or ".join(_SCALARS[t] for t in scalars)
    if type(None) in options:
        want += " (or empty)"
    msg = f"{name} must be {want}, got {value!r}"
    raise AdtkError(f"{where}: {msg}" if where else msg)


def load_yaml(path: str | os.PathLike, section: str | None = None) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.exists():
        raise AdtkError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(), Loader=_yaml_loader()) or {}
    except yaml.YAMLError as e:
        raise AdtkError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise AdtkError(f"{path}: expected a mapping of settings at top level")
    if section and isinstance(data.get(section), dict):
        return dict(data[section])
    return data


def _yaml_loader():
    """yaml's SafeLoader, except that ``a:b:c`` stays a string.

    YAML 1.1 reads ``ratios: 7:1:2`` as the base-60 number 25262 (7*3600 + 1*60 + 2); the
    same spelling works on the command line, so it must mean the same in a config file.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def number_or_string(loader, node, base=yaml.SafeLoader):
        value = loader.construct_scalar(node)
        if ":" in value:
            return value
        if node.tag.endswith(":int"):
            return base.construct_yaml_int(loader, node)
        return base.construct_yaml_float(loader, node)

    Loader.add_constructor("tag:yaml.org,2002:int", number_or_string)
    Loader.add_constructor("tag:yaml.org,2002:float", number_or_string)
    return Loader


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists, paths strings)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def config_hash(cfg: Any, length: int = 12) -> str:
    """A stable short hash of a config (dataclass or mapping): same settings, same hash."""
    d = to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Settings of ``adtk split`` (the algorithm is in ``toolkit/data/split.py``).

    ``group_by`` is a column name or ``window:SECONDS`` (e.g. ``window:300s``, ``window:5m``):
    all crops of one video within one time window form a group. ``ratios`` are train:val:test
    weights (``"7:1:2"`` or three numbers), normalised to sum 1.
    """

    group_by: str = "sequence_id"
    ratios: tuple[float, float, float] = (7.0, 1.0, 2.0)
    seed: int = 0
    holdout_events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Frozen: normalise YAML/CLI spellings ("7:1:2", a single event string) in place.
        ratios = self.ratios
        if isinstance(ratios, str):
            ratios = tuple(p for p in ratios.replace(",", ":").split(":") if p.strip())
        try:
            ratios = tuple(float(r) for r in ratios)
        except (TypeError, ValueError):
            raise ValueError(f"ratios {self.ratios!r}: expected three numbers like 7:1:2") from None
        if len(ratios) != 3:
            raise ValueError(f"ratios {self.ratios!r}: expected three numbers (train:val:test)")
        if any(not (r >= 0 and r < float("inf")) for r in ratios):
            raise ValueError(f"ratios {self.ratios!r}: every ratio must be a number >= 0")
        if sum(ratios) <= 0:
            raise ValueError(f"ratios {self.ratios!r}: at least one ratio must be > 0")
        object.__setattr__(self, "ratios", ratios)
        events = self.holdout_events
        events = (events,) if isinstance(events, str) else tuple(events or ())
        object.__setattr__(self, "holdout_events", tuple(str(e) for e in events))
        # numpy's SeedSequence takes non-negative integers only
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed {self.seed!r}: expected an integer >= 0")
        if not isinstance(self.group_by, str) or not self.group_by.strip():
            raise ValueError(f"group_by {self.group_by!r}: expected a column name or window:300s")


# --- adtk bench -------------------------------------------------------------------------------

#: Settings that do not change a run's result, so they stay out of its id (config_hash).
BENCH_HASH_EXCLUDE = frozenset(
    {"device", "out", "force", "jobs", "cache_dir", "data_root", "num_threads"}
)


#: BenchConfig fields hashed only when they differ from this value.
BENCH_HASH_IF_SET = {"input": "appearance", "train_labels": "auto", "train_every": 1,
                     "tta": "none"}


def saved_run_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's ``config.json`` as read back: the fields of :data:`BENCH_HASH_IF_SET` that
    the run predates (saved before they existed) filled with their default, the value that
    run had, so an old run and a new one with the same settings compare equal."""
    if "method" not in config:
        return config
    return {**{k: v for k, v in BENCH_HASH_IF_SET.items() if k not in config}, **config}


#: Method settings (``params``) added after runs existed, hashed only when they differ from the
#: behaviour before them (every labelled anomaly a negative, the negative term unbounded), so
#: those runs keep their ids (neg_margin: the margin runs made before its default became 4;
#: it is never hashed for an unbounded negative term, which does not use it).
PARAMS_HASH_IF_SET = {"neg_select": "all", "mil_k": 1, "mil_warmup": 0, "neg_bound": "none",
                      "neg_margin": 2.0}
#: Which labels the training crops take (``adtk bench --train-labels``).
TRAIN_LABELS = ("auto", "region", "interval")


def check_train_labels(value: str) -> str:
    """``value`` when it is one of :data:`TRAIN_LABELS`, else a one-line error."""
    if value not in TRAIN_LABELS:
        raise AdtkError(f"unknown train_labels {value!r}; use one of {', '.join(TRAIN_LABELS)}")
    return value


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One training + scoring run of ``adtk bench``.

    ``None`` in a preset-controlled field means "take it from the preset";
    :func:`toolkit.engine.run.resolve_bench_config` fills every one, so a saved config is
    complete. A method's settings (``toolkit.methods``, each method declares its own) live in
    the field of the same name where there is one, else in ``params``; a field the method does
    not declare stays None ("does not apply").
    """

    method: str = "adnl"
    dataset: str = "mnist-5k"  # mnist-5k | digits | mnist | fashion-mnist | manifest
    data: str | None = None  # split manifest path (sets dataset to "manifest")
    data_sha256: str | None = None  # the manifest's content hash, filled in by resolution
    crop: str = "normal"  # normal | oversize (manifests)
    input: str = "appearance"  # appearance | motion | both (manifests with motion channels)
    #: which label the *training* crops take (manifests): auto = ``label``; interval =
    #: ``label_interval`` (a region-labelled manifest trained as if it had interval labels
    #: only); region = ``label``, checked to be region labels. Test labels never change.
    train_labels: str = "auto"
    # manifests: train on the normal crops of every Nth frame of each training clip
    # (frame_idx % N == 0); labelled anomalies, val and test crops are never subsampled
    train_every: int = 1
    anomaly_digit: int | None = None
    unseen_digit: int | None = None
    seed: int = 0
    labelled_anomalies: int | str = "all"
    preset: str = "quick"  # quick | paper
    # preset-controlled
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    latent_dim: int | None = None
    width: int | None = None
    adv_weight: float | None = None
    neg_loss: str | None = None  # naive | scaled
    neg_weight: float | None = None
    neg_batch_size: int | None = None
    warmup_epochs: int | None = None
    size: int | None = None  # image side the network takes (power of two)
    augment: str | None = None  # none | hflip (on device)
    tta: str = "none"  # none | hflip: test-time augmentation of the scores (needs augment hflip)
    val_fraction: float = 0.1  # digit sets: share of train kept for validation
    select: str = "last"  # last | best-val
    # not part of the run id
    device: str = "auto"  # auto | cpu | cuda
    out: str = "runs"
    cache_dir: str | None = None
    data_root: str | None = None
    num_threads: int = 0  # CPU threads; 0 = every core this process may use
    # the method's own settings that have no field above (name -> value), part of the run id
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def hash_dict(self) -> dict[str, Any]:
        """The settings that change the result (what the run id hashes).

        A manifest counts by its content (``data_sha256``) and its real location (its crop
        paths are relative to its folder), not by how its path is spelled: ``m/x.parquet``,
        ``./m/x.parquet`` and the absolute path are one run.
        """
        d = {k: v for k, v in to_dict(self).items() if k not in BENCH_HASH_EXCLUDE}
        # settings added later count only when set: earlier runs keep their ids
        for k, default in BENCH_HASH_IF_SET.items():
            if d.get(k) == default:
                d.pop(k, None)
        raw = dict(d.get("params") or {})
        if raw.get("neg_bound") != "margin":
            raw.pop("neg_margin", None)  # no bound, no margin: it changes nothing
        if raw.get("neg_select") != "mil-once":
            raw.pop("mil_warmup", None)  # only the once-made choice waits for it
        params = {k: v for k, v in raw.items()
                  if k not in PARAMS_HASH_IF_SET or v != PARAMS_HASH_IF_SET[k]}
        if params:
            d["params"] = params
        else:
            d.pop("params", None)  # methods without extra settings keep their earlier run ids
        if d.get("data"):
            d["data"] = os.path.realpath(d["data"])
        return d

    @property
    def run_id(self) -> str:
        return config_hash(self.hash_dict())


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Settings of ``adtk extract`` (see ``adtk extract --help`` for each one)."""

    fps: float = 2.0
    target: str = "person"
    detector: str = "yolox"
    yolox_size: int = 640
    #: YOLOX, person mode, CPU: search one window around what moves (see detect.window)
    yolox_windows: bool = False
    motion_gate: bool = True
    min_score: float | None = None
    #: also keep boxes scored from this up to min_score ("weak" boxes, e.g. a far-away biker
    #: half hidden in a crowd) when no stronger box holds them and they overlap motion; None
    #: = off
    low_score: float | None = None
    min_size: int = 12
    size: int = 64
    max_gap: float = 2.0
    min_track: int = 3
    bridge_s: float = 0.5
    min_iou: float = 0.1
    max_jump: float = 0.75
    #: weight of the boxes' colours in the tracker's matching cost (0: boxes only); see
    #: toolkit.video.track
    track_appearance: float = 1.0
    hog_upscale: float = 1.0
    hog_scale_step: float = 1.05
    motion_width: int = 320
    motion_absorb_s: float = 60.0
    motion_warmup_s: float = 5.0
    tv_model: str = "fasterrcnn_mobilenet_v3_large_fpn"
    weights: str | None = None
    device: str = "auto"
    batch: int = 8
    workers: int = 0
    labels: str | None = None
    stall_s: float = 600.0
    #: a video longer than this is cut into chunks of this many seconds, extracted in parallel
    #: and committed one by one (0 = one work item per video, however long)
    chunk_s: float = 600.0
    #: each chunk after the first starts this many seconds early, reading but not emitting,
    #: so the motion model and the tracker are warm at its first frame (about twice
    #: motion_absorb_s: the background model's memory is that long)
    chunk_warmup_s: float = 120.0
    #: let OpenCV and FFmpeg print their own decoder messages
    verbose: bool = False
    regions: str | None = None
    motion_channels: str = "none"

    def __post_init__(self) -> None:
        # name -> (ok, the rule); the error says which value broke which rule
        checks = {
            "fps": (0 <= self.fps < float("inf"), "a finite number >= 0; 0 = every frame"),
            "chunk_s": (self.chunk_s == 0 or self.chunk_s >= 1, "0 (off) or >= 1 second"),
            "chunk_warmup_s": (self.chunk_warmup_s >= 0, ">= 0"),
            "target": (self.target in ("person", "object"), "person or object"),
            "yolox_size": (self.yolox_size >= 32 and self.yolox_size % 32 == 0,
                           "a multiple of 32"),
            "size": (self.size >= 8, ">= 8"),
            "min_size": (self.min_size >= 0, ">= 0"),
            "min_score": (self.min_score is None or 0 <= self.min_score <= 1,
                          "in [0, 1] (a detector score); unset = the detector's default"),
            "low_score": (self.low_score is None or 0 < self.low_score <= 1,
                          "in (0, 1]; unset = off"),
            "max_gap": (self.max_gap >= 0, ">= 0"),
            "min_track": (self.min_track >= 1, ">= 1"),
            "bridge_s": (self.bridge_s >= 0, ">= 0; 0 = off"),
            "hog_upscale": (self.hog_upscale > 0, "> 0"),
            "hog_scale_step": (self.hog_scale_step > 1.0, "> 1"),
            "motion_width": (self.motion_width >= 32, ">= 32"),
            "batch": (self.batch >= 1, ">= 1"),
            "workers": (self.workers >= 0, ">= 0; 0 = all cores"),
            "stall_s": (self.stall_s > 0, "> 0"),
            "motion_channels": (
                self.motion_channels in ("none", "flow", "diff"), "none, flow or diff"
            ),
        }
        bad = [f"{k} {getattr(self, k)!r} (must be {rule})" for k, (ok, rule) in checks.items()
               if not ok]
        if bad:
            raise ValueError(f"invalid value for {', '.join(bad)}")


#: ExtractConfig fields that do not change what one video's extraction produces (a finished
#: video is not redone when only these change; labels are re-applied on every run).
# ``batch`` stays in the hash: a batch searches the same frames as single frames
# (DetectionPipeline.process), but batched inference can differ from single frames in the last
# bits of a score (1e-5 measured), which can move a box across a threshold.
# ``chunk_s`` and ``chunk_warmup_s`` change crops only near chunk boundaries (see
# ``toolkit.video.extract``): a finished video is not redone for them, but a chunk is reused
# only for the same frame range and warm-up.
EXTRACT_RUNTIME_FIELDS = frozenset(
    {"workers", "labels", "device", "stall_s", "chunk_s", "chunk_warmup_s", "verbose", "regions"}
)
#: ExtractConfig fields hashed only when they differ from this value (added after outputs
#: existed: an unchanged setting must not redo every finished video).
EXTRACT_HASH_IF_SET = {"motion_channels": "none", "low_score": None, "yolox_windows": False,
                       "track_appearance": 1.0}
