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


def test_a_split_of_a_split_keeps_the_incomplete_mark_or_is_refused(tmp_path):
    from toolkit.data.split import split_manifests
    from toolkit.data.synthetic import make_crop_manifest

    crops = mf.write_manifest(make_crop_manifest(400, seed=3), tmp_path / "manifest.parquet",
                              meta={"stage": "extract", "incomplete": INCOMPLETE})
    first = split_manifests([crops], tmp_path / "a.parquet", allow_incomplete=True).out
    with pytest.raises(AdtkError, match=r"a\.parquet: INCOMPLETE \(split with --allow-"
                                        r"incomplete\): 1 of 3 videos extracted .*give "
                                        r"--allow-incomplete"):
        split_manifests([first], tmp_path / "b.parquet")
    assert not (tmp_path / "b.parquet").exists()
    again = split_manifests([first], tmp_path / "b.parquet", allow_incomplete=True)
    (info,) = mf.read_meta(again.out)["inputs"]
    assert info["path"] == str(first.resolve()) and info["incomplete"] == INCOMPLETE
    assert any("incomplete: 1 of 3 videos extracted" in w for w in again.warnings)
    (note,) = incomplete_notes([SimpleNamespace(data=str(again.out))])
    assert "1 of 3 videos extracted (2 not yet, the run was interrupted" in note


def test_a_split_of_several_unfinished_extractions_carries_one_mark_for_all():
    from toolkit.data.split import _merged_marks

    def _inputs_incomplete(meta):  # the marks a split's inputs carry, as load_inputs merges them
        return _merged_marks([mark for _, mark in mf.incomplete_marks(meta)[1]])

    other = {"videos": 2, "finished": 1, "missing": [], "failed": ["b.avi"],
             "interrupted": False}
    meta = {"inputs": [{"path": "a", "incomplete": INCOMPLETE}, {"path": "c"},
                       {"path": "b", "incomplete": other}]}
    assert _inputs_incomplete(meta) == {
        "videos": 5, "finished": 2, "missing": INCOMPLETE["missing"], "failed": ["b.avi"],
        "interrupted": True}
    assert _inputs_incomplete({"inputs": [{"path": "c", "incomplete": None}]}) is None


def test_a_run_with_only_failed_videos_left_is_not_told_to_just_run_again():
    """A failed video fails again on a rerun: the words say to fix or remove it first."""
    failed = {"videos": 3, "finished": 2, "missing": [], "failed": ["bad.avi"],
              "interrupted": False}
    text = mf.incomplete_text(failed)
    assert text.startswith("2 of 3 videos extracted (1 failed (listed in failures.csv): "
                           "bad.avi); fix or remove the failed videos")
    assert mf.incomplete_text(INCOMPLETE).endswith(
        "run the same adtk extract command again to finish")
