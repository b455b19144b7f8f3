"""Box arithmetic on ``x0, y0, x1, y1`` arrays (numpy only; OpenCV is imported lazily by
:func:`crop`, the one function that touches pixels).

Boxes are ``float32`` arrays of shape (N, 4) in source-frame pixels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: oversize box factors (the paper's "oversize" experiment): width, height
OVERSIZE = (2.5, 1.5)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M)."""
    inter = _inter(a, b)
    area_a = area(a)[:, None]
    area_b = area(b)[None, :]
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def overlap_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller box's area (1.0 when one box holds the other)."""
    inter = _inter(a, b)
    small = np.minimum(area(a)[:, None], area(b)[None, :])
    return np.where(small > 0, inter / np.maximum(small, 1e-9), 0.0)


def inside_share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise share of each box of ``a`` (N, 4) that lies inside each box of ``b`` (M, 4)."""
    inter = _inter(a, b)
    area_a = area(a)[:, None]
    return np.where(area_a > 0, inter / np.maximum(area_a, 1e-9), 0.0)


def area(b: np.ndarray) -> np.ndarray:
    """Areas (N,) of boxes (N, 4); inverted boxes count 0."""
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _inter(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return w * h


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4, contain: float = 0.8
) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    Besides the IoU rule, of two boxes one of which lies mostly (``contain`` of the smaller
    box's area) inside the other, only the better-scored is kept, whichever is larger: HOG
    often reports a person's torso inside the whole person, which would otherwise become a
    second track (the ``auto`` detector later grows a kept torso box to its moving body).
    ``contain`` above 1 turns that rule off (plain IoU NMS).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(boxes) < 2:
        return order.astype(np.int64)
    # one pairwise pass, then the greedy walk reads it (a box is checked against kept ones)
    clash = iou_matrix(boxes, boxes) > iou
    if contain <= 1.0:
        clash |= overlap_min(boxes, boxes) > contain
    keep: list[int] = []
    for i in order:
        if keep and clash[i, keep].any():
            continue
        keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)



def inside_larger(boxes: np.ndarray, frac: float = 0.6) -> np.ndarray:
    """Mask of boxes lying mostly inside a larger box (mask fragments of one body)."""
    if len(boxes) < 2:
        return np.zeros(len(boxes), bool)
    ov = overlap_min(boxes, boxes)
    sizes = area(boxes)
    larger = sizes[None, :] > sizes[:, None]
    return ((ov >= frac) & larger).any(axis=1)


def person_like(boxes: np.ndarray, min_aspect: float = 0.5, max_aspect: float = 6.0) -> np.ndarray:
    """Mask of boxes whose height / width ratio could be a person (or a person on a bike)."""
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    h = boxes[:, 3] - boxes[:, 1]
    ratio = h / w
    return (ratio >= min_aspect) & (ratio <= max_aspect)


def oversize_box(box: Iterable[float], fw: float = OVERSIZE[0], fh: float = OVERSIZE[1]):
    """The box scaled by ``fw`` in width and ``fh`` in height around the same centre."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * fw, (y1 - y0) * fh
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def crop(frame: np.ndarray, box: Iterable[float], size: int = 64) -> np.ndarray:
    """The region ``box`` (x0, y0, x1, y1) of ``frame`` resized to ``size`` x ``size``.

    Parts of the box outside the frame are padded with black rather than clipped, so the crop
    always shows the box's full extent at the same scale, even at the frame's borders.
    """
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    a0, b0 = int(np.floor(x0)), int(np.floor(y0))
    a1, b1 = max(a0 + 1, int(np.ceil(x1))), max(b0 + 1, int(np.ceil(y1)))
    H, W = frame.shape[:2]
    c0, d0, c1, d1 = max(a0, 0), max(b0, 0), min(a1, W), min(b1, H)
    if c0 >= c1 or d0 >= d1:
        region = np.zeros((b1 - b0, a1 - a0) + frame.shape[2:], frame.dtype)
    else:
        region = cv2.copyMakeBorder(
            frame[d0:d1, c0:c1],
            d0 - b0,
            b1 - d1,
            c0 - a0,
            a1 - c1,
            cv2.BORDER_CONSTANT,
            value=0,
        )
    shrink = region.shape[0] >= size and region.shape[1] >= size
    return cv2.resize(
        region, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
