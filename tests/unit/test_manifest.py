"""The manifest contract: schema checks that name the column, atomic writes, crops root."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toolkit.data import manifest as mf
from toolkit.data.synthetic import make_crop_manifest
from toolkit.errors import ManifestError


@pytest.fixture
def df():
    return make_crop_manifest(300, seed=3)


def test_round_trip_keeps_schema_metadata_and_extra_columns(df, tmp_path):
    df["camera"] = "lobby"  # users may add their own columns
    path = mf.write_manifest(df, tmp_path / "m.parquet", meta={"seed": 5})
    table = mf.read_table(path)
    assert table.column_names == [*mf.CROP_COLUMNS, "camera"]
    assert table.schema.field("x").type == pa.int32()
    assert mf.read_meta(path) == {"seed": 5}
    back = mf.read_manifest(path)
    assert back["crop_id"].tolist() == df["crop_id"].tolist()
    assert back["event"].isna().sum() == df["event"].isna().sum()


@pytest.mark.parametrize("column", ["label", "sequence_id", "frame_idx"])
def test_missing_column_is_named(df, tmp_path, column):
    with pytest.raises(ManifestError, match=f"missing column.*{column}"):
        mf.write_manifest(df.drop(columns=[column]), tmp_path / "m.parquet")
    assert not (tmp_path / "m.parquet").exists()


def test_mistyped_column_is_named_on_write_and_read(df, tmp_path):
    bad = df.assign(frame_idx=df["frame_idx"] + 0.5)
    with pytest.raises(ManifestError, match="'frame_idx' must be int64"):
        mf.write_manifest(bad, tmp_path / "m.parquet")
    table = pa.Table.from_pandas(df.assign(w=df["w"].astype(np.float64)), preserve_index=False)
    pq.write_table(table, tmp_path / "raw.parquet")
    with pytest.raises(ManifestError, match="'w' must be int32, got double"):
        mf.read_table(tmp_path / "raw.parquet")


def test_missing_values_in_required_column(df, tmp_path):
    df.loc[3, "sequence_id"] = None
    with pytest.raises(ManifestError, match="'sequence_id' has 1 missing"):
        mf.write_manifest(df, tmp_path / "m.parquet")


def test_bad_label_and_split_values(df, tmp_path):
    with pytest.raises(ManifestError, match="'label' has value.*'anomaly'"):
        mf.write_manifest(df.assign(label="anomaly"), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="'split' has value.*'dev'"):
        mf.write_manifest(df.assign(split="dev"), tmp_path / "m.parquet", kind="split")


def test_duplicate_crop_ids_are_shown(df, tmp_path):
    df.loc[7, "crop_id"] = df.loc[8, "crop_id"]
    with pytest.raises(ManifestError, match=f"duplicate crop_id.*{df.loc[8, 'crop_id']}"):
        mf.write_manifest(df, tmp_path / "m.parquet")


def test_problems_lists_every_problem(df):
    table = pa.Table.from_pandas(
        df.drop(columns=["video"]).assign(label="bad", w=1.5), preserve_index=False
    )
    found = mf.problems(table, "crop")
    assert any("missing column(s) video" in p for p in found)
    assert any("'w' must be int32" in p for p in found)
    assert any("'label' has value(s) 'bad'" in p for p in found)
    assert mf.problems(pa.Table.from_pandas(df, preserve_index=False), "crop") == []


def test_failed_write_leaves_old_file_and_no_temp(df, tmp_path):
    path = mf.write_manifest(df, tmp_path / "m.parquet")
    before = path.read_bytes()
    with pytest.raises(ManifestError):
        mf.write_manifest(df.assign(label="oops"), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.parquet"]


def test_crops_root_default_relative_absolute_and_fallback(df, tmp_path):
    (tmp_path / "crops").mkdir()
    path = mf.write_manifest(df, tmp_path / "a" / "m.parquet")
    assert mf.crops_root(path) == path.parent.resolve()
    path = mf.write_manifest(df, tmp_path / "a" / "m.parquet", meta={"crops_root": "../crops"})
    assert mf.crops_root(path) == (tmp_path / "crops").resolve()
    path = mf.write_manifest(df, path, meta={"crops_root": str(tmp_path / "crops")})
    assert mf.crops_root(path) == tmp_path / "crops"
    # The relative root is gone (file moved alone): the recorded absolute root is used.
    meta = {"crops_root": "../../nowhere", "crops_root_abs": str(tmp_path / "crops")}
    path = mf.write_manifest(df, path, meta=meta)
    assert mf.crops_root(path) == tmp_path / "crops"


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(ManifestError, match="no such file"):
        mf.read_table(tmp_path / "none.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(ManifestError, match="junk.parquet: not a readable Parquet"):
        mf.read_table(tmp_path / "junk.parquet")


def test_validation_is_fast_at_scale(tmp_path):
    # 1M-row manifests must validate in well under a second (split's 10 s budget).
    import time

    table = pa.Table.from_pandas(make_crop_manifest(200_000, seed=1), preserve_index=False)
    t0 = time.perf_counter()
    mf.check_table(table.cast(mf.schema("crop")), "crop")
    assert time.perf_counter() - t0 < 2.0


def test_write_accepts_an_arrow_table_in_any_column_order(df, tmp_path):
    table = pa.Table.from_pandas(df.assign(camera="lobby"), preserve_index=False)
    table = table.select(list(reversed(table.column_names)))  # pandas 3: large_string columns
    path = mf.write_manifest(table, tmp_path / "m.parquet", meta={"k": 1})
    back = mf.read_table(path)
    assert back.column_names == [*mf.CROP_COLUMNS, "camera"]
    assert back.schema.field("path").type == pa.string()
    assert back.schema.metadata.keys() == {mf.META_KEY}  # no stale pandas metadata
    with pytest.raises(ManifestError, match="'label' has value"):
        bad = table.set_column(
            table.schema.get_field_index("label"), "label", pa.array(["x"] * len(df))
        )
        mf.write_manifest(bad, tmp_path / "m.parquet")
    assert mf.read_meta(path) == {"k": 1}
