"""Labels from folders and from interval CSV files."""

import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from toolkit.errors import AdtkError
from toolkit.video.extract import video_id_for
from toolkit.video.labels import (
    apply_labels,
    folder_label,
    label_notes,
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


# ----------------------------------------------------------------------------- file messages

HEADER = "video,start_s,end_s,label,event\n"


@pytest.mark.parametrize(
    "text, msg",
    [
        # an empty video cell: the pandas reader left NaN there and match_rows raised
        # AttributeError; blank and comment lines count in the line number
        (HEADER + "\na.mp4,0,45,normal,\n# the bike\n,33,45,abnormal,bike\n",
         "labels.csv: line 5: video is empty"),
        (HEADER + "a.mp4,0,45,normal,\n\n\na.mp4,33,45,abnormel,bike\n",
         "labels.csv: line 5: label must be normal or abnormal, got 'abnormel'"),
        (HEADER + "a.mp4,33,,abnormal,bike\n", "labels.csv: line 2: end_s is empty"),
        (HEADER + "a.mp4,0,45,,\n", "labels.csv: line 2: label is empty"),
        (HEADER + "\n\na.mp4,abc,45,normal,\n",
         r"labels.csv: line 4: start_s 'abc' is not a time \(seconds or m:ss\)"),
        (HEADER + "a.mp4,1:75,2:00,normal,\n", r"line 2: start_s '1:75' is not a time"),
        (HEADER + "a.mp4,0,nan,normal,\n", r"line 2: end_s 'nan' is not a time"),
    ],
)
def test_bad_cells_name_the_real_line_and_column(tmp_path, text, msg):
    with pytest.raises(AdtkError, match=msg) as e:
        read_labels(_csv(tmp_path, text))
    assert "np.float64" not in str(e.value) and "nan)" not in str(e.value)


@pytest.mark.parametrize(
    "text, shown, hint",
    [
        ("a.mp4,0,45,normal,\na.mp4,33,45,abnormal,bike\n", "'a.mp4,0,45,normal,'",
         "the first line must name the columns"),
        ("video;start_s;end_s;label;event\na.mp4;0;45;normal;\n",
         "'video;start_s;end_s;label;event'", "separated by ';'"),
        ("video,start,end,label\na.mp4,0,45,normal\n", "'video,start,end,label'", ""),
    ],
)
def test_a_bad_header_shows_the_line_found_and_the_columns_expected(tmp_path, text, shown, hint):
    with pytest.raises(AdtkError) as e:
        read_labels(_csv(tmp_path, text))
    msg = str(e.value)
    assert f"(line 1: {shown})" in msg
    assert "expected video,start_s,end_s,label,event (event optional)" in msg
    assert hint in msg


def test_times_in_seconds_m_ss_h_mm_ss_and_end(tmp_path):
    text = (HEADER + "# times as a person writes them\n"
            "a.mp4,0:33,0:45.5,abnormal,bike\na.mp4,1:02:03,end,normal,\n"
            "a.mp4,3:05,3:40,abnormal,\n")
    df = read_labels(_csv(tmp_path, text))
    assert df["start_s"].tolist() == [33.0, 3723.0, 185.0]
    assert df["end_s"].tolist() == [45.5, float("inf"), 220.0]
    assert df["line"].tolist() == [3, 4, 5]  # the file's own line numbers
    out = apply_labels(pd.DataFrame({"time_s": [34.0, 5000.0]}), df, None)
    assert out["label"].tolist() == ["abnormal", "normal"]


def test_a_four_column_file_and_a_bom_read_and_the_event_is_optional(tmp_path):
    p = tmp_path / "l.csv"
    p.write_bytes("\ufeffvideo,start_s,end_s,label\r\na.mp4,0,45,normal\r\n".encode())
    df = read_labels(p)
    assert df["video"].tolist() == ["a.mp4"] and df["event"].tolist() == [None]


def test_rows_match_videos_whatever_the_unicode_normal_form(tmp_path):
    nfc = unicodedata.normalize("NFC", "cámara_2/tarde café.mp4")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    for row_name, video in ((nfd, nfc), (nfc, nfd)):  # macOS tools write NFD, files may be too
        labels = read_labels(_csv(tmp_path, HEADER + f"{row_name},0,51,normal,\n"))
        per, unmatched = match_labels(labels, tmp_path, [video])
        assert list(per) == [video] and len(unmatched) == 0


# ----------------------------------------------------------------------------- notes


def _notes(tmp_path, text, videos, durations, defaults=None, region_videos=()):
    labels = read_labels(_csv(tmp_path, HEADER + text))
    per, _ = match_labels(labels, tmp_path, videos)
    return label_notes(per, videos, defaults or {v: None for v in videos}, durations,
                       region_videos)


def test_no_unlabeled_note_where_regions_or_the_intervals_cover_the_video(tmp_path):
    """As with Ped2's files: with --regions every crop of a region-labelled video is labelled,
    and an abnormal interval over a whole clip (test_10's 0-15 s) leaves nothing outside it."""
    videos = ["test/test_08.mp4", "test/test_10.mp4", "test/test_11.mp4"]
    text = ("test/test_08.mp4,9.5,18,abnormal,bike\ntest/test_10.mp4,0,15,abnormal,bike\n"
            "test/test_11.mp4,0,9,abnormal,bike\n")
    durations = {"test/test_08.mp4": 18.0, "test/test_10.mp4": 15.0, "test/test_11.mp4": 18.0}
    notes = _notes(tmp_path, text, videos, durations)
    # test_10's interval is the whole clip; the other two leave time outside
    assert len(notes) == 1 and "2 video(s) have abnormal rows only" in notes[0], notes
    assert "test_10" not in notes[0]
    # with region rows for all three, no video is left unlabeled
    assert _notes(tmp_path, text, videos, durations, region_videos=videos) == []
    # nor a video without label rows that has region rows
    assert _notes(tmp_path, "test/test_08.mp4,0,end,normal,\n", videos, durations,
                  region_videos=videos[1:]) == []


def test_notes_name_videos_no_row_covers_and_videos_with_abnormal_rows_only(tmp_path):
    videos = ["Camera 1/walkway day.mp4", "cam2.mp4", "cam3/clip3.mp4"]
    notes = _notes(tmp_path, "Camera 1/walkway day.mp4,33,45,abnormal,bike\n"
                   "cam2.mp4,0,end,normal,\ncam2.mp4,3,4,abnormal,\n", videos, {})
    assert len(notes) == 2
    assert notes[0].startswith("labels: 1 of 3 video(s) have no row in the labels file: "
                               "cam3/clip3.mp4; their crops are unlabeled")
    assert "cam3/clip3.mp4,0,end,normal" in notes[0]
    assert notes[1].startswith("labels: 1 video(s) have abnormal rows only: "
                               "Camera 1/walkway day.mp4; time outside their intervals is "
                               "unlabeled, not normal")
    assert "Camera 1/walkway day.mp4,0,end,normal" in notes[1]
    # a folder label covers the time outside the intervals: nothing to say
    defaults = {"Camera 1/walkway day.mp4": "normal", "cam2.mp4": None,
                "cam3/clip3.mp4": "abnormal"}
    assert _notes(tmp_path, "Camera 1/walkway day.mp4,33,45,abnormal,bike\n"
                  "cam2.mp4,0,end,normal,\n", videos, {}, defaults) == []


def test_notes_on_overlapping_events_and_intervals_past_the_end(tmp_path):
    videos = ["a.mp4", "b.mp4", "c.mp4"]
    text = ("a.mp4,0,45,normal,\na.mp4,33,45,abnormal,bike\na.mp4,40,45.5,abnormal,fight\n"
            "b.mp4,0,51,normal,\nb.mp4,18,33,abnormal,cart\nb.mp4,30,120,abnormal,cart\n"
            "c.mp4,0,end,normal,\nc.mp4,60,90,abnormal,bike\n")
    notes = _notes(tmp_path, text, videos, {"a.mp4": 45.0, "b.mp4": 51.0, "c.mp4": 54.0})
    assert len(notes) == 3, notes
    # the same event overlapping (lines 6 and 7) is no conflict; end 45.5 is within a second
    assert notes[0] == (
        "labels: abnormal intervals with different events overlap, and crops in both get the "
        "later line's event: lines 3 and 4 of a.mp4 (bike 33-45 s, fight 40-45.5 s): the "
        "overlap gets fight"
    )
    assert notes[1] == ("labels: interval(s) ending past the video's end (a typo?): line 7 "
                        "(b.mp4, end_s 120, the video is 51.0 s long)")
    assert notes[2] == ("labels: interval(s) starting after the video's end label nothing: "
                        "line 9 (c.mp4, 60-90 s, the video is 54.0 s long)")
    # the rule the note states is the one applied
    labels = read_labels(_csv(tmp_path, HEADER + text))
    out = apply_labels(pd.DataFrame({"time_s": [41.0]}), labels.iloc[:3], None)
    assert out["event"].tolist() == ["fight"]


def test_a_header_without_rows_is_an_error(tmp_path):
    with pytest.raises(AdtkError, match=r"a header and no rows"):
        read_labels(_csv(tmp_path, HEADER + "\n# only a comment\n"))
