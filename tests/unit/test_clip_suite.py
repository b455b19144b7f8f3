"""``--suite ped2`` planning: split manifests per protocol and seed, shared by the methods;
the parts (Table 2, Tables 3-4, inputs, unseen kinds, label strength) and their seeds; the
suite presets."""

import json

import pandas as pd
import pytest

from toolkit.data import manifest as mf
from toolkit.data.synthetic import make_clip_manifest
from toolkit.engine import grid
from toolkit.errors import AdtkError
from toolkit.eval.suite_tables import PLAN_FILE

TRAIN = [f"train/train_{i:02d}.mp4" for i in range(1, 17)]
TEST = [f"test/test_{i:02d}.mp4" for i in range(1, 13)]
#: Ped2's kinds: bike in most test clips, a cart in one, a skateboard in one.
KINDS = {**{t: "bike" for t in TEST[:6]}, TEST[6]: "cart", TEST[7]: "skateboard"}


def write_crop_manifest(path, videos, abnormal=(), events=None, motion=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    df = make_clip_manifest(videos, abnormal, events=events)
    if motion:
        df["path_motion"] = df["path"].str.replace("box/", "motion/")
        df["path_motion_oversize"] = df["path_oversize"].str.replace("oversize/", "motion_os/")
    return mf.write_manifest(df, path)


def frame_labels(path, clips):
    fl = pd.DataFrame([(v, f, f / 10, int(f == 1)) for v in clips for f in range(3)],
                      columns=["video", "frame_idx", "time_s", "abnormal"])
    fl.to_csv(path, index=False)
    return path


@pytest.fixture
def ped2_like(tmp_path):
    videos = TRAIN[:4] + TEST[:6]
    src = write_crop_manifest(tmp_path / "crops" / "manifest.parquet", videos, TEST[:6])
    return src, frame_labels(tmp_path / "frame_labels.csv", TEST[:6]), tmp_path / "runs"


@pytest.fixture
def ped2_kinds(tmp_path):
    """Eight test clips of three kinds, with motion crops."""
    videos = TRAIN[:3] + TEST[:8]
    src = write_crop_manifest(tmp_path / "crops" / "manifest.parquet", videos, TEST[:8],
                              events=KINDS, motion=True)
    return src, frame_labels(tmp_path / "frame_labels.csv", TEST[:8]), tmp_path / "runs"


def plan(src, fl, out, axes=None, k=2, **flags):
    cfgs = grid.plan({"data": str(src), "out": str(out), **flags}, axes or {}, "ped2",
                     suite_options={"frame_labels": str(fl), "labelled_clips": k})
    return cfgs, json.loads((out / PLAN_FILE).read_text())


def part(p, name):
    return next(x for x in p["parts"] if x["name"] == name)


def split_clips(path):
    df = mf.read_manifest(path)
    return set(df.loc[df.split == "train", "video"]), set(df.loc[df.split == "test", "video"])


def test_each_seed_has_one_manifest_that_baseline_and_adnl_share(ped2_like):
    src, fl, out = ped2_like
    cfgs, p = plan(src, fl, out, {"seed": [1, 2, 3]})
    official = [c for c in cfgs if c.data.endswith("ped2-official.parquet")]
    # ADNL has no anomalies to learn from; the baseline at the preset's part seeds (1-3)
    assert [(c.method, c.seed) for c in official] == [("baseline", s) for s in (1, 2, 3)]
    by_id = {c.run_id: c for c in cfgs}
    few = [by_id[i] for i in part(p, "table2")["run_ids"]]
    assert sorted((c.seed, c.method) for c in few) == [
        (s, m) for s in (1, 2, 3) for m in ("adnl", "baseline")]
    tests = {}
    for c in few:
        meta = mf.read_meta(c.data)
        assert meta["protocol_seed"] == c.seed and meta["labelled_clips"] == 2
        train, test = split_clips(c.data)
        assert not test & train and test == set(meta["test_videos"])
        tests.setdefault(c.seed, []).append((c.method, c.data, frozenset(test)))
    for runs in tests.values():
        assert len({d for _, d, _ in runs}) == 1 and len({t for _, _, t in runs}) == 1
    assert len({runs[0][2] for runs in tests.values()}) > 1  # seeds choose different clips
    _, off_test = split_clips(official[0].data)
    assert off_test == set(TEST[:6])


def test_parts_take_their_seeds_and_share_runs(ped2_like):
    src, fl, out = ped2_like
    cfgs, p = plan(src, fl, out, {"seed": [1, 2, 3, 4]})
    by_id = {c.run_id: c for c in cfgs}
    assert len(by_id) == len(cfgs)  # every run once, however many parts hold it
    assert part(p, "table2")["seeds"] == [1, 2, 3, 4]
    for name in ("table3", "table4"):  # the quick preset: 3 seeds for the ablations
        assert part(p, name)["seeds"] == [1, 2, 3]
        assert "fewer than Table 2's 4" in part(p, name)["caption"]
        assert {by_id[i].seed for i in part(p, name)["run_ids"]} == {1, 2, 3}
    t2 = set(part(p, "table2")["run_ids"])
    t3 = [by_id[i] for i in part(p, "table3")["run_ids"]]
    # Table 3: both methods on both crops; its normal-crop runs are Table 2's own runs
    assert sorted({(c.method, c.crop) for c in t3}) == [
        ("adnl", "normal"), ("adnl", "oversize"), ("baseline", "normal"), ("baseline", "oversize")]
    assert {c.run_id for c in t3 if c.crop == "normal"} <= t2
    t4 = [by_id[i] for i in part(p, "table4")["run_ids"]]
    assert sorted({(c.method, c.neg_loss) for c in t4}, key=str) == sorted(
        {("adnl", "naive"), ("adnl", "scaled"), ("baseline", None)}, key=str)
    assert {c.run_id for c in t4 if c.method == "baseline"} <= t2  # the same baseline runs
    assert {c.input for c in cfgs} == {"appearance"}  # no motion crops: appearance everywhere
    # no motion crops, no region labels: skipped, saying why
    assert "no motion crops" in part(p, "input")["skipped"] and not part(p, "input")["run_ids"]
    assert part(p, "labels")["skipped"] and part(p, "labels")["axis"] == "train_labels"
    # unseen: every test clip here is a bike clip, so there is nothing unseen to score
    assert "no test clip holds another kind" in part(p, "unseen")["skipped"]
    # every part's methods of one seed read one split manifest: the same test clips
    for x in p["parts"]:
        seeds = {}
        for i in x["run_ids"]:
            seeds.setdefault(by_id[i].seed, set()).add(by_id[i].data)
        assert all(len(d) == 1 for d in seeds.values()), x["name"]


def test_inputs_and_unseen_kinds_where_the_manifest_has_them(ped2_kinds):
    src, fl, out = ped2_kinds
    cfgs, p = plan(src, fl, out, {"seed": [1, 2]}, k=2)
    by_id = {c.run_id: c for c in cfgs}
    inp = [by_id[i] for i in part(p, "input")["run_ids"]]
    assert sorted({(c.method, c.input) for c in inp}) == sorted(
        (m, i) for m in ("adnl", "baseline") for i in ("appearance", "both", "motion"))
    off = [c for c in cfgs if c.data.endswith("ped2-official.parquet")]
    assert sorted((c.input, c.seed) for c in off) == [
        (i, s) for i in ("appearance", "both", "motion") for s in (1, 2)]
    # with motion crops, the parts that do not compare inputs train on them (the best input)
    for name in ("table2", "table3", "table4", "unseen"):
        assert {by_id[i].input for i in part(p, name)["run_ids"]} == {"motion"}, name
        assert "motion channels" in part(p, name)["caption"]
    un = part(p, "unseen")
    assert not un["skipped"] and un["extra"] == {"seen": ["bike"],
                                                 "unseen": ["cart", "skateboard"]}
    for i in un["run_ids"]:
        c = by_id[i]
        meta = mf.read_meta(c.data)
        train, test = split_clips(c.data)
        assert not train & test
        labelled = set(meta["labelled_videos"])
        assert len(labelled) == 2 and all(KINDS[v] == "bike" for v in labelled)
        assert {TEST[6], TEST[7]} <= test  # the cart and skateboard clips are scored
        assert meta["protocol_events"] == ["bike"]
    # the baseline of an unseen seed is scored on that seed's clips, not a Table 2 split
    assert {by_id[i].data for i in un["run_ids"]}.isdisjoint(
        {by_id[i].data for i in part(p, "table2")["run_ids"]})


def test_presets_fill_what_no_flag_or_config_sets(ped2_like, tmp_path):
    src, fl, out = ped2_like
    cfgs, p = plan(src, fl, out, {"seed": [1]})
    assert {(c.size, c.epochs, c.train_every) for c in cfgs} == {(32, 15, 8)}
    assert p["preset"] == "quick" and p["settings"]["train_every"] == 8
    cfgs, _ = plan(src, fl, out, {"seed": [1]}, epochs=2, train_every=1)
    assert {(c.size, c.epochs, c.train_every) for c in cfgs} == {(32, 2, 1)}
    yaml = tmp_path / "bench.yaml"
    yaml.write_text("bench:\n  size: 16\n")
    cfgs = grid.plan({"data": str(src), "out": str(out)}, {"seed": [1]}, "ped2", str(yaml),
                     suite_options={"frame_labels": str(fl), "labelled_clips": 2})
    assert {c.size for c in cfgs} == {16}
    cfgs, p = plan(src, fl, out, {"seed": [1, 2]}, preset="paper")
    assert {(c.size, c.train_every, c.preset) for c in cfgs} == {(64, 1, "paper")}
    assert part(p, "table3")["seeds"] == [1, 2]  # paper: every part takes every seed


def test_replanning_keeps_manifests_and_run_ids(ped2_like):
    src, fl, out = ped2_like
    a, pa = plan(src, fl, out, {"seed": [4]}, k=1)
    b, pb = plan(src, fl, out, {"seed": [4]}, k=1)
    assert [c.run_id for c in a] == [c.run_id for c in b]
    assert pa["parts"] == pb["parts"]


def test_official_only_and_bad_input(ped2_like):
    src, fl, out = ped2_like
    cfgs, p = plan(src, fl, out, {"method": ["baseline"]}, k=0)
    assert [c.seed for c in cfgs] == [1, 2, 3]  # the quick preset's part seeds
    assert all(c.data.endswith("ped2-official.parquet") for c in cfgs)
    assert [x["name"] for x in p["parts"]] == ["official"]
    with pytest.raises(AdtkError, match="needs --frame-labels"):
        grid.plan({"data": str(src), "out": str(out)}, {}, "ped2", suite_options={})
    with pytest.raises(AdtkError, match="needs --data"):
        grid.plan({"out": str(out)}, {}, "ped2", suite_options={"frame_labels": str(fl)})
    with pytest.raises(AdtkError, match="would leave no test clip|only"):
        grid.plan({"data": str(src), "out": str(out)}, {}, "ped2",
                  suite_options={"frame_labels": str(fl), "labelled_clips": 6})


def test_the_report_calls_a_suites_split_manifests_one_experiment(ped2_like):
    from toolkit.eval import report as R

    src, fl, out = ped2_like
    cfgs, _ = plan(src, fl, out, {"seed": [1, 2]})
    runs = [{"method": c.method, "dataset": "manifest", "data": c.data, "seed": c.seed,
             "run_id": c.run_id} for c in cfgs]
    assert len({r["data"] for r in runs}) >= 3  # official + one few-shot split per seed
    fams = R._families(runs)
    assert len(fams) == 1 and fams[0][0][1] == f"suite ped2: {src.resolve()}"
    assert R.default_title(runs).endswith(f"on {src.name} crops (suite ped2)")
    plain = {"method": "baseline", "dataset": "manifest", "data": str(src)}
    assert R._family(plain) == ("manifest", str(src))  # a crop manifest is not a suite split
