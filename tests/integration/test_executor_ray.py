"""The Ray executor against a real local Ray cluster (2 CPUs, one per test session).

Same outputs as the local executor, a killed worker retried, a failing video recorded, a task
that cannot see its files failed with a clear message.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from toolkit import executor as X
from toolkit.cli import main
from toolkit.data.manifest import read_manifest
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

pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

TINY = ["--dataset", "digits", "--epochs", "1", "--width", "8", "--latent-dim", "8",
        "--device", "cpu"]


def test_events_retries_and_errors_on_ray(ray_cluster, tmp_path):
    tasks = [X.Task(key=("v", i), fn=square, args=(i,)) for i in range(3)]
    tasks += [X.Task(key="die", fn=die_once, args=(str(tmp_path / "m"),)),
              X.Task(key="raise", fn=raise_value_error),
              X.Task(key="abort", fn=always_abort)]
    events = run_collect(X.RayExecutor(retries=1), tasks)
    out = final(events)
    assert {out[("v", i)] for i in range(3)} == {("done", 0), ("done", 1), ("done", 4)}
    assert sorted(p for k, _, p in events if k == "start") == [0, 1, 2]
    assert out["die"] == ("done", "second try")  # the killed worker's task ran again
    kind, f = out["raise"]
    assert kind == "failed" and f.kind == "error" and f.attempts == 1  # never retried
    assert str(f).startswith("ValueError: bad input row 3")
    kind, f = out["abort"]
    assert kind == "failed" and f.kind == "died" and f.attempts == 2
    assert sum(k in ("done", "failed") for k, _, _ in events) == len(tasks)


def test_a_task_that_cannot_see_its_files_fails_clearly(ray_cluster, tmp_path):
    missing = tmp_path / "not-mounted" / "out"
    out = final(run_collect(X.RayExecutor(), [
        X.Task(key="a", fn=square, args=(2,), paths=(str(missing),)),
        X.Task(key="b", fn=square, args=(3,), paths=(str(tmp_path),))]))
    kind, f = out["a"]
    assert kind == "failed" and f.kind == "unreachable"
    assert str(f).startswith(f"{missing}: not visible on node ")
    assert "filesystem every node mounts at the same path" in str(f)
    assert out["b"] == ("done", 9)


def test_a_stalled_task_is_cancelled_on_ray(ray_cluster):
    t = time.monotonic()
    out = final(run_collect(X.RayExecutor(stall_s=2.0),
                            [X.Task(key="h", fn=hang), X.Task(key="ok", fn=square, args=(1,))]))
    assert time.monotonic() - t < 60
    assert out["h"][0] == "failed" and out["h"][1].kind == "stalled"
    assert out["ok"] == ("done", 1)


def _extract(src: Path, out: Path, *extra: str):
    # the generated walkers are no people a person detector knows: moving objects
    return CliRunner().invoke(main, ["extract", str(src), "--out", str(out), "--no-progress",
                                     "--target", "object", "--detector", "auto", *extra],
                              catch_exceptions=False)


@pytest.mark.slow
def test_ray_extract_equals_local_and_resumes(ray_cluster, tmp_path):
    src = tmp_path / "in"
    make_video(src / "normal" / "a.avi", seconds=4, walkers=2, seed=0)
    make_video(src / "abnormal" / "b.avi", seconds=4, walkers=1, anomaly="cart", seed=1)
    make_video(src / "c.avi", seconds=3, walkers=1, seed=2)
    local, ray = tmp_path / "local", tmp_path / "ray"
    r1 = _extract(src, local, "--workers", "2")
    r2 = _extract(src, ray, "--executor", "ray")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    a = read_manifest(local / "manifest.parquet").sort_values("crop_id", ignore_index=True)
    b = read_manifest(ray / "manifest.parquet").sort_values("crop_id", ignore_index=True)
    assert len(a) > 20 and a["sequence_id"].nunique() >= 3
    pd.testing.assert_frame_equal(a, b)
    for col in ("path", "path_oversize"):
        for rel in a[col]:
            assert (local / rel).read_bytes() == (ray / rel).read_bytes(), rel
    assert json.loads((ray / "failures.json").read_text()) == []
    again = _extract(src, ray, "--executor", "ray")
    assert "0 extracted, 3 already done (skipped), 0 failed" in again.output


@pytest.mark.slow
def test_a_failing_video_is_recorded_and_the_rest_finish_on_ray(ray_cluster, tmp_path,
                                                               monkeypatch):
    src = tmp_path / "in"
    make_video(src / "a.avi", seconds=3, walkers=1)
    make_video(src / "crash_me.avi", seconds=3, walkers=1, seed=1)
    monkeypatch.setenv("ADTK_TEST_CRASH_ON", "crash_me")  # the decoder aborts the process
    out = tmp_path / "out"
    r = _extract(src, out, "--executor", "ray", "--retries", "1")
    assert r.exit_code == 1, r.output
    assert "crash_me.avi: the worker process died (the worker crashed or was killed); " \
           "tried 2 times" in r.output
    failed = json.loads((out / "failures.json").read_text())
    assert [f["video"] for f in failed] == ["crash_me.avi"]
    assert set(read_manifest(out / "manifest.parquet")["video"]) == {"a.avi"}
    assert not list((out / ".staging").glob("*/part.parquet"))


@pytest.mark.slow
def test_ray_grid_equals_local(ray_cluster, tmp_path):
    args = [*TINY, "--method", "baseline", "--method", "adnl", "--anomaly-digit", "3",
            "--no-report"]
    r1 = CliRunner().invoke(main, ["bench", *args, "--jobs", "2", "--out",
                                   str(tmp_path / "local")])
    r2 = CliRunner().invoke(main, ["bench", *args, "--executor", "ray", "--out",
                                   str(tmp_path / "ray")])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert "on Ray" in r2.output
    ids = sorted(p.parent.name for p in (tmp_path / "local").glob("*/metrics.json"))
    assert len(ids) == 2
    assert ids == sorted(p.parent.name for p in (tmp_path / "ray").glob("*/metrics.json"))
    timing = ("_time_s", "per_s", "finished", "time")  # measurements of speed, not results
    for rid in ids:
        m1, m2 = (json.loads((tmp_path / d / rid / "metrics.json").read_text())
                  for d in ("local", "ray"))
        strip = lambda m: {k: v for k, v in m.items() if not any(t in k for t in timing)}  # noqa: E731
        assert strip(m1) == strip(m2), rid
        s1, s2 = (pd.read_parquet(tmp_path / d / rid / "scores.parquet") for d in ("local", "ray"))
        pd.testing.assert_frame_equal(s1, s2)
    again = CliRunner().invoke(main, ["bench", *args, "--executor", "ray", "--out",
                                      str(tmp_path / "ray")])
    assert "2 already finished (skipped)" in again.output
