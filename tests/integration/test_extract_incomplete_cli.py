"""An ``adtk extract`` that did not finish, as a user meets it: Ctrl-C or SIGTERM in the
middle, a video that fails. The manifest says it is incomplete and which videos are missing;
``adtk inspect`` says so and exits 1, ``adtk split`` refuses it (``--allow-incomplete``: a
warning), and a finished rerun clears the mark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.manifest import read_manifest, read_meta
from toolkit.video.synthetic import make_video

REPO = Path(__file__).resolve().parents[2]
#: the synthetic walkers are moving shapes, not people a person detector would know
OBJECTS = ["--target", "object", "--detector", "auto"]

pytestmark = [pytest.mark.slow,  # real extract runs in subprocesses: about 10 s
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="finds the worker processes in /proc")]


def adtk(*args: str):
    return CliRunner().invoke(main, list(args))


def _descendants(pid: int) -> int:
    """How many processes descend from ``pid`` (the fork server and the workers)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = 0, {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier}
        found += len(frontier)
    return found


def _start(src: Path, out: Path, hang_on: str) -> subprocess.Popen:
    """``adtk extract`` in its own process group; videos whose name holds ``hang_on`` hang
    (a test hook of extract), so the run can be interrupted at a known point."""
    env = {**os.environ, "ADTK_TEST_CRASH_ON": f"hang:{hang_on}"}
    cmd = [sys.executable, "-m", "toolkit", "extract", *OBJECTS, str(src), "--out", str(out),
           "--workers", "1", "--no-progress"]
    # SIGINT back to its default in the child: pytest run as a background job of a
    # non-interactive shell (nohup, a CI runner) ignores it, and a child inherits that
    return subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait(cond, what: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_ctrl_c_leaves_a_manifest_marked_incomplete_that_split_refuses(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    for i, name in enumerate(("a", "b", "c")):
        make_video(src / f"{name}.avi", seconds=4, walkers=2, seed=i)  # 2 sequences each
    (src / "0bad.avi").write_bytes(b"not a video" * 100)  # fails first, in its worker
    proc = _start(src, out, "c.avi")
    try:
        _wait(lambda: len(list((out / "videos").glob("*/part.parquet"))) == 2, "a and b")
        time.sleep(1.5)  # the parent takes b's "done"; the worker is in c, which hangs
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole process group
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"Interrupted: 2 of 4 videos finished and kept in {out}, 1 failed (failures.csv); run "
        "the same command to resume"
    )
    # the failed video is listed where the manifest's metadata says, also after an interrupt
    assert "0bad.avi" in (out / "failures.csv").read_text()
    assert "Aborted!" not in stderr and "Traceback" not in stderr
    meta = read_meta(out / "manifest.parquet")
    assert meta["incomplete"] == {"videos": 4, "finished": 2, "missing": ["c.avi"],
                                  "failed": ["0bad.avi"], "interrupted": True}
    assert set(read_manifest(out / "manifest.parquet")["video"]) == {"a.avi", "b.avi"}

    r = adtk("inspect", str(out))
    assert r.exit_code == 1
    assert ("INCOMPLETE: 2 of 4 videos extracted (1 not yet, the run was interrupted: c.avi; "
            "1 failed (listed in failures.csv): 0bad.avi)") in r.output
    r = adtk("split", str(out), "--out", str(tmp_path / "s.parquet"))
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "INCOMPLETE: 2 of 4 videos extracted" in r.output
    assert "--allow-incomplete" in r.output and not (tmp_path / "s.parquet").exists()
    r = adtk("split", str(out), "--out", str(tmp_path / "s.parquet"), "--allow-incomplete")
    assert r.exit_code == 0, r.output
    assert "Warning: " in r.output and "incomplete: 2 of 4 videos extracted" in r.output
    r = adtk("inspect", str(tmp_path / "s.parquet"))
    assert r.exit_code == 0 and "was incomplete when split (--allow-incomplete)" in r.output

    # the same command again, the broken file gone, finishes the job, and the mark is gone
    (src / "0bad.avi").unlink()
    r = adtk("extract", *OBJECTS, str(src), "--out", str(out), "--no-progress")
    assert r.exit_code == 0, r.output
    assert "2 already done" in r.output
    assert read_meta(out / "manifest.parquet")["incomplete"] is None
    assert adtk("inspect", str(out)).exit_code == 0
    r = adtk("split", str(out), "--out", str(tmp_path / "t.parquet"))
    assert r.exit_code == 0 and "Warning" not in r.output


def test_sigterm_before_any_video_finished_leaves_an_empty_manifest_split_explains(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    for i, name in enumerate(("a", "b")):
        make_video(src / f"{name}.avi", seconds=2, walkers=1, seed=i)
    proc = _start(src, out, ".avi")  # every video hangs
    try:
        # the fork server and its worker are up: the run is inside its worker pool
        # (the fork server starts while the run plans; its worker, with the resource
        # tracker, makes three)
        _wait(lambda: _descendants(proc.pid) >= 3, "the worker processes")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # kill PID, a scheduler's stop: the parent only
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, stderr  # 128 + SIGTERM, as a shell reports it
    assert "Interrupted: 0 of 2 videos finished" in stderr
    assert len(read_manifest(out / "manifest.parquet")) == 0
    r = adtk("split", str(out), "--out", str(tmp_path / "s.parquet"))
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "empty manifest (no rows): 0 of 2 videos extracted (2 not yet, the run was " \
           "interrupted: a.avi, b.avi); run the same adtk extract command again" in r.output
    r = adtk("inspect", str(out))
    assert r.exit_code == 1 and "INCOMPLETE: 0 of 2 videos extracted" in r.output


def test_a_failed_video_marks_the_manifest_incomplete(tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    make_video(src / "a.avi", seconds=3, walkers=1)
    make_video(src / "crash_me.avi", seconds=3, walkers=1, seed=1)
    monkeypatch.setenv("ADTK_TEST_CRASH_ON", "crash_me")
    r = adtk("extract", *OBJECTS, str(src), "--out", str(out), "--workers", "1", "--no-progress")
    assert r.exit_code == 1
    assert "the manifest is marked incomplete" in r.output
    meta = read_meta(out / "manifest.parquet")["incomplete"]
    assert meta["failed"] == ["crash_me.avi"] and meta["missing"] == []
    r = adtk("split", str(out), "--out", str(tmp_path / "s.parquet"))
    assert r.exit_code == 2
    assert "1 of 2 videos extracted (1 failed (listed in failures.csv): crash_me.avi)" in r.output
    monkeypatch.delenv("ADTK_TEST_CRASH_ON")
    r = adtk("extract", *OBJECTS, str(src), "--out", str(out), "--no-progress")
    assert r.exit_code == 0 and read_meta(out / "manifest.parquet")["incomplete"] is None
