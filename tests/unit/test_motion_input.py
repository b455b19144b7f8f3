"""Motion channels as training input: the flip of flow, the channels' order on load."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from toolkit.engine.train import _augment


def test_hflip_mirrors_the_horizontal_flow_too():
    x = torch.zeros((64, 2, 1, 3), dtype=torch.uint8)
    x[:, 0] = torch.tensor([10, 20, 30], dtype=torch.uint8)  # appearance: only mirrored
    x[:, 1] = torch.tensor([128, 138, 255], dtype=torch.uint8)  # u around 128: mirrored, negated
    out = _augment(x.clone(), "hflip", torch.Generator().manual_seed(0), negate=(1,))
    flipped = out[:, 0, 0, 0] == 30
    assert 0 < flipped.sum() < 64
    assert out[flipped, 1, 0].tolist() == [[1, 118, 128]] * int(flipped.sum())
    assert out[~flipped, 1, 0].tolist() == [[128, 138, 255]] * int((~flipped).sum())
    # float batches (already centred): the same rows flip, the channel changes sign
    fo = _augment(x.float() - 128, "hflip", torch.Generator().manual_seed(0), negate=(1,))
    assert fo[flipped, 1, 0].tolist() == [[-127.0, -10.0, 0.0]] * int(flipped.sum())


def test_flow_u_is_channel_2_of_the_loaded_motion_block(tmp_path):
    from toolkit.data.datasets import decode_crops

    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 50  # as written: (u, v, |flow|)
    cv2.imwrite(str(tmp_path / "m.png"), img)
    x = decode_crops([tmp_path / "m.png"], 8)
    assert x[0, :, 0, 0].tolist() == [50, 100, 200]  # read as RGB: (|flow|, v, u)


class _LeftHeavy:
    """A score that depends on which way an image faces: the weighted sum of its first
    channel (weights rising to the right) plus its second channel's first column."""

    def score_samples(self, x, batch_size=1024):
        x = torch.as_tensor(x).to(torch.float64)
        w = torch.arange(1, x.shape[-1] + 1, dtype=torch.float64)
        return ((x[:, 0] * w).sum((1, 2)) + x[:, 1, :, 0].sum(1)).numpy()


def test_tta_hflip_is_the_mean_of_an_image_and_its_mirror():
    from toolkit.engine.score import tta_scores
    from toolkit.engine.train import mirror

    x = torch.randint(0, 256, (5, 2, 3, 4), dtype=torch.uint8)
    before = x.clone()
    m = _LeftHeavy()
    plain = tta_scores(m, x)
    assert np.array_equal(plain, m.score_samples(x))
    both = tta_scores(m, x, batch_size=2, tta="hflip", negate=(1,))  # batches of 2: 3 passes
    mirrored = x.flip(3)
    mirrored[:, 1] = (256 - mirrored[:, 1].to(torch.int16)).clamp(0, 255).to(torch.uint8)
    assert torch.equal(mirror(x, (1,)), mirrored)
    assert np.allclose(both, (plain + m.score_samples(mirrored)) / 2)
    assert not np.allclose(both, plain)
    assert torch.equal(x, before)  # the input is not changed (mirror makes a new batch)


def test_tta_rejects_unknown_kinds():
    import pytest

    from toolkit.engine.score import tta_scores
    from toolkit.errors import AdtkError

    with pytest.raises(AdtkError, match="unknown tta 'vflip'"):
        tta_scores(_LeftHeavy(), torch.zeros((1, 2, 2, 2), dtype=torch.uint8), tta="vflip")
