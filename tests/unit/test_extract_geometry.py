"""Crop geometry: boxes inside and across frame borders, the oversize ratio."""

import numpy as np
import pytest

from toolkit.video.detect import Detections
from toolkit.video.geometry import crop, iou_matrix, nms, oversize_box
from toolkit.video.motion import group_boxes


def _frame(h=100, w=200):
    # a distinct value per pixel column/row so that crops can be checked exactly
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    f[..., 1] = np.arange(h, dtype=np.uint8)[:, None]
    f[..., 2] = 255
    return f


def test_oversize_ratio_and_centre():
    x0, y0, x1, y1 = oversize_box((10, 20, 30, 60))
    assert (x1 - x0) == pytest.approx(2.5 * 20)
    assert (y1 - y0) == pytest.approx(1.5 * 40)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((20, 40))


def test_crop_inside_is_exact_resize():
    f = _frame()
    c = crop(f, (50, 10, 114, 74), size=64)  # 64x64 region: no resampling
    assert c.shape == (64, 64, 3)
    assert np.array_equal(c, f[10:74, 50:114])


def test_crop_at_border_pads_instead_of_stretching():
    f = _frame()
    # half of the box lies left of the frame: the left half of the crop must be black padding,
    # the right half the frame's first 32 columns, unstretched
    c = crop(f, (-32, 0, 32, 64), size=64)
    assert c.shape == (64, 64, 3)
    assert (c[:, :32] == 0).all()
    assert np.array_equal(c[:, 32:], f[0:64, 0:32])


def test_crop_bottom_right_corner_and_outside():
    f = _frame()
    c = crop(f, (180, 80, 220, 120), size=40)
    assert (c[20:, :] == 0).all() and (c[:, 20:] == 0).all()
    assert np.array_equal(c[:20, :20], f[80:100, 180:200])
    assert (crop(f, (300, 300, 340, 340), size=16) == 0).all()


def test_oversize_crop_of_border_box_keeps_scale():
    f = _frame()
    box = (0, 0, 20, 40)
    big = crop(f, oversize_box(box), size=50)  # 50 x 60 region -> 50 x 50
    assert big.shape == (50, 50, 3)
    # the box's centre column (x=10) lies at the crop's centre, left part padded
    assert (big[:, :10] == 0).all()


def test_nms_drops_overlaps_and_contained_boxes():
    boxes = np.array([[0, 0, 10, 20], [1, 1, 11, 21], [2, 2, 6, 8], [50, 50, 60, 70]], np.float32)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]))
    assert sorted(keep.tolist()) == [0, 3]


def test_iou_and_grouping():
    a = np.array([[0, 0, 10, 10]], np.float32)
    assert iou_matrix(a, a)[0, 0] == pytest.approx(1.0)
    assert iou_matrix(a, a + 20)[0, 0] == 0
    # head and legs of one person, stacked: merged; two people side by side: kept apart
    stacked = np.array([[10, 0, 20, 10], [10, 15, 20, 40]], np.float32)
    assert len(group_boxes(stacked, 0.1, 1.0, upright=True)) == 1
    side = np.array([[0, 0, 10, 25], [12, 0, 22, 25]], np.float32)
    assert len(group_boxes(side, 0.1, 1.0, upright=True)) == 2
    d = Detections.of([[0, 0, 1, 1]], [0.5], "x") + Detections.of([[1, 1, 2, 2]], [0.1], "y")
    assert d.names == ["x", "y"] and len(d.select([1])) == 1


def test_auto_adds_only_uncovered_motion_blobs():
    from toolkit.video.detect import add_uncovered

    hog = Detections.of([[100, 0, 140, 60]], [1.2], "hog")  # a torso box
    blobs = Detections.of(
        [[95, 0, 145, 120], [300, 10, 320, 60], [130, 0, 200, 50]], [0.6, 0.7, 0.5], "motion"
    )
    out = add_uncovered(hog, blobs)
    # the body blob around the torso is the same person: not added; the far blob is; the blob
    # that only touches the box (10 of its 70 px width) is someone else
    assert out.names == ["hog", "motion", "motion"]
    assert out.boxes[1].tolist() == [300, 10, 320, 60]
    # the torso box grows to the whole moving body it lies in
    assert out.boxes[0].tolist() == [95, 0, 145, 120] and out.scores[0] == np.float32(1.2)
    assert add_uncovered(Detections(), blobs).names == ["motion"] * 3


def test_settings_that_change_crops_are_in_the_extraction_hash_and_runtime_ones_are_not():
    import dataclasses

    from toolkit.config import ExtractConfig
    from toolkit.video.extract import extraction_hash as settings_hash

    base = ExtractConfig()
    assert settings_hash(dataclasses.replace(base, workers=7)) == settings_hash(base)
    # torchvision batching with motion gating can change which frames are searched
    assert settings_hash(dataclasses.replace(base, batch=base.batch + 1)) != settings_hash(base)
    assert settings_hash(dataclasses.replace(base, fps=base.fps * 2)) != settings_hash(base)
