"""YOLOX (Megvii, Apache-2.0) object detection with onnxruntime: pre-processing, decoding, NMS.

The package ships YOLOX-Nano trained on COCO (``models/yolox_nano.onnx``, see
``models/README.md`` for its licence and origin); any other YOLOX ONNX export with the same
head (``[B, N, 5 + classes]`` over the strides 8, 16, 32) loads the same way.

Pre-processing (as in YOLOX's own demo): the BGR frame is resized by one ratio ``r`` and
placed at the top-left of a canvas filled with 114, float32 0-255, NCHW. The exported graph
declares a fixed 1 x 3 x 416 x 416 input, but it is fully convolutional: at load time the
input and output dimensions are made free and the head's ``Reshape`` to ``[1, C, -1]`` keeps
the batch dimension instead, so one session runs batches at any multiple of 32. The canvas
is then fitted to the video's aspect ratio (long side ``input_size``): a 16:9 frame costs a
640 x 384 pass, not 640 x 640.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import AdtkError
from toolkit.video.geometry import nms

#: the model shipped inside the package (YOLOX-Nano, COCO)
BUNDLED = Path(__file__).with_name("models") / "yolox_nano.onnx"
STRIDES = (8, 16, 32)
#: COCO's 80 class names in the order of YOLOX's outputs (class 0 = person)
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


def canvas_size(frame_hw: tuple[int, int], input_size: int) -> tuple[int, int]:
    """Network input (H, W), multiples of 32, long side ``input_size``, the frame's aspect."""
    h, w = frame_hw
    r = input_size / max(h, w)
    return (
        max(32, int(math.ceil(h * r / 32)) * 32),
        max(32, int(math.ceil(w * r / 32)) * 32),
    )


def letterbox(
    frames: Sequence[np.ndarray], hw: tuple[int, int], r: float | None = None
) -> tuple[np.ndarray, float]:
    """Frames (same size) -> ``(batch (B, 3, H, W) float32 0-255, r)``, each resized by ``r``
    (default: the largest that fits) to the top-left of an ``hw`` canvas filled with 114."""
    import cv2

    H, W = hw
    h, w = frames[0].shape[:2]
    r = min(H / h, W / w) if r is None else float(r)
    nh, nw = min(H, max(1, int(round(h * r)))), min(W, max(1, int(round(w * r))))
    # pad in uint8, then one conversion: cheaper than filling and writing a float canvas
    out = np.empty((len(frames), 3, H, W), np.float32)
    for i, f in enumerate(frames):
        img = f if (nh, nw) == (h, w) else cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        img = cv2.copyMakeBorder(
            img, 0, H - nh, 0, W - nw, cv2.BORDER_CONSTANT, value=(114, 114, 114)
        )
        out[i] = img.transpose(2, 0, 1)
    return out, r


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N, 2) and strides (N, 1) of the head's outputs for an (H, W) input."""
    if hw not in _GRIDS:
        cells, strides = [], []
        for s in STRIDES:
            gh, gw = hw[0] // s, hw[1] // s
            ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
            cells.append(np.stack([xs, ys], -1).reshape(-1, 2))
            strides.append(np.full((gh * gw, 1), s))
        _GRIDS[hw] = (
            np.concatenate(cells).astype(np.float32),
            np.concatenate(strides).astype(np.float32),
        )
    return _GRIDS[hw]


def decode(raw: np.ndarray, hw: tuple[int, int], rows: np.ndarray | None = None) -> np.ndarray:
    """Raw head output (N, 5 + C) of one image -> ``x0, y0, x1, y1, objectness, classes...``
    in canvas pixels (the scores are already sigmoided by the exported graph).

    With ``rows`` (indices into the N cells), only those cells are decoded.
    """
    cells, strides = _grid(hw)
    if len(raw) != len(cells):
        raise AdtkError(
            f"YOLOX output has {len(raw)} cells, expected {len(cells)} for a {hw[1]}x{hw[0]} "
            "input (strides 8, 16, 32): not a YOLOX export?"
        )
    if rows is not None:
        raw, cells, strides = raw[rows], cells[rows], strides[rows]
    xy = (raw[:, :2] + cells) * strides
    wh = np.exp(np.minimum(raw[:, 2:4], 20.0)) * strides
    out = np.empty_like(raw)
    out[:, :2] = xy - wh / 2
    out[:, 2:4] = xy + wh / 2
    out[:, 4:] = raw[:, 4:]
    return out


