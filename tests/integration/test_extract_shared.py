"""``adtk extract`` defaults on real footage from ../shared/data (skipped when absent).

Results made from the indoor clip: Intel IoT DevKit sample videos, CC-BY-4.0. UCSD Ped2:
Mahadevan et al., "Anomaly detection in crowded scenes", CVPR 2010.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.manifest import read_manifest

pytestmark = pytest.mark.shared


def _extract(args):
    r = CliRunner().invoke(main, ["extract", *args, "--no-progress"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


@pytest.mark.slow
def test_indoor_clip_default_finds_people_in_a_handful_of_sequences(shared_data, tmp_path):
    clip = shared_data / "videos" / "one-by-one-person-detection.mp4"
    _extract([str(clip), "--out", str(tmp_path / "out")])
    df = read_manifest(tmp_path / "out" / "manifest.parquet")
    # six visits of about 10-28 s each, sampled at 2 fps: a few hundred crops
    assert 150 < len(df) < 1500
    assert {d.split("+")[0] for d in df["detector"]} == {"yolox"}
    assert set(df["target"]) == {"person"} and set(df["object_class"]) == {"person"}
    # people on most of the ~100 s with someone in view
    assert df["time_s"].round().nunique() > 60
    # a handful of sequences, not one and not hundreds
    assert 4 <= df["sequence_id"].nunique() <= 30
    # crops are taller than wide people, not specks
    assert df["h"].median() > 100


def test_ucsd_ped2_clip_walkers_and_interval_labels(shared_data, tmp_path):
    ped2 = shared_data / "ucsd-ped2"
    clip = ped2 / "test" / "test_04.mp4"  # a cart from 3.0 s on, walkers throughout
    r = _extract(
        [str(clip), "--out", str(tmp_path / "out"), "--labels", str(ped2 / "labels.csv"),
         "--target", "object"]
    )
    # the labels file covers 28 clips; rows of the other 27 are reported as unmatched
    assert "row(s) match no video" in r.output
    df = read_manifest(tmp_path / "out" / "manifest.parquet")
    per_frame = df.groupby("frame_idx").size()
    # Ped2 test frames hold roughly 5-15 walkers 20-45 px tall; most are found
    assert per_frame.mean() >= 6
    assert df["h"].median() < 60
    inside = df["time_s"] >= 3.0
    assert inside.any() and (~inside).any()
    assert set(df.loc[inside, "label"]) == {"abnormal"}
    assert set(df.loc[inside, "event"]) == {"cart"}
    assert set(df.loc[~inside, "label"]) == {"normal"}
    assert df.loc[~inside, "event"].isna().all()
    assert 5 <= df["sequence_id"].nunique() <= 120


def test_a_video_on_its_side_is_named_with_the_turn_that_shows_its_people(shared_data,
                                                                          tmp_path):
    import cv2

    cap = cv2.VideoCapture(str(shared_data / "mot" / "PETS09-S2L1" / "PETS09-S2L1.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    side = tmp_path / "in" / "side.avi"
    side.parent.mkdir()
    writer = None
    for _ in range(24):  # about 3.4 s, people walking
        ok, frame = cap.read()
        assert ok
        frame = cv2.rotate(frame, cv2.ROTATE_90_COUNTERCLOCKWISE)  # a camera on its side
        if writer is None:
            writer = cv2.VideoWriter(str(side), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    writer.release()
    cap.release()
    r = _extract([str(side.parent), "--out", str(tmp_path / "out"), "--fps", "0"])
    assert "crops: 0 in 0 sequences" in r.output
    assert ("side.avi (the person detector finds people when the picture is turned 90 "
            "clockwise: the video lies on its side; turn it first, e.g. ffmpeg -i IN -vf "
            "transpose=1 OUT)") in r.output
    # the same frames upright: people, and no such note
    upright = tmp_path / "up" / "up.avi"
    upright.parent.mkdir()
    cap = cv2.VideoCapture(str(side))
    writer = cv2.VideoWriter(str(upright), cv2.VideoWriter_fourcc(*"MJPG"), fps, (768, 576))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE))
    writer.release()
    r = _extract([str(upright.parent), "--out", str(tmp_path / "out2"), "--fps", "0"])
    assert "crops: 0 " not in r.output and "on its side" not in r.output
