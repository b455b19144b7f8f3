"""One video through ``extract_video`` in-process: what is committed and what is not."""

from __future__ import annotations

import cv2
import pytest

from toolkit.config import ExtractConfig
from toolkit.errors import AdtkError
from toolkit.video.extract import extract_video
from toolkit.video.synthetic import make_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("v") / "cam.avi", seconds=3, walkers=1)


def test_a_crop_that_cannot_be_written_fails_the_video_and_commits_nothing(
    clip, tmp_path, monkeypatch
):
    monkeypatch.setattr(cv2, "imwrite", lambda *a, **k: False)  # e.g. the disk is full
    with pytest.raises(AdtkError, match="could not write crop"):
        extract_video(clip, "cam.avi", tmp_path, ExtractConfig(detector="motion"))
    assert not (tmp_path / "videos").exists()
    assert not any((tmp_path / ".staging").iterdir())
