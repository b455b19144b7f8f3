"""Targets and ghosts: warm-up, static tracks, person versus object mode, crossing objects."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest, read_meta
from toolkit.errors import AdtkError
from toolkit.video.detect import DetectionPipeline, Detections, holds_group
from toolkit.video.extract import extract_video
from toolkit.video.sequences import static_tracks
from toolkit.video.track import IouTracker


def _flicker_video(path, seconds=6.0, fps=10, square=True, lamp=True, seed=0, shake=0.0):
    """A textured still scene whose brightness flickers by +-12 % and carries camera noise
    (sigma 4), with a lamp that blinks on and off in one place and, optionally, one dark
    square that moves right 6 px per frame. ``shake``: from the third second on, the camera
    sways (wind on its mast): the whole picture moves by up to this many pixels each way, in
    a slow swing with some jitter."""
    rng = np.random.default_rng(seed)
    h, w = 160, 240
    base = cv2.GaussianBlur(rng.integers(60, 200, (h, w, 3)).astype(np.uint8), (7, 7), 0)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(int(seconds * fps)):
        f = base.astype(np.float32) * (1.0 + 0.12 * np.sin(i * 1.7))
        if shake and i >= 2 * fps:
            phase = 2 * np.pi * (i - 2 * fps) / (2 * fps)
            dx, dy = shake * np.sin(phase) * 0.8 + rng.uniform(-0.2, 0.2, 2) * shake
            f = cv2.warpAffine(f, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                               borderMode=cv2.BORDER_REFLECT)
        if lamp and (i // 3) % 2:
            f[20:50, 190:215] = 250  # a blinking light: moves nowhere
        if square:
            x = 10 + 6 * i
            f[60:120, x : x + 24] = 25
        f += rng.normal(0, 4, f.shape)
        out.write(np.clip(f, 0, 255).astype(np.uint8))
    out.release()
    return path


def _object_mode(**kw):
    return ExtractConfig(target="object", detector="motion", fps=5, workers=1, **kw)


def test_flicker_and_a_blinking_lamp_make_no_tracks_the_moving_square_makes_one(tmp_path):
    clip = _flicker_video(tmp_path / "flicker.avi")
    out = tmp_path / "out"
    summary = extract_video(clip, "flicker.avi", out, _object_mode())
    df = read_manifest(out / "videos" / summary["video_id"] / "part.parquet")
    assert df["sequence_id"].nunique() == 1, df.groupby("track_id")[["x", "y", "w", "h"]].median()
    # the one track is the square: 24 px wide, 60 px tall, moving right
    assert abs(df["h"].median() - 60) <= 10 and df["x"].is_monotonic_increasing
    assert set(df["target"]) == {"object"} and df["object_class"].isna().all()


def test_a_shaking_camera_is_registered_so_only_the_moving_square_makes_a_track(tmp_path):
    # the camera jitters by up to 3 px each way every frame: every edge of the scene moves
    clip = _flicker_video(tmp_path / "shake.avi", lamp=False, shake=3.0)
    out = tmp_path / "out"
    summary = extract_video(clip, "shake.avi", out, _object_mode())
    part = out / "videos" / summary["video_id"] / "part.parquet"
    df = read_manifest(part)
    assert df["sequence_id"].nunique() == 1, df.groupby("track_id")[["x", "y", "w", "h"]].median()
    assert abs(df["h"].median() - 60) <= 10 and df["x"].is_monotonic_increasing
    meta = read_meta(part)
    assert meta["camera_aligned_frames"] >= 10 and meta["camera_restarts"] == 0
    # the motion model alone, on the same sway without the square: registered, it reports
    # nothing; without registration (align=False), the scene's edges become blobs
    from toolkit.video.motion import MotionModel

    still = _flicker_video(tmp_path / "sway.avi", lamp=False, square=False, shake=3.0)
    for align, check in ((True, lambda n: n == 0), (False, lambda n: n >= 10)):
        cap = cv2.VideoCapture(str(still))
        model, with_blobs = MotionModel((240, 160), 10.0, align=align), 0
        ok, frame = cap.read()
        while ok:
            with_blobs += len(model.update(frame)[0]) > 0
            ok, frame = cap.read()
        assert check(with_blobs), (align, with_blobs)


def test_a_camera_that_moves_too_far_starts_the_motion_model_again():
    from toolkit.video.motion import MotionModel

    rng = np.random.default_rng(1)
    scene = cv2.GaussianBlur(rng.integers(40, 220, (200, 400)).astype(np.uint8), (5, 5), 0)
    m = MotionModel((240, 160), sample_fps=5.0, warmup_s=0.2)
    views = [scene[20:180, 40:280], scene[20:180, 40:280], scene[20:180, 43:283],
             scene[20:180, 70:310]]
    flags = []  # (shifted, restarted) of each frame
    for v in views[:2]:
        m.update(cv2.cvtColor(v, cv2.COLOR_GRAY2BGR))
        flags.append((m.shifted, m.restarted))
    boxes, _ = m.update(cv2.cvtColor(views[2], cv2.COLOR_GRAY2BGR))  # a 3 px shake
    flags.append((m.shifted, m.restarted))
    assert len(boxes) == 0 and [f[0] for f in flags] == [False, False, True]
    m.update(cv2.cvtColor(views[3], cv2.COLOR_GRAY2BGR))  # 30 px: another view
    flags.append((m.shifted, m.restarted))
    assert [f[1] for f in flags] == [False, False, False, True] and not m.ready
    # it learnt the new view as the camera sees it: the same view again is no new move
    for _ in range(3):
        m.update(cv2.cvtColor(views[3], cv2.COLOR_GRAY2BGR))
        flags.append((m.shifted, m.restarted))
    assert sum(f[1] for f in flags) == 1 and m.ready


def test_a_scene_with_nothing_moving_gives_nothing(tmp_path):
    clip = _flicker_video(tmp_path / "still.avi", square=False)
    summary = extract_video(clip, "still.avi", tmp_path / "out", _object_mode())
    assert summary["crops"] == 0


def test_motion_model_reports_nothing_during_its_warm_up():
    from toolkit.video.motion import MotionModel

    m = MotionModel((160, 120), sample_fps=4.0, warmup_s=1.0)
    frame = np.full((120, 160, 3), 120, np.uint8)
    moving = frame.copy()
    moving[30:90, 40:60] = 10
    m.update(frame)  # the first frame starts the model
    assert m.warmup == 4 and not m.ready
    for _ in range(4):
        assert len(m.update(moving)[0]) == 0
    assert m.ready
    # a start from the median of several frames is its own warm-up
    m2 = MotionModel((160, 120), sample_fps=4.0, warmup_s=1.0)
    m2.init_background([m2.shrink(frame)] * 3)
    assert m2.ready and len(m2.update(moving)[0]) == 1
    moving2 = frame.copy()
    moving2[30:90, 100:120] = 10
    assert len(m.update(moving2)[0]) >= 1


def test_static_tracks_are_dropped_unless_a_person_detector_found_them():
    import pandas as pd

    rows = []
    for t in range(6):
        rows.append((0, 100, 50, 20, 40, None))  # a ghost: never moves, no class
        rows.append((1, 100 + 10 * t, 50, 20, 40, None))  # moves 50 px: an object
        rows.append((2, 300, 50, 20, 40, "person"))  # a person standing still
    df = pd.DataFrame(rows, columns=["track_id", "x", "y", "w", "h", "object_class"])
    assert static_tracks(df) == {0}
    # where a motion model ran, a still "person" in whose box nothing ever moved is a sign, a
    # poster or a mannequin; one with motion in its box once (it walked in) is a person
    df["detector"] = ["motion", "motion", "yolox"] * 6
    df["det_score"] = [0.0, 0.0, 0.65] * 6
    assert static_tracks(df, motion=True) == {0, 2}
    # ... unless the detector is sure of it (someone still since before the model started)
    assert static_tracks(df.assign(det_score=[0.0, 0.0, 0.85] * 6), motion=True) == {0}
    df.loc[df.index[-1], "detector"] = "yolox+motion"
    assert static_tracks(df, motion=True) == {0}
    # a blob that flickers around one spot (its box jumps 30 px to and fro, 0.75 of its
    # height) spreads far but goes nowhere; an object that walks 12 px a frame goes somewhere
    rows = [(3, 100 + (30 if k % 2 else 0), 50, 20, 40, None) for k in range(8)]
    rows += [(4, 100 + 12 * k, 50, 20, 40, None) for k in range(8)]
    jitter = pd.DataFrame(rows, columns=["track_id", "x", "y", "w", "h", "object_class"])
    assert static_tracks(jitter) == {3}


def test_motion_alone_cannot_serve_the_person_target():
    with pytest.raises(AdtkError, match="not people"):
        DetectionPipeline(ExtractConfig(detector="motion"), (160, 120), 2.0)


def test_person_target_drops_a_moving_blob_that_no_person_detector_supports(tmp_path):
    # the square moves as before; HOG + motion finds it as a blob only
    clip = _flicker_video(tmp_path / "square.avi", lamp=False)
    cfg = ExtractConfig(target="person", detector="auto", fps=5, workers=1)
    assert extract_video(clip, "square.avi", tmp_path / "p", cfg)["crops"] == 0
    cfg = ExtractConfig(target="object", detector="auto", fps=5, workers=1)
    assert extract_video(clip, "square.avi", tmp_path / "o", cfg)["crops"] > 0


def test_person_target_drops_a_box_around_a_group():
    boxes = np.array(
        [[0, 0, 100, 100], [5, 5, 40, 95], [55, 5, 95, 95], [200, 0, 240, 90]], np.float32
    )
    assert holds_group(boxes).tolist() == [True, False, False, False]
    det = Detections(boxes, np.ones(4, np.float32), ["yolox"] * 4, ["person"] * 4)
    assert len(det.select(~holds_group(det.boxes))) == 3


@pytest.mark.parametrize("predict", [True, False])
def test_tracker_keeps_two_crossing_objects_apart(predict):
    # A walks right, B walks left, 12 px per frame, 20 px wide: as they pass, A's box lies
    # exactly on B's previous box and overlaps its own previous box by less; the velocity
    # each track has learned carries it through (a plain IoU matcher swaps them).
    tr = IouTracker(max_gap=1.0, predict=predict)
    a_ids, b_ids = set(), set()
    for t in range(17):
        a = [20 + 12 * t, 50, 40 + 12 * t, 100]
        b = [200 - 12 * t, 56, 220 - 12 * t, 106]
        order = (a, b) if t % 2 else (b, a)
        ids = tr.update(t * 0.2, np.array(order, np.float32))
        ia, ib = (ids[0], ids[1]) if t % 2 else (ids[1], ids[0])
        a_ids.add(int(ia))
        b_ids.add(int(ib))
    apart = len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids
    assert apart == predict


def test_a_short_gap_in_a_track_is_bridged_with_interpolated_crops(tmp_path):
    from toolkit.video.sequences import CropSequences

    written = []
    cfg = ExtractConfig(fps=5, max_gap=1.0, min_track=3, bridge_s=0.4)
    seqs = CropSequences(cfg, lambda name, a, b: written.append(name), 5.0, 160 * 120 * 3)
    frame = np.zeros((120, 160, 3), np.uint8)
    for i in range(8):
        x = 10 + 10 * i
        found = i not in (3, 4)  # the detector misses the person on two frames
        boxes = [[x, 20, x + 20, 80]] if found else []
        det = Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes)),
                         ["yolox"] * len(boxes), ["person"] * len(boxes))
        seqs.add(i * 2, i * 0.2, frame, det)
    df, counts = seqs.finish(tmp_path)
    assert counts["bridged_crops"] == 2 and df["track_id"].nunique() == 1
    bridged = df[df["detector"] == "bridged"]
    assert bridged["frame_idx"].tolist() == [6, 8]
    assert bridged["x"].tolist() == [40, 50]  # on the straight line between frames 2 and 5
    assert set(bridged["object_class"]) == {"person"} and (bridged["det_score"] == 0).all()
    assert sorted(written) == sorted(df["name"])  # every kept row has its crop

    # a gap longer than bridge_s stays a gap (the tracker still links the two ends)
    cfg = ExtractConfig(fps=5, max_gap=1.0, min_track=3, bridge_s=0.2)
    seqs = CropSequences(cfg, lambda *a: None, 5.0, 160 * 120 * 3)
    for i in range(8):
        x = 10 + 10 * i
        boxes = [] if i in (3, 4) else [[x, 20, x + 20, 80]]
        seqs.add(i * 2, i * 0.2, frame, Detections.of(boxes, np.ones(len(boxes)), "yolox"))
    assert seqs.finish(tmp_path)[1]["bridged_crops"] == 0


def test_the_summary_says_which_videos_had_a_moving_camera(tmp_path):
    from toolkit.video.extract import ExtractResult
    from toolkit.video.findings import camera_moved as _camera_moved

    assert _camera_moved({"sampled_frames": 200, "camera_aligned_frames": 0}) == ""
    assert _camera_moved({"sampled_frames": 200, "camera_aligned_frames": 3}) == ""  # < 5 %
    said = _camera_moved({"sampled_frames": 50, "camera_aligned_frames": 40, "camera_restarts": 2})
    assert said == "shifted in 40 of 50 sampled frames, a new view 2 time(s)"
    assert _camera_moved({"sampled_frames": 50, "shot_cuts": 3}) == "3 shot cut(s)"
    res = ExtractResult(out=tmp_path, manifest=tmp_path / "manifest.parquet",
                        moving_camera=[f"street.mp4 ({said})"])
    assert "camera moved or cut in 1 video(s): street.mp4 (shifted in 40 of 50" in res.summary()
    assert "camera moved" not in ExtractResult(out=tmp_path, manifest=tmp_path / "m").summary()


def test_the_summary_suggests_a_larger_yolox_input_where_people_are_small(tmp_path):
    import pandas as pd

    from toolkit.video.extract import ExtractResult
    from toolkit.video.findings import small_in_yolox as _small_in_yolox

    cfg = ExtractConfig()  # yolox at 640
    people = pd.DataFrame({"h": [80.0, 84.0, 90.0], "object_class": ["person"] * 3})
    hd = {"width": 1536, "height": 1152}
    # 84 px on a 1536 px wide frame: 35 px in a 640 px input
    said = _small_in_yolox(people, hd, cfg)
    assert said == "detected boxes a median 35 px tall at --yolox-size 640 on 1536x1152 frames"
    # the same people on a 768 px frame (70 px in the input), or at input 1280: not small
    assert _small_in_yolox(people, {"width": 768, "height": 576}, cfg) == ""
    assert _small_in_yolox(people, hd, ExtractConfig(yolox_size=1280)) == ""
    # a frame no larger than the input, motion blobs only, another detector: nothing to say
    assert _small_in_yolox(people.assign(h=20.0), {"width": 640, "height": 480}, cfg) == ""
    assert _small_in_yolox(people.assign(object_class=None), hd, cfg) == ""
    assert _small_in_yolox(people, hd, ExtractConfig(detector="hog")) == ""
    res = ExtractResult(out=tmp_path, manifest=tmp_path / "m", small_in_yolox=[f"a.mp4 ({said})"])
    assert "small in YOLOX's input in 1 video(s): a.mp4 (detected boxes a median 35 px" in (
        res.summary())


def _scenes_video(path, fps=10, cut_at=None, frozen=None, seed=0):
    """A dark square moving right 5 px per frame over a textured scene (6 s). ``cut_at``: from
    this frame on, another scene (a shot cut; the square carries on); ``frozen``: (a, b), frames
    a..b-1 repeat frame a - 1 (a stalled stream or recorder)."""
    rng = np.random.default_rng(seed)
    h, w = 160, 240
    scenes = [cv2.GaussianBlur(rng.integers(40, 220, (h, w, 3)).astype(np.uint8), (7, 7), 0)
              for _ in range(2)]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    last = None
    for i in range(6 * fps):
        if frozen and frozen[0] <= i < frozen[1]:
            f = last
        else:
            f = scenes[int(cut_at is not None and i >= cut_at)].astype(np.float32).copy()
            x = 10 + 3 * i
            f[50:110, x : x + 24] = 20
            last = f
        out.write(f.astype(np.uint8))
    out.release()
    return path


def test_view_changes_tell_a_cut_and_a_frozen_picture_from_motion(tmp_path):
    from toolkit.video.motion import ViewChanges

    clip = _scenes_video(tmp_path / "c.avi", cut_at=30, frozen=(45, 52))
    cap, vc, seen = cv2.VideoCapture(str(clip)), ViewChanges(), []
    ok, frame = cap.read()
    while ok:
        seen.append(vc.update(frame))
        ok, frame = cap.read()
    assert [i for i, c in enumerate(seen) if c == "cut"] == [30]
    assert [i for i, c in enumerate(seen) if c == "frozen"] == list(range(45, 52))
    assert seen.count("cut") == 1 and seen.count("frozen") == 7


def test_tracks_end_at_a_shot_cut_and_a_frozen_stretch_gives_no_crops(tmp_path):
    cfg = ExtractConfig(target="object", detector="motion", fps=0, workers=1)
    clip = _scenes_video(tmp_path / "cut.avi", cut_at=30)
    summary = extract_video(clip, "cut.avi", tmp_path / "o1", cfg)
    part = tmp_path / "o1" / "videos" / summary["video_id"] / "part.parquet"
    df, meta = read_manifest(part), read_meta(part)
    assert meta["shot_cuts"] == 1
    # the square is one object on both sides of the cut, but no sequence joins two views
    span = df.groupby("track_id")["frame_idx"].agg(["min", "max"])
    assert len(span) >= 2 and ((span["min"] < 30) & (span["max"] >= 30)).sum() == 0
    assert (span["max"] < 30).any() and (span["min"] >= 30).any()

    clip = _scenes_video(tmp_path / "frozen.avi", frozen=(20, 45))
    summary = extract_video(clip, "frozen.avi", tmp_path / "o2", cfg)
    part = tmp_path / "o2" / "videos" / summary["video_id"] / "part.parquet"
    df, meta = read_manifest(part), read_meta(part)
    assert meta["frozen_frames"] == 25 and meta["shot_cuts"] == 0
    assert not df["frame_idx"].between(20, 44).any() and len(df)


class _Upright:
    """A person detector that knows which way is up: a frame marked in its top-left corner
    is upright (3 people); upside down it still finds one "person", as real detectors do."""

    finds_persons = True
    default_min_score = 0.5

    def __init__(self, fail: bool = False):
        self.fail = fail

    def detect(self, frames, blobs, rois):
        out = []
        for f in frames:
            if self.fail and f.shape[0] != f.shape[1] and f.shape[0] > f.shape[1]:
                raise RuntimeError("this detector only takes landscape frames")
            n = 3 if f[0, 0, 0] == 255 else 1 if f[-1, -1, 0] == 255 else 0
            out.append(Detections(np.tile([[0.0, 0.0, 5.0, 10.0]], (n, 1)), np.full(n, 0.9),
                                  ["det"] * n, ["person"] * n))
        return out


@pytest.mark.parametrize("turned_by, fix", [
    (None, None),
    (cv2.ROTATE_90_COUNTERCLOCKWISE, "90 clockwise"),
    (cv2.ROTATE_90_CLOCKWISE, "90 counter-clockwise"),
    (cv2.ROTATE_180, "180"),
])
def test_the_turn_that_shows_the_people_is_named(turned_by, fix):
    from toolkit.video.findings import TURNS
    from toolkit.video.findings import turned_people as _turned_people

    upright = np.zeros((40, 60, 3), np.uint8)
    upright[0, 0] = 255
    frame = upright if turned_by is None else cv2.rotate(upright, turned_by)
    cfg = ExtractConfig()
    assert _turned_people(_Upright(), frame, cfg) == fix
    if fix is not None:  # the named turn, done as ffmpeg's filter says, gives the upright frame
        back = cv2.rotate(frame, getattr(cv2, TURNS[fix][0]))
        assert np.array_equal(back, upright)
    # not for object crops, not without a frame, and a detector failing is no failed video
    assert _turned_people(_Upright(), frame, ExtractConfig(target="object")) is None
    assert _turned_people(_Upright(), None, cfg) is None
    assert _turned_people(_Upright(fail=True), frame, cfg) is None  # raised on a turn
