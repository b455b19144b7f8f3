"""``adtk extract`` end to end on generated videos: output, labels, resume, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.manifest import CROP_COLUMNS, read_manifest, read_meta
from toolkit.video.synthetic import make_video

REPO = Path(__file__).resolve().parents[2]


#: the synthetic walkers are moving shapes, not people a person detector would know
OBJECTS = ["--target", "object", "--detector", "auto"]


def run(args, **kw):
    return CliRunner().invoke(
        main, ["extract", *OBJECTS, *args, "--no-progress"], catch_exceptions=False, **kw
    )


def test_generated_video_crops_manifest_and_rerun(tmp_path):
    make_video(tmp_path / "in" / "abnormal" / "cam.avi", walkers=2)
    out = tmp_path / "out"
    r = run([str(tmp_path / "in"), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    df = read_manifest(out / "manifest.parquet")
    assert list(df.columns)[: len(CROP_COLUMNS)] == list(CROP_COLUMNS)
    assert len(df) > 10
    assert df["sequence_id"].nunique() == 2  # two walkers, two sequences
    assert set(df["label"]) == {"abnormal"}  # from the folder name
    assert f"labels: 0 normal, {len(df)} abnormal, 0 unlabeled" in r.output
    assert df["video"].unique().tolist() == ["abnormal/cam.avi"]
    assert df["time_s"].diff().dropna().ge(0).all()
    for col in ("path", "path_oversize"):
        for p in df[col].head(3):
            img = cv2.imread(str(out / p))
            assert img.shape == (64, 64, 3)
    # sampled at 2 fps from a 10 fps clip: frame indices are multiples of 5
    assert (df["frame_idx"] % 5 == 0).all()
    # inspect says which adtk made it, from what, with which settings
    from toolkit import __version__

    ins = CliRunner().invoke(main, ["inspect", str(out)])
    assert ins.exit_code == 0, ins.output
    assert (f"made by adtk extract {__version__} from {(tmp_path / 'in').resolve()} (1 video(s)): "
            "target object, detector auto, 2 frames/s, crops 64 px, motion channels none"
            ) in ins.output
    # run again: nothing redone, identical ids
    r2 = run([str(tmp_path / "in"), "--out", str(out)])
    assert r2.exit_code == 0 and "1 already done" in r2.output
    df2 = read_manifest(out / "manifest.parquet")
    assert df2["crop_id"].tolist() == df["crop_id"].tolist()
    # a fresh run elsewhere gives the same ids for the same boxes (stable across re-runs)
    r2b = run([str(tmp_path / "in"), "--out", str(tmp_path / "out2")])
    assert r2b.exit_code == 0
    df3 = read_manifest(tmp_path / "out2" / "manifest.parquet")
    cols = ["crop_id", "sequence_id", "x", "y", "w", "h", "path"]
    assert df3[cols].equals(df[cols])
    # changed settings: the video is redone with them
    r3 = run([str(tmp_path / "in"), "--out", str(out), "--size", "32"])
    assert "1 extracted" in r3.output
    assert cv2.imread(str(out / read_manifest(out / "manifest.parquet")["path"][0])).shape[0] == 32


def test_folder_label_when_the_input_is_the_labelled_folder_or_a_file_in_it(tmp_path):
    make_video(tmp_path / "in" / "abnormal" / "cam.avi", walkers=1, seconds=3)
    for i, src in enumerate(["in/abnormal", "in/abnormal/cam.avi"]):
        out = tmp_path / f"out{i}"
        assert run([str(tmp_path / src), "--out", str(out)]).exit_code == 0
        df = read_manifest(out / "manifest.parquet")
        assert len(df) and set(df["label"]) == {"abnormal"}, src


def test_dropped_short_tracks_are_counted_in_the_summary(tmp_path):
    make_video(tmp_path / "in" / "cam.avi", walkers=1, seconds=3)
    # --max-gap 0 at 2 fps: every track ends after one crop, all are shorter than --min-track
    r = run([str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--max-gap", "0"])
    assert r.exit_code == 0, r.output
    assert "crops: 0 in 0 sequences" in r.output
    assert "track(s) shorter than --min-track dropped" in r.output
    assert "no crops from 1 video(s): cam.avi (" in r.output and "dropped)" in r.output
    # inspect says the same in a user's words, not as a schema problem
    r = CliRunner().invoke(main, ["inspect", str(tmp_path / "o" / "manifest.parquet")])
    assert r.exit_code == 1
    assert "no crops: adtk extract kept none from its 1 video(s)" in r.output
    assert "empty manifest" not in r.output


def test_a_clip_too_short_for_min_track_is_named_with_the_way_out(tmp_path):
    make_video(tmp_path / "in" / "short.avi", walkers=1, seconds=1)
    r = run([str(tmp_path / "in"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert ("no crops from 1 video(s): short.avi (2 sampled frame(s) at --fps 2, fewer than "
            "--min-track 3: no track can be kept, --fps 0 samples every frame)") in r.output
    r = run([str(tmp_path / "in"), "--out", str(tmp_path / "o0"), "--fps", "0"])
    assert r.exit_code == 0 and "no crops from" not in r.output, r.output


def test_bad_inputs_fail_alone_and_are_listed(tmp_path):
    src = tmp_path / "in"
    make_video(src / "good.avi", seconds=4, walkers=1)
    good = (src / "good.avi").read_bytes()
    (src / "truncated.avi").write_bytes(good[: len(good) // 3])
    (src / "noise.mp4").write_bytes(np.random.default_rng(1).bytes(50_000))
    (src / "notes.mp4").write_text("this is not a video\n")
    (src / "readme.txt").write_text("hello\n")
    out = tmp_path / "out"
    r = run([str(src), "--out", str(out), "--workers", "2"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    failures = (out / "failures.csv").read_text()
    for name in ("truncated.avi", "noise.mp4", "notes.mp4"):
        assert name in failures and name in r.output
    assert "good.avi" not in failures
    assert "  notes.mp4: not a video (the file contains text)" in r.output  # named once
    assert "readme.txt" in r.output  # reported as ignored, not silently skipped
    df = read_manifest(out / "manifest.parquet")
    assert set(df["video"]) == {"good.avi"}


def test_native_crash_fails_only_that_video(tmp_path, monkeypatch):
    src = tmp_path / "in"
    make_video(src / "a.avi", seconds=3, walkers=1)
    make_video(src / "crash_me.avi", seconds=3, walkers=1, seed=1)
    make_video(src / "c.avi", seconds=3, walkers=1, seed=2)
    monkeypatch.setenv("ADTK_TEST_CRASH_ON", "crash_me")
    out = tmp_path / "out"
    r = run([str(src), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 1
    assert "crash_me.avi: the decoder crashed (SIGABRT)" in r.output
    assert set(read_manifest(out / "manifest.parquet")["video"]) == {"a.avi", "c.avi"}


@pytest.mark.parametrize(
    "setup, msg",
    [
        (lambda p: None, "no such file or folder"),
        (lambda p: p.mkdir() or (p / "x.txt").write_text("x"), "folder has no videos"),
    ],
)
def test_one_line_errors(tmp_path, setup, msg):
    p = tmp_path / "input"
    setup(p)
    r = CliRunner().invoke(main, ["extract", str(p), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert r.output.startswith("Error: ") and msg in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("out", ["a_file", "a_file/sub"])
def test_output_folder_that_cannot_be_made_is_one_line(tmp_path, out):
    (tmp_path / "a_file").write_text("x")
    make_video(tmp_path / "v.avi", seconds=1, walkers=1)
    r = CliRunner().invoke(main, ["extract", str(tmp_path / "v.avi"), "--out", str(tmp_path / out)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("Error: ") and "folder" in r.output and "Traceback" not in r.output
    assert (tmp_path / "a_file").read_text() == "x"


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--weights", "nope.pt"], "nope.pt: weights file not found"),
        (["--device", "tpu"], "--detector torchvision: Expected one of"),
    ],
)
def test_a_detector_that_cannot_be_built_stops_the_run_once(tmp_path, args, msg):
    for name in ("a.avi", "b.avi"):
        make_video(tmp_path / "in" / name, seconds=1, walkers=1)
    r = CliRunner().invoke(
        main,
        ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--no-progress",
         "--detector", "torchvision", *args],
    )
    assert r.exit_code == 2, r.output
    assert r.output.startswith("Error: ") and msg in r.output and r.output.count("\n") == 1


def test_a_broken_detector_setting_leaves_a_finished_manifest_as_it_was(tmp_path):
    """A rerun into a finished folder with a setting that cannot build the detector (the
    settings differ, so every video would be redone) stops before the manifest is rewritten."""
    make_video(tmp_path / "in" / "a.avi", walkers=2)
    out = tmp_path / "o"
    assert run([str(tmp_path / "in"), "--out", str(out), "--workers", "1"]).exit_code == 0
    before = read_manifest(out / "manifest.parquet")
    meta = read_meta(out / "manifest.parquet")
    assert len(before) > 0 and meta.get("incomplete") is None
    r = CliRunner().invoke(
        main, ["extract", str(tmp_path / "in"), "--out", str(out), "--no-progress",
               "--weights", str(tmp_path / "nope.onnx")],
    )
    assert r.exit_code == 2 and r.output.startswith("Error: ") and "nope.onnx" in r.output
    after = read_manifest(out / "manifest.parquet")
    assert after["crop_id"].tolist() == before["crop_id"].tolist()
    assert read_meta(out / "manifest.parquet").get("incomplete") is None


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--fps", "-1"], "fps -1.0 (must be a finite number >= 0; 0 = every frame)"),
        (["--fps", "inf"], "fps inf (must be a finite number >= 0; 0 = every frame)"),
        (["--motion-channels", "flow", "--fps", "nan"],
         "fps nan (must be a finite number >= 0; 0 = every frame)"),
        (["--min-size", "-5"], "min_size -5 (must be >= 0)"),
        (["--workers", "-1"], "workers -1 (must be >= 0; 0 = all cores)"),
        (["--size", "0"], "size 0 (must be >= 8)"),
        (["--min-score", "2"],
         "min_score 2.0 (must be in [0, 1] (a detector score); unset = the detector's default)"),
    ],
)
def test_bad_settings_name_the_value_and_the_rule(tmp_path, args, msg):
    r = CliRunner().invoke(main, ["extract", str(tmp_path), "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2 and r.output == f"Error: invalid value for {msg}\n"
    assert not (tmp_path / "o").exists()


def test_single_text_file_is_reported(tmp_path):
    f = tmp_path / "clip.mp4"
    f.write_text("not a video")
    r = run([str(f), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "not a video" in r.output
    assert "x real time" not in r.output  # nothing processed: no speed to state


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    src = tmp_path / "in"
    for i in range(4):
        make_video(src / f"v{i}.avi", seconds=12, walkers=2, seed=i)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "toolkit",
        "extract",
        *OBJECTS,
        str(src),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list((out / "videos").glob("*/part.parquet")):
            time.sleep(0.05)
        assert list((out / "videos").glob("*/part.parquet")), "no video finished in time"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers: our own process group
        proc.wait()
    done_before = len(list((out / "videos").glob("*/part.parquet")))
    assert done_before < 4, "the run finished before it could be killed"
    # what is on disk after kill -9 is a valid manifest of finished videos only
    df = read_manifest(out / "manifest.parquet")
    assert df["video"].nunique() <= done_before
    r = run([str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{done_before} already done" in r.output
    df = read_manifest(out / "manifest.parquet")
    assert sorted(df["video"].unique()) == [f"v{i}.avi" for i in range(4)]
    assert all((out / p).is_file() for p in df["path"])
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


def test_yaml_config_and_flag_override(tmp_path):
    make_video(tmp_path / "in" / "cam.avi", seconds=4, walkers=1)
    cfg = tmp_path / "extract.yaml"
    cfg.write_text("extract:\n  fps: 1\n  min_track: 2\n  size: 48\n")
    out = tmp_path / "out"
    r = run([str(tmp_path / "in"), "--out", str(out), "--config", str(cfg), "--size", "40"])
    assert r.exit_code == 0, r.output
    df = read_manifest(out / "manifest.parquet")
    assert len(df) >= 2 and (df["frame_idx"] % 10 == 0).all()  # 1 fps from the YAML
    assert cv2.imread(str(out / df["path"][0])).shape[0] == 40  # the flag wins over YAML
    cfg.write_text("extract:\n  fsp: 1\n")
    r = CliRunner().invoke(
        main, ["extract", str(tmp_path / "in"), "--out", str(out), "--config", str(cfg)]
    )
    assert r.exit_code == 2 and "unknown setting(s) fsp" in r.output


def test_stalled_decoder_is_stopped_and_fails_only_that_video(tmp_path, monkeypatch):
    src = tmp_path / "in"
    make_video(src / "a.avi", seconds=3, walkers=1)
    make_video(src / "stuck.avi", seconds=3, walkers=1, seed=1)
    monkeypatch.setenv("ADTK_TEST_CRASH_ON", "hang:stuck")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stall_s: 2\n")
    out = tmp_path / "out"
    t = time.monotonic()
    r = run([str(src), "--out", str(out), "--workers", "2", "--config", str(cfg)])
    assert time.monotonic() - t < 30
    assert r.exit_code == 1
    assert "stuck.avi: no progress for 2 s" in r.output
    assert set(read_manifest(out / "manifest.parquet")["video"]) == {"a.avi"}


def test_motion_blobs_are_no_person_detector(tmp_path):
    make_video(tmp_path / "in" / "a.avi", seconds=1, walkers=1)
    r = CliRunner().invoke(
        main, ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--no-progress",
               "--detector", "motion"],
    )
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith("Error: --detector motion finds moving blobs, not people")


def test_a_yolox_weights_file_that_is_no_model_stops_the_run_once(tmp_path):
    make_video(tmp_path / "in" / "a.avi", seconds=1, walkers=1)
    bad = tmp_path / "big.onnx"
    bad.write_bytes(b"junk")
    r = CliRunner().invoke(
        main, ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--no-progress",
               "--weights", str(bad)],
    )
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "big.onnx: not a YOLOX ONNX model" in r.output


def test_another_input_into_the_same_out_is_refused_and_the_manifest_kept(tmp_path):
    make_video(tmp_path / "a" / "cam.avi", walkers=1, seconds=3)
    make_video(tmp_path / "b" / "cam.avi", walkers=2, seconds=3, seed=5)
    out = tmp_path / "out"
    assert run([str(tmp_path / "a"), "--out", str(out)]).exit_code == 0
    before = read_manifest(out / "manifest.parquet")
    r = CliRunner().invoke(main, ["extract", *OBJECTS, str(tmp_path / "b"), "--out", str(out)])
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "holds the crops of another input" in r.output and "adtk split" in r.output
    assert read_manifest(out / "manifest.parquet").equals(before)
    # the same input again (spelled differently) resumes as before
    r2 = run([str(tmp_path / "a" / ".." / "a"), "--out", str(out)])
    assert r2.exit_code == 0 and "1 already done" in r2.output


def test_a_labels_file_with_an_empty_video_cell_is_one_error_line(tmp_path):
    make_video(tmp_path / "in" / "cam.avi", seconds=2, walkers=1)
    lab = tmp_path / "labels.csv"
    lab.write_text("video,start_s,end_s,label,event\n\ncam.avi,0,45,normal,\n,0:33,0:45,abnormal,"
                   "bike\n")
    r = run([str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--labels", str(lab)])
    assert r.exit_code == 2
    assert r.output.strip() == f"Error: {lab}: line 4: video is empty"


def test_extract_notes_what_the_labels_leave_unlabeled_or_to_chance(tmp_path):
    src = tmp_path / "in"
    make_video(src / "a.avi", seconds=8, walkers=1)
    make_video(src / "b.avi", seconds=2, walkers=1, seed=1)
    lab = tmp_path / "labels.csv"
    lab.write_text("video,start_s,end_s,label,event\na.avi,0:01,0:04,abnormal,bike\n"
                   "a.avi,3,30,abnormal,fight\n")
    r = run([str(src), "--out", str(tmp_path / "o"), "--labels", str(lab), "--workers", "1",
             "--chunk", "4s", "--chunk-warmup", "6s"])
    assert r.exit_code == 0, r.output
    notes = [line for line in r.output.splitlines() if line.startswith("note: ")]
    assert notes[0].startswith("note: labels: 1 of 2 video(s) have no row in the labels file: "
                               "b.avi; their crops are unlabeled")
    assert notes[1].startswith("note: labels: 1 video(s) have abnormal rows only: a.avi; time "
                               "outside their intervals is unlabeled, not normal")
    assert "a.avi,0,end,normal" in notes[1]
    assert "lines 2 and 3 of a.avi (bike 1-4 s, fight 3-30 s): the overlap gets fight" in notes[2]
    assert "line 3 (a.avi, end_s 30, the video is 8.0 s long)" in notes[3]
    assert notes[4].startswith("note: --chunk 4s with --chunk-warmup 6s: each chunk decodes "
                               "more warm-up than its own span")
    df = read_manifest(tmp_path / "o" / "manifest.parquet")
    assert set(df.loc[df["video"] == "b.avi", "label"]) == {"unlabeled"}
    assert set(df.loc[df["time_s"].between(3, 3.9) & (df["video"] == "a.avi"), "event"]) == \
        {"fight"}


def test_a_rerun_without_the_labels_file_says_the_labels_are_dropped(tmp_path):
    make_video(tmp_path / "in" / "cam.avi", seconds=3, walkers=1)
    lab = tmp_path / "labels.csv"
    lab.write_text("video,start_s,end_s,label\ncam.avi,0,end,abnormal\n")
    args = [str(tmp_path / "in"), "--out", str(tmp_path / "o")]
    r = run([*args, "--labels", str(lab)])
    assert r.exit_code == 0 and "note: labels: the manifest" not in r.output, r.output
    assert set(read_manifest(tmp_path / "o" / "manifest.parquet")["label"]) == {"abnormal"}
    r = run(args)  # the same command without --labels
    assert r.exit_code == 0, r.output
    assert (f"note: labels: the manifest in {tmp_path / 'o'} was made with --labels {lab}; "
            "this run has none, so its crops are now unlabeled") in r.output
    assert set(read_manifest(tmp_path / "o" / "manifest.parquet")["label"]) == {"unlabeled"}
    r = run(args)  # nothing to say any more
    assert "note: labels: the manifest" not in r.output


def test_a_yolox_size_beyond_the_frames_is_noted(tmp_path):
    from toolkit.config import ExtractConfig
    from toolkit.video.findings import yolox_size_note as _yolox_size_note

    assert _yolox_size_note(ExtractConfig(), {"a.mp4": 320}) == ""  # the default enlarges
    assert _yolox_size_note(ExtractConfig(yolox_size=1280), {"a.mp4": 1536}) == ""
    said = _yolox_size_note(ExtractConfig(yolox_size=4096), {"a.mp4": 1536, "b.mp4": 768})
    assert said == ("--yolox-size 4096 is larger than the frames of 2 video(s) (long side 1536 "
                    "px at most): YOLOX then works on an enlarged picture, at about 7.1x the time "
                    "of --yolox-size 1536, where the frames' own pixels end")
    assert _yolox_size_note(ExtractConfig(yolox_size=4096, detector="hog"), {"a": 768}) == ""


def test_videos_of_an_earlier_extractor_are_extracted_again_and_said_so(tmp_path):
    from toolkit.data.manifest import write_manifest
    from toolkit.video.extract import EXTRACTOR_REVISION

    make_video(tmp_path / "in" / "cam.avi", walkers=1, seconds=4.0)
    out = tmp_path / "out"
    args = [str(tmp_path / "in"), "--out", str(out), "--workers", "1"]
    assert run(args).exit_code == 0
    part = next(out.glob("videos/*/part.parquet"))
    meta = read_meta(part)
    assert meta["extractor_revision"] == EXTRACTOR_REVISION
    r = run(args)
    assert "1 already done" in r.output and "earlier adtk" not in r.output
    # the part as an adtk from before revisions were recorded left it: same settings, same
    # source, no revision (so another hash); its crops must not be reused
    old = {k: v for k, v in meta.items() if k != "extractor_revision"}
    old["extraction_hash"] = "0123456789ab"
    write_manifest(read_manifest(part), part, kind="crop", meta=old)
    r = run(args)
    assert r.exit_code == 0, r.output
    assert "1 extracted" in r.output
    assert (f"1 video(s) in {out} were extracted by an earlier adtk (extractor revision 0, "
            f"now {EXTRACTOR_REVISION})") in r.output
    assert read_meta(part)["extractor_revision"] == EXTRACTOR_REVISION
    r = run(args)
    assert "1 already done" in r.output and "earlier adtk" not in r.output


def test_linked_folders_are_searched_once_and_broken_links_named(tmp_path):
    """Found by a review with odd inputs: a camera folder gathered by a symlink was skipped
    without a word, and a link to nowhere failed the run with a raw FileNotFoundError."""
    cams = tmp_path / "elsewhere" / "cam1"
    make_video(cams / "a.avi", seconds=3, walkers=1)
    top = tmp_path / "in"
    top.mkdir()
    (top / "cam1").symlink_to(cams, target_is_directory=True)
    (top / "again").symlink_to(cams, target_is_directory=True)  # the same folder twice
    (top / "loop").symlink_to(top, target_is_directory=True)  # a loop
    (top / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    make_video(top / "real" / "b.avi", seconds=3, walkers=1)
    (top / "a_link").symlink_to(top / "real", target_is_directory=True)  # into the input
    r = run([str(top), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "videos: 2 extracted, 0 already done (skipped), 0 failed, of 2" in r.output, r.output
    df = read_manifest(tmp_path / "o" / "manifest.parquet")
    # a video inside the input keeps its own path, whatever links point at its folder; an
    # outside folder is searched once, under the first link's name
    assert sorted(df["video"].unique()) == ["again/a.avi", "real/b.avi"]
    assert "gone.mp4 (a link to" in r.output and "which is not there" in r.output
    assert "Traceback" not in r.output and "FileNotFoundError" not in r.output


@pytest.mark.parametrize("bgr", [(0, 0, 0), (255, 0, 0)])  # black, a "no signal" blue
def test_a_black_video_is_called_blank_not_only_frozen(tmp_path, bgr):
    """Found by a review with odd inputs: an all-black video (a camera or cable off) was
    reported as a stalled recorder's frozen picture."""
    path = tmp_path / "black.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(60):
        w.write(np.full((120, 160, 3), bgr, np.uint8))
    w.release()
    r = CliRunner().invoke(main, ["extract", str(path), "--out", str(tmp_path / "o"),
                                  "--no-progress", "--workers", "1"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("frozen picture"))
    assert "all blank (one colour)" in line, line


def test_frozen_finding_names_blank_frames():
    from toolkit.config import ExtractConfig
    from toolkit.video.findings import frozen

    meta = {"frozen_frames": 20, "fps": 10, "sampled_frames": 30}
    assert frozen(meta, ExtractConfig(fps=0)) == "2 s: 20 of 30 sampled frames"
    assert frozen({**meta, "blank_frames": 20}, ExtractConfig(fps=0)).endswith(
        ", all blank (one colour)")
    assert frozen({**meta, "blank_frames": 5}, ExtractConfig(fps=0)).endswith(
        ", 5 of them blank (one colour)")


def test_an_implausible_frame_rate_is_named(tmp_path):
    """Found by a review with odd inputs: a clip whose container says 1000 frames/s gave one
    sampled frame and no crops, with nothing pointing at the rate."""
    from toolkit.video.findings import odd_fps

    assert odd_fps({"fps": 25.0, "frames": 10}) == ""
    assert odd_fps({"fps": 1000.0, "frames": 75}) == "1000 frames/s stated, 75 frames"
    path = tmp_path / "fast.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 1000, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(30):
        w.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    w.release()
    r = run([str(path), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "implausible frame rate in 1 video(s): fast.avi (1000 frames/s stated" in r.output
