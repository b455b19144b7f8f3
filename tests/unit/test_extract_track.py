"""The IoU tracker on hand-made box sequences."""

import numpy as np

from toolkit.video.track import IouTracker, track_boxes


def _b(*rows):
    return np.array(rows, np.float32).reshape(-1, 4)


def test_two_people_walking_keep_their_ids():
    frames = [
        (t * 0.5, _b([10 + 4 * t, 0, 30 + 4 * t, 50], [200 - 4 * t, 0, 220 - 4 * t, 50]))
        for t in range(6)
    ]
    ids = track_boxes(frames)
    assert all(list(i) == [0, 1] for i in ids)


def test_crossing_people_are_not_swapped():
    # A walks right, B walks left, on different rows; they cross at x ~ 100. Boxes arrive in
    # varying order; optimal assignment must follow each person, not the list position.
    frames = []
    for t in range(10):
        a = [40 + 12 * t, 0, 60 + 12 * t, 60]
        b = [160 - 12 * t, 20, 180 - 12 * t, 80]
        frames.append((t * 0.5, _b(a, b) if t % 2 else _b(b, a)))
    ids = track_boxes(frames)
    a_ids = {int(i[0] if t % 2 else i[1]) for t, i in enumerate(ids)}
    b_ids = {int(i[1] if t % 2 else i[0]) for t, i in enumerate(ids)}
    assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids


def test_gap_within_max_gap_continues_longer_gap_starts_new_track():
    tr = IouTracker(max_gap=2.0)
    box = _b([0, 0, 20, 40])
    assert tr.update(0.0, box)[0] == 0
    assert len(tr.update(0.5, _b())) == 0
    assert tr.update(2.0, box)[0] == 0  # unseen 1.5 s <= 2 s: same person
    assert tr.update(5.0, box)[0] == 1  # unseen 3 s: a new track
    assert tr.lengths == {0: 2, 1: 1}


def test_new_person_gets_new_id_and_far_boxes_do_not_match():
    tr = IouTracker(max_gap=2.0)
    tr.update(0.0, _b([0, 0, 20, 40]))
    ids = tr.update(0.5, _b([2, 0, 22, 40], [300, 0, 320, 40]))
    assert ids.tolist() == [0, 1]
    # a jump of several heights is a different object, not the same track
    assert tr.update(1.0, _b([600, 0, 620, 40]))[0] == 2


def test_fast_mover_without_overlap_continues_by_centre_distance():
    # a cyclist 20 px wide moves 25 px per sample: IoU 0, but within max_jump heights
    frames = [(t * 0.5, _b([25 * t, 0, 25 * t + 20, 40])) for t in range(5)]
    assert {int(i[0]) for i in track_boxes(frames)} == {0}
