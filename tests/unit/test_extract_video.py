"""extract_video and run_extract in-process: what is committed, and when."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from toolkit.config import ExtractConfig
from toolkit.errors import AdtkError
from toolkit.video.extract import extract_video
from toolkit.video.synthetic import make_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("v") / "cam.avi", seconds=3, walkers=1)


def test_a_crop_that_cannot_be_written_fails_the_video_and_commits_nothing(
    clip, tmp_path, monkeypatch
):
    import errno

    from toolkit.video import writer

    real, calls = writer.save_png, []

    def full_disk(path, img):  # the fifth file meets a full disk
        calls.append(path)
        if len(calls) >= 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, img)

    monkeypatch.setattr(writer, "save_png", full_disk)
    with pytest.raises(AdtkError, match=r"cam.avi: could not write crop (box|oversize)/\S+\.png "
                                        r"\(No space left on device; disk full\?\)"):
        extract_video(clip, "cam.avi", tmp_path, ExtractConfig(detector="motion", target="object"))
    assert len(calls) >= 5
    assert not (tmp_path / "videos").exists()
    assert not any((tmp_path / ".staging").iterdir())
    assert not [t for t in threading.enumerate() if t.name.startswith("adtk-png")]


def test_the_part_is_committed_only_with_every_crop_file_on_disk(clip, tmp_path, monkeypatch):
    import time

    import pandas as pd

    from toolkit.video import writer

    real = writer.save_png

    def slow(path, img):  # a slow disk: files land long after they were handed over
        time.sleep(0.02)
        real(path, img)

    monkeypatch.setattr(writer, "save_png", slow)
    s = extract_video(clip, "cam.avi", tmp_path, ExtractConfig(detector="motion", target="object"))
    assert s["crops"] > 0
    part = pd.read_parquet(next((tmp_path / "videos").glob("*/part.parquet")))
    assert len(part) == s["crops"]
    for col in ("path", "path_oversize"):
        assert all((tmp_path / p).is_file() for p in part[col])
    assert not [t for t in threading.enumerate() if t.name.startswith("adtk-png")]


def test_an_error_mid_video_stops_the_decoding_thread_at_once(tmp_path, monkeypatch):
    from toolkit.video.detect import DetectionPipeline

    # 20 sampled frames: more than the read-ahead queue holds, so a reader nobody closed
    # would still be waiting to hand over frames when the error arrives
    clip = make_video(tmp_path / "in" / "long.avi", seconds=10, walkers=1)

    real, calls = DetectionPipeline.process, []

    def failing(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("detector failed")
        return real(self, *a, **k)

    monkeypatch.setattr(DetectionPipeline, "process", failing)
    with pytest.raises(RuntimeError, match="detector failed") as e:
        extract_video(clip, "long.avi", tmp_path / "out",
                      ExtractConfig(detector="motion", target="object"))
    # stopped with the error, though its traceback (held in e) keeps the reading frame alive
    assert e.value and not [t for t in threading.enumerate() if t.name == "adtk-decode"]


def test_manifest_is_merged_every_few_seconds_not_per_video(tmp_path, monkeypatch):
    import toolkit.video.extract as ex
    from toolkit.data import manifest as mf

    for i in range(4):
        make_video(tmp_path / "in" / f"v{i}.avi", seconds=3, walkers=1, seed=i)
    writes = []
    real = mf.write_manifest

    def counting(df, path, *a, **k):
        if Path(path).name == "manifest.parquet":
            writes.append(len(df))
        return real(df, path, *a, **k)

    monkeypatch.setattr(ex.mf, "write_manifest", counting)  # the parent's writes only
    cfg = ExtractConfig(workers=1, target="object", detector="auto")
    res = ex.run_extract(tmp_path / "in", tmp_path / "out", cfg, False)
    assert res.done == 4
    assert len(writes) <= 3, writes  # was 1 + one per video + 1: quadratic in videos
    final = mf.read_manifest(tmp_path / "out" / "manifest.parquet")
    assert final["video"].nunique() == 4 and len(final) == writes[-1]


def test_a_worker_whose_run_was_killed_does_not_commit(clip, tmp_path, monkeypatch):
    import os

    import toolkit.video.extract as ex

    real_write = ex.mf.write_manifest
    # the fake parent pid the worker sees; not the real one, which is already 1 when pytest
    # itself runs orphaned (e.g. started by `nohup bash -c ... &`), and would never change
    ppid = [os.getpid()]

    def write_then_orphan(df, path, *a, **k):
        written = real_write(df, path, *a, **k)
        if Path(path).name == "part.parquet":
            ppid[0] = 1  # the run is killed -9 just as this video's rows are written
        return written

    class Exited(Exception):
        pass

    def fake_exit(code):
        raise Exited(code)

    monkeypatch.setattr(ex.mf, "write_manifest", write_then_orphan)
    monkeypatch.setattr(os, "getppid", lambda: ppid[0])
    monkeypatch.setattr(os, "_exit", fake_exit)
    with pytest.raises(Exited):
        extract_video(clip, "cam.avi", tmp_path, ExtractConfig(detector="motion", target="object"))
    assert not (tmp_path / "videos").exists()
