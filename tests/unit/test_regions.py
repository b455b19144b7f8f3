"""Object-level labels from region boxes, and the recall of anomalous regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import AdtkError
from toolkit.video.labels import (
    check_regions_inside,
    label_crops,
    match_labels,
    match_regions,
    read_labels,
    read_regions,
    recall_table,
    recall_text,
    region_hits,
)
from toolkit.video.reader import sampled_indices

HEADER = "video,frame_idx,time_s,x,y,w,h,area_px\n"


def _regions(tmp_path, rows: str, header: str = HEADER):
    p = tmp_path / "regions.csv"
    p.write_text(header + rows)
    return p


def _crops(boxes, frame=10, t=1.0):
    """Crop rows of one video (x, y, w, h per box) in one frame."""
    b = np.asarray(boxes)
    return pd.DataFrame(
        {
            "video": "a.mp4",
            "frame_idx": frame,
            "time_s": t,
            "x": b[:, 0],
            "y": b[:, 1],
            "w": b[:, 2],
            "h": b[:, 3],
        }
    )


def test_region_to_crop_labelling_on_hand_made_boxes(tmp_path):
    # one anomalous object, the box x 100..140, y 50..110 (40 x 60), in frame 10
    reg = read_regions(_regions(tmp_path, "a.mp4,10,1.0,100,50,40,60,1800\n"))
    crops = _crops(
        [
            (100, 50, 40, 60),  # the region itself: IoU 1
            (108, 60, 24, 40),  # inside: IoU 0.4
            (112, 55, 16, 30),  # inside, small (a rider cut from his bike): IoU 0.2, 100 % in
            (120, 50, 40, 60),  # partial, half the box: IoU 1/3
            (130, 50, 40, 60),  # partial, a quarter: IoU 1/7 and 25 % inside
            (141, 50, 40, 60),  # beside: touches nothing
            (90, 45, 70, 70),  # a larger box holding the object and a bit more: IoU 0.49
            (40, 30, 160, 100),  # a crowd's box, the object a small part of it: IoU 0.15
        ]
    )
    hits = [True, True, True, True, False, False, True, False]
    assert region_hits(crops, reg).tolist() == hits
    # a crop in another frame never matches this frame's regions
    assert region_hits(_crops([(100, 50, 40, 60)], frame=11), reg).tolist() == [False]
    assert region_hits(crops, None).tolist() == [False] * 8


def test_label_crops_keeps_the_interval_label_beside_the_region_label(tmp_path):
    reg = read_regions(_regions(tmp_path, "a.mp4,10,1.0,100,50,40,60,1800\n"))
    lab = tmp_path / "labels.csv"
    lab.write_text("video,start_s,end_s,label,event\na.mp4,0,0.5,normal,\na.mp4,0.5,2,abnormal,bike\n")
    intervals = read_labels(lab)
    crops = pd.concat(
        [
            _crops([(100, 50, 40, 60), (141, 50, 40, 60)]),  # the biker, the walker beside
            _crops([(10, 10, 20, 40)], frame=2, t=0.2),  # a walker in a normal second
        ],
        ignore_index=True,
    )
    out = label_crops(crops, intervals, None, reg)
    assert out["label"].tolist() == ["abnormal", "normal", "normal"]
    assert out["label_interval"].tolist() == ["abnormal", "abnormal", "normal"]
    assert out["label_source"].tolist() == ["region"] * 3
    assert out["event"].tolist() == ["bike", None, None]  # the event comes from the interval
    # without regions: the interval label, and where it came from
    plain = label_crops(crops, intervals, "normal", None)
    assert plain["label"].tolist() == ["abnormal", "abnormal", "normal"]
    assert plain["label_source"].tolist() == ["interval"] * 3
    assert label_crops(crops, None, "normal")["label_source"].tolist() == ["folder"] * 3
    assert label_crops(crops, None, None)["label_source"].tolist() == ["none"] * 3


def test_recall_figure_per_event_and_for_large_regions(tmp_path):
    reg = read_regions(
        _regions(
            tmp_path,
            "a.mp4,10,1.0,100,50,40,60,1800\n"  # covered by the crop below
            "a.mp4,10,1.0,200,50,10,20,150\n"  # small (150 px), missed
            "a.mp4,12,1.2,100,50,40,60,1800\n"  # no crop in frame 12: missed
            "a.mp4,13,1.3,100,50,40,60,1800\n"  # frame 13 not sampled: not counted
            "b.mp4,5,0.5,0,0,20,20,400\n",  # covered in video b (another event)
        )
    )
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")
    per, outside = match_regions(reg, tmp_path, ["a.mp4", "b.mp4"], tmp_path / "regions.csv")
    assert outside == 0 and sorted(per) == ["a.mp4", "b.mp4"]
    crops = pd.concat(
        [
            _crops([(102, 52, 38, 58), (205, 50, 30, 60)]),
            _crops([(150, 50, 40, 60)], frame=12),  # beside the frame-12 region
            _crops([(1, 1, 20, 20)], frame=5).assign(video="b.mp4"),
        ],
        ignore_index=True,
    )
    lab = tmp_path / "labels.csv"
    lab.write_text("video,start_s,end_s,label,event\na.mp4,0,9,abnormal,bike\nb.mp4,0,9,abnormal,cart\n")
    intervals, _ = match_labels(read_labels(lab), tmp_path, ["a.mp4", "b.mp4"])
    sampled = {"a.mp4": np.array([10, 11, 12]), "b.mp4": np.arange(10)}
    tab = recall_table(crops, per, sampled, intervals, {"a.mp4": 10.0, "b.mp4": 10.0})
    rows = tab.set_index("event")
    assert rows.loc["bike", ["regions", "covered"]].tolist() == [3, 1]
    assert rows.loc["bike", "recall"] == pytest.approx(1 / 3)
    assert rows.loc["bike", ["regions_large", "covered_large"]].tolist() == [2, 1]
    assert rows.loc["cart", "recall"] == 1.0
    assert rows.loc["all", ["regions", "covered", "regions_large", "covered_large"]].tolist() == [
        4, 2, 3, 2
    ]
    text = "\n".join(recall_text(tab))
    assert "IoU >= 0.3" in text and "bike" in text and "50.0%" in text


def test_sampled_indices_follow_the_reader():
    assert sampled_indices(10, 10.0, 2.0).tolist() == [0, 5]
    assert sampled_indices(7, 10.0, 0).tolist() == list(range(7))  # 0: every frame
    assert sampled_indices(7, 10.0, 25.0).tolist() == list(range(7))
    assert sampled_indices(10, 30.0, 4.0).tolist() == [0, 8]  # stride 7.5 -> ceil(7.5)


@pytest.mark.parametrize(
    "rows, header, msg",
    [
        ("a.mp4,1,0.1,0,0,5,5,25\n", "video,frame_idx,x,y,w\n", "missing column.*h"),
        ("a.mp4,1,0.1,0,x,5,5,25\n", HEADER, "line 2: y is not an integer"),
        ("a.mp4,1,0.1,0,0,5,5,25\na.mp4,1,0.1,-3,0,5,5,25\n", HEADER, "line 3: x must be >= 0"),
        ("a.mp4,1,0.1,0,0,0,5,25\n", HEADER, "line 2: w must be >= 1"),
    ],
)
def test_bad_region_files_name_the_row(tmp_path, rows, header, msg):
    with pytest.raises(AdtkError, match=msg):
        read_regions(_regions(tmp_path, rows, header))


def test_region_rows_for_unknown_videos_and_boxes_outside_the_frame(tmp_path):
    path = _regions(tmp_path, "a.mp4,1,0.1,0,0,5,5,25\nmistyped.mp4,1,0.1,0,0,5,5,25\n")
    (tmp_path / "a.mp4").write_bytes(b"x")
    with pytest.raises(AdtkError, match=r"line 3: video 'mistyped.mp4' matches no video"):
        match_regions(read_regions(path), tmp_path, ["a.mp4"], path)
    # a row naming an existing clip that is not part of this input is fine (a subset run)
    (tmp_path / "other.mp4").write_bytes(b"x")
    path = _regions(tmp_path, "a.mp4,1,0.1,0,0,5,5,25\nother.mp4,1,0.1,0,0,5,5,25\n")
    per, outside = match_regions(read_regions(path), tmp_path, ["a.mp4"], path)
    assert list(per) == ["a.mp4"] and outside == 1
    path = _regions(tmp_path, "a.mp4,1,0.1,0,0,5,5,25\na.mp4,2,0.2,350,0,20,5,25\n")
    reg = read_regions(path)
    check_regions_inside(reg, 370, 240, path)
    with pytest.raises(AdtkError, match=r"line 3: box x=350 .* outside the 360x240 frame"):
        check_regions_inside(reg, 360, 240, path)


def test_a_labels_file_matching_no_video_is_an_error(tmp_path):
    lab = tmp_path / "labels.csv"
    lab.write_text("video,start_s,end_s,label,event\nclips/a.mp4,0,3,abnormal,fall\n")
    with pytest.raises(AdtkError, match=r"none of the 1 row\(s\) matches a video"):
        match_labels(read_labels(lab), tmp_path, ["cams/b.mp4"])
