"""Score fusion (toolkit.engine.fuse): the geometric mean of two finished runs' scores, as a
run folder of its own, and the suite's Table 2 fusion rows."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from toolkit.engine.fuse import FUSION, fuse_runs, fuse_suite, fused_scores
from toolkit.errors import AdtkError
from toolkit.eval import tables as T


def scores(values, labels=None, ids=None):
    n = len(values)
    return pd.DataFrame({
        "sample_id": pd.array(ids or [f"c{i}" for i in range(n)], dtype="string"),
        "split": pd.array(["test"] * n, dtype="string"),
        "label": pd.array(labels or ["normal"] * n, dtype="string"),
        "score": np.asarray(values, np.float64),
        "event": pd.array([None] * n, dtype="string"),
    })


def test_fused_score_is_the_geometric_mean_in_the_first_runs_order():
    a = scores([0.01, 2.0, 0.5])
    b = scores([0.02, 0.5, 0.04], ids=["c2", "c1", "c0"])  # another order: c0 0.04, c2 0.02
    f = fused_scores(a, b)
    assert f["sample_id"].tolist() == ["c0", "c1", "c2"] and list(f.columns) == list(a.columns)
    assert np.allclose(f["score"], [np.sqrt(0.01 * 0.04), np.sqrt(2.0 * 0.5), np.sqrt(0.5 * 0.02)])
    # a zero error does not wipe out the other run's ranking
    z = fused_scores(scores([0.0, 0.0]), scores([1.0, 2.0]))
    assert z["score"].iloc[0] < z["score"].iloc[1]


def test_runs_on_different_samples_are_refused_with_the_difference():
    with pytest.raises(AdtkError, match=r"1 only in the first, 0 only in the second; e.g. 'c2'"):
        fused_scores(scores([1, 2, 3]), scores([1, 2]))
    with pytest.raises(AdtkError, match="0 only in the first, 1 only in the second"):
        fused_scores(scores([1, 2]), scores([1, 2, 3]))
    with pytest.raises(AdtkError, match="scores list a sample twice"):
        fused_scores(scores([1, 2], ids=["c0", "c0"]), scores([1, 2]))
    with pytest.raises(AdtkError, match="the second run has NaN or negative scores"):
        fused_scores(scores([1, 2]), scores([1, np.nan]))
    with pytest.raises(AdtkError, match="the first run has NaN or negative scores"):
        fused_scores(scores([-1.0, 2]), scores([1, 2]))


def make_run(root, rid, method, seed, values, labels, sha="s1", finished=True):
    d = root / rid
    d.mkdir(parents=True)
    cfg = {"run_id": rid, "method": method, "seed": seed, "dataset": "manifest",
           "data": str(root / f"split{seed}.parquet"), "data_sha256": sha, "crop": "normal",
           "input": "motion", "epochs": 15}
    (d / "config.json").write_text(json.dumps(cfg))
    scores(values, labels).to_parquet(d / "scores.parquet")
    if finished:
        (d / "metrics.json").write_text(json.dumps({**cfg, "n_train": 10, "finished_at": "t0",
                                                    "n_train_abnormal": 3 * (method == "adnl")}))
    return d


LABELS = ["normal", "normal", "abnormal", "normal", "abnormal"]


def test_a_fused_run_is_a_finished_run_folder(tmp_path):
    # the baseline ranks well; ADNL ties a normal crop (c1) with the anomalies
    b = make_run(tmp_path, "b1", "baseline", 1, [0.1, 0.3, 0.5, 0.2, 0.4], LABELS)
    a = make_run(tmp_path, "a1", "adnl", 1, [0.01, 1.7, 1.7, 0.01, 1.6], LABELS)
    f = fuse_runs(b, a, tmp_path / "out")
    cfg = json.loads((f / "config.json").read_text())
    assert cfg["method"] == FUSION and cfg["fused_runs"] == ["b1", "a1"]
    assert cfg["fused_methods"] == ["baseline", "adnl"] and cfg["seed"] == 1
    m = json.loads((f / "metrics.json").read_text())
    s = pd.read_parquet(f / "scores.parquet")
    y = (s["label"] == "abnormal").to_numpy()
    assert m["test_auroc"] == pytest.approx(roc_auc_score(y, s["score"]))
    assert m["test_auroc"] == 1.0  # the tie is broken; ADNL alone: 0.917
    assert m["n_train_abnormal"] == 3
    # the same two runs: the same run id, and nothing rewritten while they stay as they are
    stamp = (f / "metrics.json").stat().st_mtime_ns
    assert fuse_runs(b, a, tmp_path / "out") == f
    assert (f / "metrics.json").stat().st_mtime_ns == stamp
    ma = json.loads((a / "metrics.json").read_text())  # ADNL trained again: fused again
    (a / "metrics.json").write_text(json.dumps({**ma, "finished_at": "later"}))
    assert fuse_runs(b, a, tmp_path / "out") == f
    assert json.loads((f / "metrics.json").read_text())["fused_finished_at"] == ["t0", "later"]
    assert T.method_name(FUSION) == "Fusion (geometric mean)"


def test_runs_on_other_data_or_unfinished_are_refused(tmp_path):
    b = make_run(tmp_path, "b1", "baseline", 1, [0.1, 0.2], LABELS[:2])
    other = make_run(tmp_path, "a1", "adnl", 1, [0.1, 0.2], LABELS[:2], sha="s2")
    with pytest.raises(AdtkError, match="were run on different data"):
        fuse_runs(b, other, tmp_path / "out")
    busy = make_run(tmp_path, "a2", "adnl", 1, [0.1, 0.2], LABELS[:2], finished=False)
    with pytest.raises(AdtkError, match="a2: not a finished run"):
        fuse_runs(b, busy, tmp_path / "out")


def test_the_suite_fuses_each_seed_of_table2_once(tmp_path):
    ids = []
    for seed in (1, 2):
        ids += [make_run(tmp_path, f"b{seed}", "baseline", seed, [0.1, 0.3, 0.5], LABELS[:3]).name,
                make_run(tmp_path, f"a{seed}", "adnl", seed, [0.2, 1.7, 1.7], LABELS[:3]).name]
    ids.append(make_run(tmp_path, "b3", "baseline", 3, [0.1, 0.3, 0.5], LABELS[:3]).name)
    plan = {"suite": "ped2", "parts": [{"name": "official", "run_ids": []},
                                       {"name": "table2", "run_ids": ids}]}
    (tmp_path / "suite_plan.json").write_text(json.dumps(plan))
    made, notes = fuse_suite(tmp_path)
    assert len(made) == 2 and notes == []  # seed 3 has no ADNL run: nothing to fuse there
    assert [json.loads((f / "config.json").read_text())["seed"] for f in made] == [1, 2]
    again, _ = fuse_suite(tmp_path)
    t2 = json.loads((tmp_path / "suite_plan.json").read_text())["parts"][1]
    assert again == made and t2["run_ids"] == [*ids, *(f.name for f in made)]
    assert fuse_suite(tmp_path / "nothing") == ([], [])  # no plan: nothing to fuse


def test_one_pair_that_cannot_be_fused_is_a_note_and_the_others_go_on(tmp_path):
    ids = [make_run(tmp_path, "b1", "baseline", 1, [0.1, 0.3, 0.5], LABELS[:3]).name,
           make_run(tmp_path, "a1", "adnl", 1, [0.2, 1.7], LABELS[:2]).name,  # a crop short
           make_run(tmp_path, "b2", "baseline", 2, [0.1, 0.3, 0.5], LABELS[:3]).name,
           make_run(tmp_path, "a2", "adnl", 2, [0.2, 1.7, 1.7], LABELS[:3]).name,
           make_run(tmp_path, "c2", "adnl", 2, [0.3, 1.6, 1.7], LABELS[:3]).name]
    (tmp_path / "suite_plan.json").write_text(json.dumps(
        {"parts": [{"name": "table2", "run_ids": ids}]}))
    made, notes = fuse_suite(tmp_path)
    # seed 2 has two ADNL runs (another setting): each is fused with the seed's one baseline
    assert sorted(json.loads((f / "config.json").read_text())["fused_runs"][1]
                  for f in made) == ["a2", "c2"]
    assert len(notes) == 1 and "fusion of b1 and a1 skipped: " in notes[0]
    assert "scored different samples" in notes[0]


def test_table2_shows_the_fusion_row_with_a_note(tmp_path):
    from pathlib import Path

    from toolkit.eval import suite_tables as ST
    from toolkit.eval.tables import Run

    def run(rid, method, micro):
        cfg = {"run_id": rid, "method": method, "seed": 1, "size": 32, "epochs": 15,
               "train_every": 8, "data": "splits/s1.parquet"}
        return Run(Path(rid), cfg, {**cfg, "frame_auroc_micro": micro,
                                    "frame_eval": {"aggregate": "max"}})

    runs = [run("b", "baseline", 0.8), run("a", "adnl", 0.7), run("f", "fusion", 0.9)]
    plan = {"preset": "quick", "parts": [{"name": "table2", "title": "Table 2", "seeds": [1],
                                          "axis": None, "run_ids": ["b", "a", "f"]}]}
    (t,) = ST.part_tables(runs, plan)
    assert [r.labels[0] for r in t.rows][-1] == "Fusion (geometric mean)"
    assert t.rows[-1].cells[0].value == 0.9 and "geometric mean" in t.notes[-1]


def test_a_run_made_before_a_setting_existed_pairs_with_one_that_has_its_default(tmp_path):
    # a suite resumed across an upgrade: the baseline's config.json (older adtk) has no tta,
    # the ADNL run (newer) says "none"; the same setting, so they are fused
    b = make_run(tmp_path, "b1", "baseline", 1, [0.1, 0.3, 0.5], LABELS[:3])
    a = make_run(tmp_path, "a1", "adnl", 1, [0.2, 1.7, 1.7], LABELS[:3])
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "tta": "none"}))
    (tmp_path / "suite_plan.json").write_text(json.dumps(
        {"parts": [{"name": "table2", "run_ids": [b.name, a.name]}]}))
    made, notes = fuse_suite(tmp_path)
    assert len(made) == 1 and notes == []
    # another tta is another setting: not paired
    (a / "config.json").write_text(json.dumps({**cfg, "tta": "hflip"}))
    for f in made:
        import shutil

        shutil.rmtree(f)
    (tmp_path / "suite_plan.json").write_text(json.dumps(
        {"parts": [{"name": "table2", "run_ids": [b.name, a.name]}]}))
    made, notes = fuse_suite(tmp_path)
    assert made == [] and "has 0 baseline runs" in notes[0]
