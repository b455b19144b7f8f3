"""Bad input to adtk split: a clear error naming the problem, and nothing written."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toolkit.config import SplitConfig, resolve
from toolkit.data import manifest as mf
from toolkit.data.split import split_manifests
from toolkit.data.synthetic import make_crop_manifest
from toolkit.errors import AdtkError, ManifestError


@pytest.fixture
def df():
    return make_crop_manifest(2000, seed=9)


@pytest.fixture
def out(tmp_path):
    """An existing output file: a failed split must leave it exactly as it was."""
    path = tmp_path / "dm" / "split.parquet"
    path.parent.mkdir()
    path.write_bytes(b"previous split")
    return path


def raw(df, path):
    """Write without validation, as a foreign tool might."""
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


def fails(inputs, out, match, cfg=None, exc=AdtkError):
    with pytest.raises(exc, match=match):
        split_manifests(inputs, out, cfg)
    assert out.read_bytes() == b"previous split"
    assert os.listdir(out.parent) == [out.name]  # no temp file left behind


def test_missing_column_is_named(df, tmp_path, out):
    src = raw(df.drop(columns=["sequence_id"]), tmp_path / "m.parquet")
    fails([src], out, r"m.parquet: missing column\(s\) sequence_id", exc=ManifestError)


def test_mistyped_column_is_named(df, tmp_path, out):
    src = raw(df.assign(frame_idx=df["frame_idx"].astype(str)), tmp_path / "m.parquet")
    fails([src], out, "column 'frame_idx' must be int64, got (large_)?string", exc=ManifestError)


def test_empty_manifest(df, tmp_path, out):
    src = mf.write_manifest(df.iloc[:0], tmp_path / "m.parquet")
    fails([src], out, "m.parquet: empty manifest", exc=ManifestError)


def test_duplicate_crop_ids_in_one_file_and_across_files(df, tmp_path, out):
    dup = df.copy()
    dup.loc[5, "crop_id"] = dup.loc[6, "crop_id"]
    src = raw(dup, tmp_path / "dup.parquet")
    fails([src], out, f"duplicate crop_id.*{dup.loc[6, 'crop_id']}", exc=ManifestError)
    a = mf.write_manifest(df, tmp_path / "a.parquet")
    b = mf.write_manifest(df.iloc[:10], tmp_path / "b.parquet")
    fails([a, b], out, r"across inputs: 10 id\(s\) repeated.*a.parquet and .*b.parquet")
    fails([a, a], out, r"given twice")


def test_label_values_outside_the_three(df, tmp_path, out):
    bad = df.assign(label=df["label"].where(df.index % 7 != 0, "anomalous"))
    src = raw(bad, tmp_path / "m.parquet")
    fails(
        [src],
        out,
        "column 'label' has value.*'anomalous'; allowed: normal, abnormal",
        exc=ManifestError,
    )


@pytest.mark.parametrize(
    "ratios, match",
    [
        ("7:-1:2", "every ratio must be a number >= 0"),
        ("0:0:0", "at least one ratio must be > 0"),
        ("7:1", "expected three numbers"),
        ("a:b:c", "expected three numbers"),
        ("nan:1:1", "every ratio must be a number >= 0"),
    ],
)
def test_bad_ratios(ratios, match):
    with pytest.raises(AdtkError, match=match):
        resolve(SplitConfig, ratios=ratios)
    with pytest.raises(ValueError, match=match):
        SplitConfig(ratios=ratios)


def test_fewer_groups_than_splits(df, tmp_path, out):
    two = df[df["sequence_id"].isin(df["sequence_id"].unique()[:2])]
    src = mf.write_manifest(two, tmp_path / "m.parquet")
    fails([src], out, r"2 group\(s\) cannot fill 3 splits")
    # with a zero ratio two splits are asked for, and two groups are enough
    res = split_manifests([src], tmp_path / "ok.parquet", SplitConfig(ratios=(8, 0, 2)))
    assert list(res.summary.groups) == [1, 0, 1]


def test_bad_group_by(df, tmp_path, out):
    src = mf.write_manifest(df, tmp_path / "m.parquet")
    fails([src], out, "--group-by 'scene': no such column", SplitConfig(group_by="scene"))
    fails([src], out, "'event'.*missing value", SplitConfig(group_by="event"))
    fails([src], out, "expected window:SECONDS", SplitConfig(group_by="window:-5s"))
    fails([src], out, "expected window:SECONDS", SplitConfig(group_by="window:five"))
    # NaN becomes a null (caught by the schema); infinity does not, so window grouping checks it.
    inf = mf.write_manifest(
        df.assign(time_s=df["time_s"].where(df.index != 3, float("inf"))), tmp_path / "i.parquet"
    )
    fails([inf], out, "'time_s' has 1 NaN/inf", SplitConfig(group_by="window:60s"))


def test_missing_or_unreadable_input(tmp_path, out):
    fails([tmp_path / "none.parquet"], out, "none.parquet: no such file")
    (tmp_path / "junk.parquet").write_text("hello")
    fails([tmp_path / "junk.parquet"], out, "not a readable Parquet file")
    fails([], out, "no input manifest")
    crops = tmp_path / "crops"  # the extract output folder instead of its manifest
    mf.write_manifest(make_crop_manifest(50, seed=1), crops / "manifest.parquet")
    fails([crops], out, r"crops: is a folder, not a manifest file; did you mean .*manifest")


def test_output_must_be_a_new_file_not_an_input_or_folder(df, tmp_path):
    src = mf.write_manifest(df, tmp_path / "m.parquet")
    before = src.read_bytes()
    with pytest.raises(AdtkError, match="is one of the inputs"):
        split_manifests([src], tmp_path / "." / "m.parquet")
    assert src.read_bytes() == before
    with pytest.raises(AdtkError, match="is a folder"):
        split_manifests([src], tmp_path)


def test_metadata_that_is_not_json_is_named(df, tmp_path, out):
    table = mf.to_table(df).replace_schema_metadata({mf.META_KEY: b"not json"})
    pq.write_table(table, tmp_path / "m.parquet")
    fails([tmp_path / "m.parquet"], out, "adtk metadata is not a JSON object", exc=ManifestError)


def test_output_under_a_file_is_an_adtk_error(df, tmp_path):
    src = mf.write_manifest(df, tmp_path / "m.parquet")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(AdtkError, match="a_file/s.parquet: cannot write it"):
        split_manifests([src], tmp_path / "a_file" / "s.parquet")
    assert (tmp_path / "a_file").read_text() == "x"


def test_nan_in_a_numeric_group_column(df, tmp_path, out):
    src = mf.write_manifest(
        df.assign(scene=[float("nan")] + [1.0] * (len(df) - 1)), tmp_path / "m.parquet"
    )
    fails([src], out, "'scene'", SplitConfig(group_by="scene"))
