"""The report's tables of a clip suite's parts, from hand-made runs and plan."""

from pathlib import Path

import pytest

from toolkit.eval import frame_report as FR
from toolkit.eval import suite_tables as ST
from toolkit.eval.tables import Run


def run(rid, method, seed, micro, crop="normal", by_event=None, **extra):
    cfg = {"run_id": rid, "method": method, "seed": seed, "crop": crop, "size": 32,
           "epochs": 15, "train_every": 4, "data": f"splits/s{seed}.parquet"}
    m = {**cfg, "frame_auroc_micro": micro, "frame_auroc_macro": micro, "object_auroc": None,
         "frame_eval": {"aggregate": "max"}, "protocol": "fewshot", "suite": "ped2",
         "frame_auroc_by_event": by_event or {}, **extra}
    return Run(Path(rid), cfg, m)


def plan(parts):
    base = {"seeds": [1, 2], "axis": None, "values": [], "skipped": "", "caption": "",
            "extra": {}}
    return {"preset": "quick", "settings": {"train_every": 4},
            "parts": [{**base, **p} for p in parts]}


def test_a_part_table_has_a_row_per_method_and_value_and_a_column_per_seed():
    runs = [run("b1", "baseline", 1, 0.6), run("b2", "baseline", 2, 0.7),
            run("a1", "adnl", 1, 0.8), run("a2", "adnl", 2, 0.9),
            run("o1", "adnl", 1, 0.5, crop="oversize"), run("x", "adnl", 3, 0.1)]
    p = plan([{"name": "table3", "title": "Table 3", "axis": "crop",
               "values": ["normal", "oversize"], "run_ids": ["b1", "b2", "a1", "a2", "o1"]},
              {"name": "input", "title": "Inputs", "skipped": "no motion crops",
               "run_ids": []}])
    tables = ST.part_tables(runs, p)
    assert [t.key for t in tables] == ["ped2_table3_micro"]  # no object AUROC in these runs
    t = tables[0]
    assert t.columns == ["Seed 1", "Seed 2", "Average", "Std"]
    rows = {tuple(r.labels): r.cells for r in t.rows}
    assert list(rows) == [("AAE (baseline)", "normal"), ("ADNL", "normal"),
                          ("ADNL", "oversize")]  # the baseline first; run x is in no part
    assert [c.value for c in rows[("ADNL", "normal")]][:3] == pytest.approx([0.8, 0.9, 0.85])
    assert rows[("ADNL", "normal")][3].value == pytest.approx(0.0707, abs=1e-4)
    assert rows[("ADNL", "oversize")][1].empty and rows[("ADNL", "oversize")][3].empty
    comp = ST.composition_table(runs, p)
    status = {r.labels[0]: r.cells[-1].value for r in comp.rows}
    assert status == {"table3": "5 of 5 runs finished", "input": "skipped: no motion crops"}
    # run x sits in the folder but in no part: the report says so
    assert comp.notes == ["1 run folder(s) here belong to no part of the plan (x): they appear "
                          "in the run tables and figures of this report, in none of the "
                          "suite's tables."]


def test_table2_shows_the_published_protocols_where_runs_have_them():
    extra = {"frame_auroc_micro_hf2vad": 0.7, "frame_auroc_micro_gauss3": 0.95}
    runs = [run("b1", "baseline", 1, 0.6, **extra), run("a1", "adnl", 1, 0.8, **extra)]
    p = plan([{"name": "table2", "title": "Table 2", "run_ids": ["b1", "a1"], "seeds": [1]}])
    keys = [t.key for t in ST.part_tables(runs, p)]
    assert "ped2_table2_micro_hf2vad" in keys and "ped2_table2_micro_gauss3" in keys
    # every metric a part table can show has a file name
    assert {k for ms in ST._METRICS.values() for _, k in ms} <= set(ST._SLUGS)


def test_unseen_rows_are_per_method_and_kind():
    ev = {"bike": 0.9, "cart": 0.6, "skateboard": 0.7}
    runs = [run("b1", "baseline", 1, 0.5, by_event={k: v - 0.1 for k, v in ev.items()}),
            run("a1", "adnl", 1, 0.5, by_event=ev)]
    p = plan([{"name": "unseen", "title": "Unseen", "seeds": [1], "run_ids": ["b1", "a1"],
               "extra": {"seen": ["bike"], "unseen": ["cart", "skateboard"]}}])
    (t,) = [t for t in ST.part_tables(runs, p) if t.key == "ped2_unseen_micro"]
    got = {tuple(r.labels): r.cells[0].value for r in t.rows}
    assert got == pytest.approx({("AAE (baseline)", "bike (seen)"): 0.8,
                                 ("AAE (baseline)", "cart (unseen)"): 0.5,
                                 ("AAE (baseline)", "skateboard (unseen)"): 0.6,
                                 ("ADNL", "bike (seen)"): 0.9, ("ADNL", "cart (unseen)"): 0.6,
                                 ("ADNL", "skateboard (unseen)"): 0.7})


def test_with_a_plan_the_report_shows_parts_instead_of_one_pooled_fewshot_table():
    runs = [run("b1", "baseline", 1, 0.6), run("a1", "adnl", 1, 0.8),
            run("o1", "adnl", 1, 0.5, crop="oversize")]
    p = plan([{"name": "table2", "title": "Table 2", "seeds": [1], "run_ids": ["b1", "a1"]}])
    keys = [t.key for t in FR.frame_tables(runs, p)]
    assert keys[0] == "ped2_suite_parts" and "ped2_table2_micro" in keys
    assert not any("fewshot" in k for k in keys)
    assert any("fewshot" in t.key for t in FR.frame_tables(runs))  # no plan: as before
    # the clip min-max table appears once the runs carry that number
    assert "ped2_table2_micro_clipnorm" not in keys
    runs = [run("b1", "baseline", 1, 0.6, frame_auroc_micro_clipnorm=0.7),
            run("a1", "adnl", 1, 0.8, frame_auroc_micro_clipnorm=0.9)]
    (t,) = [t for t in FR.frame_tables(runs, p) if t.key == "ped2_table2_micro_clipnorm"]
    assert [r.cells[0].value for r in t.rows] == [0.7, 0.9]


def test_figures_draw_official_and_table2_runs_with_distinct_labels():
    runs = [run("b1", "baseline", 1, 0.6, input="appearance"),
            run("b2", "baseline", 1, 0.7, input="motion"), run("a1", "adnl", 1, 0.8),
            run("o1", "adnl", 1, 0.5, crop="oversize")]
    p = plan([{"name": "official", "title": "Official", "run_ids": ["b1", "b2"]},
              {"name": "table2", "title": "Table 2", "run_ids": ["a1"]},
              {"name": "table3", "title": "Table 3", "run_ids": ["a1", "o1"]}])
    assert [r.run_id for r in ST.figure_runs(runs, p)] == ["b1", "b2", "a1"]
    assert ST.figure_runs(runs, None) == runs
    official = runs[:2]
    assert [FR._run_label(r, official) for r in official] == [
        "AAE (baseline) (appearance)", "AAE (baseline) (motion)"]
    assert FR._run_label(runs[2], runs[2:3]) == "ADNL"
