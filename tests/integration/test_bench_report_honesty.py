"""What ``adtk bench`` and ``adtk report`` say about a run on interval-labelled footage: the
crops left out of scoring, the weak-label defaults and their label in tables, the anomalies
that trained, the kept epoch, a resume and its CPU time (a new user's trial, items 3-16)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.manifest import read_manifest, write_manifest
from toolkit.data.synthetic import make_split_manifest

TINY = ["--epochs", "3", "--batch-size", "16", "--size", "16", "--width", "8",
        "--latent-dim", "8", "--device", "cpu", "--threads", "1", "--no-progress"]


def _bench(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def interval_runs(tmp_path_factory):
    """Baseline and ADNL trained on an interval-labelled manifest whose val and test splits
    hold unlabeled crops too (footage outside every interval of a labelled video), and so
    does train."""
    tmp = tmp_path_factory.mktemp("interval")
    man = make_split_manifest(tmp)
    df = read_manifest(man)
    df["label_source"] = "interval"
    for split, n in (("train", 4), ("test", 3), ("val", 2)):
        rows = np.flatnonzero((df["split"] == split).to_numpy()
                              & (df["label"] == "normal").to_numpy())[:n]
        df.loc[df.index[rows], "label"] = "unlabeled"
    man = write_manifest(df, man, kind="split")
    out = tmp / "runs"
    r = _bench("--data", man, "--method", "baseline", "--method", "adnl", "--out", out, *TINY)
    assert r.exit_code == 0, r.output
    return man, out, r.output, df


@pytest.mark.slow  # the module's runs train (about 30 s)
def test_bench_says_which_crops_are_not_scored(interval_runs):
    man, _, output, df = interval_runs
    n_train, n_test, n_val = (int((df["split"] == s).sum()) for s in ("train", "test", "val"))
    assert (f"note: {man}: 4 of {n_train} train crops, 3 of {n_test} test crops and 2 of "
            f"{n_val} val crops are unlabeled and left out of training and scoring") in output


@pytest.mark.slow  # the module's runs train (about 30 s)
def test_bench_announces_the_weak_label_defaults_before_training(interval_runs):
    _, _, output, _ = interval_runs
    (line,) = [ln for ln in output.splitlines() if "not per object" in ln]
    assert line.startswith("note: adnl on ")
    assert "interval labels (per frame, not per object)" in line
    assert "--neg-select auto chose mil-once" in line
    assert "--neg-bound auto chose margin (--neg-margin 4)" in line
    assert line.endswith("the paper's unbounded form: --neg-bound none --neg-select all")
    assert output.index(line) < output.index("test AUROC")  # before any run's result


@pytest.mark.slow  # the module's runs train (about 30 s)
def test_report_is_honest_about_a_weak_label_run(interval_runs, tmp_path):
    _, out, _, _ = interval_runs
    r = CliRunner().invoke(main, ["report", str(out), "--out", str(tmp_path / "r.html"),
                                  "--no-images"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text()
    tables = tmp_path / "r_tables"
    # the only ADNL run is still not the paper's ADNL
    for ext in ("csv", "md", "tex"):
        text = (tables / f"table2.{ext}").read_text()
        assert "ADNL (weak labels: mil-once, margin 4)" in text, text
        assert "Table 2:" not in text and "normal crops" not in text
    tex = (tables / "table2.tex").read_text()
    assert "frame-level labels (an interval" in tex and "people sharing a frame" in tex
    assert "people sharing a frame" in (tables / "runs.md").read_text()
    assert "ADNL (weak labels: mil-once, margin 4)" in html
    # ADNL's own settings are not "common to every run" beside a baseline that lacks them
    common = re.search(r"Common to every run: ([^<]*)", html).group(1)
    assert "Neg bound" not in common and "Neg select" not in common
    assert re.search(r"Settings of some methods only: ADNL: [^<]*Neg bound = margin", html)
    # the anomalies that trained: available, and how many the choice kept per epoch
    adnl = next(json.loads(p.read_text()) for p in out.glob("*/metrics.json")
                if json.loads(p.read_text())["method"] == "adnl")
    hist = pd.read_parquet(out / adnl["run_id"] / "history.parquet")
    chosen = int(hist["neg_selected"].dropna().iloc[-1])
    assert chosen < adnl["n_train_abnormal"]
    assert "labelled anomalies used" not in html
    assert (f"<td>train abnormal crops (labelled), available</td><td class=\"mono\">"
            f"{adnl['n_train_abnormal']}</td>") in html
    assert re.search(rf"of those used as negatives \(mil-once\)</td><td class=\"mono\">"
                     rf"{chosen} per epoch \(epochs? ", html)
    # the kept model's val AUC, named as such; the crop-level frame AUROC says what it is
    assert "val AUC of the kept model, epoch 3 (last)" in html
    assert "frames with crops" not in html
    assert "frame AUROC of the frames holding test crops" in html


def test_bench_help_describes_ray_per_run():
    r = CliRunner().invoke(main, ["bench", "--help"], terminal_width=200)
    text = " ".join(r.output.split())
    text = text[text.index("--ray-cpus"):text.index("--retries")]
    assert "video" not in text and "torchvision" not in text
    assert "CPUs each run reserves" in text and "GPUs each run reserves" in text
    # what the help says about --threads is what the Ray plan does
    assert "--threads, when given, is both and wins" in text
    from types import SimpleNamespace

    from toolkit.engine.grid import ray_resources
    from toolkit.engine.run import resolve_bench_config

    cfg = resolve_bench_config(method="baseline", dataset="digits", anomaly_digit=1,
                               num_threads=2, device="cpu")
    ((_, cpus, _, _),) = ray_resources([cfg], SimpleNamespace(cpus=4.0, gpus=None))
    assert cpus == 2.0
    ((c, cpus, _, _),) = ray_resources([dataclasses.replace(cfg, num_threads=None)],
                                       SimpleNamespace(cpus=4.0, gpus=None))
    assert cpus == 4.0 and c.num_threads == 4


def test_a_resumed_run_says_so_and_counts_every_session(tmp_path, monkeypatch):
    from toolkit.engine.run import resolve_bench_config, run_one
    from toolkit.engine.train import TrainingInterrupted

    cfg = resolve_bench_config(method="baseline", dataset="digits", anomaly_digit=1, epochs=3,
                               batch_size=64, width=8, latent_dim=8, device="cpu",
                               num_threads=1)

    def stop(epoch, row):
        if epoch == 2:
            raise TrainingInterrupted("stop")

    with pytest.raises(TrainingInterrupted):
        run_one(cfg, tmp_path, progress=False, on_epoch=(stop,))
    import torch

    first = torch.load(tmp_path / cfg.run_id / "checkpoint.pt", weights_only=False)["cpu_time"]
    assert first > 0
    r = _bench("--dataset", "digits", "--anomaly-digit", 1, "--method", "baseline", "--epochs",
               3, "--batch-size", 64, "--width", 8, "--latent-dim", 8, "--device", "cpu",
               "--threads", 1, "--no-report", "--no-progress", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert f"baseline {cfg.run_id}: resumed from epoch 2 (of 3)" in r.output
    assert "resumed from epoch 2)" in r.output  # and on the run's result line
    m = json.loads((tmp_path / cfg.run_id / "metrics.json").read_text())
    assert m["resumed_from_epoch"] == 2 and m["cpu_time_s"] > first


@pytest.mark.slow  # a real bench in a subprocess, interrupted (resuming: test_train)
def test_ctrl_c_in_bench_says_what_was_kept_and_how_to_go_on(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "toolkit", "bench", "--dataset", "digits", "--anomaly-digit",
           "1,2", "--method", "baseline", "--epochs", "200", "--batch-size", "64", "--width",
           "8", "--latent-dim", "8", "--device", "cpu", "--threads", "1", "--no-report",
           "--progress", "--out", str(tmp_path / "runs")]
    # SIGINT back to its default in the child: pytest run as a background job of a
    # non-interactive shell (nohup, a CI runner) ignores it, and a child inherits that
    proc = subprocess.Popen(cmd, cwd=repo, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "runs").glob("*/checkpoint*")):
            assert time.time() < deadline and proc.poll() is None, "no checkpoint written"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("Interrupted: 0 of 2 runs finished and kept")
    assert "Traceback" not in err and "Aborted!" not in err
