"""bench's note on unlabeled crops: which splits, and train by the labels a run trains on."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from toolkit.data.datasets import split_label_counts
from toolkit.data.manifest import read_manifest, write_manifest
from toolkit.data.synthetic import make_split_manifest
from toolkit.engine.grid import unlabeled_notes
from toolkit.io import sha256_file


def _region_manifest(tmp_path, unlabeled_interval: int):
    """A region-labelled split manifest whose interval labels leave some train crops out."""
    man = make_split_manifest(tmp_path, counts={"train": (12, 3), "val": (4, 2), "test": (6, 2)})
    df = read_manifest(man)
    df["label_source"] = "region"
    df["label_interval"] = df["label"]
    rows = np.flatnonzero(((df["split"] == "train") & (df["label"] == "normal")).to_numpy())
    df.loc[df.index[rows[:unlabeled_interval]], "label_interval"] = "unlabeled"
    return write_manifest(df, man, kind="split")


def _cfg(man, train_labels):
    return SimpleNamespace(data=str(man), data_sha256=sha256_file(man), train_labels=train_labels)


def test_train_crops_are_counted_by_the_labels_the_run_trains_on(tmp_path):
    man = _region_manifest(tmp_path, unlabeled_interval=5)
    split_label_counts.cache_clear()
    assert unlabeled_notes([_cfg(man, "auto")]) == []  # region labels: none unlabeled
    (note,) = unlabeled_notes([_cfg(man, "auto"), _cfg(man, "interval")])
    assert note.startswith(f"{man}: 5 of 15 train crops are unlabeled and left out of training")
    (note,) = unlabeled_notes([_cfg(man, "interval")])
    assert "5 of 15 train crops" in note and "test" not in note.split(":")[1]
