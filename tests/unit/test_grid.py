"""Grid expansion: axis parsing, products, suites, and resolution before anything runs."""

from __future__ import annotations

import pytest

from toolkit.engine import grid as G
from toolkit.errors import AdtkError


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("seed", "1-8", list(range(1, 9))),
    ("seed", ("1,2", "2,3"), [1, 2, 3]),
    ("seed", "-1", [-1]),
    ("anomaly_digit", "all", list(range(10))),
    ("anomaly_digit", "0,3-5", [0, 3, 4, 5]),
    ("crop", "normal,oversize", ["normal", "oversize"]),
    ("labelled_anomalies", "0,1,5,10,50,all", ["0", "1", "5", "10", "50", "all"]),
    ("method", ("baseline", "adnl"), ["baseline", "adnl"]),
    ("seed", None, None),
    ("crop", "", None),
])
def test_parse_axis(name, value, expected):
    assert G.parse_axis(name, value) == expected


@pytest.mark.parametrize("bad", ["x", "3-1", "1-b"])
def test_parse_axis_errors_name_the_flag(bad):
    with pytest.raises(AdtkError, match="--seed"):
        G.parse_axis("seed", bad)


def test_expand_is_a_product_and_drops_anomaly_equal_unseen():
    combos = G.expand({"method": ["baseline", "adnl"], "anomaly_digit": [0, 1],
                       "unseen_digit": [1]})
    assert combos == [
        {"method": "baseline", "anomaly_digit": 0, "unseen_digit": 1},
        {"method": "adnl", "anomaly_digit": 0, "unseen_digit": 1},
    ]
    assert len(G.expand({"a": [1, 2, 3], "b": [1, 2], "c": []})) == 6


def test_suites_need_a_manifest_where_the_paper_used_crops():
    assert G.suite_axes("table1", has_data=False)[0]["anomaly_digit"] == list(range(10))
    with pytest.raises(AdtkError, match="--data"):
        G.suite_axes("table2", has_data=False)
    assert len(G.suite_axes("paper", has_data=False)) == 1  # Table 1 only
    paper = G.suite_axes("paper", has_data=True)
    assert len(paper) == 4 and paper[3]["neg_loss"] == ["naive", "scaled"]
    with pytest.raises(AdtkError, match="unknown suite"):
        G.suite_axes("table9", has_data=False)


def test_plan_table1_suite_resolves_twenty_distinct_runs():
    cfgs = G.plan({"dataset": "digits", "device": "cpu"}, {}, "table1")
    assert len(cfgs) == 20
    assert {(c.method, c.anomaly_digit) for c in cfgs} == {
        (m, d) for m in ("baseline", "adnl") for d in range(10)}
    assert len({c.run_id for c in cfgs}) == 20
    # axes given on the command line override the suite's
    cfgs = G.plan({"dataset": "digits"}, {"anomaly_digit": [3, 4]}, "table1")
    assert sorted({c.anomaly_digit for c in cfgs}) == [3, 4] and len(cfgs) == 4


def test_plan_trains_a_method_without_negative_term_once_per_label_cap():
    cfgs = G.plan({"dataset": "digits", "anomaly_digit": None},
                  {"method": ["baseline", "adnl"], "anomaly_digit": [2],
                   "labelled_anomalies": ["1", "5", "all"]})
    by_method = {m: [c for c in cfgs if c.method == m] for m in ("baseline", "adnl")}
    assert len(by_method["adnl"]) == 3 and len(by_method["baseline"]) == 1
    assert by_method["baseline"][0].labelled_anomalies == "all"
    assert sorted(str(c.labelled_anomalies) for c in by_method["adnl"]) == ["1", "5", "all"]


def test_plan_checks_every_config_before_running():
    with pytest.raises(AdtkError, match="crop"):
        G.plan({"dataset": "digits"}, {"anomaly_digit": [1], "crop": ["normal", "huge"]})
    with pytest.raises(AdtkError, match="not a grid axis"):
        G.plan({}, {"epochs": [1, 2]})
    # the only combination dropped (unseen = anomaly digit): say so, not "needs --anomaly-digit"
    with pytest.raises(AdtkError, match="--unseen-digit must differ from the anomaly digit"):
        G.plan({"dataset": "digits"}, {"anomaly_digit": [1], "unseen_digit": [1]})


def test_describe_names_the_varying_axes():
    cfgs = G.plan({"dataset": "digits"}, {"anomaly_digit": [1, 2], "seed": [1, 2, 3]})
    assert G.describe(cfgs) == "6 runs over anomaly_digit=1,2; seed=1,2,3"
