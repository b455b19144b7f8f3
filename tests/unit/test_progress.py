"""Progress on stderr: bars on a terminal, plain complete lines in a log (CI, nohup, files)."""

from __future__ import annotations

import io

import pytest

from toolkit.progress import Progress, resolve_mode


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_follows_the_stream_unless_asked():
    assert resolve_mode(None, io.StringIO()) == "lines"
    assert resolve_mode(None, _Tty()) == "bar"
    assert resolve_mode(True, io.StringIO()) == "bar"
    assert resolve_mode(False, _Tty()) == "off"
    with pytest.raises(ValueError, match="progress mode"):
        resolve_mode("fancy")


def test_lines_in_a_log_first_last_every_and_no_carriage_returns():
    log = io.StringIO()
    p = Progress(10, "adnl abc", "epochs", stream=log, min_interval_s=3600)
    for i in range(10):
        p.update(1, f"rec 0.{i}")
    p.close()
    assert log.getvalue().splitlines() == ["adnl abc: 1/10 epochs, rec 0.0",
                                           "adnl abc: 10/10 epochs, rec 0.9"]
    log = io.StringIO()
    p = Progress(7, "videos", "video", stream=log, min_interval_s=3600, every=3,
                 line_unit="done")
    for _ in range(7):
        p.update(1)
    assert [x.split(":")[1] for x in log.getvalue().splitlines()] == [
        " 1/7 done", " 4/7 done", " 7/7 done"]
    log = io.StringIO()
    p = Progress(3, "t", "epochs", stream=log, min_interval_s=0)
    for _ in range(3):
        p.update(1)
    assert len(log.getvalue().splitlines()) == 3 and "\r" not in log.getvalue()


def test_bars_on_a_terminal_and_nothing_when_off():
    tty = _Tty()
    p = Progress(4, "train", "ep", stream=tty)
    p.update(2, "rec 0.1")
    p.close()
    assert "\r" in tty.getvalue() and "rec 0.1" in tty.getvalue()
    quiet = io.StringIO()
    p = Progress(4, "train", "ep", mode=False, stream=quiet)
    p.update(4)
    p.close()
    assert quiet.getvalue() == ""


def test_extract_progress_in_a_log_is_lines_per_videos(capsys):
    from toolkit.progress import VideoBars

    bars = VideoBars(40, enabled=None)  # capsys: stderr is not a terminal
    bars.add_total(1000)
    bars.frames(1000)
    for i in range(40):
        bars.video_done(failed=i == 5)
    bars.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "frames: 1,000/1,000 decoded"
    videos = [x for x in lines if x.startswith("videos:")]
    assert videos[0] == "videos: 1/40 done"
    assert videos[-1] == "videos: 40/40 done, 1 failed"
    assert 3 <= len(videos) <= 25 and all("\r" not in x for x in lines)
