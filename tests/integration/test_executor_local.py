"""The local executor for real: worker processes that crash, hang, and die with their parent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from toolkit import executor as X
from toolkit.executor_probes import (
    always_abort,
    die_once,
    final,
    hang,
    raise_value_error,
    run_collect,
    square,
)
from toolkit.video.synthetic import make_video

REPO = Path(__file__).resolve().parents[2]




def test_results_events_and_one_final_event_per_task():
    tasks = [X.Task(key=("v", i), fn=square, args=(i,)) for i in range(5)]
    events = run_collect(X.LocalExecutor(workers=2), tasks)
    assert final(events) == {("v", i): ("done", i * i) for i in range(5)}
    assert sorted(p for k, _, p in events if k == "start") == list(range(5))
    assert sum(k in ("done", "failed") for k, _, _ in events) == 5


def test_a_killed_worker_is_retried_and_an_exception_is_not(tmp_path):
    tasks = [X.Task(key="die", fn=die_once, args=(str(tmp_path / "m"),)),
             X.Task(key="raise", fn=raise_value_error),
             X.Task(key="ok", fn=square, args=(3,))]
    out = final(run_collect(X.LocalExecutor(workers=2, retries=1), tasks))
    assert out["die"] == ("done", "second try")
    kind, f = out["raise"]
    assert kind == "failed" and f.kind == "error" and f.attempts == 1
    assert str(f).startswith("ValueError: bad input row 3 (executor_probes.py:")
    assert out["ok"] == ("done", 9)


def test_a_worker_that_always_dies_fails_after_the_retries():
    out = final(run_collect(X.LocalExecutor(workers=1, retries=2),
                            [X.Task(key="a", fn=always_abort), X.Task(key="b", fn=square,
                                                                      args=(2,))]))
    kind, f = out["a"]
    assert kind == "failed" and f.kind == "died" and f.signal == "SIGABRT" and f.attempts == 3
    assert str(f) == "its worker process died (SIGABRT); tried 3 times"
    assert out["b"] == ("done", 4)


def test_a_stalled_task_is_stopped_without_retries():
    t = time.monotonic()
    out = final(run_collect(X.LocalExecutor(workers=2, stall_s=1.0),
                            [X.Task(key="h", fn=hang), X.Task(key="ok", fn=square, args=(1,))]))
    assert time.monotonic() - t < 30
    assert out["h"][1].kind == "stalled" and out["h"][1].attempts == 1
    assert out["ok"] == ("done", 1)


def test_executor_config_checks_and_the_ray_install_hint(monkeypatch):
    from toolkit.errors import AdtkError

    with pytest.raises(AdtkError, match="--retries -1"):
        X.ExecutorConfig(retries=-1)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(AdtkError, match=r'--executor ray needs Ray.*pip install -e "\.\[ray\]"'):
        X.ExecutorConfig(kind="ray")
    from click.testing import CliRunner

    from toolkit.cli import main

    r = CliRunner().invoke(main, ["bench", "--executor", "ray", "--dataset", "digits"])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith("Error: --executor ray needs Ray")


# ----------------------------------------------------------------------------- parent death


def _children() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process, from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z":
            out[int(d.name)] = int(fields[1])
    return out


def _descendants(pid: int) -> set[int]:
    procs = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in procs.items() if pp in frontier} - found
        found |= frontier
    return found


def _kill_parent_and_check_workers(cmd: list[str], n_workers: int, tmp_path: Path,
                                   **env_extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env_extra}
    log = open(tmp_path / "log.txt", "wb")  # noqa: SIM115 - read after the process is gone
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(workers := _descendants(proc.pid)) < n_workers:
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()[-2000:]
            assert time.monotonic() < deadline, "the workers did not start within 120 s"
            time.sleep(0.2)
        time.sleep(1.0)  # let them get busy
        workers = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 the parent only, not its group
        proc.wait()
        deadline = time.monotonic() + 5
        while (alive := workers & set(_children())) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive, f"orphaned workers still running 5 s after the parent died: {alive}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
        log.close()
    text = (tmp_path / "log.txt").read_text()
    assert "Traceback" not in text and "BrokenPipeError" not in text, text[-2000:]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.slow
def test_extract_workers_die_with_their_parent(tmp_path):
    for i in range(4):
        make_video(tmp_path / "in" / f"v{i}.avi", seconds=20, walkers=2, seed=i)
    cmd = [sys.executable, "-m", "toolkit", "extract", str(tmp_path / "in"), "--out",
           str(tmp_path / "out"), "--workers", "2", "--no-progress"]
    # one worker stuck in a decoder (it checks on its parent between frames only), one working
    _kill_parent_and_check_workers(cmd, 4, tmp_path,  # fork server, tracker, 2 workers
                                   ADTK_TEST_CRASH_ON="hang:v0")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.slow
def test_bench_workers_die_with_their_parent(tmp_path):
    cmd = [sys.executable, "-m", "toolkit", "bench", "--dataset", "digits", "--epochs", "50",
           "--width", "8", "--latent-dim", "8", "--device", "cpu", "--method", "baseline",
           "--anomaly-digit", "0,1", "--jobs", "2", "--out", str(tmp_path / "runs"),
           "--no-report"]
    _kill_parent_and_check_workers(cmd, 3, tmp_path)  # tracker, 2 workers


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_ctrl_c_cancels_and_leaves_nothing_half_written(tmp_path, executor):
    """Ctrl-C mid-run: committed videos are listed in a valid manifest, nothing else is; the
    rerun finishes the rest and equals an uninterrupted run."""
    if executor == "ray":
        pytest.importorskip("ray", reason="Ray is not installed")
    from toolkit.data.manifest import read_manifest

    src = tmp_path / "in"
    for i in range(4):
        make_video(src / f"v{i}.avi", seconds=8, walkers=2, seed=i)
    out = tmp_path / "out"

    def command(out: Path, executor: str) -> list[str]:
        return [sys.executable, "-m", "toolkit", "extract", str(src), "--out", str(out),
                "--workers", "2", "--no-progress", "--executor", executor,
                "--target", "object", "--detector", "auto"]  # generated walkers: objects

    cmd = command(out, executor)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # v3 never finishes in the first run (a worker stuck in its decoder), so Ctrl-C always
    # lands mid-run, however fast the others go or however late this test looks
    # Ctrl-C's default action in the command, also where this test itself was started with
    # SIGINT ignored (a background job of a non-interactive shell, nohup), which it inherits
    proc = subprocess.Popen(cmd, cwd=REPO, env={**env, "ADTK_TEST_CRASH_ON": "hang:v3"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob("videos/*/part.parquet")):
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no video finished within 180 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C (to the command, as a terminal would)
        proc.wait(60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    done = {p.parent.name for p in out.glob("videos/*/part.parquet")}
    assert done and not list(out.glob("videos/*/*.tmp"))
    listed = set(read_manifest(out / "manifest.parquet")["video_id"])
    assert listed <= done  # the manifest lists committed videos only
    for d in out.glob("videos/*"):
        assert (d / "part.parquet").is_file(), f"{d}: a video folder without its part"
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(done)} already done (skipped)" in r.stdout
    again = read_manifest(out / "manifest.parquet").sort_values("crop_id", ignore_index=True)
    ref_out = tmp_path / "ref"
    r = subprocess.run(command(ref_out, "local"), cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    ref = read_manifest(ref_out / "manifest.parquet").sort_values("crop_id", ignore_index=True)
    pd.testing.assert_frame_equal(again, ref)


def test_ray_options_are_checked_before_any_work(tmp_path):
    from click.testing import CliRunner

    from toolkit.cli import main

    make_video(tmp_path / "in" / "a.avi", seconds=1, walkers=1)
    base = ["extract", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]
    r = CliRunner().invoke(main, [*base, "--ray-cpus", "2"])
    assert r.exit_code == 2 and r.output == "Error: --ray-cpus: only with --executor ray\n"
    pytest.importorskip("ray", reason="Ray is not installed")
    t = time.monotonic()
    r = CliRunner().invoke(main, [*base, "--executor", "ray", "--ray-address", "127.0.0.1:1"])
    assert r.exit_code == 2 and time.monotonic() - t < 30
    assert r.output.startswith("Error: --ray-address 127.0.0.1:1: nothing answers there")
    assert not (tmp_path / "out" / "videos").exists()