def detect_raw(
    raw: np.ndarray,
    hw: tuple[int, int],
    r: float,
    score: float,
    classes: Sequence[int] | None = (0,),
    iou: float = 0.45,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`postprocess` of :func:`decode`, decoding only the cells that can pass ``score``
    (objectness alone bounds the product): most of a frame's thousands of cells are empty."""
    rows = np.flatnonzero(raw[:, 4] >= score)
    return postprocess(decode(raw, hw, rows), r, score, classes, iou)


def postprocess(
    dec: np.ndarray,
    r: float,
    score: float,
    classes: Sequence[int] | None = (0,),
    iou: float = 0.45,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoded rows of one image -> ``(boxes (K, 4) in frame pixels, scores (K,), class ids)``.

    Each cell votes for its best class among ``classes`` (None: all); score = objectness x
    class score; cells below ``score`` go; then NMS per class at ``iou``.
    """
    cls_scores = dec[:, 5:] if classes is None else dec[:, 5:][:, list(classes)]
    best = cls_scores.argmax(1)
    conf = dec[:, 4] * cls_scores[np.arange(len(dec)), best]
    keep = conf >= score
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    boxes = dec[keep, :4] / r
    conf, best = conf[keep], best[keep]
    cls_ids = best if classes is None else np.asarray(classes)[best]
    out = []
    for c in np.unique(cls_ids):
        idx = np.flatnonzero(cls_ids == c)
        out.append(idx[nms(boxes[idx], conf[idx], iou=iou, contain=1.01)])
    sel = np.concatenate(out)
    sel = sel[np.argsort(-conf[sel], kind="stable")]
    return (
        boxes[sel].astype(np.float32),
        conf[sel].astype(np.float32),
        cls_ids[sel].astype(np.int64),
    )


@dataclass
class _Model:
    session: object
    input_name: str
    fixed_hw: tuple[int, int] | None  # the graph's own input size when it could not be freed
    batched: bool


#: bump when :func:`_free_dims` changes what it writes (cached copies carry it in their name)
_FREE_DIMS_VERSION = "v1"


def _free_dims(data: bytes) -> tuple[bytes, bool]:
    """The model with free input/output dims and a batch-keeping head, or the original bytes
    (and False) when the graph is not the shape this expects."""
    import onnx  # a dependency; an ImportError is the caller's to report
    from onnx import numpy_helper

    m = onnx.load_from_string(data)
    if len(m.graph.input) != 1 or len(m.graph.output) != 1:
        return data, False
    shapes = {
        n.input[1] for n in m.graph.node if n.op_type == "Reshape" and len(n.input) > 1
    }
    inits = {i.name: i for i in m.graph.initializer}
    for name in shapes:
        if name not in inits:
            return data, False  # a computed shape: leave the graph alone
        arr = numpy_helper.to_array(inits[name])
        if arr.ndim == 1 and len(arr) == 3 and arr[0] == 1:
            arr = arr.copy()
            arr[0] = 0  # 0 = copy the input's dim: the batch
            inits[name].CopyFrom(numpy_helper.from_array(arr, name))
    for vi, dims in ((m.graph.input[0], ("batch", None, "height", "width")),
                     (m.graph.output[0], ("batch", "cells", None))):
        for d, sym in zip(vi.type.tensor_type.shape.dim, dims, strict=False):
            if sym is not None:
                d.ClearField("dim_value")
                d.dim_param = sym
    return m.SerializeToString(), True


def cache_dir() -> Path:
    """Where adtk keeps files it can rebuild: ``$ADTK_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/adtk``, else ``~/.cache/adtk``."""
    env = os.environ.get("ADTK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "adtk"


def _freed(data: bytes) -> tuple[bytes, bool]:
    """:func:`_free_dims` of ``data``, kept on disk by the model's SHA-256.

    Freeing the dims needs the ``onnx`` package, whose import alone took 0.6-0.7 s (of an
    8 s extraction of a 139 s clip), in every worker process; the cached copy is one file
    read. The cache is best effort: a folder that cannot be written only costs that time.
    """
    import tempfile

    free, fixed = _cached_paths(data)
    folder = free.parent
    try:
        if free.is_file():
            return free.read_bytes(), True
        if fixed.is_file():
            return data, False
    except OSError:
        pass
    try:
        out, ok = _free_dims(data)
    except ImportError:  # pragma: no cover - onnx is a dependency: fixed dims, not cached
        return data, False
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        dest = free if ok else fixed
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(out if ok else b"")
        os.replace(tmp, dest)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return out, ok


def _cached_paths(data: bytes) -> tuple[Path, Path]:
    """Where the freed graph of ``data`` is cached, and the marker of a graph that cannot be
    freed; named by the model's SHA-256 and the version of :func:`_free_dims`, so an old
    copy is never served."""
    import hashlib

    key = f"{hashlib.sha256(data).hexdigest()[:24]}.{_FREE_DIMS_VERSION}"
    folder = cache_dir() / "onnx"
    return folder / f"{key}.free.onnx", folder / f"{key}.fixed"


def _drop_cached(data: bytes) -> None:
    """Remove the cached freed graph of ``data`` (one onnxruntime could not load)."""
    with contextlib.suppress(OSError):
        _cached_paths(data)[0].unlink()


def load(path: str | os.PathLike | None = None, threads: int = 0, device: str = "cpu") -> _Model:
    """An onnxruntime session for a YOLOX ONNX file (the bundled YOLOX-Nano by default).

    Sessions hold no per-video state: a worker process builds one per file and settings and
    reuses it for every video it is given.
    """
    p = Path(path) if path else BUNDLED
    if not p.is_file():
        raise AdtkError(f"{p}: YOLOX model file not found")
    st = p.stat()
    return _load(str(p.resolve()), st.st_size, st.st_mtime_ns, int(threads), device)


@functools.lru_cache(maxsize=4)
def _load(path: str, size: int, mtime_ns: int, threads: int, device: str) -> _Model:
    import onnxruntime as ort

    p = Path(path)
    data = p.read_bytes()
    try:
        freed, ok = _freed(data)
    except Exception:  # noqa: BLE001 - not a parseable ONNX: onnxruntime says why below
        freed, ok = data, False
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(0, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # onnxruntime's pool threads sleep between its parallel sections instead of spinning, so
    # the threads beside detection (decoding and the motion model, crop writing) get the
    # cores in those gaps. Measured on 2 cores, PETS09-S2L1 every frame, three rounds
    # alternating: spinning 28.0 frames/s (26.9-29.1), sleeping with crops written in the
    # detection thread 24.9 (24.7-25.1), sleeping with the crop-writing thread 30.6
    # (28.8-32.4); with the crop-writing thread and spinning, 21.1-21.8 (a third busy thread
    # on 2 cores stalls the spinning pool's sections).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        sess = ort.InferenceSession(freed, opts, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        if ok:
            _drop_cached(data)  # a damaged cached copy is rebuilt next time
            try:
                sess, ok = ort.InferenceSession(data, opts, providers=providers), False
            except Exception:  # noqa: BLE001
                sess = None
        else:
            sess = None
        if sess is None:
            msg = str(e).splitlines()[0][:200]
            raise AdtkError(f"{p}: not a YOLOX ONNX model onnxruntime can run ({msg})") from None
    inp = sess.get_inputs()[0]
    shape = inp.shape
    if len(shape) != 4:
        raise AdtkError(f"{p}: expected one image input (B, 3, H, W), got {shape}")
    fixed = None
    if not ok and all(isinstance(d, int) for d in shape[2:]):
        fixed = (int(shape[2]), int(shape[3]))
    batched = ok or not isinstance(shape[0], int)
    return _Model(sess, inp.name, fixed, batched)


class Yolox:
    """A YOLOX model: frames in, ``(boxes, scores, class ids)`` per frame out."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        input_size: int = 640,
        threads: int = 0,
        device: str = "cpu",
        batch: int = 8,
    ):
        if input_size < 32 or input_size % 32:
            raise AdtkError(f"yolox_size {input_size}: must be a multiple of 32 (>= 32)")
        self.model = load(path, threads, device)
        self.input_size = int(input_size)
        self.batch = max(1, int(batch)) if self.model.batched else 1
        self.on_gpu = "CUDAExecutionProvider" in self.model.session.get_providers()

    def input_hw(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """The network input (H, W) used for frames of this size."""
        return self.model.fixed_hw or canvas_size(frame_hw, self.input_size)

    def raw(self, frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float, tuple]:
        """Decoded head outputs (one (N, 5 + C) array per frame), the resize ratio, the input."""
        hw = self.input_hw(frames[0].shape[:2])
        out: list[np.ndarray] = []
        r = 1.0
        for i in range(0, len(frames), self.batch):
            x, r = letterbox(frames[i : i + self.batch], hw)
            y = self.model.session.run(None, {self.model.input_name: x})[0]
            out += [decode(y[k], hw) for k in range(len(y))]
        return out, r, hw

    def __call__(
        self,
        frames: Sequence[np.ndarray],
        score: float,
        classes: Sequence[int] | None = (0,),
        iou: float = 0.45,
        windows: Sequence[tuple[int, int, int, int] | None] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per frame ``(boxes (K, 4) x0 y0 x1 y1 in frame pixels, scores (K,), class ids)``.

        ``windows``: per frame, None (the whole frame) or the part ``(x0, y0, x1, y1)`` to
        search. A window is seen at the whole frame's scale on a canvas of its own size (a
        multiple of 32), so a person looks the same to the network either way and the pass
        costs the window's share of the frame. Windows need a model with free input dims.
        """
        if not len(frames):
            return []
        if windows is not None and self.model.fixed_hw is None and any(
            w is not None for w in windows
        ):
            return [self._windowed(f, w, score, classes, iou)
                    for f, w in zip(frames, windows, strict=True)]
        hw = self.input_hw(frames[0].shape[:2])
        out = []
        for i in range(0, len(frames), self.batch):
            x, r = letterbox(frames[i : i + self.batch], hw)
            y = self.model.session.run(None, {self.model.input_name: x})[0]
            out += [detect_raw(y[k], hw, r, score, classes, iou) for k in range(len(y))]
        return out

    def _windowed(
        self,
        frame: np.ndarray,
        window: tuple[int, int, int, int] | None,
        score: float,
        classes: Sequence[int] | None,
        iou: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame, searched in ``window`` only (None: the whole frame)."""
        if window is None:
            return self([frame], score, classes, iou)[0]
        full = self.input_hw(frame.shape[:2])
        r = min(full[0] / frame.shape[0], full[1] / frame.shape[1])
        x0, y0, x1, y1 = (int(v) for v in window)
        sub = frame[y0:y1, x0:x1]
        h, w = sub.shape[:2]
        hw = (min(full[0], max(32, math.ceil(h * r / 32) * 32)),
              min(full[1], max(32, math.ceil(w * r / 32) * 32)))
        x, r = letterbox([sub], hw, r)
        y = self.model.session.run(None, {self.model.input_name: x})[0]
        boxes, scores, cls = detect_raw(y[0], hw, r, score, classes, iou)
        boxes[:, [0, 2]] += x0
        boxes[:, [1, 3]] += y0
        # A box that reaches an edge of the window inside the frame is someone the window
        # cuts: a part of a person, not a person. The whole-frame passes find them whole.
        H, W = frame.shape[:2]
        tol = max(2.0, 2.0 / r)  # two network pixels, in frame pixels
        cut = np.zeros(len(boxes), bool)
        if x0 > 0:
            cut |= boxes[:, 0] <= x0 + tol
        if y0 > 0:
            cut |= boxes[:, 1] <= y0 + tol
        if x1 < W:
            cut |= boxes[:, 2] >= x1 - tol
        if y1 < H:
            cut |= boxes[:, 3] >= y1 - tol
        return boxes[~cut], scores[~cut], cls[~cut]
