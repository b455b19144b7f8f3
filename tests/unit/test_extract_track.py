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


def _crossing(seed: int, window: float, fps: float = 25.0) -> bool:
    """Two walkers cross at 20 px/s, seen at ``fps`` with 2 px of box jitter; kept apart?"""
    rng = np.random.default_rng(seed)
    tr = IouTracker(max_gap=1.0, window=window)
    a_ids, b_ids = set(), set()
    for k in range(int(4 * fps)):
        t = k / fps
        a = np.array([60 + 20 * t, 50, 80 + 20 * t, 100]) + rng.normal(0, 2, 4)
        b = np.array([140 - 20 * t, 62, 160 - 20 * t, 112]) + rng.normal(0, 2, 4)
        ids = tr.update(t, np.array([a, b], np.float32))
        a_ids.add(int(ids[0]))
        b_ids.add(int(ids[1]))
    return len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids


def test_crossing_walkers_at_a_high_frame_rate_keep_their_ids():
    # at 25 frames/s a walker's step between frames (0.8 px) is smaller than the box jitter:
    # a velocity fitted over 1 s follows the walk, the last step's velocity follows the noise
    assert sum(_crossing(seed, window=1.0) for seed in range(20)) == 20
    assert sum(_crossing(seed, window=0.0) for seed in range(20)) < 18


def test_a_track_missed_for_longer_than_the_window_continues_along_its_path():
    tr = IouTracker(max_gap=2.0, window=1.0)
    for k in range(6):  # 30 px/s, seen at 5 frames/s for 1 s
        x = 30 * k / 5
        assert tr.update(k / 5, _b([x, 0, x + 20, 50]))[0] == 0
    # unseen for 1.4 s: it moved 42 px, twice its width and 0.84 of its height, beyond
    # max_jump of where it was last seen, but on the straight line of its path
    x = 30 + 42
    assert tr.update(2.4, _b([x, 0, x + 20, 50]))[0] == 0
    still = IouTracker(max_gap=2.0, window=1.0, predict=False)
    for k in range(6):
        still.update(k / 5, _b([30 * k / 5, 0, 30 * k / 5 + 20, 50]))
    assert still.update(2.4, _b([x, 0, x + 20, 50]))[0] == 1


def test_weak_boxes_only_continue_tracks():
    tr = IouTracker(max_gap=1.0, high=0.6)
    ids = tr.update(0.0, _b([0, 0, 20, 50], [100, 0, 120, 50]), np.array([0.9, 0.3]))
    assert ids.tolist() == [0, -1]  # a weak box starts no track
    # the person's score drops (partly hidden): the weak box continues its track; a strong
    # box that overlaps it less goes to a new track, not to the existing one
    ids = tr.update(0.2, _b([1, 0, 21, 50], [200, 0, 220, 50]), np.array([0.3, 0.8]))
    assert ids.tolist() == [0, 1]
    # strong boxes are matched first: a strong and a weak box on the same track -> strong wins
    ids = tr.update(0.4, _b([2, 0, 22, 50], [3, 1, 23, 51]), np.array([0.4, 0.7]))
    assert ids.tolist() == [-1, 0]


def test_colours_tell_two_overlapping_people_apart_where_overlap_alone_swaps_them():
    from toolkit.video.sequences import appearance

    # two people side by side, one in red, one in blue, on a grey frame
    frame = np.full((60, 60, 3), 128, np.uint8)
    frame[:, :20] = (0, 0, 255)  # red (BGR) at x 0-20
    frame[:, 30:50] = (255, 0, 0)  # blue at x 30-50
    red, blue = appearance(frame, np.float32([[0, 0, 20, 40], [30, 0, 50, 40]]))
    assert abs(red.sum() - 1.0) < 1e-6 and np.minimum(red, blue).sum() < 0.01
    assert np.minimum(red, red).sum() > 0.99
    # a box reaching above the frame: its upper half is outside, so it has no colours
    half_out = appearance(frame, np.float32([[0, -60, 20, 40]]))[0]
    assert half_out[:64].sum() == 0 and abs(half_out[64:].sum() - 0.5) < 1e-6
    # next frame: they have stepped past each other by a little; by overlap alone, the box
    # nearer each one's last place is the other person
    a, b = np.float32([0, 0, 20, 40]), np.float32([10, 0, 30, 40])
    b1, b2 = np.float32([4, 0, 24, 40]), np.float32([6, 0, 26, 40])  # b1 is blue, b2 red
    for weight, expect in ((0.0, [0, 1]), (1.0, [1, 0])):
        tr = IouTracker(appearance=weight, predict=False)
        ids0 = tr.update(0.0, np.stack([a, b]), feats=np.stack([red, blue]))
        assert ids0.tolist() == [0, 1]
        ids1 = tr.update(0.5, np.stack([b1, b2]), feats=np.stack([blue, red]))
        assert ids1.tolist() == expect, weight
