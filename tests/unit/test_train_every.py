"""``train_every``: training on the normal crops of every Nth frame of the training clips; in
the run id when set, never touching labelled anomalies, validation or test crops."""

import numpy as np
import pytest

from toolkit.config import BenchConfig
from toolkit.data import manifest as mf
from toolkit.data import protocols as P
from toolkit.data.datasets import load_manifest_data
from toolkit.data.synthetic import write_clip_crops
from toolkit.engine.run import resolve_bench_config
from toolkit.errors import AdtkError

TRAIN = ["train/a.mp4", "train/b.mp4"]
TEST = ["test/c.mp4", "test/d.mp4", "test/e.mp4"]


@pytest.fixture(scope="module")
def fewshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    src = write_clip_crops(root / "crops", TRAIN + TEST, {t: "bike" for t in TEST}, frames=6)
    split = P.fewshot_split(TRAIN + TEST, TEST, 1, seed=0)
    return P.write_protocol_manifest(src, root / "few.parquet", split).path


def test_only_normal_training_crops_are_subsampled(fewshot):
    full = load_manifest_data(fewshot, size=16)
    every3 = load_manifest_data(fewshot, size=16, train_every=3)
    tr = full.train.meta
    assert set(every3.train.meta["frame_idx"]) == {0, 3}
    assert len(every3.train) == int((tr["frame_idx"] % 3 == 0).sum()) < len(full.train)
    # labelled anomalies (odd frames here) and every test crop stay
    assert every3.train_abn.meta["sample_id"].tolist() == full.train_abn.meta["sample_id"].tolist()
    assert len(full.train_abn) > 0
    assert every3.test.meta["sample_id"].tolist() == full.test.meta["sample_id"].tolist()
    assert np.array_equal(every3.test.x.numpy(), full.test.x.numpy())
    assert every3.info["train_every"] == 3
    with pytest.raises(AdtkError, match="train_every must be >= 1"):
        load_manifest_data(fewshot, size=16, train_every=0)


def test_train_every_is_in_the_run_id_only_when_set(fewshot):
    one = resolve_bench_config(None, data=str(fewshot), method="baseline", epochs=1)
    four = resolve_bench_config(None, data=str(fewshot), method="baseline", epochs=1,
                                train_every=4)
    assert "train_every" not in one.hash_dict()  # runs from before the setting keep their ids
    assert four.hash_dict()["train_every"] == 4 and four.run_id != one.run_id
    with pytest.raises(AdtkError, match="train_every must be an integer >= 1"):
        resolve_bench_config(None, data=str(fewshot), train_every=0)
    with pytest.raises(AdtkError, match="needs a crop manifest"):
        resolve_bench_config(None, dataset="digits", anomaly_digit=0, train_every=2)
    assert BenchConfig().train_every == 1


def test_the_run_folder_records_it(fewshot, tmp_path):
    import json

    from toolkit.engine.run import run_one

    cfg = resolve_bench_config(None, data=str(fewshot), method="baseline", epochs=1, size=16,
                               batch_size=4, train_every=2, device="cpu")
    folder = run_one(cfg, tmp_path / "runs", progress=False)
    assert json.loads((folder / "config.json").read_text())["train_every"] == 2
    m = json.loads((folder / "metrics.json").read_text())
    assert m["train_every"] == 2 and m["n_train"] == len(
        load_manifest_data(fewshot, size=16, train_every=2).train)
    df = mf.read_manifest(fewshot)
    import pandas as pd

    scored = pd.read_parquet(folder / "scores.parquet")
    assert set(scored.loc[scored.split == "test", "sample_id"]) == set(
        df.loc[(df.split == "test") & df.label.isin(["normal", "abnormal"]), "crop_id"])
