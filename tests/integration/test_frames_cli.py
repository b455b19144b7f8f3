"""``adtk bench`` frame-level options: bad input is one line before any training."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data import manifest as mf
from toolkit.data.synthetic import make_clip_manifest


def _bench(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args), "--no-report", "--no-progress"])


@pytest.fixture
def crops(tmp_path):
    path = tmp_path / "crops" / "manifest.parquet"
    path.parent.mkdir()
    mf.write_manifest(make_clip_manifest(["train/a.mp4", "test/b.mp4", "test/c.mp4"],
                                         ["test/b.mp4", "test/c.mp4"]), path)
    return path


@pytest.mark.parametrize("content, message", [
    ("video,frame_idx\nx,0\n", "missing column(s) abnormal"),
    ("video,frame_idx,abnormal\nx,0,yes\n", "row 2: abnormal must be 0 or 1"),
])
def test_bad_frame_labels_stop_before_training(tmp_path, crops, content, message):
    fl = tmp_path / "fl.csv"
    fl.write_text(content)
    r = _bench("--suite", "ped2", "--data", crops, "--frame-labels", fl, "--out", tmp_path / "r")
    assert r.exit_code == 2 and message in r.output
    assert r.output.count("\n") == 1 and r.output.startswith("Error: ")
    assert not (tmp_path / "r").exists()


def test_option_combinations_are_checked(tmp_path, crops):
    fl = tmp_path / "fl.csv"
    fl.write_text("video,frame_idx,abnormal\ntest/b.mp4,0,1\n")
    r = _bench("--labelled-clips", 2, "--data", crops)
    assert r.exit_code == 2 and "--labelled-clips belongs to --suite ped2" in r.output
    r = _bench("--frame-labels", fl, "--dataset", "mnist-5k", "--anomaly-digit", 1)
    assert r.exit_code == 2 and "give --data" in r.output
    r = _bench("--suite", "ped2", "--data", crops, "--out", tmp_path / "r")
    assert r.exit_code == 2 and "needs --frame-labels" in r.output
    r = _bench("--suite", "ped2", "--data", crops, "--frame-labels", fl, "--labelled-clips", 1,
               "--out", tmp_path / "r", "--frame-smooth", -1)
    assert r.exit_code == 2 and "--frame-smooth must be >= 0" in r.output
    r = _bench("--suite", "ped2", "--data", crops, "--frame-labels", fl, "--out", tmp_path / "r",
               "--frame-smooth", 3, "--frame-smooth-filter", "median")
    assert r.exit_code == 2 and "'median' is not one of 'mean', 'gaussian'" in r.output
    r = _bench("--suite", "ped2", "--data", crops, "--frame-labels", fl, "--out", tmp_path / "r",
               "--frame-smooth-filter", "gaussian")
    assert r.exit_code == 2 and "give both" in r.output
    r = _bench("--data", crops, "--out", tmp_path / "r", "--track-smooth", 5)
    assert r.exit_code == 2 and "give --frame-labels" in r.output
