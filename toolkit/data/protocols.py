"""Evaluation protocols that split a crop manifest by clip (whole videos), as video benchmarks do.

The video anomaly field does not split crops at random: it trains on some clips and tests on
others, and scores every frame of the test clips. Two protocols:

* ``official``: train on the training clips (every clip that is not a test clip; on UCSD Ped2
  the 16 all-normal training clips), test on every test clip. Unsupervised methods are then
  directly comparable with published numbers.
* ``fewshot``: a seeded choice of ``k`` test clips moves into training with its labels (the
  crop ``label`` column: region labels where the manifest has them, else interval labels);
  the remaining test clips are the test set. Every method of one seed is trained and scored
  on the same split manifest, so the baseline is scored on exactly the clips ADNL is.

Which clips are test clips is given by the caller (the videos of a frame-labels file, which
list the clips a benchmark scores). No validation split is made: both protocols choose the
model by its last epoch, as the published methods report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import AdtkError


@dataclass(frozen=True)
class ClipSplit:
    """Which clips train and which test, and how the choice was made."""

    protocol: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    labelled: tuple[str, ...] = ()  # test clips moved into training (few-shot)
    k: int = 0
    seed: int | None = None
    events: tuple[str, ...] = ()  # few-shot: labelled clips were chosen among these kinds

    @property
    def name(self) -> str:
        if self.protocol == "official":
            return "official"
        kinds = f"-{'+'.join(self.events)}" if self.events else ""
        return f"fewshot-k{self.k}{kinds}-seed{self.seed}"

    def meta(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "protocol_name": self.name,
            "train_videos": list(self.train),
            "test_videos": list(self.test),
            "labelled_videos": list(self.labelled),
            "labelled_clips": self.k,
            "protocol_seed": self.seed,
            "protocol_events": list(self.events),
        }


def _check_test_videos(videos: Sequence[str], test_videos: Iterable[str]) -> list[str]:
    vids = set(videos)
    test = sorted(set(test_videos))
    if not test:
        raise AdtkError("protocol split: no test clips given")
    missing = [v for v in test if v not in vids]
    if len(missing) == len(test):
        raise AdtkError(
            f"protocol split: none of the {len(test)} test clips is in the manifest (e.g. "
            f"{test[0]!r}; the manifest has e.g. {sorted(vids)[0] if vids else 'no video'!r})"
        )
    return [v for v in test if v in vids]


def official_split(videos: Sequence[str], test_videos: Iterable[str]) -> ClipSplit:
    """Train on every clip that is not a test clip; test on all test clips in ``videos``."""
    videos = sorted(set(videos))
    test = _check_test_videos(videos, test_videos)
    train = [v for v in videos if v not in set(test)]
    if not train:
        raise AdtkError("protocol official: every clip is a test clip; no training clips left")
    return ClipSplit("official", tuple(train), tuple(test))


def fewshot_split(
    videos: Sequence[str],
    test_videos: Iterable[str],
    k: int,
    seed: int,
    candidates: Iterable[str] | None = None,
    events: Iterable[str] = (),
) -> ClipSplit:
    """Move a seeded choice of ``k`` test clips into training; the rest stay the test set.

    ``candidates``: the test clips that may be chosen (e.g. those holding labelled anomalies);
    default every test clip. The choice depends only on ``seed`` and the sorted candidate
    names, so it is the same on every machine and for every method.
    """
    videos = sorted(set(videos))
    test = _check_test_videos(videos, test_videos)
    pool = sorted(set(test) if candidates is None else set(candidates) & set(test))
    k = int(k)
    if k < 1:
        raise AdtkError(f"--labelled-clips must be >= 1 for the few-shot protocol, got {k}")
    if k > len(pool):
        raise AdtkError(
            f"--labelled-clips {k}: only {len(pool)} test clip(s) can be chosen"
            + (f" ({', '.join(pool)})" if pool else "")
        )
    if k >= len(test):
        raise AdtkError(
            f"--labelled-clips {k}: would leave no test clip (there are {len(test)})"
        )
    chosen = np.random.default_rng(int(seed)).choice(len(pool), size=k, replace=False)
    labelled = sorted(pool[i] for i in chosen)
    rest = [v for v in test if v not in set(labelled)]
    train = [v for v in videos if v not in set(test)] + labelled
    return ClipSplit(
        "fewshot", tuple(sorted(train)), tuple(rest), tuple(labelled), k, int(seed),
        tuple(sorted(set(events))),
    )


def abnormal_clips(df: pd.DataFrame, events: Iterable[str] = ()) -> list[str]:
    """Clips with at least one abnormal crop (of one of ``events`` when given)."""
    abn = df["label"] == "abnormal"
    events = set(events)
    if events:
        abn &= df["event"].astype("string").isin(events).fillna(False)
    return sorted(df.loc[abn, "video"].unique().tolist())


def clip_events(df: pd.DataFrame) -> dict[str, set[str]]:
    """Per clip, the anomaly kinds (``event``) of its abnormal crops."""
    abn = df[(df["label"] == "abnormal") & df["event"].notna()]
    return {str(v): set(map(str, g)) for v, g in abn.groupby("video")["event"]}


def unseen_kind_split(
    videos: Sequence[str],
    test_videos: Iterable[str],
    k: int,
    seed: int,
    events: dict[str, set[str]],
    seen: Iterable[str],
) -> ClipSplit:
    """Few-shot, with labelled clips chosen only among clips whose anomalies are all of the
    ``seen`` kinds: the other kinds (e.g. cart, skateboard when ``seen`` is bike) stay unseen
    in training and are scored in their own test clips. ``events``: :func:`clip_events`."""
    seen = set(seen)
    pool = [v for v, ev in events.items() if ev and ev <= seen]
    return fewshot_split(videos, test_videos, k, seed, candidates=pool, events=seen)


def split_source(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The crop manifest a protocol split manifest was written from (its ``inputs`` entry:
    ``path`` and ``sha256``), from the split's metadata; None for any other manifest."""
    inputs = meta.get("inputs") or []
    if not meta.get("protocol") or len(inputs) != 1:
        return None
    return inputs[0]


