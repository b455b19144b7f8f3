"""Shared fixtures, one home each. Real data lives in ../shared/data (never copied into the repo).

Synthetic manifests and videos come from the toolkit's own builders (toolkit/data/synthetic.py,
toolkit/video/synthetic.py); what only tests need (fake run folders, tiny digit sets) is here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ADTK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory):
    """adtk's file cache (the freed YOLOX graph) in a folder of the test session, never the
    user's ~/.cache; subprocesses (the CLI tests) inherit it."""
    old = os.environ.get("ADTK_CACHE_DIR")
    os.environ["ADTK_CACHE_DIR"] = str(tmp_path_factory.mktemp("adtk-cache"))
    yield
    if old is None:
        os.environ.pop("ADTK_CACHE_DIR", None)
    else:
        os.environ["ADTK_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set ADTK_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_digits():
    """scikit-learn's 8x8 digits at 16x16, 0 the anomaly, 400 normal train images.

    Shared by the method and engine tests; treat it as read-only (subset, never assign).
    """
    import torch

    from toolkit.data.datasets import load_digit_data

    torch.set_num_threads(1)  # tiny nets: one thread beats two on a shared CPU
    d = load_digit_data("digits", anomaly_digit=0, seed=0, size=16)
    d.train = d.train.subset(np.arange(len(d.train)) < 400)
    return d


BASE_CONFIG = {
    "method": "adnl", "dataset": "mnist-5k", "data": None, "crop": "normal",
    "anomaly_digit": 0, "unseen_digit": None, "seed": 1, "neg_loss": "scaled",
    "neg_weight": 1.0, "warmup_epochs": 0, "labelled_anomalies": "all", "preset": "quick",
    "epochs": 3, "batch_size": 64, "lr": 0.0002, "latent_dim": 16, "width": 8,
    "select": "last", "device": "cpu",
}


def _write_run(
    root: Path,
    *,
    auroc: float | None = None,
    aupr: float | None = None,
    finished: bool = True,
    error: str | None = None,
    n: int = 60,
    extra_metrics: dict | None = None,
    **settings,
) -> Path:
    """A run folder per docs/run-folder.md, with real files and known numbers.

    Scores are drawn so that abnormal ones are higher; unless given, the metrics are computed
    from them with toolkit.eval.metrics (as bench does).
    """
    from toolkit.config import config_hash
    from toolkit.eval import metrics as M

    cfg = {**BASE_CONFIG, **settings}
    hashed = {k: v for k, v in cfg.items() if k != "device"}
    run_id = config_hash(hashed)
    cfg["run_id"] = run_id
    d = root / run_id
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    rng = np.random.default_rng(abs(hash(run_id)) % 2**32)
    labels = np.array(["normal"] * (n - n // 4) + ["abnormal"] * (n // 4))
    y = (labels == "abnormal").astype(int)
    score = rng.normal(0, 1, n) + 2.0 * y
    scores = pd.DataFrame({
        "sample_id": [f"{cfg['dataset']}:{i}" for i in range(n)],
        "split": ["test"] * n,
        "label": labels,
        "score": score,
        "event": pd.array([str(cfg["anomaly_digit"]) if v else None for v in y], dtype="string"),
        "target": np.where(y == 1, cfg["anomaly_digit"] or 0, 7).astype("int64"),
    })
    scores.to_parquet(d / "scores.parquet")
    hist = pd.DataFrame({
        "epoch": np.arange(1, cfg["epochs"] + 1, dtype="int64"),
        "loss": np.linspace(1, 0.2, cfg["epochs"]),
        "rec": np.linspace(1, 0.2, cfg["epochs"]),
        "adv": np.nan, "neg": np.nan, "disc": np.nan,
        "val_auc": np.linspace(0.6, 0.95, cfg["epochs"]),
        "time_s": np.arange(1, cfg["epochs"] + 1, dtype="float64"),
    })
    hist.to_parquet(d / "history.parquet")
    if error is not None:
        (d / "error.json").write_text(json.dumps({
            "run_id": run_id, "error": error, "traceback": "Traceback...\n", "time": "now"}))
        return d
    if not finished:
        return d
    m = M.score_metrics(y, score, n_boot=200)
    if auroc is not None:
        m["test_auroc"] = auroc
        m["test_auroc_ci95"] = [auroc - 0.01, min(1.0, auroc + 0.01)]
    if aupr is not None:
        m["test_aupr"] = aupr
    metrics = {
        **{k: cfg[k] for k in ("method", "dataset", "data", "crop", "seed", "anomaly_digit",
                               "unseen_digit", "neg_loss", "neg_weight", "labelled_anomalies",
                               "preset")},
        "run_id": run_id, **m,
        "best_val_auc": 0.95, "best_epoch": cfg["epochs"], "selected_epoch": cfg["epochs"],
        "select": "last", "test_auroc_seen": None, "test_auroc_unseen": None,
        "test_auroc_by_event": {}, "test_frame_auroc": None, "epochs": cfg["epochs"],
        "n_train": 100, "n_train_abnormal": 10, "wall_time_s": 3.5,
        "train_images_per_s": 1000.0, "device": "cpu",
        "versions": {"adtk": "0.1.0", "torch": "2.x", "python": "3.11"},
        "hardware": {"cpu": "test cpu", "cores": 2, "gpu": None},
        "finished_at": "2026-01-01T00:00:00",
        **(extra_metrics or {}),
    }
    (d / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return d


@pytest.fixture()
def write_run():
    """:func:`_write_run`: a finished (or failed, or unfinished) run folder with known numbers."""
    return _write_run


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster (2 CPUs) for the whole test session; skips without Ray."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    import logging

    # Ray's workers inherit this process's environment: they must import this checkout's
    # toolkit and the tests' own work functions.
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


#: Network size of the tiny test methods.
TINY_NET = dict(width=8, latent_dim=8)


def _tiny_method(name: str, **params):
    """A small instance of registered method ``name``: TINY_NET where it declares those
    settings, and a one-epoch pretraining where it has one (so two epochs reach its main
    objective)."""
    from toolkit.methods import create_method, get_method

    declared = {s.name for s in get_method(name).settings_spec()}
    kw = {k: v for k, v in {**TINY_NET, "pretrain_epochs": 1}.items() if k in declared}
    return create_method(name, **{**kw, **params})


@pytest.fixture(scope="session")
def tiny_method():
    """:func:`_tiny_method`: a small instance of a registered method."""
    return _tiny_method


def _adtk(*args) -> str:
    """Run the real ``adtk`` CLI in-process; its output, after asserting exit code 0."""
    from click.testing import CliRunner

    from toolkit.cli import main

    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture(scope="session")
def adtk():
    """``adtk(*args) -> output``: the CLI, asserting success."""
    return _adtk


@pytest.fixture()
def ped2_clips(shared_data, tmp_path):
    """``ped2_clips(*rel) -> folder``: links (never copies) the named UCSD Ped2 clips, e.g.
    ``train/train_01.mp4``, into a fresh folder laid out like the dataset's."""
    def link(*rel: str) -> Path:
        clips = tmp_path / "ped2"
        for r in rel:
            (clips / r).parent.mkdir(parents=True, exist_ok=True)
            (clips / r).symlink_to(shared_data / "ucsd-ped2" / r)
        return clips

    return link
