"""YOLOX: decoding and NMS on hand-made head outputs; the shipped model on real frames."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.config import ExtractConfig
from toolkit.errors import AdtkError
from toolkit.video import yolox
from toolkit.video.yolox import BUNDLED, Yolox, canvas_size, decode, letterbox, postprocess


def _raw(hw, n_classes=3):
    """A head output for an (H, W) input with every cell empty (scores 0)."""
    n = sum((hw[0] // s) * (hw[1] // s) for s in yolox.STRIDES)
    return np.zeros((n, 5 + n_classes), np.float32)


def _cell(hw, stride, gx, gy):
    """Row index of grid cell (gx, gy) at ``stride`` (rows go stride by stride, row-major)."""
    i = 0
    for s in yolox.STRIDES:
        if s == stride:
            return i + gy * (hw[1] // s) + gx
        i += (hw[0] // s) * (hw[1] // s)
    raise ValueError(stride)


def test_decode_places_a_cell_box_by_its_grid_offset_and_stride():
    hw = (64, 96)
    raw = _raw(hw)
    r = _cell(hw, 16, gx=2, gy=1)
    raw[r, :4] = [0.5, 0.25, np.log(2.0), 0.0]  # centre (2.5, 1.25) cells; 2 x 1 strides
    raw[r, 4:] = [0.9, 0.8, 0.1, 0.1]
    dec = decode(raw, hw)
    # cx = (0.5 + 2) * 16 = 40, cy = (0.25 + 1) * 16 = 20, w = 2 * 16 = 32, h = 16
    np.testing.assert_allclose(dec[r, :4], [24, 12, 56, 28], atol=1e-4)
    np.testing.assert_allclose(dec[r, 4:], raw[r, 4:])
    # a cell of stride 32 with zero offsets: a 32 x 32 box centred on its top-left corner
    q = _cell(hw, 32, gx=1, gy=1)
    np.testing.assert_allclose(dec[q, :4], [16, 16, 48, 48], atol=1e-4)


def test_decode_rejects_an_output_of_the_wrong_size():
    with pytest.raises(AdtkError, match="cells"):
        decode(np.zeros((10, 8), np.float32), (64, 64))


def test_postprocess_scores_thresholds_nms_per_class_and_undoes_the_resize():
    dec = np.array(
        [
            # x0, y0, x1, y1, obj, person, car
            [10, 10, 30, 60, 0.9, 0.9, 0.1],  # person 0.81
            [12, 10, 32, 62, 0.9, 0.8, 0.1],  # person 0.72, IoU ~0.85 with the first: gone
            [11, 10, 31, 60, 0.9, 0.1, 0.9],  # car 0.81 on the same spot: another class, kept
            [100, 10, 120, 60, 0.9, 0.5, 0.0],  # person 0.45: below 0.5
            [200, 10, 220, 60, 0.8, 0.9, 0.0],  # person 0.72, alone
        ],
        np.float32,
    )
    boxes, scores, cls = postprocess(dec, r=2.0, score=0.5, classes=None)
    assert cls.tolist() == [0, 1, 0]
    np.testing.assert_allclose(scores, [0.81, 0.81, 0.72], atol=1e-6)
    np.testing.assert_allclose(boxes[0], [5, 5, 15, 30])  # divided by r
    np.testing.assert_allclose(boxes[2], [100, 5, 110, 30])
    # person only: the car cell votes for its best class among (person,) = 0.09: gone
    boxes, scores, cls = postprocess(dec, r=1.0, score=0.5, classes=(0,))
    assert cls.tolist() == [0, 0] and len(boxes) == 2


def test_decoding_only_the_cells_that_can_pass_gives_the_same_boxes():
    from toolkit.video.yolox import detect_raw

    hw = (96, 128)
    rng = np.random.default_rng(0)
    raw = _raw(hw, n_classes=4)
    raw[:, :4] = rng.normal(0, 0.5, (len(raw), 4))
    raw[:, 4:] = rng.uniform(0, 1, (len(raw), 5)) ** 3
    for classes in ((0,), None):
        a = postprocess(decode(raw, hw), 1.5, 0.3, classes)
        b = detect_raw(raw, hw, 1.5, 0.3, classes)
        assert len(a[0]) > 3
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_canvas_keeps_the_aspect_ratio_in_multiples_of_32_and_letterbox_pads_with_114():
    assert canvas_size((576, 768), 640) == (480, 640)
    assert canvas_size((432, 768), 640) == (384, 640)
    assert canvas_size((240, 360), 640) == (448, 640)
    frame = np.full((30, 40, 3), 7, np.uint8)
    x, r = letterbox([frame, frame], (64, 64))
    assert x.shape == (2, 3, 64, 64) and r == 1.6
    assert (x[:, :, :48, :64] == 7).all() and (x[:, :, 48:, :] == 114).all()


def test_the_shipped_model_runs_batched_at_any_multiple_of_32():
    model = Yolox(BUNDLED, input_size=320, threads=1, batch=4)
    assert model.model.batched and model.batch == 4
    frames = [np.full((240, 320, 3), v, np.uint8) for v in (60, 120, 180)]
    raws, r, hw = model.raw(frames)
    assert hw == (256, 320) and r == 1.0 and len(raws) == 3
    assert raws[0].shape == (sum((256 // s) * (320 // s) for s in (8, 16, 32)), 85)
    # flat grey frames hold no person
    assert all(len(b) == 0 for b, _, _ in model(frames, 0.5))


def test_the_freed_graph_is_cached_on_disk_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("ADTK_CACHE_DIR", str(tmp_path / "cache"))
    assert yolox.cache_dir() == tmp_path / "cache"
    data = BUNDLED.read_bytes()
    freed, ok = yolox._freed(data)
    cached = list((tmp_path / "cache" / "onnx").glob("*.free.onnx"))
    assert ok and len(cached) == 1 and cached[0].read_bytes() == freed
    # the second load reads the file: no call to _free_dims (which imports onnx)
    monkeypatch.setattr(yolox, "_free_dims", lambda d: pytest.fail("not cached"))
    assert yolox._freed(data) == (freed, True)
    # and the cached graph runs batches like the freshly freed one
    copy = tmp_path / "copy.onnx"  # another path: load() caches sessions by path
    copy.write_bytes(data)
    model = Yolox(copy, input_size=320, threads=1, batch=2)
    assert model.model.batched and model.batch == 2
    _, _, hw = model.raw([np.zeros((240, 320, 3), np.uint8)] * 2)
    assert hw == (256, 320)


def test_a_damaged_cached_graph_still_runs_and_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ADTK_CACHE_DIR", str(tmp_path / "cache"))
    data = BUNDLED.read_bytes()
    yolox._freed(data)
    (cached,) = (tmp_path / "cache" / "onnx").glob("*.free.onnx")
    cached.write_bytes(b"garbage")
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(data)
    model = Yolox(copy, input_size=320, threads=1)
    # the original graph (its own fixed 416 x 416 input) runs; the bad copy is gone ...
    assert model.model.fixed_hw == (416, 416) and not cached.exists()
    # ... and the next load frees the graph again
    assert yolox._freed(data)[1] and cached.read_bytes() != b"garbage"


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ADTK_CACHE_DIR", str(blocker))
    freed, ok = yolox._freed(BUNDLED.read_bytes())
    assert ok and len(freed) > 0


def test_a_file_that_is_no_model_is_one_clear_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(AdtkError, match="not a YOLOX ONNX model"):
        Yolox(bad)
    with pytest.raises(AdtkError, match="not found"):
        Yolox(tmp_path / "missing.onnx")


def _indoor_frames(shared_data, indices):
    import cv2

    cap = cv2.VideoCapture(str(shared_data / "videos" / "one-by-one-person-detection.mp4"))
    out = []
    for i in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, f = cap.read()
        assert ok
        out.append(f)
    return out


@pytest.mark.shared
def test_the_shipped_model_finds_the_person_in_a_frame_of_the_indoor_clip(shared_data):
    # Intel IoT DevKit sample video (CC-BY-4.0); at frame 300 one person stands in the middle
    (frame,) = _indoor_frames(shared_data, [300])
    boxes, scores, cls = Yolox(threads=1)([frame], 0.6)[0]
    assert len(boxes) == 1 and cls[0] == 0 and scores[0] > 0.8
    x0, y0, x1, y1 = boxes[0]
    # tight around the person: about 160 px wide and 375 px tall, head to feet
    assert 370 < x0 < 400 and 530 < x1 < 560 and y0 < 20 and 370 < y1 < 400


@pytest.mark.shared
def test_target_person_keeps_the_person_a_detector_supports(shared_data):
    from toolkit.video.detect import DetectionPipeline

    frames = _indoor_frames(shared_data, [0, 290, 295, 300])
    cfg = ExtractConfig()  # target person, yolox
    pipe = DetectionPipeline(cfg, (768, 432), 2.0)
    pipe.init_background(frames[:1] * 3)
    dets = pipe.process(frames[1:])
    assert all(len(d) == 1 for d in dets)
    assert all(d.classes == ["person"] and d.names[0].startswith("yolox") for d in dets)


def test_weights_takes_another_yolox_onnx_and_object_mode_asks_for_every_class():
    from toolkit.video.detect import YoloxDetector

    det = YoloxDetector(ExtractConfig(weights=str(BUNDLED), yolox_size=320))
    assert det.classes == (0,) and det.model.input_size == 320 and det.score == 0.6
    det = YoloxDetector(ExtractConfig(target="object", min_score=0.3))
    assert det.classes is None and det.score == 0.3


@pytest.mark.parametrize("threads, windows, target, expect", [
    (1, False, "person", 1), (2, False, "person", 4), (2, True, "person", 1),
    (2, True, "object", 4),  # object mode never searches windows: nothing to give up
])
def test_cpu_batches_only_with_a_pool_of_threads_and_never_with_windows(
    threads, windows, target, expect
):
    import cv2

    from toolkit.video.detect import YoloxDetector

    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)  # what extract_task sets for its worker
    try:
        det = YoloxDetector(ExtractConfig(yolox_windows=windows, target=target))
    finally:
        cv2.setNumThreads(before)
    if det.model.on_gpu:  # a GPU batches whatever the CPU threads
        assert det.batch_size == 8
    else:  # one thread: a batch only costs; windows search one frame at a time
        assert det.batch_size == expect and det.uses_rois == (windows and target == "person")


def test_a_batch_finds_what_single_frames_find(shared_data):
    from toolkit.video.detect import YoloxDetector

    frames = _indoor_frames(shared_data, [0, 290, 295, 300, 305])
    det = YoloxDetector(ExtractConfig())
    one = [det.model([f], det.score, det.classes)[0] for f in frames]
    det.model.batch = 4
    many = det.model(frames, det.score, det.classes)  # a batch of 4, then one of 1
    for (b1, s1, c1), (b2, s2, c2) in zip(one, many, strict=True):
        assert np.allclose(b1, b2, atol=1e-3) and np.allclose(s1, s2, atol=1e-5)
        assert np.array_equal(c1, c2)


def test_window_grows_each_region_by_its_height_and_clips_to_the_frame():
    from toolkit.video.detect import window

    hw = (400, 800)  # H, W
    assert window(hw, None) is None and window(hw, np.zeros((0, 4))) is None
    # a 100 px tall region grows 25 px on every side (margin 0.25 of its height) ...
    box = np.array([[300, 100, 340, 200]])
    assert window(hw, box, margin=0.25, min_pad=0.0) == (275, 75, 365, 225)
    # ... and at least min_pad of the frame's long side (0.05 * 800 = 40 px)
    assert window(hw, box, margin=0.25, min_pad=0.05) == (260, 60, 380, 240)
    # two regions: the union of the grown boxes, clipped at the frame's edges
    rois = np.array([[10, 10, 30, 50], [700, 300, 780, 380]], np.float32)
    assert window(hw, rois, margin=0.25, max_share=1.0, min_pad=0.0) == (0, 0, 800, 400)
    assert window(hw, rois[:1], margin=0.25, min_pad=0.0) == (0, 0, 40, 60)
    # a window over more than max_share of the frame is the whole frame
    big = np.array([[0, 0, 600, 300]])
    assert window(hw, big, margin=0.0, max_share=0.5, min_pad=0.0) is None
    assert window(hw, big, margin=0.0, max_share=0.6, min_pad=0.0) == (0, 0, 600, 300)


@pytest.mark.shared
def test_a_window_finds_the_person_as_the_whole_frame_does_and_drops_cut_people(shared_data):
    (frame,) = _indoor_frames(shared_data, [300])
    model = Yolox(threads=1)
    (full,) = model([frame], 0.6)
    # a window around the person, at the whole frame's scale, on a smaller canvas
    (win,) = model([frame], 0.6, windows=[(300, 0, 640, 432)])
    assert len(win[0]) == 1 and win[2][0] == 0
    np.testing.assert_allclose(win[0], full[0], atol=6.0)  # frame pixels
    assert abs(float(win[1][0]) - float(full[1][0])) < 0.05
    # a window that cuts the person at x = 470 does not report half a person
    (cut,) = model([frame], 0.6, windows=[(0, 0, 470, 432)])
    assert len(cut[0]) == 0
    # None means the whole frame
    (same,) = model([frame], 0.6, windows=[None])
    np.testing.assert_array_equal(same[0], full[0])


@pytest.mark.shared
def test_windows_leave_no_stretch_of_sampled_frames_without_a_whole_frame_search(shared_data):
    from toolkit.video import detect as D

    # 2 fps over 40 s of the indoor clip (10 fps): people walk in, stand, leave; empty stretches
    frames = _indoor_frames(shared_data, range(200, 600, 5))
    pipe = D.DetectionPipeline(ExtractConfig(yolox_windows=True), (768, 432), 2.0)
    assert pipe.detector.full_refresh
    pipe.init_background(_indoor_frames(shared_data, [0, 10, 20]))
    kinds, found = [], []
    for f in frames:
        g, w = pipe.frames_gated, pipe.frames_windowed
        (d,) = pipe.process([f])
        kinds.append("gated" if pipe.frames_gated > g else "window" if pipe.frames_windowed > w
                     else "whole")
        found.append(len(d) > 0)
    assert kinds[0] == "whole" and {"gated", "window", "whole"} <= set(kinds)
    # never `recheck` sampled frames (RECHECK_S = 2 s) in a row without a whole-frame search,
    # gated frames included
    run = longest = 0
    for k in kinds:
        run = 0 if k == "whole" else run + 1
        longest = max(longest, run)
    assert longest < pipe.recheck
    # a window is searched where someone moves or was just seen: it finds them
    win = [f for k, f in zip(kinds, found, strict=True) if k == "window"]
    assert sum(win) >= 0.8 * len(win)


def test_windows_are_off_by_default_for_object_mode_and_for_batches():
    from toolkit.video.detect import YoloxDetector

    assert not YoloxDetector(ExtractConfig()).full_refresh  # off unless asked for
    assert YoloxDetector(ExtractConfig(yolox_windows=True)).full_refresh
    assert not YoloxDetector(ExtractConfig(yolox_windows=True, target="object")).full_refresh
