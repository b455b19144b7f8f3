"""benchmarks/published_protocols.py: each published evaluation, redone by hand on made-up
frame scores (scipy and scikit-learn directly), and the grouping of few-shot seeds."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import medfilt
from sklearn.metrics import roc_auc_score

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "published_protocols.py"


def _bench():
    spec = importlib.util.spec_from_file_location("published_protocols_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def frames():
    rng = np.random.default_rng(0)
    rows = []
    for clip, n in (("test/b.mp4", 40), ("test/a.mp4", 30)):
        y = np.zeros(n, np.int8)
        y[n // 3: n // 3 + 10] = 1
        s = rng.normal(size=n) + 1.5 * y
        rows.append(pd.DataFrame({"video": clip, "frame_idx": np.arange(n), "abnormal": y,
                                  "score": s}))
    return pd.concat(rows).sample(frac=1, random_state=1)  # shuffled on purpose


def test_each_protocol_as_its_public_code_computes_it():
    mod, f = _bench(), frames()
    got = mod.protocols(f)
    clips = [g.sort_values("frame_idx") for _, g in f.groupby("video", sort=True)]
    y = np.concatenate([g["abnormal"] for g in clips])
    s = [g["score"].to_numpy() for g in clips]
    assert got["raw micro (VEC)"] == pytest.approx(roc_auc_score(y, np.concatenate(s)))
    mm = [(v - v.min()) / (v.max() - v.min()) for v in s]
    assert got["clip min-max (MNAD)"] == pytest.approx(roc_auc_score(y, np.concatenate(mm)))
    ym = np.concatenate([g["abnormal"].to_numpy()[4:] for g in clips])
    assert got["median 17 (HF2-VAD)"] == pytest.approx(
        roc_auc_score(ym, np.concatenate([medfilt(v[4:], 17) for v in s])))
    assert got["gaussian 3 (Reiss)"] == pytest.approx(
        roc_auc_score(y, np.concatenate([gaussian_filter1d(v, 3) for v in s])))
    # smoothing helps on these scores (a block of abnormal frames in noise): not a no-op
    assert got["gaussian 3 (Reiss)"] > got["raw micro (VEC)"]


def test_few_shot_seeds_pool_into_one_protocol():
    mod = _bench()
    assert mod.split_group("runs/splits/ped2-fewshot-k3-seed12.parquet") == "ped2-fewshot-k3"
    assert mod.split_group("ped2-official.parquet") == "ped2-official"


def _cfg(method, seed, data="s1", **kw):
    return {"method": method, "seed": seed, "data": f"/x/ped2-fewshot-k3-seed{seed}.parquet",
            "data_sha256": f"{data}-{seed}", "crop": "normal", "input": "motion",
            "epochs": 15, "params": {}, **kw}


def test_runs_pair_with_the_baseline_of_their_own_split_crop_and_seed():
    """Table 3's oversize baseline must not stand in for Table 2's, nor a 30-epoch one; and an
    ADNL variant (interval labels) keeps its own mean."""
    mod = _bench()
    res = lambda v: {"p": v}  # noqa: E731  (one protocol, the value to compare)
    runs = [
        (_cfg("baseline", 1), res(0.80)),
        (_cfg("baseline", 1, crop="oversize"), res(0.99)),
        (_cfg("baseline", 1, epochs=30), res(0.99)),
        (_cfg("adnl", 1, neg_loss="scaled"), res(0.90)),
        (_cfg("adnl", 1, neg_loss="scaled", crop="oversize"), res(0.95)),
        (_cfg("adnl", 1, neg_loss="scaled", train_labels="interval",
              params={"neg_select": "mil-once"}), res(0.70)),
        (_cfg("baseline", 2), res(0.90)),
        (_cfg("adnl", 2, neg_loss="scaled"), res(0.95)),
        (_cfg("adnl", 3, data="other", neg_loss="scaled"), res(0.95)),  # no partner
    ]
    assert dict(mod.pair_up(runs, "baseline")) == {0: None, 1: None, 2: None, 3: 0, 4: 1,
                                                   5: 0, 6: None, 7: 6, 8: None}
    rows = {(r["method"], r["label"]): r for r in mod.summarise(runs)}
    t2 = rows[("adnl", "crop=normal neg_select=None train_labels=None")]
    assert t2["seeds"] == [1, 2, 3] and t2["mean"]["p"] == pytest.approx((0.9 + 0.95 + 0.95) / 3)
    assert t2["above"]["p"] == (2, 2)  # seeds 1 and 2 paired; seed 3 has no baseline
    assert rows[("adnl", "crop=oversize neg_select=None train_labels=None")]["above"]["p"] == (
        0, 1)  # 0.95 against the oversize baseline's 0.99, not the normal one's 0.80
    interval = rows[("adnl", "crop=normal neg_select=mil-once train_labels=interval")]
    assert interval["mean"]["p"] == 0.70 and interval["above"]["p"] == (0, 1)
    base = [r for (m, _), r in rows.items() if m == "baseline"]
    assert sorted(r["label"] for r in base) == ["crop=normal epochs=15", "crop=normal epochs=30",
                                                "crop=oversize epochs=15"]
