"""Labels from folders and from interval CSV files."""

from pathlib import Path

import pandas as pd
import pytest

from toolkit.errors import AdtkError
from toolkit.video.extract import video_id_for
from toolkit.video.labels import (
    apply_labels,
    folder_label,
    match_labels,
    read_labels,
)


def _csv(tmp_path, text):
    p = tmp_path / "labels.csv"
    p.write_text(text)
    return p


def test_intervals_half_open_with_events(tmp_path):
    labels = read_labels(
        _csv(
            tmp_path,
            "video,start_s,end_s,label,event\na.mp4,0,2,normal,\na.mp4,2,4.5,abnormal,fall\n",
        )
    )
    df = pd.DataFrame({"time_s": [0.0, 1.9, 2.0, 4.4, 4.5, 9.0]})
    out = apply_labels(df, labels, None)
    assert out["label"].tolist() == [
        "normal",
        "normal",
        "abnormal",
        "abnormal",
        "unlabeled",
        "unlabeled",
    ]
    assert out["event"].tolist() == [None, None, "fall", "fall", None, None]


def test_abnormal_interval_wins_over_an_overlapping_normal_one_in_any_order(tmp_path):
    labels = read_labels(
        _csv(
            tmp_path,
            "video,start_s,end_s,label,event\na.mp4,2,4,abnormal,fall\na.mp4,0,10,normal,\n",
        )
    )
    df = pd.DataFrame({"time_s": [1.0, 2.0, 3.5, 4.0]})
    for order in (labels, labels.iloc[::-1]):
        out = apply_labels(df, order, None)
        assert out["label"].tolist() == ["normal", "abnormal", "abnormal", "normal"]
        assert out["event"].tolist() == [None, "fall", "fall", None]


def test_folder_label_and_default():
    assert folder_label("abnormal/cam1/x.mp4") == "abnormal"
    assert folder_label("site/normal/x.mp4") == "normal"
    assert folder_label("x.mp4") is None
    df = pd.DataFrame({"time_s": [0.0]})
    assert apply_labels(df, None, "normal")["label"].tolist() == ["normal"]
    assert apply_labels(df, None, None)["label"].tolist() == ["unlabeled"]


def test_unmatched_rows_are_reported(tmp_path):
    labels = read_labels(
        _csv(
            tmp_path,
            "video,start_s,end_s,label,event\n"
            "test/test_04.mp4,0,3,normal,\n"
            "missing.mp4,0,3,abnormal,cart\n",
        )
    )
    root = tmp_path / "data"
    (root / "test").mkdir(parents=True)
    per, unmatched = match_labels(labels, root, ["test/test_04.mp4"])
    assert list(per) == ["test/test_04.mp4"]
    assert unmatched["video"].tolist() == ["missing.mp4"]
    # a single clip given on its own still finds its rows by path suffix
    per, unmatched = match_labels(labels, root / "test", ["test_04.mp4"])
    assert list(per) == ["test_04.mp4"] and len(unmatched) == 1


def test_a_row_matching_several_videos_by_suffix_is_an_error(tmp_path):
    text = "video,start_s,end_s,label,event\ncam1.mp4,0,3,abnormal,fall\n"
    labels = read_labels(_csv(tmp_path, text))
    videos = ["day1/cam1.mp4", "day2/cam1.mp4"]
    with pytest.raises(AdtkError, match=r"line 2: video 'cam1.mp4' matches 2 videos"):
        match_labels(labels, tmp_path, videos)
    # an exact relative path wins over suffix matches
    text = "video,start_s,end_s,label,event\n./day1/cam1.mp4,0,3,abnormal,fall\n"
    per, unmatched = match_labels(read_labels(_csv(tmp_path, text)), tmp_path, videos)
    assert list(per) == ["day1/cam1.mp4"] and len(unmatched) == 0


def test_a_row_with_an_absolute_path_matches_that_video(tmp_path):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "cam1.mp4").write_bytes(b"")
    text = f"video,start_s,end_s,label,event\n{tmp_path}/day1/cam1.mp4,0,3,abnormal,fall\n"
    per, unmatched = match_labels(read_labels(_csv(tmp_path, text)), tmp_path, ["day1/cam1.mp4"])
    assert list(per) == ["day1/cam1.mp4"] and len(unmatched) == 0


@pytest.mark.parametrize(
    "text, msg",
    [
        ("video,start_s\na.mp4,0\n", "missing column"),
        ("video,start_s,end_s,label,event\na.mp4,x,1,normal,\n", "line 2: start_s"),
        ("video,start_s,end_s,label,event\na.mp4,0,1,weird,\n", "label must be"),
        ("video,start_s,end_s,label,event\na.mp4,3,1,normal,\n", "end_s must be"),
    ],
)
def test_bad_label_files_name_the_problem(tmp_path, text, msg):
    with pytest.raises(AdtkError, match=msg):
        read_labels(_csv(tmp_path, text))


def test_video_id_stable_and_distinct():
    assert video_id_for("a/b.mp4") == video_id_for("a/b.mp4")
    assert video_id_for("a/b.mp4") != video_id_for("a_b.mp4")
    assert Path(video_id_for("x y/z.mp4")).name == video_id_for("x y/z.mp4")
