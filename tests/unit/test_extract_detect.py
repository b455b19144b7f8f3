"""Every registered detector runs on a frame; torchvision plumbing with random weights."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.config import ExtractConfig
from toolkit.data.manifest import read_manifest
from toolkit.errors import AdtkError
from toolkit.video.detect import (
    DetectionPipeline,
    Detections,
    Detector,
    TorchvisionDetector,
    create,
    list_detectors,
)


def _scene(t: int) -> np.ndarray:
    f = np.full((120, 160, 3), 180, np.uint8)
    x = 10 + 8 * t
    f[30:90, x : x + 20] = 30  # a dark upright body walking right
    return f


@pytest.mark.parametrize("name", [n for n in list_detectors() if n != "torchvision"])
def test_each_detector_runs_in_the_pipeline(name):
    # object mode: the synthetic body is no person a detector would recognise
    cfg = ExtractConfig(detector=name, target="object")
    pipe = DetectionPipeline(cfg, (160, 120), 2.0)
    pipe.init_background([np.full((120, 160, 3), 180, np.uint8)] * 3)
    out = [pipe.process([_scene(t)])[0] for t in range(6)]
    assert all(isinstance(d, Detections) for d in out)
    if name in ("motion", "auto"):
        # the walking body is found on every frame after the first, where it is
        d = out[3]
        assert len(d) == 1
        x0, y0, x1, y1 = d.boxes[0]
        assert abs(x0 - 34) <= 4 and abs(y1 - 90) <= 4 and 0 < d.scores[0] <= 1


def test_motion_gate_skips_still_frames():
    cfg = ExtractConfig(detector="hog")
    pipe = DetectionPipeline(cfg, (160, 120), 2.0)
    still = np.full((120, 160, 3), 180, np.uint8)
    pipe.init_background([still] * 3)
    for _ in range(10):
        assert len(pipe.process([still])[0]) == 0
    # 3 of every 4 still frames are skipped: at 2 fps the detector looks once every 2 s
    # (frames 3 and 7), for people who stood still from the start
    assert pipe.frames_gated == 8



def test_motion_steps_taken_ahead_give_the_same_detections():
    # the extractor feeds the motion model in its decoding thread, ahead of detection
    # (reader.prefetched's pre): the same boxes, and the same gating, as feeding it inline
    cfg = ExtractConfig(detector="motion", target="object")
    frames = [np.full((120, 160, 3), 180, np.uint8)] * 4 + [_scene(t) for t in range(8)]
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    frames += [np.full((120, 160, 3), 180, np.uint8)] * 6 + [noise]  # the whole view changes
    inline = DetectionPipeline(cfg, (160, 120), 2.0)
    ahead = DetectionPipeline(cfg, (160, 120), 2.0)
    for p in (inline, ahead):
        p.init_background(frames[:2])
    steps = [ahead.motion_step(f) for f in frames]  # all of them before any detection
    a = [inline.process(frames[i : i + 3]) for i in range(0, len(frames), 3)]
    b = [ahead.process(frames[i : i + 3], steps[i : i + 3]) for i in range(0, len(frames), 3)]
    a, b = sum(a, []), sum(b, [])
    assert sum(len(d) for d in a) >= 8 and steps[-1].global_change
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.boxes, y.boxes) and x.names == y.names
    assert (inline.frames_gated, inline.frames_windowed) == (ahead.frames_gated,
                                                            ahead.frames_windowed)
    assert inline.frames_gated > 0


def test_a_batch_skips_exactly_the_frames_one_frame_at_a_time_skips():
    # YOLOX on a CPU with two threads detects 4 frames a call: a still frame after a frame
    # that is waiting for the detector must still be skipped when the previous frame's boxes
    # turn out empty, as it is one frame at a time
    cfg = ExtractConfig(detector="motion", target="object")
    empty = np.full((120, 160, 3), 180, np.uint8)
    frames = [empty] * 2 + [_scene(t) for t in range(3)] + [empty] * 11
    frames += [_scene(t) for t in range(2)] + [empty] * 7
    one = DetectionPipeline(cfg, (160, 120), 2.0)
    four = DetectionPipeline(cfg, (160, 120), 2.0)
    for p in (one, four):
        p.init_background([empty] * 3)
    a = [one.process([f])[0] for f in frames]
    b = sum((four.process(frames[i : i + 4]) for i in range(0, len(frames), 4)), [])
    assert sum(len(d) for d in a) >= 3 and one.frames_gated >= 8
    assert four.frames_gated == one.frames_gated
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.boxes, y.boxes) and x.names == y.names


class _Windowed(Detector):
    """A person detector that searches windows (as YOLOX with --yolox-windows): records the
    window it is given and reports one person box over the walker's column."""

    name = "windowed"
    uses_rois = full_refresh = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.seen: list = []

    def detect(self, frames, blobs, rois):
        self.seen += [None if r is None else r.tolist() for r in rois]
        return [Detections.of([[30, 30, 60, 90]], [0.9], "windowed", "person") for _ in frames]


