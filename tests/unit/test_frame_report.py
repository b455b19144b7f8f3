"""Frame-level tables and figures in the report: Ped2 tables with published rows, ROC, timelines."""

import json

import numpy as np
import pandas as pd
import pytest

from toolkit.data import manifest as mf
from toolkit.data import protocols as P
from toolkit.data.synthetic import make_clip_manifest
from toolkit.eval import frame_report as FR
from toolkit.eval import frames as F
from toolkit.eval import tables as T

TRAIN = [f"train/train_{i:02d}.mp4" for i in range(1, 4)]
TEST = [f"test/test_{i:02d}.mp4" for i in range(1, 5)]


def make_runs(tmp_path, seeds=(1,), protocol="official"):
    """Baseline and ADNL runs per seed over one protocol split manifest each, evaluated."""
    src = tmp_path / "crops" / "manifest.parquet"
    src.parent.mkdir(parents=True, exist_ok=True)
    mf.write_manifest(make_clip_manifest(TRAIN + TEST, TEST, frames=6), src)
    fl = pd.DataFrame([(v, f, f / 10, int(f in (1, 2))) for v in TEST for f in range(8)],
                      columns=["video", "frame_idx", "time_s", "abnormal"])
    fl.to_csv(tmp_path / "fl.csv", index=False)
    rng = np.random.default_rng(0)
    folders = []
    for seed in seeds:
        split = (P.official_split(TRAIN + TEST, TEST) if protocol == "official"
                 else P.fewshot_split(TRAIN + TEST, TEST, 1, seed))
        data = P.write_protocol_manifest(src, tmp_path / f"{split.name}.parquet", split,
                                         extra_meta={"suite": "ped2"}).path
        test = mf.read_manifest(data).query("split == 'test'")
        for method, gap in (("baseline", 0.3), ("adnl", 1.5)):
            run = tmp_path / "runs" / f"{method}-{seed}"
            run.mkdir(parents=True)
            y = (test["label"] == "abnormal").to_numpy()
            pd.DataFrame({"sample_id": test["crop_id"], "split": "test", "label": test["label"],
                          "score": rng.random(len(test)) + gap * y, "event": test["event"],
                          "video": test["video"], "frame_idx": test["frame_idx"]}
                         ).to_parquet(run / "scores.parquet")
            cfg = {"run_id": f"{method}{seed}", "method": method, "seed": seed,
                   "dataset": "manifest", "data": str(data)}
            (run / "config.json").write_text(json.dumps(cfg))
            (run / "metrics.json").write_text(json.dumps({**cfg, "test_auroc": 0.7}))
            F.evaluate_run(run, F.FrameEvalConfig(str(tmp_path / "fl.csv"), smooth=3))
            folders.append(run)
    return folders


def test_official_table_has_measured_rows_and_published_rows_reported_elsewhere(tmp_path):
    make_runs(tmp_path)
    runs = T.load_runs(tmp_path / "runs")
    (t,) = FR.frame_tables(runs)
    assert t.key == "ped2_official" and t.reported_in == "elsewhere"
    assert [r.labels[0] for r in t.rows] == [T.method_name("baseline"), "ADNL"]
    adnl = next(r for r in runs if r.get("method") == "adnl")
    micro = t.columns.index("Frame micro")
    assert t.rows[1].cells[micro].value == pytest.approx(adnl.get("frame_auroc_micro"))
    assert t.rows[1].cells[t.columns.index("Frame macro")].value == pytest.approx(
        adnl.get("frame_auroc_macro"))
    # SSMTL: quoted as micro and macro, but whether it smooths is not known, so not beside
    # the raw runs: in the last column, with those words in the row's name
    ssmtl = [r for r in t.paper_rows if r.labels[0].startswith("SSMTL")]
    assert [r.cells[-1].value for r in ssmtl] == [0.975, 0.998]
    assert all(r.cells[micro].value is None for r in ssmtl)
    assert all("smoothing not known" in r.labels[0] for r in ssmtl)
    mnad = next(r for r in t.paper_rows if r.labels[0].startswith("MNAD"))
    # MNAD's evaluation code min-max scales each clip: its number sits in that column
    clipnorm = t.columns.index("Micro, clip min-max")
    assert mnad.cells[clipnorm].value == 0.9697 and mnad.cells[micro].value is None
    assert mnad.cells[-1].value is None
    assert t.rows[1].cells[clipnorm].value == pytest.approx(
        adnl.get("frame_auroc_micro_clipnorm"))
    # Reiss and Hoshen's evaluation code Gaussian-filters each clip's frame scores (sigma 3):
    # the runs scored that way, and the published number, share a column
    gauss = t.columns.index("Micro, Gaussian 3 (Reiss)")
    reiss = next(r for r in t.paper_rows if "Reiss and Hoshen" in r.labels[0])
    assert reiss.cells[gauss].value == 0.991 and reiss.cells[micro].value is None
    assert t.rows[1].cells[gauss].value == pytest.approx(adnl.get("frame_auroc_micro_gauss3"))
    # HF2-VAD's median filter leaves out each clip's first 4 frames, which here hold every
    # abnormal one: no AUROC, so no column of its own, and its number goes to the smoothed one
    assert "Micro, median 17 (HF2-VAD)" not in t.columns
    hf2 = next(r for r in t.paper_rows if r.labels[0].startswith("HF2-VAD"))
    assert hf2.cells[t.columns.index("Micro, smoothed")].value == 0.993
    assert hf2.cells[micro].value is None and hf2.cells[-1].value is None
    note = t.notes[-1]  # says so, and only for HF2-VAD
    assert "HF2-VAD's number is in the column 'Micro, smoothed' instead" in note
    assert "Reiss and Hoshen's number is in" not in note
    vec = next(r for r in t.paper_rows if r.labels[0].startswith("VEC"))
    assert vec.cells[micro].value == 0.973
    stmsvad = next(r for r in t.paper_rows if r.labels[0].startswith("STMSVADnet"))
    assert stmsvad.cells[-1].value == 0.983  # kind not known: the last column
    assert "elsewhere (reported)" in t.to_csv()
    assert "Reported elsewhere, not measured here" in t.to_latex()
    assert "(elsewhere, reported)" in t.to_markdown()


