"""``adtk bench --suite ped2`` end to end on tiny synthetic clips: every part trains, is
scored frame by frame and shows as a table; a second run resumes with the same run ids."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data import manifest as mf
from toolkit.data.synthetic import clip_frame_labels, write_clip_crops
from toolkit.engine.clip_suite import SUITE_PRESETS
from toolkit.eval.suite_tables import PLAN_FILE

pytestmark = pytest.mark.slow

TRAIN = [f"train/train_{i:02d}.mp4" for i in range(1, 4)]
TEST = [f"test/test_{i:02d}.mp4" for i in range(1, 7)]
KINDS = {**{t: "bike" for t in TEST[:4]}, TEST[4]: "cart", TEST[5]: "skateboard"}


def bench(*args):
    r = CliRunner().invoke(main, ["bench", *map(str, args)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_tiny_suite_runs_every_part_scores_every_frame_and_resumes(tmp_path):
    src = write_clip_crops(tmp_path / "crops", TRAIN + TEST, KINDS, frames=8, motion=True,
                           regions=True)
    fl = clip_frame_labels(mf.read_manifest(src), tmp_path / "frame_labels.csv")
    out = tmp_path / "runs"
    args = ("--suite", "ped2", "--data", src, "--frame-labels", fl, "--labelled-clips", 2,
            "--seed", 1, "--epochs", 2, "--size", 16, "--batch-size", 8, "--out", out,
            "--track-smooth", 3,
            "--no-progress", "--threads", 1)
    first = bench(*args)
    assert "skipped" not in first.split("grid:")[0]  # region labels: every part runs
    plan = json.loads((out / PLAN_FILE).read_text())
    every = SUITE_PRESETS["quick"]["settings"]["train_every"]
    # the quick preset's settings that the command line did not give
    assert plan["settings"] == {"train_every": every, "neg_loss": "scaled"}
    ran = [p for p in plan["parts"] if not p["skipped"]]
    assert [p["name"] for p in ran] == ["official", "table2", "table3", "table4", "input",
                                        "labels", "unseen"]
    labels = pd.read_csv(fl)
    for p in ran:
        assert p["run_ids"]
        for rid in p["run_ids"]:
            m = json.loads((out / rid / "metrics.json").read_text())
            cfg = json.loads((out / rid / "config.json").read_text())
            assert cfg["train_every"] == every and m["train_every"] == every
            # training used every 4th frame; every frame of every test clip was scored
            test = mf.read_meta(cfg["data"])["test_videos"]
            assert m["frame_n"] == labels["video"].isin(test).sum()
            assert m["frame_auroc_micro"] is not None
    # Table 2 also lists one fused run (no training) per seed: the baseline's and ADNL's
    t2 = [json.loads((out / rid / "config.json").read_text()) for rid in ran[1]["run_ids"]]
    fused = [c for c in t2 if c["method"] == "fusion"]
    assert sorted(c["seed"] for c in fused) == sorted({c["seed"] for c in t2})
    assert all(set(c["fused_methods"]) == {"baseline", "adnl"} for c in fused)
    unseen = [json.loads((out / rid / "metrics.json").read_text())
              for rid in next(p for p in ran if p["name"] == "unseen")["run_ids"]]
    assert all({"cart", "skateboard"} <= set(m["frame_auroc_by_event"]) for m in unseen)
    lab = [json.loads((out / rid / "config.json").read_text())
           for rid in next(p for p in ran if p["name"] == "labels")["run_ids"]]
    # ADNL takes the suite's scaled loss, except where Table 4 varies it
    t4 = {json.loads((out / rid / "config.json").read_text())["neg_loss"]
          for rid in next(p for p in ran if p["name"] == "table4")["run_ids"]}
    assert t4 == {"naive", "scaled", None}  # None: the baseline, which has no negative loss
    assert {c["neg_loss"] for c in lab if c["method"] == "adnl"} == {"scaled"}
    assert {c["train_labels"] for c in lab if c["method"] == "adnl"} == {"region", "interval"}
    tables = out / "report_tables"
    for key in ("ped2_suite_parts", "ped2_official", "ped2_table2_micro", "ped2_table2_macro",
                "ped2_table3_micro", "ped2_table4_micro", "ped2_input_micro",
                "ped2_labels_micro", "ped2_unseen_micro", "ped2_unseen_object",
                "ped2_table2_micro_smoothed", "ped2_table4_micro_smoothed"):
        assert (tables / f"{key}.csv").is_file(), key
    assert "smoothed (track 3)" in (tables / "ped2_table2_micro_smoothed.md").read_text()
    t3 = (tables / "ped2_table3_micro.md").read_text()
    assert "| AAE (baseline) | oversize |" in t3 and "| ADNL | normal |" in t3
    assert "Seed 1" in t3 and "Average" in t3 and "Std" in t3
    assert "| Fusion (geometric mean) |" in (tables / "ped2_table2_micro.md").read_text()

    # killed part-way: a lost run is trained again, the rest skipped, the ids and splits kept
    splits = {p: p.stat().st_mtime_ns for p in (out / "splits").iterdir()}
    lost = plan["parts"][1]["run_ids"][0]
    shutil.rmtree(out / lost)
    again = bench(*args, "--no-report")
    n = len({r for p in ran for r in p["run_ids"]}) - len(fused)  # trained runs
    assert f"{n} runs: 1 trained, {n - 1} already finished (skipped), 0 failed" in again
    assert json.loads((out / PLAN_FILE).read_text())["parts"] == plan["parts"]
    assert {p: p.stat().st_mtime_ns for p in (out / "splits").iterdir()} == splits
