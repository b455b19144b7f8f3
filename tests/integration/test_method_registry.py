"""A method is one registered class: its settings reach the run id, its loss keys the history,
and a method registered here (in a test, no other edit) shows in the CLI, the grid and the
tables. The unseen-anomaly suite and its per-method summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.engine import grid as G
from toolkit.engine.run import resolve_bench_config
from toolkit.errors import AdtkError
from toolkit.eval import tables as T
from toolkit.methods import METHODS, Method, Setting, register_method

TINY = dict(dataset="digits", anomaly_digit=1, epochs=1, batch_size=64, width=8,
            latent_dim=8, device="cpu", num_threads=1)


@pytest.fixture()
def dummy():
    """A throw-away method: a 1x1 conv whose output energy it minimises; score = gain x mean
    brightness. Registered for the test only."""

    @register_method("dummy")
    class Dummy(Method):
        title = "Dummy (test)"
        order = 99
        settings = (Setting("gain", 1.0, "Multiplies the score.", above=0),)
        loss_keys = ("loss", "energy")

        def build(self, in_channels, size, device="cpu"):
            self._set_device(device)
            self.model_ = self._place(torch.nn.Conv2d(in_channels, 1, 1))
            self.optimizers_ = {"sgd": torch.optim.SGD(self.model_.parameters(), lr=0.01)}
            return self

        def train_step(self, x, x_abn=None, epoch=1):
            opt = self.optimizers_["sgd"]
            opt.zero_grad()
            energy = self.model_(x).pow(2).mean()
            energy.backward()
            opt.step()
            return {"loss": energy.detach(), "energy": energy.detach(), "extra": energy.detach()}

        @torch.no_grad()
        def score_batch(self, x):
            return self.gain * x.flatten(1).mean(1)

    yield Dummy
    METHODS.unregister("dummy")


@pytest.mark.slow  # four tiny runs and a report
def test_a_registered_method_reaches_cli_grid_and_tables(dummy, tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(main, ["bench", "--help"]).output
    assert "dummy" in help_text and "--gain" in help_text and "Multiplies the score" in help_text

    out = tmp_path / "runs"
    r = runner.invoke(main, [
        "bench", "--method", "dummy", "--method", "baseline", "--dataset", "digits",
        "--anomaly-digit", "1,2", "--gain", "2", "--epochs", "1", "--width", "8",
        "--latent-dim", "8", "--device", "cpu", "--threads", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    runs = T.load_runs(out)
    assert len(runs) == 4 and all(x.status == "finished" for x in runs)
    d = [x for x in runs if x.get("method") == "dummy"]
    assert d[0].config["params"] == {"gain": 2.0} and d[0].config["neg_loss"] is None
    h = pd.read_parquet(d[0].path / "history.parquet")
    assert list(h.columns) == ["epoch", "loss", "energy", "extra", "val_auc", "time_s"]
    [t1] = T.table1(runs)
    assert [row.labels for row in t1.rows] == [["AAE (baseline)"], ["Dummy (test)"]]
    assert (out / "report_tables" / "table1_digits.csv").read_text().count("Dummy (test)") == 1
    assert "Dummy (test)" in (out / "report.html").read_text()

    cfgs = G.plan({"dataset": "digits"}, {"method": ["dummy"], "anomaly_digit": [0, 1],
                                          "gain": ["1", "3"]})
    assert sorted((c.anomaly_digit, c.params["gain"]) for c in cfgs) == [
        (0, 1.0), (0, 3.0), (1, 1.0), (1, 3.0)]


def test_a_methods_settings_change_its_run_id_and_only_its_own():
    a = resolve_bench_config(method="deepsad", **TINY)
    b = resolve_bench_config(method="deepsad", eta=2.0, **TINY)
    c = resolve_bench_config(method="deepsad", params={"eta": 2}, **TINY)
    assert a.params["eta"] == 1.0 and b.params["eta"] == 2.0
    assert a.run_id != b.run_id == c.run_id
    # A setting another method declares does not apply: same run, nothing stored.
    base = resolve_bench_config(method="baseline", **TINY)
    assert resolve_bench_config(method="baseline", eta=5.0, neg_loss="scaled", **TINY).run_id \
        == base.run_id
    assert base.params == {} and base.neg_loss is None and base.adv_weight == 1.0
    # Text from a flag made from the registry (--adv-weight 2) becomes the setting's type.
    assert resolve_bench_config(method="baseline", adv_weight="2", **TINY).adv_weight == 2.0
    with pytest.raises(AdtkError, match="adv_weight must be a number, got 'x'"):
        resolve_bench_config(method="baseline", adv_weight="x", **TINY)
    with pytest.raises(AdtkError, match="eta must be a number >= 0"):
        resolve_bench_config(method="deepsad", eta=-1, **TINY)
    with pytest.raises(AdtkError, match="needs at least one labelled anomaly"):
        resolve_bench_config(method="classifier", labelled_anomalies="0", **TINY)


def test_the_unseen_suite_runs_every_ordered_pair():
    notes: list[str] = []
    cfgs = G.plan({"dataset": "digits", "device": "cpu"},
                  {"anomaly_digit": [0, 1, 3], "method": ["baseline", "adnl", "classifier"],
                   "pseudo": ["none", "patch"]}, "unseen", notes=notes)
    pairs = {(c.anomaly_digit, c.unseen_digit) for c in cfgs}
    assert pairs == {(a, b) for a in (0, 1, 3) for b in (0, 1, 3) if a != b}
    variants = {(c.method, c.params.get("pseudo")) for c in cfgs}
    assert variants == {("baseline", None), ("adnl", "none"), ("adnl", "patch"),
                        ("classifier", None)}
    assert len(cfgs) == 6 * 4
    every = G.plan({"dataset": "digits"}, {}, "unseen")
    assert len({(c.anomaly_digit, c.unseen_digit) for c in every}) == 90
    assert {c.method for c in every} == set(METHODS.names())
    # A method that needs labelled anomalies is left out at 0, with a note.
    G.plan({"dataset": "digits"}, {"method": ["classifier", "adnl"], "anomaly_digit": [1],
                                   "labelled_anomalies": ["0", "5"]}, notes=notes)
    assert any("classifier" in n and "labelled-anomalies 0" in n for n in notes)
    with pytest.raises(AdtkError, match="classifier needs at least one labelled anomaly"):
        G.plan({"dataset": "digits"}, {"method": ["classifier"], "anomaly_digit": [1],
                                       "labelled_anomalies": ["0"]})


def test_unseen_summary_per_method(tmp_path, write_run):

    # Pairs (A, B): baseline unseen AUROC 0.6; adnl beats it on 2 of 3 pairs.
    adnl = {(0, 1): 0.7, (1, 0): 0.5, (0, 3): 0.9}
    for (a, b), v in adnl.items():
        for method, unseen in (("baseline", 0.6), ("adnl", v)):
            write_run(tmp_path, method=method, anomaly_digit=a, unseen_digit=b,
                      extra_metrics={"test_auroc_seen": 0.99 if method == "adnl" else 0.5,
                                     "test_auroc_unseen": unseen})
    [t] = T.unseen_summary_table(T.load_runs(tmp_path))
    rows = {r.labels[0]: r.cells for r in t.rows}
    assert list(rows) == ["AAE (baseline)", "ADNL"]  # the registry's order and names
    pairs, seen, unseen, share, worst, worst_auc = rows["ADNL"]
    assert pairs.value == 3 and seen.value == pytest.approx(0.99)
    assert unseen.value == pytest.approx(0.7) and share.value == pytest.approx(2 / 3)
    assert worst.value == "1 → 0" and worst_auc.value == 0.5
    assert rows["AAE (baseline)"][3].empty  # the reference is not compared with itself
    assert "unseen_summary" in {x.key for x in T.all_tables(T.load_runs(tmp_path))}
    assert json.loads(json.dumps(t.to_csv()))  # renders