def test_hf2vad_number_sits_beside_runs_scored_by_its_protocol(tmp_path):
    for run in make_runs(tmp_path):  # as if the clips held abnormal frames after the 4th
        m = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**m, "frame_auroc_micro_hf2vad": 0.8}))
    (t,) = FR.frame_tables(T.load_runs(tmp_path / "runs"))
    col = t.columns.index("Micro, median 17 (HF2-VAD)")
    hf2 = next(r for r in t.paper_rows if r.labels[0].startswith("HF2-VAD"))
    assert hf2.cells[col].value == 0.993 and [r.cells[col].value for r in t.rows] == [0.8, 0.8]
    assert hf2.cells[t.columns.index("Micro, smoothed")].value is None
    assert "instead" not in t.notes[-1]


def test_fewshot_tables_have_the_table2_form(tmp_path):
    make_runs(tmp_path, seeds=(1, 2, 3), protocol="fewshot")
    runs = T.load_runs(tmp_path / "runs")
    tabs = FR.frame_tables(runs)
    micro = next(t for t in tabs if t.key == "ped2_fewshot_k1_frame_auroc_micro")
    assert micro.columns == ["Seed 1", "Seed 2", "Seed 3", "Average", "Std"]
    assert [r.labels for r in micro.rows] == [[T.method_name("baseline")], ["ADNL"]]
    vals = [r.get("frame_auroc_micro") for r in runs if r.get("method") == "adnl"]
    got = micro.rows[1].cells
    assert got[3].value == pytest.approx(np.mean(vals))
    assert got[4].value == pytest.approx(np.std(vals, ddof=1))
    assert not micro.paper_rows  # published numbers are not comparable with few-shot splits


def test_frame_figures_and_report(tmp_path):
    from toolkit.eval.report import build_report

    make_runs(tmp_path, seeds=(1,))
    runs = T.load_runs(tmp_path / "runs")
    figs = FR.frame_figures(runs)
    titles = [t for t, _, _ in figs]
    assert titles[0].startswith("Frame-level ROC") and "per test clip" in titles[1]
    timeline = figs[1][1]
    assert len([a for a in timeline.axes if a.get_visible()]) == len(TEST)
    # abnormal frames 1-2 of each clip are shaded: one span per clip
    assert all(len(a.patches) == 1 for a in timeline.axes if a.get_visible())
    rep = build_report(tmp_path / "runs", tmp_path / "report.html", samples=None)
    html = (tmp_path / "report.html").read_text()
    assert "Reported elsewhere, not measured here" in html
    assert "Frame scores per test clip" in html and "frame AUROC micro" in html
    assert (rep.tables_dir / "ped2_official.csv").is_file()
    # the Ped2 table comes before the per-split table of crop-level AUROCs
    assert html.index("UCSD Ped2, official protocol") < html.index("test AUROC per sample")


def test_timelines_show_the_official_and_the_fewshot_comparison(tmp_path):
    make_runs(tmp_path / "a", seeds=(1, 2))
    make_runs(tmp_path / "b", seeds=(1,), protocol="fewshot")
    runs = [*T.load_runs(tmp_path / "a" / "runs"), *T.load_runs(tmp_path / "b" / "runs")]
    titles = [t for t, _, _ in FR.frame_figures(runs) if "per test clip" in t]
    # two timelines at most: the first of each protocol, not official seeds 1 and 2
    assert titles == ["Frame scores per test clip, official protocol, seed 1",
                      "Frame scores per test clip, few-shot k1-seed1"]


def test_a_run_has_one_colour_across_the_roc_curves_and_the_timelines(tmp_path):
    """The official protocol's runs differ by input in one figure while the few-shot panel
    shows plain methods: each label keeps one colour in every frame figure of a report."""
    from matplotlib.colors import to_hex

    for sub, inp in (("a", "appearance"), ("c", "motion")):  # official: two inputs
        for run in make_runs(tmp_path / sub, seeds=(1,)):
            for name in ("config.json", "metrics.json"):
                d = json.loads((run / name).read_text())
                d.update(input=inp, run_id=d["run_id"] + inp)
                (run / name).write_text(json.dumps(d))
    make_runs(tmp_path / "b", seeds=(1,), protocol="fewshot")
    runs = [*T.load_runs(tmp_path / "a" / "runs"), *T.load_runs(tmp_path / "c" / "runs"),
            *T.load_runs(tmp_path / "b" / "runs")]
    figs = FR.frame_figures(runs)

    def colours(fig) -> dict[str, str]:
        handles = fig.legends[0].legend_handles if fig.legends else fig.axes[0].get_legend()\
            .legend_handles
        return {h.get_label(): to_hex(h.get_facecolor() if hasattr(h, "get_facecolor")
                                      and not hasattr(h, "get_color") else h.get_color())
                for h in handles if not h.get_label().startswith("chance")}

    seen: dict[str, str] = {}
    for _, fig, _ in figs:
        for label, c in colours(fig).items():
            assert seen.setdefault(label, c) == c, (label, seen[label], c)
    assert len(seen) >= 6 and "ADNL (motion)" in seen and "ADNL" in seen, seen
