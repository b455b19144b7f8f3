"""Long videos cut into chunks: planning, seeking, joining tracks across boundaries, and the
chunked manifest against one pass over the video."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest, read_meta
from toolkit.video.chunks import Span, join_tracks, plan_spans
from toolkit.video.extract import run_extract
from toolkit.video.reader import VideoInfo, iter_sampled, sample_stride
from toolkit.video.synthetic import make_video


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # 40 s, two walkers re-entering on the left: tracks start, end and cross every boundary
    return make_video(
        tmp_path_factory.mktemp("long") / "in" / "cam.avi", seconds=40, walkers=2, speed=30
    )


@pytest.mark.parametrize("fps, src_fps", [(2.0, 10.0), (3.0, 10.0), (2.0, 25.0), (30.0, 25.0)])
def test_plan_covers_the_video_on_batch_aligned_samples(fps, src_fps):
    info = VideoInfo("x", src_fps, int(src_fps * 3600), 320, 240)  # one hour
    cfg = ExtractConfig(fps=fps, chunk_s=600, chunk_warmup_s=30, batch=8)
    spans = plan_spans(info, cfg)
    assert len(spans) == 6
    stride = sample_stride(src_fps, fps)
    assert spans[0].start == spans[0].warmup == 0 and spans[-1].stop is None
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.stop == b.start and a.tail == b.warmup  # contiguous, and warm-ups known
        assert b.warmup < b.start <= b.warmup + math.ceil((30 + 4) * src_fps)
    for s in spans:
        assert s.count == 6 and s.warmup <= s.start
        for f in (s.warmup, s.start):  # the sample number there is a multiple of the batch
            k = math.floor(f / stride + 1e-9)
            assert math.ceil(k * stride - 1e-9) == f and k % 8 == 0


def test_short_or_unknown_length_videos_are_one_span():
    cfg = ExtractConfig(chunk_s=600)
    assert plan_spans(VideoInfo("x", 25, 25 * 600, 320, 240), cfg) == [Span()]
    assert plan_spans(VideoInfo("x", 25, 0, 320, 240), cfg) == [Span()]  # no frame count
    off = ExtractConfig(chunk_s=0)
    assert plan_spans(VideoInfo("x", 25, 25 * 3600, 320, 240), off) == [Span()]


@pytest.mark.parametrize("fps", [2.0, 3.0, 4.0])
def test_a_range_samples_the_same_frames_as_a_full_read(long_clip, fps):
    full = {i: f for i, _, f in iter_sampled(long_clip, fps, stop_frame=120)}
    for start in (1, 7, 33, 50, 77):
        part = list(iter_sampled(long_clip, fps, start_frame=start, stop_frame=120))
        assert [i for i, _, _ in part] == [i for i in full if i >= start]
        for i, _, f in part:  # the seek lands on the same pixels
            assert np.array_equal(f, full[i])


def test_join_tracks_by_votes_on_shared_frames():
    # previous chunk: tracks 4 and 9 on frames 10..12; this chunk saw the same people as 0, 1
    prev = pd.DataFrame(
        {
            "frame_idx": [10, 10, 11, 11, 12],
            "track_id": [4, 9, 4, 9, 4],
            "x": [0, 100, 2, 100, 4],
            "y": [0, 0, 0, 0, 0],
            "w": [20, 20, 20, 20, 20],
            "h": [40, 40, 40, 40, 40],
        }
    )
    look = pd.DataFrame(
        {
            "frame_idx": [10, 10, 11, 11, 12, 12],
            "track_id": [1, 0, 1, 0, 1, 2],
            "x0": [0, 101, 2, 99, 4, 200],
            "y0": [0, 0, 0, 0, 0, 0],
            "x1": [20, 121, 22, 119, 24, 220],
            "y1": [40, 40, 40, 40, 40, 40],
        }
    )
    assert sorted(join_tracks(look, prev)) == [(0, 9), (1, 4)]  # 2 overlaps nobody: new
    assert join_tracks(look.iloc[:0], prev) == []


@pytest.mark.slow
def test_chunked_manifest_equals_one_pass_except_motion_scores(long_clip, tmp_path):
    base = dict(workers=2, chunk_warmup_s=4.0, target="object", detector="auto")
    one = run_extract(long_clip.parent, tmp_path / "one", ExtractConfig(chunk_s=0, **base), False)
    ch = run_extract(long_clip.parent, tmp_path / "ch", ExtractConfig(chunk_s=12, **base), False)
    assert ch.chunks_done == 4 and one.chunks_done == 0
    a = read_manifest(one.manifest).set_index("crop_id")
    b = read_manifest(ch.manifest).set_index("crop_id")
    assert len(a) > 100 and sorted(a.index) == sorted(b.index)
    b = b.loc[a.index]
    # the same boxes, and the same tracks with the same ids: tracks crossing a boundary were
    # joined, and short tracks split by one were judged on their whole length
    cols = ["frame_idx", "time_s", "x", "y", "w", "h", "track_id", "sequence_id", "detector"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    crossing = [
        g for _, g in a.groupby("sequence_id")
        if any(g["frame_idx"].min() < s < g["frame_idx"].max() for s in (120, 240, 360))
    ]
    assert crossing, "no track crosses a chunk boundary: the test proves nothing"
    # documented boundary effect: the background model's variance, learned over the whole
    # video in one pass, is younger in a chunk; a motion box's fill (its score) may differ by
    # a few pixels' worth
    assert np.abs(a["det_score"] - b["det_score"]).max() < 0.02
    assert all((ch.out / p).is_file() for p in b["path"])
    assert all("/chunk-000" in p for p in b["path"])
    assert read_meta(ch.out / "videos" / b["video_id"].iloc[0] / "part.parquet")["chunks"] == 4
    # a chunked video's folder holds its chunks and the joined part, nothing else
    vdir = ch.out / "videos" / b["video_id"].iloc[0]
    assert sorted(p.name for p in vdir.iterdir()) == [
        "chunk-0000", "chunk-0001", "chunk-0002", "chunk-0003", "part.parquet"
    ]
    # dropped short tracks' crops are deleted: every crop file on disk is in the manifest
    on_disk = {p.relative_to(ch.out).as_posix() for p in vdir.glob("chunk-*/box/*.png")}
    assert on_disk == set(b["path"])
    # killed after the last chunk's commit, before the join: the rerun joins, extracts nothing
    (vdir / "part.parquet").unlink()
    again = run_extract(
        long_clip.parent, tmp_path / "ch", ExtractConfig(chunk_s=12, **base), False
    )
    assert (again.chunks_done, again.chunks_skipped, again.done) == (0, 4, 1)
    pd.testing.assert_frame_equal(read_manifest(again.manifest), read_manifest(ch.manifest))


@pytest.mark.slow
def test_a_crashed_chunk_fails_its_video_and_the_rerun_redoes_only_that_chunk(
    long_clip, tmp_path, monkeypatch
):
    from toolkit.video.extract import CRASH_HOOK_ENV

    cfg = ExtractConfig(chunk_s=12, chunk_warmup_s=4.0, workers=2, target="object",
                        detector="auto")
    monkeypatch.setenv(CRASH_HOOK_ENV, "cam.avi")  # aborts in the video's last chunk
    res = run_extract(long_clip.parent, tmp_path / "out", cfg, False)
    assert res.done == 0 and res.chunks_done == 3
    assert res.failed == [
        {"video": "cam.avi", "reason": "chunk 4 of 4: the decoder crashed (SIGABRT) while "
         "reading it; tried 3 times"}
    ]
    assert not len(read_manifest(res.manifest))  # an unjoined video is not in the manifest
    monkeypatch.delenv(CRASH_HOOK_ENV)
    again = run_extract(long_clip.parent, tmp_path / "out", cfg, False)
    assert (again.done, again.chunks_done, again.chunks_skipped, again.failed) == (1, 1, 3, [])
    assert len(read_manifest(again.manifest)) > 100


def test_a_warm_up_longer_than_the_chunk_is_noted_with_its_cost():
    from toolkit.video.chunks import chunk_warmup_note

    # 4:15 at 10 fps: 5 chunks, the 4 after the first read 60 + 3 x 120 s of warm-up (2.65x)
    info = VideoInfo("x", 10.0, 2550, 320, 240)
    frames = {0: info.frame_count, 1: 100}
    for chunk, warm, expect in ((60, 120, "2.7x"), (600, 120, None), (60, 30, None)):
        cfg = ExtractConfig(fps=5, chunk_s=chunk, chunk_warmup_s=warm, batch=8)
        spans = {0: plan_spans(info, cfg), 1: [Span()]}
        note = chunk_warmup_note(cfg, spans, frames)
        if expect is None:
            assert note is None
            continue
        assert note.startswith("--chunk 1m with --chunk-warmup 2m: each chunk decodes more "
                               "warm-up than its own span, so the 1 chunked video(s) are "
                               f"decoded {expect}")
    cfg = ExtractConfig(fps=5, chunk_s=0, chunk_warmup_s=120)  # chunking off: nothing to say
    assert chunk_warmup_note(cfg, {0: [Span()]}, frames) is None


def test_the_frames_total_is_known_from_the_first_progress_line(long_clip, tmp_path, capsys):
    """Planning probes every video, so the decode total (warm-ups included) is on the first
    line a log shows, not grown as workers open videos (a 40 s clip in 4 chunks)."""
    cfg = ExtractConfig(chunk_s=12, chunk_warmup_s=4.0, workers=2, target="object",
                        detector="auto")
    run_extract(long_clip.parent, tmp_path / "o", cfg, "lines")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("frames:")]
    assert len(lines) >= 2, lines
    totals = {ln.split("/")[1].split()[0] for ln in lines}
    done = lines[-1].split(":")[1].split("/")[0].strip()
    assert totals == {done}, lines  # one total throughout, and the work reached it
    assert int(done.replace(",", "")) > 400  # 400 frames of video, plus the warm-ups