def assign(df: pd.DataFrame, split: ClipSplit) -> pd.DataFrame:
    """``df`` restricted to the split's clips, with a ``split`` column (train / test)."""
    where = {v: "train" for v in split.train} | {v: "test" for v in split.test}
    out = df[df["video"].isin(where)].copy()
    out["split"] = out["video"].map(where).astype("string")
    leaked = set(split.train) & set(split.test)
    if leaked:  # cannot happen by construction; never write a leaking split
        raise AdtkError(f"internal error: clip(s) in train and test: {', '.join(sorted(leaked))}")
    return out.reset_index(drop=True)


@dataclass
class ProtocolManifest:
    path: Path
    split: ClipSplit
    rows: dict[str, int] = field(default_factory=dict)
    written: bool = True


def write_protocol_manifest(
    crop_manifest: str | os.PathLike,
    out: str | os.PathLike,
    split: ClipSplit,
    df: pd.DataFrame | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> ProtocolManifest:
    """Write ``crop_manifest``'s crops with the split's ``split`` column to ``out`` (atomic).

    An existing file written from the same source manifest (by content) with the same split is
    kept as it is, so the runs that read it keep their ids and a suite resumes. ``extra_meta``
    goes into the metadata too (e.g. the suite that wrote it).
    """
    from toolkit import __version__
    from toolkit.data import manifest as mf
    from toolkit.io import sha256_file

    src = Path(crop_manifest)
    out = Path(out)
    sha = sha256_file(src)
    meta = {
        "kind": "split",
        "adtk_version": __version__,
        **split.meta(),
        **(extra_meta or {}),
        "inputs": [{"path": str(src.resolve()), "sha256": sha}],
        "group_by": "video",
        "holdout_events": [],
    }
    # What the motion crops hold (flow or frame difference) travels with the crops: training
    # mirrors a flow's horizontal component on a flip only when it knows the crops are flow.
    motion = mf.read_meta(src).get("motion_channels")
    if motion:
        meta["motion_channels"] = motion
    if df is None:
        df = mf.read_manifest(src, kind="crop")
    part = assign(df, split)
    rows = part["split"].value_counts().to_dict()
    if out.is_file():
        try:
            old = mf.read_meta(out)
        except Exception:  # noqa: BLE001  (unreadable: rewrite it)
            old = {}
        if {k: old.get(k) for k in meta if k != "adtk_version"} == {
            k: v for k, v in _json(meta).items() if k != "adtk_version"
        }:
            return ProtocolManifest(out, split, rows, written=False)
    root = mf.crops_root(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta["crops_root"] = os.path.relpath(root, out.resolve().parent)
    meta["crops_root_abs"] = str(root)
    mf.write_manifest(part, out, kind="split", meta=meta)
    return ProtocolManifest(out, split, rows)


def _json(d: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(d, default=str))
