"""Manifests of an unfinished adtk extract: the Ped2 suite refuses one, and bench says when a
split was made from one with --allow-incomplete (real Parquet metadata, as extract writes it)."""

from types import SimpleNamespace

import pytest

from toolkit.data import manifest as mf
from toolkit.data.synthetic import make_clip_manifest
from toolkit.engine.clip_suite import plan_suite
from toolkit.engine.grid import incomplete_notes
from toolkit.errors import AdtkError

INCOMPLETE = {"videos": 3, "finished": 1, "missing": ["test/test_02.mp4", "test/test_03.mp4"],
              "failed": [], "interrupted": True}


def test_the_ped2_suite_refuses_an_unfinished_extraction(tmp_path):
    crops = mf.write_manifest(make_clip_manifest(["train/train_01.mp4", "test/test_01.mp4"],
                                                 ["test/test_01.mp4"]),
                              tmp_path / "manifest.parquet",
                              meta={"stage": "extract", "incomplete": INCOMPLETE})
    with pytest.raises(AdtkError, match=r"INCOMPLETE: 1 of 3 videos extracted .*run the same "
                                        r"adtk extract command again"):
        plan_suite(crops, tmp_path / "out", tmp_path / "no-labels-needed-yet.csv")


def test_bench_notes_a_split_of_an_unfinished_extraction(tmp_path):
    df = make_clip_manifest(["test/test_01.mp4"], ["test/test_01.mp4"]).assign(split="test")
    split = mf.write_manifest(df, tmp_path / "dm.parquet", kind="split", meta={
        "kind": "split", "inputs": [{"path": "crops/manifest.parquet",
                                     "incomplete": INCOMPLETE}]})
    done = mf.write_manifest(df, tmp_path / "done.parquet", kind="split",
                             meta={"kind": "split", "inputs": [{"path": "x.parquet"}]})
    cfgs = [SimpleNamespace(data=str(split)), SimpleNamespace(data=str(split)),
            SimpleNamespace(data=str(done)), SimpleNamespace(data=None)]
    (note,) = incomplete_notes(cfgs)
    assert note.startswith(f"{split}: split from an unfinished extraction (--allow-incomplete)")
    assert "1 of 3 videos extracted (2 not yet, the run was interrupted" in note
