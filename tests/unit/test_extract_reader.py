"""Time-based frame sampling and the reader's error messages."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest

from toolkit.video.reader import (
    TruncatedVideo,
    VideoError,
    check_readable,
    iter_sampled,
    prefetched,
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


@pytest.fixture
def bad(clip, tmp_path):
    """The clip cut in the middle of its bytes (a truncated download)."""
    cut = tmp_path / "cut.avi"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


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


def test_truncated_file_is_an_error(bad):
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


def test_truncated_file_yields_what_decoded_and_says_where_it_stopped(bad):
    got = []
    with pytest.raises(TruncatedVideo) as e:
        for i, _, _ in iter_sampled(bad, 10):
            got.append(i)
    # every frame before the stop, but not the last one the cut went through
    assert 5 < e.value.stopped_at < 40 and e.value.expected == 40
    assert got == list(range(e.value.stopped_at))


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "adtk-decode"]


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_prefetched_gives_the_same_frames_and_progress(clip, depth):
    want = [(fi, t, f) for fi, t, f in iter_sampled(clip, 3, 5, 35)]
    seen: list[int] = []
    callers: set[str] = set()
    order: list[int] = []

    def progress(n: int) -> None:
        seen.append(n)
        callers.add(threading.current_thread().name)

    def pre(frame):  # runs in the decoding thread, once per frame, in order
        order.append(int(frame.mean()))
        return threading.current_thread().name

    got = list(prefetched(clip, 3, 5, 35, on_frame=progress, depth=depth, pre=pre))
    assert [(fi, t) for fi, t, *_ in got] == [(fi, t) for fi, t, _ in want]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(got, want, strict=True))
    assert order == [int(f.mean()) for *_, f in want]
    assert {g[3] for g in got} == ({"adtk-decode"} if depth else {"MainThread"})
    assert sum(seen) == 30 and callers == {"MainThread"}  # every source frame of 5..34,
    # counted in the caller's thread (extract's progress counter has no lock)
    assert not _decode_threads()


def test_prefetched_raises_truncation_after_the_same_frames(bad, tmp_path):
    with pytest.raises(TruncatedVideo) as plain:
        list(iter_sampled(bad, 10))
    got = []
    with pytest.raises(TruncatedVideo) as e:
        for i, *_ in prefetched(bad, 10, depth=2):
            got.append(i)
    assert e.value.stopped_at == plain.value.stopped_at
    assert got == list(range(e.value.stopped_at))
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(VideoError, match="junk.avi: not a video"):  # raised in this thread
        list(prefetched(junk, 10))
    assert not _decode_threads()


def test_prefetched_stops_its_thread_when_the_caller_stops_early(clip):
    it = prefetched(clip, 10, depth=2)
    first = [next(it)[0] for _ in range(3)]
    assert first == [0, 1, 2]
    assert len(_decode_threads()) == 1  # decoding ahead while the caller holds frame 2
    it.close()  # what a for loop does when its body raises
    assert not _decode_threads()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_prefetched_says_so_when_the_thread_dies_without_a_result(clip, monkeypatch):
    import queue

    import toolkit.video.reader as reader

    class Broken(queue.Queue):  # e.g. out of memory while handing a frame over
        def put(self, item, block=True, timeout=None):
            raise MemoryError

    monkeypatch.setattr(reader.queue, "Queue", Broken)
    with pytest.raises(VideoError, match="decoding thread stopped without a result"):
        list(prefetched(clip, 10))  # an error, not a wait forever
    assert not _decode_threads()
