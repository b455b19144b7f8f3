"""Tables from run folders: numbers equal metrics.json, layout like the paper, CSV/MD/LaTeX."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from toolkit.eval import metrics as M
from toolkit.eval import tables as T


def _csv_rows(table: T.Table) -> list[dict]:
    return list(csv.DictReader(io.StringIO(table.to_csv())))


@pytest.fixture()
def table1_runs(tmp_path, write_run):
    """2 methods x 3 digits x 2 seeds with known AUROCs; one failed and one unfinished run."""
    known = {}
    for mi, method in enumerate(["baseline", "adnl"]):
        for digit in (0, 1, 2):
            for seed in (1, 2):
                v = round(0.5 + 0.1 * mi * 4 + 0.01 * digit + 0.003 * seed, 6)
                write_run(tmp_path, method=method, anomaly_digit=digit, seed=seed, auroc=v,
                          aupr=v - 0.05)
                known[(method, digit, seed)] = v
    write_run(tmp_path, method="adnl", anomaly_digit=3, seed=1, error="boom: crop file missing")
    write_run(tmp_path, method="adnl", anomaly_digit=4, seed=1, finished=False)
    return tmp_path, known


def test_load_runs_statuses(table1_runs):
    root, known = table1_runs
    runs = T.load_runs(root)
    status = sorted(r.status for r in runs)
    assert status.count("finished") == len(known)
    assert status.count("failed") == 1 and status.count("incomplete") == 1


def test_a_run_copied_into_a_second_folder_counts_once(tmp_path, write_run):
    import shutil

    for s in (1, 2):
        write_run(tmp_path / "runs", method="adnl", anomaly_digit=3, seed=s, auroc=0.7 + s / 10)
    shutil.copytree(tmp_path / "runs", tmp_path / "runs_backup")
    runs = T.load_runs(tmp_path)
    assert len(runs) == 2
    [t1] = T.table1(runs)
    assert t1.rows[0].cells[0].n == 2  # seeds 1 and 2, not four runs


def test_table1_numbers_equal_metrics_json(table1_runs):
    root, known = table1_runs
    [t] = T.table1(T.load_runs(root))
    assert t.label_columns == ["Method"]
    # failed / unfinished digits are not columns; an average over fewer than ten digits says so
    assert t.columns == ["0", "1", "2", "Avg (3 digits)"]
    assert any("over the 3 anomaly digits run here (0, 1, 2); the paper's is over all ten" in n
               for n in t.notes)
    rows = {r.labels[0]: r for r in t.rows}
    assert list(rows) == ["AAE (baseline)", "ADNL"]
    for method, name in (("baseline", "AAE (baseline)"), ("adnl", "ADNL")):
        for j, digit in enumerate((0, 1, 2)):
            cell = rows[name].cells[j]
            vals = [known[(method, digit, s)] for s in (1, 2)]
            m, s = M.mean_std(vals)
            assert cell.value == m and cell.std == s and cell.n == 2
            assert cell.text() == f"{m * 100:.1f} ± {s * 100:.1f}"
        # average: per-seed mean over digits, then mean +- std over seeds
        per_seed = [np.mean([known[(method, d, s)] for d in (0, 1, 2)]) for s in (1, 2)]
        avg = rows[name].cells[-1]
        assert avg.value == pytest.approx(np.mean(per_seed), abs=1e-15)
        assert avg.std == pytest.approx(np.std(per_seed, ddof=1), abs=1e-15)
    # CSV keeps the raw values (no rounding); paper row separate and labelled
    csv_rows = _csv_rows(t)
    measured = [r for r in csv_rows if r["source"] == "measured"]
    paper = [r for r in csv_rows if r["source"] == "paper (reported)"]
    assert len(measured) == 2 and len(paper) == 2
    adnl = next(r for r in measured if r["Method"] == "ADNL")
    assert float(adnl["0"]) == M.mean_std([known[("adnl", 0, 1)], known[("adnl", 0, 2)]])[0]
    assert adnl["0 n"] == "2"
    p = next(r for r in paper if r["Method"] == "ADNL, avg of 10 digits")
    assert float(p["Avg (3 digits)"]) == 0.991 and p["0"] == ""


def test_single_run_cells_are_exact_and_carry_ci(tmp_path, write_run):
    for d in range(3):
        write_run(tmp_path, method="adnl", anomaly_digit=d, auroc=0.9123456789 + d / 100)
    runs = T.load_runs(tmp_path)
    [t] = T.table1(runs)
    for d in range(3):
        cell = t.rows[0].cells[d]
        src = json.loads(next(
            (r.path / "metrics.json").read_text() for r in runs if r.get("anomaly_digit") == d))
        assert cell.value == src["test_auroc"]  # exact, not rounded
        assert list(cell.ci) == src["test_auroc_ci95"]
        assert cell.n == 1 and cell.spread() == ""
    assert float(_csv_rows(t)[0]["1"]) == 0.9123456789 + 1 / 100


def test_aupr_table_beside_auroc(table1_runs):
    root, known = table1_runs
    tables = T.all_tables(T.load_runs(root))
    keys = [t.key for t in tables]
    assert keys.index("table1_mnist_5k") + 1 == keys.index("table1_mnist_5k_aupr")
    t = next(t for t in tables if t.key == "table1_mnist_5k_aupr")
    assert not t.paper_rows  # the paper reports AUROC only
    cell = next(r for r in t.rows if r.labels[0] == "ADNL").cells[0]
    assert cell.value == M.mean_std([known[("adnl", 0, s)] - 0.05 for s in (1, 2)])[0]


def test_seed_table_average_and_std(tmp_path, write_run):
    vals = {1: 0.81, 2: 0.84, 3: 0.9}
    for s, v in vals.items():
        write_run(tmp_path, method="adnl", dataset="manifest", data="dm/ped.parquet",
                  anomaly_digit=None, seed=s, auroc=v)
        write_run(tmp_path, method="baseline", dataset="manifest", data="dm/ped.parquet",
                  anomaly_digit=None, seed=s, auroc=v - 0.2)
    [t] = T.table2(T.load_runs(tmp_path))
    assert t.columns == ["Seed 1", "Seed 2", "Seed 3", "Average", "Std"]
    adnl = next(r for r in t.rows if r.labels == ["ADNL"])
    assert [c.value for c in adnl.cells[:3]] == [0.81, 0.84, 0.9]
    m, s = M.mean_std(list(vals.values()))
    assert adnl.cells[3].value == m and adnl.cells[4].value == s
    assert s == pytest.approx(np.std([0.81, 0.84, 0.9], ddof=1))
    md = t.to_markdown()
    assert "| ADNL | 81.0 | 84.0 | 90.0 | 85.0 | 4.6 |" in md
    runs = T.runs_table(T.load_runs(tmp_path))
    assert runs.label_columns == ["Run", "Method", "Seed"]
    assert sorted(r.cells[0].value for r in runs.rows if r.labels[1] == "ADNL") == [0.81, 0.84, 0.9]


def test_table3_and_table4_split_variants(tmp_path, write_run):
    common = {"method": "adnl", "dataset": "manifest", "data": "dm/x.parquet",
              "anomaly_digit": None}
    for s in (1, 2):
        write_run(tmp_path, crop="normal", neg_loss="scaled", seed=s, auroc=0.8 + s / 100,
                  **common)
        write_run(tmp_path, crop="oversize", neg_loss="scaled", seed=s, auroc=0.9 + s / 100,
                  **common)
        write_run(tmp_path, crop="normal", neg_loss="naive", seed=s, auroc=0.7 + s / 100,
                  **common)
    runs = T.load_runs(tmp_path)
    [t3] = T.table3(runs)
    assert [r.labels for r in t3.rows] == [["normal"], ["oversize"]]
    assert t3.rows[1].cells[2].value == pytest.approx(0.915)
    [t4] = T.table4(runs)
    assert [r.labels for r in t4.rows] == [["naive"], ["scaled"]]
    assert t4.rows[0].cells[0].value == 0.71
    [t2] = T.table2(runs)  # only the main variant: normal crops, scaled loss
    assert [r.labels for r in t2.rows] == [["ADNL"]]
    assert [c.value for c in t2.rows[0].cells[:2]] == [0.8 + 1 / 100, 0.8 + 2 / 100]


def test_table2_breaks_a_crop_tie_by_natural_order_not_folder_order(tmp_path, write_run):
    common = {"dataset": "manifest", "data": "dm/x.parquet", "anomaly_digit": None, "seed": 1}
    for crop, auc in (("normal", 0.6), ("oversize", 0.9)):
        for m in ("baseline", "adnl"):
            write_run(tmp_path, method=m, crop=crop, auroc=auc, **common)
    runs = T.load_runs(tmp_path)
    for order in (runs, runs[::-1]):
        [t2] = T.table2(order)
        assert "--crop normal" in t2.title and t2.rows[0].cells[0].value == 0.6


def test_a_manifest_resplit_under_the_same_path_never_pools_with_the_old_one(tmp_path, write_run):
    common = {"method": "adnl", "dataset": "manifest", "data": "dm/x.parquet",
              "anomaly_digit": None, "seed": 1}
    write_run(tmp_path, data_sha256="a" * 64, auroc=0.6, **common)
    write_run(tmp_path, data_sha256="b" * 64, auroc=0.9, **common)
    [t2] = T.table2(T.load_runs(tmp_path))
    assert len(t2.rows) == 2 and all(r.cells[0].n == 1 for r in t2.rows)
    assert sorted(r.cells[0].value for r in t2.rows) == [0.6, 0.9]
    assert "Data sha256" in t2.label_columns
    # one content per path: the hash adds nothing and shows nowhere
    write_run(tmp_path / "one", data_sha256="a" * 64, auroc=0.6, **common)
    write_run(tmp_path / "one", data_sha256="c" * 64, auroc=0.7,
              **{**common, "data": "dm/y.parquet"})
    assert "data_sha256" not in T.varying(T.load_runs(tmp_path / "one"))


def test_different_settings_never_share_a_row(tmp_path, write_run):
    for d in (0, 1):
        write_run(tmp_path, method="adnl", anomaly_digit=d, neg_weight=1.0, auroc=0.9)
        write_run(tmp_path, method="adnl", anomaly_digit=d, neg_weight=10.0, auroc=0.7)
    [t] = T.table1(T.load_runs(tmp_path))
    assert t.label_columns == ["Method", "Neg. weight"]
    assert [r.labels for r in t.rows] == [["ADNL", "1.0"], ["ADNL", "10.0"]]
    assert [r.cells[0].value for r in t.rows] == [0.9, 0.7]
    assert not t.paper_rows  # paper rows only when rows are plain methods


def test_label_efficiency_and_unseen_tables(tmp_path, write_run):
    for la, v in (("1", 0.7), ("5", 0.8), ("all", 0.95), ("10", 0.85)):
        for d in (0, 1):
            write_run(tmp_path, method="adnl", anomaly_digit=d, labelled_anomalies=la,
                      auroc=v + d / 100)
    write_run(tmp_path, method="adnl", anomaly_digit=3, unseen_digit=5, auroc=0.9,
              extra_metrics={"test_auroc_seen": 0.99, "test_auroc_unseen": 0.42,
                             "test_auroc_by_event": {"3": 0.99, "5": 0.42}})
    runs = T.load_runs(tmp_path)
    [le] = T.label_efficiency_table(runs)
    assert le.columns == ["1", "5", "10", "all"]  # numeric order, "all" last
    assert le.rows[0].cells[0].value == pytest.approx(0.705)
    assert le.rows[0].cells[0].n == 2
    [un] = T.unseen_table(runs)
    assert un.rows[0].labels[:3] == ["ADNL", "3", "5"]
    assert [c.value for c in un.rows[0].cells] == [0.99, 0.42, 0.9]
    # the unseen-digit run is not in Table 1
    [t1] = T.table1(runs)
    assert "3" not in t1.columns


def test_baseline_shows_no_labelled_or_trained_anomaly(tmp_path, write_run):
    # The baseline's config says labelled_anomalies "all" (the default) but it trains on none.
    base = {"n_train_abnormal": 0}
    for d, v in ((0, 0.6), (1, 0.62)):
        write_run(tmp_path / "le", method="baseline", anomaly_digit=d, auroc=v,
                  extra_metrics=base)
        for la, a in (("1", 0.7), ("all", 0.95)):
            write_run(tmp_path / "le", method="adnl", anomaly_digit=d, labelled_anomalies=la,
                      auroc=a)
    [le] = T.label_efficiency_table(T.load_runs(tmp_path / "le"))
    assert le.columns == [T.NO_ANOMALIES, "1", "all"]
    by_method = {r.labels[0]: r.cells for r in le.rows}
    assert by_method["AAE (baseline)"][0].value == pytest.approx(0.61)  # its runs' mean
    assert all(c.empty for c in by_method["AAE (baseline)"][1:])  # not listed under "all"
    assert by_method["ADNL"][0].empty and by_method["ADNL"][2].value == pytest.approx(0.95)

    seen = {"test_auroc_seen": 0.7, "test_auroc_unseen": 0.4}
    write_run(tmp_path / "un", method="baseline", anomaly_digit=3, unseen_digit=5, auroc=0.55,
              extra_metrics={**seen, **base})
    write_run(tmp_path / "un", method="adnl", anomaly_digit=3, unseen_digit=5, auroc=0.9,
              labelled_anomalies="5", extra_metrics=seen)
    [un] = T.unseen_table(T.load_runs(tmp_path / "un"))
    assert un.label_columns == ["Method", "Trained anomaly", "Held-out anomaly", "Labelled"]
    assert [r.labels for r in un.rows] == [
        ["AAE (baseline)", "none (test: 3)", "5", T.NO_ANOMALIES], ["ADNL", "3", "5", "5"]]
    assert [c.value for c in un.rows[0].cells] == [0.7, 0.4, 0.55]  # as in metrics.json


def test_renderings_escape_and_write(tmp_path, write_run):
    write_run(tmp_path / "runs", method="my_method|&%", anomaly_digit=0, auroc=0.5)
    write_run(tmp_path / "runs", method="my_method|&%", anomaly_digit=1, auroc=float("nan"))
    tables = T.all_tables(T.load_runs(tmp_path / "runs"))
    t = tables[0]
    assert "my\\_method|\\&\\%" in t.to_latex()
    assert "my_method\\|&%" in t.to_markdown()
    assert "–" in t.to_markdown()  # NaN prints as a dash, not "nan"
    paths = T.write_tables(tables, tmp_path / "tables")
    assert {p.suffix for p in paths} == {".csv", ".md", ".tex"}
    df = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert set(df["AUROC"].dropna()) == {0.5}
    assert math.isnan(df.loc[df["AUROC"].isna(), "AUROC"].iloc[0])


def test_unseen_table_for_held_out_events_of_a_manifest(tmp_path, write_run):
    write_run(tmp_path, method="adnl", dataset="manifest", data="dm/ped2.parquet",
              anomaly_digit=None, auroc=0.8,
              extra_metrics={"test_auroc_seen": 0.9, "test_auroc_unseen": 0.6,
                             "unseen_events": ["cart"],
                             "test_auroc_by_event": {"bike": 0.9, "cart": 0.6}})
    [t] = T.unseen_table(T.load_runs(tmp_path))
    assert t.rows[0].labels[:3] == ["ADNL", "seen events", "cart"]
    assert [c.value for c in t.rows[0].cells] == [0.9, 0.6, 0.8]


def test_a_weak_label_adnl_row_says_so_even_alone(tmp_path, write_run):
    """An ADNL run whose negatives were chosen per frame and bounded is not the paper's ADNL:
    its row says so in every table, even as the only ADNL run (no varying column shows it)."""
    common = {"dataset": "manifest", "data": "dm/x.parquet", "anomaly_digit": None, "seed": 1}
    weak = {"params": {"neg_select": "mil-once", "neg_bound": "margin", "neg_margin": 4.0}}
    write_run(tmp_path, method="baseline", auroc=0.6, **common)
    write_run(tmp_path, method="adnl", auroc=0.7, extra_metrics={
        "train_label_source": "interval", "selected_epoch": 2, "best_epoch": 1,
        "best_val_auc": 0.8, "selected_val_auc": 0.55}, **common, **weak)
    runs = T.load_runs(tmp_path)
    [t2] = T.table2(runs)
    assert [r.labels[0] for r in t2.rows] == ["AAE (baseline)",
                                              "ADNL (weak labels: mil-once, margin 4)"]
    assert "Table 2" not in t2.title and "normal crops" not in t2.title
    assert "ADNL (weak labels: mil-once, margin 4)" in t2.to_latex()
    [runs_t] = T.runs_tables(runs)
    row = next(r for r in runs_t.rows if r.labels[1].startswith("ADNL"))
    kept, best = (runs_t.columns.index(c) for c in ("Val AUC, kept epoch", "Best val AUC"))
    assert (row.cells[kept].value, row.cells[best].value) == (0.55, 0.8)
    # where the table has a column for a setting, the label leaves it to the column
    r = next(r for r in runs if r.get("method") == "adnl")
    assert T.method_label(r, ["neg_select"]) == "ADNL (weak labels: margin 4)"
    assert T.method_label(r, ["neg_select", "neg_bound"]) == "ADNL"


def test_a_methods_variant_label_is_its_own_class_knowledge():
    """The base Method names no method's settings: a method declaring ADNL's settings without
    its class says nothing; ADNL's and ABC's classes say how their runs depart, and ADNL's
    class what goes with its bound in a note (bench's weak-label note names no setting)."""
    from toolkit.methods import Method, get_method
    from toolkit.methods.base import NEGATIVE_SETTINGS, WEAK_LABEL_SETTINGS

    class Other(Method):
        settings = (*NEGATIVE_SETTINGS, *WEAK_LABEL_SETTINGS)

    weak = {"neg_select": "mil-once", "neg_bound": "margin", "neg_margin": 4.0}
    assert Other.variant(weak) == "" and Other.choice_note("neg_bound", "margin", weak) == ""
    assert get_method("adnl").variant(weak) == "mil-once, margin 4"
    assert get_method("adnl").variant({**weak, "neg_select": "all"}) == "margin 4"
    assert get_method("adnl").variant({"neg_select": "auto", "neg_bound": "none"}) == ""
    assert get_method("adnl").choice_note("neg_bound", "margin", weak) == " (--neg-margin 4)"
    assert get_method("adnl").choice_note("neg_select", "mil-once", weak) == ""
    assert get_method("abc").variant(weak) == "mil-once"
    assert get_method("baseline").variant(weak) == ""


def test_val_auc_at_reads_one_epoch_of_a_history():
    import pandas as pd

    from toolkit.eval.tables import val_auc_at

    h = pd.DataFrame({"epoch": [1, 2, 3], "val_auc": [0.6, float("nan"), 0.8]})
    assert val_auc_at(h, 3) == 0.8 and val_auc_at(h, 1) == 0.6
    assert val_auc_at(h, 2) is None  # no val AUC that epoch
    assert val_auc_at(h, 7) is None and val_auc_at(h, None) is None
    assert val_auc_at(h.drop(columns="val_auc"), 1) is None and val_auc_at(None, 1) is None
