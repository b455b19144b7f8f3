"""Weak boxes (``--low-score``): which stay, which go; duplicate bridges."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from toolkit.config import ExtractConfig
from toolkit.video.detect import DetectionPipeline, Detections, Detector, drop_held_weak
from toolkit.video.sequences import CropSequences


def _det(rows):
    """Detections from ``(x0, y0, x1, y1, score, class)`` rows (detector ``yolox``)."""
    boxes = np.asarray([r[:4] for r in rows], np.float32).reshape(-1, 4)
    return Detections(boxes, np.asarray([r[4] for r in rows], np.float32),
                      ["yolox"] * len(rows), [r[5] for r in rows])


def test_a_weak_box_held_by_a_better_one_goes_a_weak_box_elsewhere_stays():
    det = _det([
        (100, 50, 120, 90, 0.80, "person"),  # a walker, confidently
        (101, 52, 121, 92, 0.30, "skis"),  # the same walker again, weakly, another class
        (104, 60, 116, 80, 0.25, "person"), # inside the walker's box
        (200, 50, 222, 92, 0.20, "bicycle"),  # a far-away biker nobody else boxed
        (205, 48, 224, 90, 0.18, "person"),  # his rider, weaker still: held by the bicycle
        (300, 50, 320, 90, 0.70, "person"),  # two confident boxes of different classes on
        (301, 51, 321, 91, 0.65, "horse"),  # one spot: strong boxes are never dropped here
    ])
    kept = drop_held_weak(det, strong=0.6)
    assert kept.classes == ["person", "bicycle", "person", "horse"]
    assert kept.scores.tolist() == pytest.approx([0.8, 0.2, 0.7, 0.65])
    # nothing weak: nothing changes
    assert len(drop_held_weak(det, strong=0.1)) == len(det)


class _Scripted(Detector):
    """Returns the same boxes for every frame (the pipeline's filters are under test)."""

    name = "scripted"
    default_min_score = 0.6
    multi_class = True

    def __init__(self, cfg, rows):
        super().__init__(cfg)
        self.rows = rows

    def detect(self, frames, blobs, rois):
        return [_det(self.rows) for _ in frames]


@pytest.mark.parametrize("low", [None, 0.15])
def test_the_pipeline_keeps_weak_boxes_only_with_low_score(low):
    rows = [
        (100, 50, 120, 90, 0.80, "person"),
        (101, 52, 121, 92, 0.30, "skis"),  # held by the walker's box
        (200, 50, 222, 92, 0.20, "bicycle"),  # weak, alone
        (260, 50, 280, 92, 0.10, "person"),  # below low_score
    ]
    cfg = ExtractConfig(target="object", low_score=low, motion_gate=False)
    pipe = DetectionPipeline(cfg, (360, 240), 10.0, detector=_Scripted(cfg, rows))
    pipe.motion = None  # no motion blobs: the detector's boxes only
    frame = np.full((240, 360, 3), 128, np.uint8)
    (det,) = pipe.process([frame])
    want = ["person"] if low is None else ["person", "bicycle"]
    assert det.classes == want


def test_low_score_at_or_above_min_score_changes_nothing():
    cfg = ExtractConfig(target="object", low_score=0.7)
    pipe = DetectionPipeline(cfg, (360, 240), 10.0, detector=_Scripted(cfg, []))
    assert pipe.low_score is None


def test_low_score_lowers_the_yolox_networks_own_threshold():
    from toolkit.video.detect import YoloxDetector

    assert YoloxDetector(ExtractConfig(target="object", low_score=0.15)).score == 0.15
    assert YoloxDetector(ExtractConfig(target="object")).score == 0.6


def test_low_score_is_validated_and_hashed_only_when_set():
    from toolkit.video.extract import extraction_hash

    with pytest.raises(ValueError, match="low_score"):
        ExtractConfig(low_score=0.0)
    with pytest.raises(ValueError, match="low_score"):
        ExtractConfig(low_score=1.5)
    base = ExtractConfig()
    # outputs made before the setting existed keep their hash
    assert extraction_hash(base) == extraction_hash(dataclasses.replace(base))
    assert extraction_hash(dataclasses.replace(base, low_score=0.15)) != extraction_hash(base)


def _frame_det(boxes, classes):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.full(len(boxes), 0.9, np.float32), ["yolox"] * len(boxes),
                      list(classes))


def test_no_bridged_crop_where_the_object_is_already_boxed_by_another_track(tmp_path,
                                                                         monkeypatch):
    cfg = ExtractConfig(fps=5, max_gap=1.0, min_track=2, bridge_s=0.6)
    frame = np.zeros((120, 200, 3), np.uint8)

    def run(twice: bool):
        seqs = CropSequences(cfg, lambda *a: None, 5.0, 200 * 120 * 3)
        for i in range(8):
            x = 10 + 10 * i
            tight, loose = [x, 20, x + 20, 80], [x - 2, 18, x + 22, 84]
            # a walker boxed as "person" and, with --target object, as "skis" too (two
            # tracks); on frames 3 and 4 the detector finds only the skis box
            if not twice:
                boxes, classes = ([] if i in (3, 4) else [tight]), ["person"]
            elif i in (3, 4):
                boxes, classes = [loose], ["skis"]
            else:
                boxes, classes = [tight, loose], ["person", "skis"]
            seqs.add(i * 2, i * 0.2, frame, _frame_det(boxes, classes[: len(boxes)]))
        return seqs.finish(tmp_path)

    df, counts = run(False)
    assert counts["bridged_crops"] == 2
    df, counts = run(True)
    assert df["track_id"].nunique() == 2
    # the person track is not bridged over frames 6 and 8: the walker is boxed there already
    assert counts["bridged_crops"] == 0
    assert df.groupby("frame_idx").size().tolist() == [2, 2, 2, 1, 1, 2, 2, 2]
    # (without the check, it would be)
    monkeypatch.setattr("toolkit.video.sequences.BRIDGE_DUP_IOU", 1.01)
    assert run(True)[1]["bridged_crops"] == 2


def test_a_weak_box_must_show_motion_a_confident_one_need_not():
    rows = [
        (40, 40, 60, 90, 0.30, "person"),  # weak, on the walker who moves
        (200, 40, 220, 90, 0.30, "person"),  # weak, on the still floor (a "hydrant")
        (280, 40, 300, 90, 0.90, "person"),  # confident, still: a person standing
    ]
    cfg = ExtractConfig(target="object", low_score=0.15)
    pipe = DetectionPipeline(cfg, (360, 240), 10.0, detector=_Scripted(cfg, rows))
    rng = np.random.default_rng(0)
    floor = np.clip(rng.normal(128, 3, (240, 360, 3)), 0, 255).astype(np.uint8)
    pipe.init_background([floor] * 5)
    frame = floor.copy()
    frame[42:88, 42:58] = 20  # the walker
    (det,) = pipe.process([frame])
    kept = sorted(det.boxes[:, 0].tolist())
    assert 40 in kept and 280 in kept and 200 not in kept
