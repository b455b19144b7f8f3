"""Person and object detectors behind one small interface, chosen by name from a registry.

Boxes are ``float32`` arrays of shape (N, 4) in ``x0, y0, x1, y1`` source-frame pixels; each
box carries its detector's name and, where the detector names one, its object class.

Two targets (``--target``): ``person`` keeps only boxes that a person detector found (YOLOX,
HOG or a torchvision detector: class person); ``object`` keeps every moving object: the
detector's other COCO classes (bicycle, car, ...) plus the motion blobs that no detection
covers (a cart is no COCO class).

- ``yolox`` (default): YOLOX-Nano (COCO), shipped with the package, run by onnxruntime;
  ``--weights`` takes another YOLOX ONNX export.
- ``hog``: OpenCV's built-in HOG people detector (offline, no weights), with NMS.
- ``motion``: moving foreground blobs (MOG2 background subtraction) of person-like shape.
- ``torchvision``: a COCO person detector (Faster R-CNN / RetinaNet / SSDlite), batched.
- ``auto``: HOG run only on the regions that move, plus the motion blobs that no HOG box
  covers (object-centric anomaly detection combines both: HOG misses small people and
  non-person objects such as carts, motion misses nothing that moves).

Weak boxes (``--low-score``, off by default): a detector's boxes scored from ``low_score`` up
to ``min_score`` are kept where no better-scored box holds them (:func:`drop_held_weak`) and
they overlap motion. Small, far-away objects (UCSD Ped2's bikers, 20-45 px tall, often inside
a crowd) score 0.1-0.6 with YOLOX-Nano on many frames; the motion check keeps out what a low
threshold also lets in: still things (a fire hydrant, a post) called people frame after frame.

Motion gating (on by default, :class:`DetectionPipeline`) sends a detector only the frames,
and for HOG only the regions, where something moves or where a person was on the previous
sampled frame; an empty fixed-camera scene then costs one small background-subtraction step.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.errors import AdtkError
from toolkit.registry import Registry
from toolkit.video.geometry import (
    area,
    inside_larger,
    inside_share,
    iou_matrix,
    nms,
    overlap_min,
    person_like,
)
from toolkit.video.motion import MotionModel, ViewChanges, group_boxes, group_fill

#: the object class of boxes found by a person detector
PERSON = "person"
#: YOLOX frames per onnxruntime call on a CPU with a pool of threads (see YoloxDetector)
CPU_BATCH = 4


@dataclass
class Detections:
    """Boxes (N, 4) ``x0, y0, x1, y1``, scores (N,), and per box the name of the detector(s)
    that found it (``yolox``, ``hog+motion``, ...) and its object class (``person``, ``car``,
    ...; None for a motion blob, which has no class)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    names: list[str] = field(default_factory=list)
    classes: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.names):
            self.classes = [None] * len(self.names)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def of(cls, boxes, scores, name: str, cls_name: str | None = None) -> Detections:
        """Detections from array-likes, all attributed to detector ``name`` (class ``cls_name``)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        return cls(boxes, scores, [name] * len(boxes), [cls_name] * len(boxes))

    def select(self, keep) -> Detections:
        """The subset at ``keep`` (indices or a boolean mask)."""
        keep = np.asarray(keep)
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        return Detections(
            self.boxes[keep],
            self.scores[keep],
            [self.names[i] for i in keep],
            [self.classes[i] for i in keep],
        )

    def persons(self) -> np.ndarray:
        """Mask of the boxes a person detector found."""
        return np.asarray([c == PERSON for c in self.classes], bool)

    def __add__(self, other: Detections) -> Detections:
        return Detections(
            np.concatenate([self.boxes, other.boxes]),
            np.concatenate([self.scores, other.scores]),
            self.names + other.names,
            self.classes + other.classes,
        )


def filter_size(det: Detections, min_size: float, min_score: float | None) -> Detections:
    """Drop boxes shorter than ``min_size`` pixels or scored below ``min_score``."""
    if not len(det):
        return det
    keep = (det.boxes[:, 3] - det.boxes[:, 1]) >= min_size
    if min_score is not None:
        keep &= det.scores >= min_score
    return det.select(keep)


# ----------------------------------------------------------------------------- registry

DETECTORS: Registry[type[Detector]] = Registry("detector")


def register(name: str) -> Callable[[type[Detector]], type[Detector]]:
    """Class decorator: make a detector available as ``--detector name``."""
    return DETECTORS.register(name)


def list_detectors() -> list[str]:
    """Names of the registered detectors, sorted."""
    return sorted(DETECTORS.names())


def create(name: str, cfg: Any) -> Detector:
    """Build the detector ``name`` from an :class:`~toolkit.config.ExtractConfig`."""
    return DETECTORS.get(name)(cfg)


class Detector:
    """One interface for every detector.

    ``detect(frames, motion)`` takes a batch of BGR frames and, per frame, the motion blobs of
    that frame (or ``None`` when there is no motion model) plus the regions worth searching
    (``rois``; ``None`` = the whole frame). Returns one :class:`Detections` per frame.
    """

    name = "base"
    #: needs motion blobs even when gating is off
    needs_motion = False
    #: can restrict its search to regions (True) or only to whole frames (False)
    uses_rois = False
    #: searches regions, but needs a whole-frame pass every ``RECHECK_S`` seconds (it looks
    #: for people anywhere, not only where things move)
    full_refresh = False
    #: its scores' default lower bound (``--min-score`` overrides)
    default_min_score: float | None = None
    #: finds people (boxes of class ``person``): usable with ``--target person``
    finds_persons = True
    #: its output already holds the motion blobs no detection covers (``--target object``)
    adds_blobs = False
    #: finds objects of other classes when asked to (``object`` mode)
    multi_class = False
    batch_size = 1

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def detect(
        self,
        frames: Sequence[np.ndarray],
        blobs: Sequence[Detections | None],
        rois: Sequence[np.ndarray | None],
    ) -> list[Detections]:
        raise NotImplementedError


@register("hog")
class HogDetector(Detector):
    """OpenCV's HOG + linear SVM people detector (Dalal & Triggs), with NMS.

    With regions, each region is padded and rescaled so that its moving body is about
    ``hog_target`` pixels tall (never enlarged beyond ``hog_upscale``): the 64x128 window then
    sees the person at the first few pyramid levels, which is most of the speed-up over a
    full-frame pass. Regions too small to hold a person even at ``hog_upscale`` are skipped.
    """

    uses_rois = True
    default_min_score = 0.0
    #: a person must be about this tall (pixels) for the 64x128 window
    min_person = 96
    hog_target = 110

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale = float(getattr(cfg, "hog_upscale", 1.0))
        self.step = float(getattr(cfg, "hog_scale_step", 1.05))

    def detect(self, frames, blobs, rois) -> list[Detections]:
        return [self.detect_one(f, r) for f, r in zip(frames, rois, strict=True)]

    def detect_one(self, frame: np.ndarray, rois: np.ndarray | None) -> Detections:
        """HOG boxes in ``frame``: in the regions ``rois`` (N, 4), or everywhere when None."""
        H, W = frame.shape[:2]
        if rois is None:
            det = self._run(frame, 0, 0, self.upscale)
        else:
            det = Detections()
            for x0, y0, x1, y1 in np.asarray(rois, np.float32).reshape(-1, 4):
                h = y1 - y0
                if h * self.upscale < self.min_person * 0.6:
                    continue
                s = min(self.upscale, self.hog_target / max(h, 1.0))
                # pad so that a body seen only in part by the motion mask still fits
                px, py = 0.35 * h + 8 / s, 0.25 * h + 8 / s
                a0, b0 = int(max(0, x0 - px)), int(max(0, y0 - py))
                a1, b1 = int(min(W, x1 + px)), int(min(H, y1 + py))
                found = self._run(frame[b0:b1, a0:a1], a0, b0, s)
                if len(found):
                    # a window much taller than the moving body is HOG seeing a "person" in a
                    # crowd's texture or in the replicated border, not this body
                    found = found.select((found.boxes[:, 3] - found.boxes[:, 1]) <= 1.5 * h)
                det = det + found
        if len(det) > 1:
            det = det.select(nms(det.boxes, det.scores))
        return det

    def _run(self, img: np.ndarray, ox: float, oy: float, s: float) -> Detections:
        if s != 1.0:
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=interp)
        # a person filling the frame's height needs some room above and below to fit the
        # 64x128 window at ~100 px tall: extend the region by repeating its border
        py, px = max(0, 144 - img.shape[0]), max(0, 72 - img.shape[1])
        if py or px:
            img = cv2.copyMakeBorder(
                img, py // 2, py - py // 2, px // 2, px - px // 2, cv2.BORDER_REPLICATE
            )
            ox, oy = ox - (px // 2) / s, oy - (py // 2) / s
        rects, weights = self.hog.detectMultiScale(
            img, winStride=(8, 8), padding=(8, 8), scale=self.step
        )
        if len(rects) == 0:
            return Detections()
        r = np.asarray(rects, np.float32).reshape(-1, 4)
        # The 64x128 window holds the person with about 16 px of margin on all four sides
        # (Dalal & Triggs, INRIA set): the box is the person inside it, not the window.
        mx, my = r[:, 2] * (16 / 64), r[:, 3] * (16 / 128)
        boxes = np.stack(
            [r[:, 0] + mx, r[:, 1] + my, r[:, 0] + r[:, 2] - mx, r[:, 1] + r[:, 3] - my], 1
        ) / s
        boxes += np.asarray([ox, oy, ox, oy], np.float32)
        return Detections.of(boxes, np.asarray(weights).reshape(-1), "hog", PERSON)


@register("motion")
class MotionDetector(Detector):
    """Moving foreground blobs of person-like shape as detections (score = blob fill, 0-1)."""

    needs_motion = True
    default_min_score = 0.0
    finds_persons = False
    adds_blobs = True

    def detect(self, frames, blobs, rois) -> list[Detections]:
        return [b if b is not None else Detections() for b in blobs]


@register("auto")
class AutoDetector(Detector):
    """HOG on moving regions, plus every motion blob that no HOG box covers.

    A blob counts as covered when at least half of the smaller of the two boxes overlaps a
    HOG box. The ``detector`` column of each crop says which source produced it.
    """

    needs_motion = True
    uses_rois = True
    default_min_score = 0.0
    adds_blobs = True

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.hog = HogDetector(cfg)

    def detect(self, frames, blobs, rois) -> list[Detections]:
        out = []
        for frame, blob, roi in zip(frames, blobs, rois, strict=True):
            det = self.hog.detect_one(frame, roi)
            out.append(add_uncovered(det, blob) if blob is not None else det)
        return out


@register("yolox")
class YoloxDetector(Detector):
    """YOLOX (COCO) by onnxruntime: the shipped YOLOX-Nano, or ``--weights`` another YOLOX ONNX.

    With ``--target person`` it reports class person only; with ``--target object`` every COCO
    class. Runs on whole frames, with as many threads as OpenCV was
    given (one worker per core gets one thread each); in batches of ``--batch`` on a GPU, of
    at most :data:`CPU_BATCH` on a CPU with two or more threads, else one frame a call.
    """

    #: measured on PETS09-S2L1 and TUD-Stadtmitte (benchmarks/detect_track.py): 0.6 keeps
    #: precision near 0.9 on the elevated camera where 0.5 drops it to 0.84, for 0.01 of recall
    default_min_score = 0.6
    multi_class = True
    #: --yolox-windows, --target person, on a CPU (one frame at a time): a fixed camera's
    #: frame is searched only around what moves and the last frames' boxes (:func:`window`),
    #: with a whole-frame pass every ``RECHECK_S`` seconds; otherwise whole frames
    uses_rois = False
    full_refresh = False

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        from toolkit.video.yolox import COCO_CLASSES, Yolox

        weights = getattr(cfg, "weights", None)
        self.model = Yolox(
            weights,
            input_size=int(getattr(cfg, "yolox_size", 640)),
            threads=cv2.getNumThreads(),
            device=str(getattr(cfg, "device", "auto")),
            batch=int(getattr(cfg, "batch", 8)),
        )
        self.classes = (0,) if getattr(cfg, "target", "person") == "person" else None
        # Windows: --yolox-windows, person mode, one frame at a time (a batch on a GPU sees
        # whole frames), a graph whose input size could be freed. --target object searches
        # whole frames: on Ped2's test clips windows cost 0.6 points of anomalous-region
        # recall (96.9 -> 96.3 % of the regions >= 300 px).
        wants_windows = (bool(getattr(cfg, "yolox_windows", False)) and self.classes is not None
                         and self.model.model.fixed_hw is None)
        # On a CPU a batch pays only with a pool of threads: on one thread 640x480 frames took
        # 25.7 ms of CPU each one at a time and 36.6 ms each in batches of 8; on two (sleeping
        # pool, see toolkit.video.yolox) batches of 4 ran PETS09-S2L1 at every frame at 31.5 /
        # 35.7 / 38.4 frames/s against 27.9 / 30.5 / 33.5 one at a time (alternating), and
        # the indoor clip in 6.2-6.7 s against 7.0-8.4 s, with the same crops to the byte.
        # (A batch skips the same frames as single frames: DetectionPipeline.process.)
        if not self.model.on_gpu:
            pool = cv2.getNumThreads() >= 2 and not wants_windows
            self.model.batch = min(CPU_BATCH, self.model.batch) if pool else 1
        self.batch_size = self.model.batch
        ms = getattr(cfg, "min_score", None)
        self.score = self.default_min_score if ms is None else float(ms)
        low = getattr(cfg, "low_score", None)
        if low is not None:
            # weak boxes must come out of the network; the pipeline decides which stay
            self.score = min(self.score, float(low))
        self.names = COCO_CLASSES
        self.uses_rois = self.full_refresh = wants_windows and self.batch_size == 1

    def detect(self, frames, blobs, rois) -> list[Detections]:
        out = []
        # full_refresh: the pipeline gives one window per frame (a (1, 4) array) or None
        windows = [None if r is None else tuple(int(v) for v in r[0]) for r in rois]
        for boxes, scores, cls in self.model(list(frames), self.score, self.classes,
                                             windows=windows):
            names = [self.names[c] if c < len(self.names) else f"class{c}" for c in cls]
            out.append(Detections(boxes, scores, ["yolox"] * len(boxes), names))
        return out


#: a search window covering more than this share of the frame is not worth cutting
WINDOW_MAX_SHARE = 0.6
#: context around each region of a window, in units of the region's height
WINDOW_MARGIN = 0.25
#: and at least this share of the frame's long side (small, far-away people)
WINDOW_MIN_PAD = 0.05


def window(
    frame_hw: tuple[int, int], rois: np.ndarray | None, margin: float = WINDOW_MARGIN,
    max_share: float = WINDOW_MAX_SHARE, min_pad: float = WINDOW_MIN_PAD,
) -> tuple[int, int, int, int] | None:
    """The part of a frame worth a detector pass: the regions (x0, y0, x1, y1), each grown by
    ``margin`` times its height, and at least ``min_pad`` times the frame's long side, on
    every side (a whole body around a moving arm, room for the next step, context for a small
    person), their union clipped to the frame. None (the whole frame) without regions or
    when the window would cover more than ``max_share`` of the frame."""
    if rois is None or not len(rois):
        return None
    b = np.asarray(rois, np.float64).reshape(-1, 4)
    H, W = frame_hw
    pad = np.maximum(margin * (b[:, 3] - b[:, 1]), min_pad * max(H, W))
    x0 = max(0, int(np.floor((b[:, 0] - pad).min())))
    y0 = max(0, int(np.floor((b[:, 1] - pad).min())))
    x1 = min(W, int(np.ceil((b[:, 2] + pad).max())))
    y1 = min(H, int(np.ceil((b[:, 3] + pad).max())))
    if x1 - x0 < 2 or y1 - y0 < 2 or (x1 - x0) * (y1 - y0) > max_share * H * W:
        return None
    return (x0, y0, x1, y1)


def add_uncovered(
    det: Detections, blobs: Detections, cover: float = 0.5, extend: bool = True
) -> Detections:
    """``det`` plus the ``blobs`` that no box of ``det`` covers.

    Covered: at least ``cover`` of the smaller of the two boxes lies in their intersection
    (a torso box inside a body blob, or a body box inside a blob of two people, both count).
    With ``extend``, a detector box grows to the union with the upright blobs it covers: HOG
    often reports a torso one frame and the whole person the next, and crops that jump
    between the two break tracks and make the crop set inconsistent.
    """
    if not len(blobs):
        return det
    if len(det):
        ov = overlap_min(blobs.boxes, det.boxes)  # (blobs, det)
        covered = ov.max(axis=1) >= cover
        if extend:
            boxes = det.boxes.copy()
            for j in range(len(det)):
                for i in np.flatnonzero(ov[:, j] >= cover):
                    u = np.concatenate(
                        [
                            np.minimum(boxes[j, :2], blobs.boxes[i, :2]),
                            np.maximum(boxes[j, 2:], blobs.boxes[i, 2:]),
                        ]
                    )
                    if u[3] - u[1] >= u[2] - u[0]:  # stays one upright body
                        boxes[j] = u
            det = Detections(boxes, det.scores, det.names, det.classes)
        blobs = blobs.select(~covered)
    return det + blobs


#: torchvision COCO detectors offered by ``--tv-model`` (all use COCO label 1 = person)
TV_MODELS = {
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "retinanet_resnet50_fpn_v2": "RetinaNet_ResNet50_FPN_V2_Weights",
    "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights",
}


@register("torchvision")
class TorchvisionDetector(Detector):
    """A COCO person detector from torchvision, batched, on the GPU when there is one.

    Weights come from ``--weights FILE`` (a state_dict), else torchvision's weights API
    (downloaded once into torch's cache). Offline without a cached copy it stops with a
    message that says how to supply them. ``random_init=True`` builds the network with random
    weights (for testing the plumbing only).
    """

    default_min_score = 0.5

    def __init__(self, cfg: Any, random_init: bool = False):
        super().__init__(cfg)
        import torch
        from torchvision.models import detection as tvd

        arch = getattr(cfg, "tv_model", "fasterrcnn_mobilenet_v3_large_fpn")
        if arch not in TV_MODELS:
            raise AdtkError(f"unknown torchvision model {arch!r}; known: {', '.join(TV_MODELS)}")
        dev = getattr(cfg, "device", "auto")
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev
        )
        self.batch_size = int(getattr(cfg, "batch", 8))
        builder = getattr(tvd, arch)
        weights_file = getattr(cfg, "weights", None)
        # the model keeps boxes down to 0.05 (--min-score filters further); SSDlite's own
        # default of 0.001 would send hundreds of thousands of boxes through NMS
        thresh = "box_score_thresh" if "fasterrcnn" in arch else "score_thresh"
        kw: dict[str, Any] = {thresh: 0.05}
        if random_init or weights_file:
            state = None
            if weights_file:
                # read the file before building the network: a bad file fails fast
                path = Path(weights_file)
                if not path.is_file():
                    raise AdtkError(f"{path}: weights file not found")
                try:
                    state = torch.load(path, map_location="cpu", weights_only=True)
                except Exception as e:  # noqa: BLE001 - any load failure is the user's file
                    msg = str(e).splitlines()[0][:200]
                    raise AdtkError(f"{path}: not a state_dict for {arch} ({msg})") from None
                if isinstance(state, dict) and isinstance(state.get("model"), dict):
                    state = state["model"]  # a training checkpoint {"model": state_dict, ...}
                if not isinstance(state, dict):
                    raise AdtkError(f"{path}: not a state_dict for {arch}")
            model = builder(weights=None, weights_backbone=None, **kw)
            if state is not None:
                try:
                    model.load_state_dict(state)
                except RuntimeError as e:
                    msg = str(e).splitlines()[0][:200]
                    raise AdtkError(
                        f"{weights_file}: not a state_dict for {arch} ({msg})"
                    ) from None
        else:
            enum = getattr(tvd, TV_MODELS[arch]).DEFAULT
            try:
                model = builder(weights=enum, **kw)
            except Exception as e:  # noqa: BLE001 - offline: URLError, OSError, HTTP errors
                cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
                raise AdtkError(
                    f"torchvision detector: weights {enum} are not in the cache ({cache}) and "
                    f"could not be downloaded ({type(e).__name__}). Run once with network "
                    f"access, copy the file to {cache}, or pass --weights FILE (a state_dict "
                    f"for {arch})"
                ) from None
        self.model = model.eval().to(self.device)
        self.torch = torch

    def detect(self, frames, blobs, rois) -> list[Detections]:
        torch = self.torch
        out: list[Detections] = []
        for i in range(0, len(frames), self.batch_size):
            chunk = frames[i : i + self.batch_size]
            # BGR uint8 (H, W, 3) -> RGB float (3, H, W) in [0, 1]
            x = [
                torch.from_numpy(np.ascontiguousarray(f[:, :, ::-1]))
                .to(self.device)
                .permute(2, 0, 1)
                .float()
                .div_(255)
                for f in chunk
            ]
            with torch.inference_mode():
                preds = self.model(x)
            for p in preds:
                keep = p["labels"] == 1
                out.append(
                    Detections.of(
                        p["boxes"][keep].float().cpu().numpy(),
                        p["scores"][keep].float().cpu().numpy(),
                        "torchvision",
                        PERSON,
                    )
                )
        return out


# ----------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class MotionStep:
    """The motion model's part of one sampled frame (:meth:`DetectionPipeline.motion_step`)."""

    #: the model was past its warm-up before this frame (an empty foreground means stillness)
    ready: bool
    #: moving regions (N, 4), full-resolution x0, y0, x1, y1
    moving: np.ndarray
    #: foreground share inside each region (N,)
    fill: np.ndarray
    #: the whole picture changed on this frame (light switched, camera moved)
    global_change: bool
    #: the frame was shifted onto the background (camera shake) / the camera had moved too
    #: far and the model started again
    shifted: bool = False
    restarted: bool = False


class DetectionPipeline:
    """Motion model + detector + gating + target for one video (it holds per-video state).

    Per sampled frame: update the background model; when gating is on and nothing moves and
    no box was seen on the previous sampled frame, the detector is not called (except once
    every ``RECHECK_S`` seconds, for people who stand still from the start and so are part of
    the background). Otherwise the detector gets the frame and, if it searches regions, the
    moving regions grouped into bodies plus the previous frame's boxes (people who stand still
    fade from the motion mask but should still be looked for). A detector that looks for
    people anywhere (``full_refresh``: YOLOX with ``--yolox-windows``, ``--target person``, on
    a CPU) searches one window around the moving regions and the boxes of the last ``RECENT``
    sampled frames, and the whole frame at the first frame, while the motion model warms up,
    after a global change of light, on a frame only the gate's recheck sends, and at least
    every ``RECHECK_S`` seconds of sampled frames (people who stand still from the start).
    Measured on the shared indoor clip, where one person fills most of the frame's height,
    the windows cover 36-52 % of the frame on 141 of 243 detector passes.

    Then the target: ``person`` keeps the boxes of class person only, and drops a box that
    holds two or more other people (a box around a group, not one person); ``object`` adds
    the motion blobs that no detection covers. A box that a motion blob overlaps gets
    ``+motion`` in its detector name.
    """

    #: seconds between detector passes on frames where nothing moves
    RECHECK_S = 2.0
    #: sampled frames whose boxes a windowed detector's search keeps looking at (a person
    #: the detector misses on one frame is still searched for on the next)
    RECENT = 3

    def __init__(self, cfg: Any, frame_size: tuple[int, int], sample_fps: float, detector=None):
        self.cfg = cfg
        self.detector = detector if detector is not None else create(cfg.detector, cfg)
        self.target = str(getattr(cfg, "target", "person"))
        check_target(self.target, cfg.detector, self.detector)
        gate = bool(getattr(cfg, "motion_gate", True))
        self.gate = gate
        self.motion = None
        if gate or self.detector.needs_motion or self.target == "object":
            self.motion = MotionModel(
                frame_size,
                sample_fps,
                width=int(getattr(cfg, "motion_width", 320)),
                absorb_s=float(getattr(cfg, "motion_absorb_s", 60.0)),
            )
        #: shot cuts and frozen pictures (:meth:`view_step`)
        self.changes = ViewChanges()
        self.min_size = float(getattr(cfg, "min_size", 0) or 0)
        ms = getattr(cfg, "min_score", None)
        self.min_score = self.detector.default_min_score if ms is None else float(ms)
        low = getattr(cfg, "low_score", None)
        #: weak boxes (scored from this up to min_score) are kept unless a stronger box holds
        #: them; None when off (or when it is not below min_score)
        self.low_score = (
            float(low)
            if low is not None and self.min_score is not None and float(low) < self.min_score
            else None
        )
        self.prev = np.zeros((0, 4), np.float32)
        #: the boxes of the last few frames: regions to search for a full-refresh detector
        self.recent: collections.deque[np.ndarray] = collections.deque(maxlen=self.RECENT)
        self.frames_gated = 0
        self.recheck = max(1, int(round(self.RECHECK_S * sample_fps)))
        self.since_run = 0
        self.since_full = self.recheck  # the first frame gets a whole-frame pass
        #: frames the detector searched in a window only (:func:`window`)
        self.frames_windowed = 0

    def init_background(self, frames: Sequence[np.ndarray]) -> None:
        """Start the background model from these (BGR) frames; see :class:`MotionModel`."""
        if self.motion is not None:
            self.motion.init_background([self.motion.shrink(f) for f in frames])

    def view_step(self, frame: np.ndarray) -> tuple[str, MotionStep | None]:
        """:meth:`motion_step` after looking for a shot cut or a frozen picture
        (:class:`~toolkit.video.motion.ViewChanges`): ``("cut" | "frozen" | "", step)``.

        At a cut the motion model starts again from this frame (a new view); a frozen frame
        (the previous one repeated) is not fed to it and gets no step.
        """
        change = self.changes.update(frame)
        if change == "frozen":
            return change, None
        if change == "cut" and self.motion is not None:
            self.motion.new_view()
        return change, self.motion_step(frame)

    def motion_step(self, frame: np.ndarray) -> MotionStep | None:
        """Feed one sampled frame to the motion model (None without one).

        It depends on the frames alone, never on detections, so it can run ahead of them: the
        extractor runs it in the decoding thread (:func:`toolkit.video.reader.prefetched`,
        ``pre``) and hands the steps to :meth:`process` in the same order.
        """
        if self.motion is None:
            return None
        ready = self.motion.ready  # before this frame
        moving, fill = self.motion.update(frame)
        return MotionStep(ready, moving, fill, self.motion.global_change,
                          self.motion.shifted, self.motion.restarted)

    def process(
        self, frames: Sequence[np.ndarray], steps: Sequence[MotionStep | None] | None = None
    ) -> list[Detections]:
        """Detections for a batch of consecutive sampled frames.

        ``steps``: each frame's :meth:`motion_step`, already taken (in order, once per frame);
        None: taken here.
        """
        results: list[Detections | None] = [None] * len(frames)
        todo: list[int] = []
        blobs: list[Detections | None] = []
        rois: list[np.ndarray | None] = []
        moves: list[np.ndarray] = []
        if steps is None:
            steps = [self.motion_step(f) for f in frames]

        def run_todo() -> None:
            if todo:
                dets = self.detector.detect([frames[i] for i in todo], blobs, rois)
                for i, det, blob, moving in zip(todo, dets, blobs, moves, strict=True):
                    results[i] = self._finish(det, blob, moving)  # sets self.prev, in order
                for q in (todo, blobs, rois, moves):
                    q.clear()

        for i, (frame, step) in enumerate(zip(frames, steps, strict=True)):
            blob = None
            moving = np.zeros((0, 4), np.float32)
            # a model still warming up reports nothing, which says nothing about motion
            ready = step is not None and step.ready
            gc = False
            if step is not None:
                moving, fill, gc = step.moving, step.fill, step.global_change
                b = moving if gc else group_boxes(moving, grow=0.0, upright=True)
                keep = person_like(b) & ((b[:, 3] - b[:, 1]) >= max(self.min_size, 1))
                keep &= not gc
                keep &= ~inside_larger(b)
                blob = Detections.of(b[keep], group_fill(b[keep], moving, fill), "motion")
            gate_open = (self.gate and self.motion is not None and ready and not len(moving)
                         and self.since_run + 1 < self.recheck)
            if gate_open and todo:
                # whether this frame is skipped depends on the previous frame's boxes: the
                # frames of this batch waiting for the detector go first, so a batch skips
                # exactly the frames one frame at a time would
                run_todo()
            still = gate_open and not len(self.prev)
            self.since_full += 1  # sampled frames since the last whole-frame search
            if still:
                self.frames_gated += 1
                self.since_run += 1
                results[i] = Detections()
                continue
            self.since_run = 0
            roi = None
            if self.detector.full_refresh:
                # one window (x0, y0, x1, y1) for the detector, or None: the whole frame; the
                # whole frame at least every `recheck` sampled frames, and for a frame that
                # only the gate's recheck sends (nothing moves: look everywhere)
                if (self.gate and ready and not gc and not still
                        and self.since_full < self.recheck):
                    w = window(frame.shape[:2], np.concatenate([moving, *self.recent]))
                    roi = None if w is None else np.asarray([w], np.float64)
                if roi is None:
                    self.since_full = 0
                else:
                    self.frames_windowed += 1
            elif self.detector.uses_rois and self.gate and self.motion is not None:
                roi = group_boxes(np.concatenate([moving, self.prev]), grow=0.0, upright=True)
            if self.detector.batch_size > 1 or not self.detector.uses_rois:
                # batched detectors see whole frames; prev boxes are used as soon as known
                todo.append(i)
                blobs.append(blob)
                rois.append(roi)
                moves.append(moving)
                continue
            det = self.detector.detect([frame], [blob], [roi])[0]
            results[i] = self._finish(det, blob, moving)
        run_todo()
        return [r if r is not None else Detections() for r in results]

    def _finish(self, det: Detections, blob: Detections | None, moving: np.ndarray) -> Detections:
        if self.low_score is None:
            det = filter_size(det, self.min_size, self.min_score)
        else:
            det = drop_held_weak(filter_size(det, self.min_size, self.low_score), self.min_score)
            if self.motion is not None and len(det):
                # a weak box must show something that moves: at a weak score the detector
                # also calls still things (a fire hydrant, a post) people, frame after frame
                weak = det.scores < self.min_score
                moves = np.zeros(len(det), bool)
                if len(moving):
                    moves = (overlap_min(det.boxes, moving) >= 0.5).any(axis=1)
                det = det.select(~weak | moves)
        if self.target == "person":
            det = det.select(det.persons())
            det = det.select(~holds_group(det.boxes))
        elif blob is not None and not self.detector.adds_blobs:
            det = add_uncovered(det, filter_size(blob, self.min_size, None), extend=False)
        if len(det) and len(moving):
            hit = (overlap_min(det.boxes, moving) >= 0.5).any(axis=1)
            names = [
                n + "+motion" if h and "motion" not in n else n
                for n, h in zip(det.names, hit, strict=True)
            ]
            det = Detections(det.boxes, det.scores, names, det.classes)
        self.prev = det.boxes.copy()
        self.recent.append(self.prev)
        return det


TARGETS = ("person", "object")


def check_target(target: str, name: str, detector: Detector | None = None) -> None:
    """An :class:`AdtkError` for a target the detector cannot serve."""
    if target not in TARGETS:
        raise AdtkError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    finds = detector.finds_persons if detector is not None else DETECTORS.get(name).finds_persons
    if target == "person" and not finds:
        raise AdtkError(
            f"--detector {name} finds moving blobs, not people: use it with --target object, "
            "or pick a person detector (yolox, hog, auto, torchvision)"
        )


def drop_held_weak(
    det: Detections, strong: float, iou: float = 0.45, inside: float = 0.8
) -> Detections:
    """``det`` without the weak boxes (scored below ``strong``) that a better-scored box holds.

    Held: IoU at least ``iou`` with it, or at least ``inside`` of the weak box inside it, of
    any class. A detector's per-class NMS leaves, beside a walker's confident ``person`` box,
    weak ``skis``, ``horse`` or second ``person`` boxes on the same walker; those are the
    same object twice, not a missed one. Strong boxes are never dropped here (their own
    classes' NMS already ran), so the setting changes nothing for confident detections.
    """
    weak = det.scores < strong
    if not weak.any() or len(det) < 2:
        return det
    order = np.argsort(-det.scores, kind="stable")
    clash = (iou_matrix(det.boxes, det.boxes) >= iou) | (
        inside_share(det.boxes, det.boxes) >= inside
    )
    keep: list[int] = []
    for i in order:
        if weak[i] and keep and clash[i, keep].any():
            continue
        keep.append(int(i))
    return det.select(np.sort(np.asarray(keep, np.int64)))


def holds_group(boxes: np.ndarray, inside: float = 0.8) -> np.ndarray:
    """Mask of boxes that hold two or more other boxes (``inside`` of each one's area)."""
    if len(boxes) < 3:
        return np.zeros(len(boxes), bool)
    ov = overlap_min(boxes, boxes)
    larger = area(boxes)[:, None] > area(boxes)[None, :]
    held = (ov >= inside) & larger
    np.fill_diagonal(held, False)
    return held.sum(axis=1) >= 2
