"""``adtk extract`` on long and truncated videos, as a user runs it: ``kill -9`` in the middle
of a chunked video and rerun; a truncated file keeps what decoded, quietly."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from toolkit.data.manifest import read_manifest, read_meta
from toolkit.video.extract import video_id_for
from toolkit.video.synthetic import make_video

REPO = Path(__file__).resolve().parents[2]
#: the decoder's own log lines look like "[mjpeg @ 0x55d06aef7700] overread 8"
FFMPEG_LINE = " @ 0x"


# the generated walkers are no people a person detector knows: extract them as moving objects
OBJECTS = ("--target", "object", "--detector", "auto")


def adtk(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", "extract", *args, *OBJECTS, "--no-progress"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **kw,
    )


def manifest(out: Path) -> pd.DataFrame:
    return read_manifest(out / "manifest.parquet").sort_values("crop_id").reset_index(drop=True)


@pytest.mark.slow
def test_kill_9_mid_video_resumes_from_the_last_committed_chunk(tmp_path):
    src = tmp_path / "in"
    make_video(src / "cam.avi", seconds=64, walkers=2, speed=30)
    vdir = tmp_path / "out" / "videos" / video_id_for("cam.avi")
    # 8 chunks of 8 s (16 sampled frames at 2 fps, a multiple of the batch of 8), one worker
    args = [
        str(src),
        "--out",
        str(tmp_path / "out"),
        "--chunk",
        "8s",
        "--chunk-warmup",
        "2s",
        "--workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "extract", *args, *OBJECTS],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(vdir.glob("chunk-*/part.parquet"))) < 2:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker: our own process group
        proc.wait()
    committed = len(list(vdir.glob("chunk-*/part.parquet")))
    assert committed >= 2, "no chunk was committed in time"
    assert committed < 8 and not (vdir / "part.parquet").exists(), "finished before the kill"

    r = adtk(*args[:-1])
    assert r.returncode == 0, r.stderr
    assert "1 extracted" in r.stdout
    assert f"{8 - committed} extracted, {committed} committed earlier (resumed)" in r.stdout
    resumed = manifest(tmp_path / "out")
    assert all((tmp_path / "out" / p).is_file() for p in resumed["path"])
    assert not any((tmp_path / "out" / ".staging").glob("*"))

    # the same as a run that was never interrupted, to the last column
    args[2] = str(tmp_path / "ref")
    assert adtk(*args[:-1]).returncode == 0
    pd.testing.assert_frame_equal(resumed, manifest(tmp_path / "ref"))
    # and as one pass over the whole video, except the documented boundary effect: the
    # fill score of motion boxes (same boxes, same tracks and ids)
    args[2], args[4] = str(tmp_path / "whole"), "0"
    assert adtk(*args[:-1]).returncode == 0
    whole = manifest(tmp_path / "whole")
    cols = ["crop_id", "frame_idx", "x", "y", "w", "h", "track_id", "sequence_id", "label"]
    pd.testing.assert_frame_equal(resumed[cols], whole[cols])
    assert (resumed["det_score"] - whole["det_score"]).abs().max() < 0.02


def _cut(src: Path, dst: Path, frac: float) -> None:
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * frac)])


@pytest.mark.slow
def test_truncated_video_keeps_the_frames_that_decoded_quietly(tmp_path):
    full = make_video(tmp_path / "full" / "cam.avi", seconds=30, walkers=2, speed=30)
    _cut(full, tmp_path / "cut" / "cam.avi", 0.6)
    ref = adtk(str(full.parent), "--out", str(tmp_path / "o_full"), "--workers", "1")
    assert ref.returncode == 0, ref.stderr

    r = adtk(str(tmp_path / "cut"), "--out", str(tmp_path / "o_cut"), "--workers", "1")
    assert r.returncode == 0, r.stderr  # kept what it could: a warning, not a failure
    assert FFMPEG_LINE not in r.stderr, r.stderr  # the decoder's own lines are silenced
    assert "PARTIAL (1" in r.stdout and "decoding stopped at frame" in r.stdout
    with open(tmp_path / "o_cut" / "failures.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    stop = int(row["decode_stopped_at"])
    assert row["video"] == "cam.avi" and row["status"] == "partial"
    assert 100 < stop < 300  # of 300 frames
    assert read_meta(tmp_path / "o_cut" / "manifest.parquet")["partial"] == {
        "cam.avi": {"decode_stopped_at": stop, "frames": 300}
    }
    shown = subprocess.run(
        [sys.executable, "-m", "toolkit", "inspect", str(tmp_path / "o_cut" / "manifest.parquet")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert (
        f"partial videos (decoding stopped early; crops end there): 1: cam.avi (stopped "
        f"at frame {stop} of 300)" in shown
    )
    cut = manifest(tmp_path / "o_cut")
    # exactly the crops a full read has before the stop, less tracks the cut left too short
    f = manifest(tmp_path / "o_full")
    f = f[f["frame_idx"] < stop]
    f = f[f.groupby("sequence_id")["crop_id"].transform("size") >= 3]
    assert len(cut) > 50
    assert list(cut["crop_id"]) == list(f["crop_id"])
    assert (cut[["x", "y", "w", "h"]].to_numpy() == f[["x", "y", "w", "h"]].to_numpy()).all()

    # the same file in chunks: the chunks after the stop are empty, the video is still partial
    rc = adtk(
        str(tmp_path / "cut"),
        "--out",
        str(tmp_path / "o_ch"),
        "--chunk",
        "8s",
        "--chunk-warmup",
        "2s",
        "--workers",
        "2",
    )
    assert rc.returncode == 0, rc.stderr
    assert FFMPEG_LINE not in rc.stderr, rc.stderr
    assert read_meta(tmp_path / "o_ch" / "manifest.parquet")["partial"]["cam.avi"] == {
        "decode_stopped_at": stop,
        "frames": 300,
    }
    assert list(manifest(tmp_path / "o_ch")["crop_id"]) == list(cut["crop_id"])

    # --verbose lets the decoder speak (so the silence above is not an accident of FFmpeg)
    rv = adtk(str(tmp_path / "cut"), "--out", str(tmp_path / "o_v"), "--workers", "1", "--verbose")
    assert rv.returncode == 0 and FFMPEG_LINE in rv.stderr, rv.stderr