def test_windows_from_motion_steps_taken_ahead_are_the_same():
    # the window path reads the step's light-change flag, not the model's (which, run ahead,
    # already describes a later frame)
    cfg = ExtractConfig(detector="motion", target="person")
    noise = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    frames = [_scene(t) for t in range(12)] + [noise]  # run ahead, the model ends "changed"
    pipes = [DetectionPipeline(cfg, (160, 120), 2.0, detector=_Windowed(cfg)) for _ in range(2)]
    for p in pipes:
        p.init_background([np.full((120, 160, 3), 180, np.uint8)] * 3)
    steps = [pipes[1].motion_step(f) for f in frames]
    for i in range(len(frames)):
        pipes[0].process(frames[i : i + 1])
        pipes[1].process(frames[i : i + 1], steps[i : i + 1])
    inline, ahead = (p.detector.seen for p in pipes)
    assert inline == ahead and steps[-1].global_change
    assert pipes[0].frames_windowed == pipes[1].frames_windowed > 0
    assert inline[-1] is None  # the whole view changed: the whole frame is searched

@pytest.mark.slow
def test_torchvision_random_weights_plumbing(tmp_path):
    torch = pytest.importorskip("torch")
    cfg = types.SimpleNamespace(
        tv_model="ssdlite320_mobilenet_v3_large", device="cpu", batch=2, weights=None
    )
    det = TorchvisionDetector(cfg, random_init=True)
    frames = [np.random.default_rng(i).integers(0, 255, (96, 128, 3), np.uint8) for i in range(3)]
    out = det.detect(frames, [None] * 3, [None] * 3)
    assert len(out) == 3
    for d in out:
        assert d.boxes.shape[1] == 4 and set(d.names) <= {"torchvision"}
    # the same network from a state_dict file, through the CLI as a user runs it
    # random weights rarely say "person"; bias the class head towards COCO label 1 so that the
    # CLI run below has boxes to crop, track and write
    state = det.model.state_dict()
    for k, v in state.items():
        if "classification_head" in k and k.endswith("bias") and v.numel() % 91 == 0:
            v.view(-1, 91)[:, 1] += 10.0
    path = tmp_path / "w.pt"
    torch.save(state, path)
    video = tmp_path / "in" / "clip.avi"
    video.parent.mkdir()
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    for f in frames * 5:
        vw.write(f)
    vw.release()
    r = CliRunner().invoke(
        main,
        [
            "extract",
            str(video),
            "--out",
            str(tmp_path / "out"),
            "--detector",
            "torchvision",
            "--tv-model",
            "ssdlite320_mobilenet_v3_large",
            "--weights",
            str(path),
            "--min-score",
            "0",
            "--min-size",
            "1",
            "--min-track",
            "1",
            "--no-motion-gate",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    df = read_manifest(tmp_path / "out" / "manifest.parquet")
    assert len(df) and set(df["detector"]) == {"torchvision"}
    (tmp_path / "bad.pt").write_bytes(b"nope")
    cfg.weights = str(tmp_path / "bad.pt")
    with pytest.raises(AdtkError, match="not a state_dict"):
        TorchvisionDetector(cfg)
    torch.save({"model": {"x": torch.zeros(1)}}, tmp_path / "other.pt")  # another network's
    cfg.weights = str(tmp_path / "other.pt")
    with pytest.raises(AdtkError, match="not a state_dict for ssdlite320"):
        TorchvisionDetector(cfg)


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(AdtkError, match="unknown detector"):
        create("nope", ExtractConfig())
