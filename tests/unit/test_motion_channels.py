"""Motion channels on a tiny synthetic video: one object moves, one stands still."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from toolkit.video.channels import FLOW_GAIN, motion_crop, motion_field, write_motion_crops
from toolkit.video.extract import oversize_box

W, H, N = 160, 96, 12
STEP = 3  # pixels per frame of the moving object


def _frame(i: int) -> np.ndarray:
    rng = np.random.default_rng(0)  # the same textured background in every frame
    f = rng.integers(90, 160, (H, W), dtype=np.uint8)
    f = cv2.GaussianBlur(f, (5, 5), 0)
    f[30:70, 100:120] = 40  # standing still
    f[30:70, 10 + STEP * i : 30 + STEP * i] = 220  # moving right
    f[45:50, 15 + STEP * i : 25 + STEP * i] = 90  # a stripe: texture for the flow
    return cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "two.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(N):
        w.write(_frame(i))
    w.release()
    return path


def _rows(frame: int) -> pd.DataFrame:
    x = 10 + STEP * frame
    return pd.DataFrame(
        {
            "name": [f"{frame:08d}_00.png", f"{frame:08d}_01.png"],
            "frame_idx": [frame, frame],
            "x": [x - 4, 96],
            "y": [26, 26],
            "w": [28, 28],
            "h": [48, 48],
        }
    )


@pytest.mark.parametrize("kind", ["flow", "diff"])
def test_the_moving_object_has_motion_and_the_still_one_has_none(video, tmp_path, kind):
    rows = pd.concat([_rows(0), _rows(5), _rows(N - 1)], ignore_index=True)
    out = tmp_path / "crops"
    out.mkdir()
    write_motion_crops(video, rows, out, kind, 32, oversize_box)
    for f in (0, 5, N - 1):  # first, middle and last frame: neighbours at the ends too
        moving = cv2.imread(str(out / "motion" / f"{f:08d}_00.png"))
        still = cv2.imread(str(out / "motion" / f"{f:08d}_01.png"))
        assert moving.shape == still.shape == (32, 32, 3)
        assert (out / "motion_oversize" / f"{f:08d}_00.png").is_file()
        # channels as written: flow (u, v, |flow|), diff (back, forward, |t+1 - t-1|)
        energy = lambda img: np.abs(img[..., :2].astype(float) - 128).mean()  # noqa: E731
        if f < N - 1 or kind == "diff":  # the last frame has no next frame: no flow there
            assert energy(moving) > 5 * max(energy(still), 0.5), (f, kind)
        assert energy(still) < 2.0
    if kind == "flow":
        # the moving object goes right: u > 128, in frame heights per second (3 px per frame
        # at 10 fps in a 96 px high frame), whatever the box's size
        u = cv2.imread(str(out / "motion" / "00000005_00.png"))[8:24, 8:24, 0].astype(float)
        expect = 128 + FLOW_GAIN * STEP * 10 / H
        assert abs(np.median(u) - expect) < 0.35 * (expect - 128)


def test_motion_crop_pads_outside_the_frame_like_the_crop():
    field = np.ones((20, 20, 3), np.float32) * 2.0  # 2 px per frame to the right and down
    c = motion_crop(field, (-10, 0, 10, 20), 16, "flow", speed=0.1)  # e.g. 10 fps, 100 px high
    assert c.shape == (16, 16, 3)
    assert (c[:, :7, 0] == 128).all()  # outside the frame: no motion
    assert abs(int(c[5, 12, 0]) - (128 + FLOW_GAIN * 2 * 0.1)) <= 1  # 0.2 heights per second
    big = motion_crop(field, (0, 0, 20, 20), 8, "flow", speed=0.1)  # the box's size: no matter
    assert abs(int(big[4, 4, 0]) - int(c[5, 12, 0])) <= 1
    d = motion_field(*(np.zeros((8, 8), np.uint8),) * 3, "diff")
    assert d.shape == (8, 8, 3) and (d[..., 0] == 128).all() and (d[..., 2] == 0).all()


def test_a_motion_crop_that_cannot_be_written_is_an_error(video, tmp_path, monkeypatch):
    import errno
    import os

    from toolkit.errors import AdtkError
    from toolkit.video import writer

    def full_disk(path, img):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, "save_png", full_disk)
    out = tmp_path / "crops"
    out.mkdir()
    with pytest.raises(AdtkError, match=r"two.avi: could not write motion crop "
                                        r"motion/00000005_00.png \(No space left on device"):
        write_motion_crops(video, _rows(5), out, "diff", 32, oversize_box)
