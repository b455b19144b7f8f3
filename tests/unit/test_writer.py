"""The background PNG writer of extraction: same files, errors never lost, bounded memory."""

from __future__ import annotations

import errno
import os
import threading
import time

import cv2
import numpy as np
import pytest

from toolkit.config import ExtractConfig
from toolkit.errors import AdtkError
from toolkit.video import writer
from toolkit.video.detect import Detections
from toolkit.video.sequences import CropSequences
from toolkit.video.writer import PngWriter


def _img(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)


def test_files_are_the_images_in_a_thread_of_their_own(tmp_path):
    names = []
    real = writer.save_png

    def recording(path, img):
        names.append(threading.current_thread().name)
        real(path, img)

    writer.save_png, saved = recording, writer.save_png
    try:
        with PngWriter() as w:
            for i in range(20):
                w(tmp_path / f"{i}.png", _img(i))
    finally:
        writer.save_png = saved
    assert w.written == 20
    for i in range(20):
        back = cv2.imread(str(tmp_path / f"{i}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(back, _img(i))  # PNG is lossless: the very pixels
    assert set(names) and all(n.startswith("adtk-png") for n in names)
    assert not [t for t in threading.enumerate() if t.name.startswith("adtk-png")]


def _failing_after(n: int, monkeypatch):
    real, calls = writer.save_png, []

    def save(path, img):
        calls.append(path)
        if len(calls) > n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, img)

    monkeypatch.setattr(writer, "save_png", save)
    return calls


def test_a_failed_write_is_raised_at_a_later_call_or_at_wait(tmp_path, monkeypatch):
    _failing_after(2, monkeypatch)
    w = PngWriter(prefix="cam.avi: ", root=tmp_path)
    (tmp_path / "box").mkdir()
    with pytest.raises(AdtkError) as e:
        for i in range(200):  # the third file fails; a call soon after raises it
            w(tmp_path / "box" / f"{i}.png", _img(i))
        w.wait()
    assert str(e.value) == (
        "cam.avi: could not write crop box/2.png (No space left on device; disk full?)"
    )
    w.abort()
    assert not [t for t in threading.enumerate() if t.name.startswith("adtk-png")]


def test_close_raises_a_failure_of_the_last_files(tmp_path, monkeypatch):
    _failing_after(0, monkeypatch)
    w = PngWriter(what="motion crop")
    w(tmp_path / "a.png", _img(0))  # queued: no error yet
    with pytest.raises(AdtkError, match="could not write motion crop .*a.png"):
        w.close()


def test_at_most_depth_images_wait(tmp_path, monkeypatch):
    go = threading.Event()
    real = writer.save_png

    def slow(path, img):
        go.wait(10)
        real(path, img)

    monkeypatch.setattr(writer, "save_png", slow)
    w = PngWriter(depth=2)
    returned = []

    def caller():
        for i in range(3):
            w(tmp_path / f"{i}.png", _img(i))
            returned.append(i)

    t = threading.Thread(target=caller)
    t.start()
    deadline = time.monotonic() + 10
    while len(returned) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert returned == [0, 1] and t.is_alive()  # the third waits for a free slot
    go.set()
    t.join(10)
    w.close()
    assert returned == [0, 1, 2] and w.written == 3


def test_static_track_crops_are_removed_only_after_their_writes(tmp_path, monkeypatch):
    real = writer.save_png

    def slow(path, img):  # a slow disk: every file lands well after it was handed over
        time.sleep(0.03)
        real(path, img)

    monkeypatch.setattr(writer, "save_png", slow)
    stage = tmp_path / "stage"
    (stage / "box").mkdir(parents=True)
    (stage / "oversize").mkdir()
    w = PngWriter(root=stage)

    def write(name, box_img, over_img):
        w(stage / "box" / name, box_img)
        w(stage / "oversize" / name, over_img)

    seqs = CropSequences(ExtractConfig(), write, 2.0, 120 * 160 * 3, drain=w.wait)
    frame = np.full((120, 160, 3), 90, np.uint8)
    ghost = np.array([[40, 30, 60, 90]], np.float32)  # a motion blob that never moves
    for i in range(8):
        seqs.add(i, i / 2.0, frame, Detections(ghost, np.ones(1, np.float32), ["motion"]))
    df, counts = seqs.finish(stage)
    w.close()
    assert counts["static_tracks_dropped"] == 1 and df.empty
    # without the wait before deleting, the files still in the queue would land after the
    # deletion and stay behind as crops no manifest row names
    assert not list((stage / "box").iterdir()) and not list((stage / "oversize").iterdir())


def test_an_image_that_cannot_be_encoded_names_its_file(tmp_path):
    w = PngWriter(prefix="cam.avi: ", root=tmp_path)
    w(tmp_path / "box" / "x.png", np.zeros((0, 0, 3), np.uint8))  # an empty image
    with pytest.raises(AdtkError) as e:
        w.close()
    msg = str(e.value)
    assert msg.startswith("cam.avi: could not write crop box/x.png (error: ") and "\n" not in msg


def test_large_images_get_fewer_slots(tmp_path):
    w = PngWriter(depth=256, max_bytes=1 << 20)
    w(tmp_path / "big.png", np.zeros((512, 512, 3), np.uint8))  # 768 KiB each
    w.close()
    assert w._slots._initial_value == 2  # never more than max_bytes waiting (at least two)
    small = PngWriter(depth=256)
    small(tmp_path / "s.png", _img(0))
    small.close()
    assert small._slots._initial_value == 256
