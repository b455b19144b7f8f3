"""Time-based frame sampling and the reader's error messages."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from toolkit.video.reader import (
    TruncatedVideo,
    VideoError,
    check_readable,
    iter_sampled,
    probe,
    sample_stride,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "count.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):  # 4 s; frame i shows its index as grey level * 5
        vw.write(np.full((48, 64, 3), i * 5, np.uint8))
    vw.release()
    return path


def test_probe(clip):
    info = probe(clip)
    assert (info.fps, info.frame_count, info.width, info.height) == (10.0, 40, 64, 48)
    assert info.duration_s == pytest.approx(4.0)


@pytest.mark.parametrize(
    "fps, expected",
    [(2, [0, 5, 10, 15]), (3, [0, 4, 7, 10]), (10, [0, 1, 2, 3]), (50, [0, 1, 2, 3])],
)
def test_sampling_is_exact_in_time(clip, fps, expected):
    got = [(fi, t, f) for fi, t, f in iter_sampled(clip, fps)]
    assert [fi for fi, _, _ in got][:4] == expected
    assert all(t == pytest.approx(fi / 10) for fi, t, _ in got)
    # the decoded picture is the frame the index names (MJPG is lossy: grey level +- 3)
    assert all(abs(int(f.mean()) - 5 * fi) <= 3 for fi, _, f in got)
    assert sample_stride(10, fps) == max(1.0, 10 / fps)


def test_progress_counts_every_source_frame(clip):
    seen = []
    list(iter_sampled(clip, 2, on_frame=seen.append))
    assert sum(seen) == 40


def test_truncated_file_is_an_error(clip, tmp_path):
    bad = tmp_path / "cut.avi"
    data = clip.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.avi"):
        list(iter_sampled(bad, 2))


@pytest.mark.parametrize(
    "content, msg",
    [(None, "no such file"), (b"", "empty file"), (b"hello, I am a CSV\n1,2\n", "text")],
)
def test_check_readable_messages(tmp_path, content, msg):
    p = tmp_path / "x.mp4"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(VideoError, match=msg):
        check_readable(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    p = tmp_path / "locked.mp4"
    p.write_bytes(b"\x00" * 100)
    p.chmod(0)
    with pytest.raises(VideoError, match="permission denied"):
        check_readable(p)


def test_truncated_file_yields_what_decoded_and_says_where_it_stopped(clip, tmp_path):
    bad = tmp_path / "cut.avi"
    data = clip.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(TruncatedVideo) as e:
        for i, _, _ in iter_sampled(bad, 10):
            got.append(i)
    # every frame before the stop, but not the last one the cut went through
    assert 5 < e.value.stopped_at < 40 and e.value.expected == 40
    assert got == list(range(e.value.stopped_at))
