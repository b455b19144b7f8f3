"""Grids for real: failures recorded while the rest go on, a killed grid resumes, parallel jobs.

Tiny real runs on scikit-learn's digits (1 epoch, narrow nets) keep this to seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.engine import grid as G
from toolkit.engine.run import resolve_bench_config

REPO = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "digits", "--epochs", "1", "--width", "8", "--latent-dim", "8",
        "--device", "cpu"]
TINY_FLAGS = {"dataset": "digits", "epochs": 1, "width": 8, "latent_dim": 8, "device": "cpu"}


def _missing_crops_manifest(tmp_path: Path) -> Path:
    """A valid split manifest whose crop images are not on disk."""
    from toolkit.data import manifest as mf
    from toolkit.data.split import split_manifests
    from toolkit.data.synthetic import make_crop_manifest

    src = mf.write_manifest(make_crop_manifest(300, seed=1, abnormal=0.2, unlabeled=0.0),
                            tmp_path / "crops" / "manifest.parquet")
    split_manifests([src], tmp_path / "split.parquet")
    return tmp_path / "split.parquet"


def test_a_failing_run_is_recorded_and_the_rest_go_on(tmp_path):
    ok1 = resolve_bench_config(None, method="baseline", anomaly_digit=1, **TINY_FLAGS)
    bad = resolve_bench_config(None, method="adnl", data=str(_missing_crops_manifest(tmp_path)),
                               epochs=1, device="cpu")
    ok2 = resolve_bench_config(None, method="adnl", anomaly_digit=1, **TINY_FLAGS)
    out = tmp_path / "runs"
    res = G.run_grid([ok1, bad, ok2], out)
    assert [o.status for o in res.outcomes] == ["finished", "failed", "finished"]
    assert "crop file missing" in res.failed[0].error
    err = json.loads((out / bad.run_id / "error.json").read_text())
    assert err["run_id"] == bad.run_id and "crop file missing" in err["error"]
    assert "Traceback" in err["traceback"]
    for c in (ok1, ok2):
        assert (out / c.run_id / "metrics.json").is_file()
    # the report lists the failure with its error
    from toolkit.eval.report import build_report

    rep = build_report(out, tmp_path / "report.html", samples=None)
    assert rep.n_failed == 1 and rep.n_finished == 2
    assert "crop file missing" in (tmp_path / "report.html").read_text()


def test_cli_grid_exit_code_and_report(tmp_path):
    from toolkit.data.synthetic import make_split_manifest

    out = tmp_path / "runs"
    # ADNL cannot train on a split without labelled anomalies in train: that run fails, the
    # baseline finishes. (--labelled-anomalies 0 is no longer a failure: ADNL trains as its AAE.)
    man = make_split_manifest(tmp_path / "m", counts={"train": (20, 0), "test": (6, 3)})
    data = ["--data", str(man), "--size", "16"]
    args = ["bench", *TINY, *data, "--method", "baseline", "--method", "adnl",
            "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    assert "FAILED: method 'adnl' needs labelled anomalies" in res.output
    assert "1 of 2 runs failed" in res.output
    assert (out / "report.html").is_file() and (out / "report_tables" / "runs.csv").is_file()
    # a single run keeps the one-line error of adtk bench (exit 2)
    res = CliRunner().invoke(main, ["bench", *TINY, *data, "--method", "adnl", "--out", str(out),
                                    "--no-report"])
    assert res.exit_code == 2 and "Error: method 'adnl' needs labelled anomalies" in res.output


@pytest.mark.slow
def test_a_killed_grid_resumes_without_rerunning_finished_runs(tmp_path):
    out = tmp_path / "runs"
    args = [*TINY, "--epochs", "2", "--method", "baseline", "--anomaly-digit", "0-3",
            "--out", str(out), "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "bench", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not list(out.glob("*/metrics.json")):
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no run finished within 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the grid mid-way
        proc.wait()
    before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")}
    assert 1 <= len(before) < 4, "the grid should have been killed mid-way"

    res = CliRunner().invoke(main, ["bench", *args])
    assert res.exit_code == 0, res.output
    assert f"{len(before)} already finished (skipped)" in res.output
    assert f"{4 - len(before)} trained" in res.output
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")}
    assert len(after) == 4
    for run_id, mtime in before.items():
        assert after[run_id] == mtime, f"{run_id} was re-run"
    assert not list(out.glob("*/checkpoint.pt"))  # interrupted runs resumed and cleaned up


@pytest.mark.slow
def test_parallel_jobs_split_the_cores(tmp_path):
    cfgs = G.plan(TINY_FLAGS, {"method": ["baseline", "adnl"], "anomaly_digit": [5]})
    out = tmp_path / "runs"
    res = G.run_grid(cfgs, out, jobs=2)
    assert [o.status for o in res.outcomes].count("finished") == 2, res.outcomes
    cores = len(os.sched_getaffinity(0))
    for c in cfgs:
        saved = json.loads((out / c.run_id / "config.json").read_text())
        assert saved["num_threads"] == max(1, cores // 2)
        assert saved["run_id"] == c.run_id  # num_threads is not part of the run id
    again = G.run_grid(cfgs, out, jobs=2)
    assert len(again.skipped) == 2 and not again.finished


def test_paper_suite_without_a_manifest_runs_table1_and_says_so(tmp_path):
    res = CliRunner().invoke(main, ["bench", "--suite", "paper", *TINY, "--method", "baseline",
                                    "--anomaly-digit", "0", "--out", str(tmp_path / "runs"),
                                    "--no-report"])
    assert res.exit_code == 0, res.output
    assert "Tables 2-4 run on a crop manifest (--data); running Table 1." in res.output
    assert len(list((tmp_path / "runs").glob("*/metrics.json"))) == 1
