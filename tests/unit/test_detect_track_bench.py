"""The tracker adapters of benchmarks/detect_track.py on a hand-made case.

Library trackers (supervision <= 0.26, norfair, boxmot, trackers) join when importable; adtk's
own always run. Each must give every box of two steady walkers its own, constant id.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "detect_track.py"


def _bench():
    spec = importlib.util.spec_from_file_location("detect_track_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TRACKERS = _bench().trackers(5.0, 2.0)


@pytest.mark.parametrize("name", list(TRACKERS))
def test_each_tracker_keeps_two_walkers_apart(name):
    update = TRACKERS[name]()
    seen = []
    for k in range(12):
        t = k / 5
        x = 3.0 * k  # 15 px/s: boxes overlap their previous selves heavily
        boxes = np.array([[40 + x, 50, 70 + x, 130], [300 - x, 60, 330 - x, 140]], np.float32)
        # the order of the boxes changes: ids must follow the boxes, not list positions
        order = [0, 1] if k % 2 else [1, 0]
        ids = np.asarray(update(t, boxes[order], np.array([0.9, 0.8])[order]))
        back = np.empty(2, ids.dtype)
        back[order] = ids
        seen.append(back)
    seen = np.array(seen[2:])  # library trackers may hold a new track back for a frame or two
    assert (seen >= 0).all()
    assert len(set(seen[:, 0])) == 1 and len(set(seen[:, 1])) == 1
    assert seen[0, 0] != seen[0, 1]
