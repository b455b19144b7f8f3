"""``adtk split`` and ``adtk inspect`` through the real command line (click's CliRunner)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data import manifest as mf
from toolkit.data.synthetic import make_crop_manifest
from toolkit.io import sha256_file
from toolkit.video.synthetic import make_video


@pytest.fixture
def crops(tmp_path):
    df = make_crop_manifest(6000, seed=21, abnormal=0.15)
    path = mf.write_manifest(df, tmp_path / "crops" / "manifest.parquet")
    for p in df["path"]:  # inspect checks that a sample of the crop files is on disk
        f = path.parent / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_split_prints_the_table_and_writes_the_manifest(crops, tmp_path):
    out = tmp_path / "data_manifests" / "lobby.parquet"
    res = run("split", crops, "--out", out, "--seed", 3, "--holdout-event", "fight")
    assert res.exit_code == 0, res.output
    for word in ("train", "val", "test", "leakage check: ok", "held out for test only: fight"):
        assert word in res.output
    table = mf.read_table(out, "split")
    assert set(table.column("split").to_pylist()) == {"train", "val", "test"}
    meta = mf.read_meta(out)
    assert meta["seed"] == 3 and meta["holdout_events"] == ["fight"]


def test_an_empty_validation_split_is_warned_about(crops, tmp_path):
    res = run("split", crops, "--out", tmp_path / "s.parquet", "--ratios", "7:0:3")
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith("Warning: the val ratio is 0, so there is no val split")
    assert "--select best-val" in res.stderr
    assert "val" not in set(mf.read_table(tmp_path / "s.parquet").column("split").to_pylist())
    assert run("split", crops, "--out", tmp_path / "t.parquet").stderr == ""


def test_same_command_twice_gives_identical_bytes(crops, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert run("split", crops, "-o", a, "--ratios", "6:2:2").exit_code == 0
    assert run("split", crops, "-o", b, "--ratios", "6:2:2").exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def test_config_file_then_flags(crops, tmp_path):
    cfg = tmp_path / "adtk.yaml"
    cfg.write_text("split:\n  ratios: [8, 1, 1]\n  seed: 4\n  group_by: video_id\n")
    out = tmp_path / "s.parquet"
    assert run("split", crops, "-o", out, "--config", cfg, "--seed", 5).exit_code == 0
    meta = mf.read_meta(out)
    assert (meta["ratios"], meta["seed"], meta["group_by"]) == ([8, 1, 1], 5, "video_id")


def test_config_file_ratios_spelled_as_on_the_command_line(crops, tmp_path):
    cfg = tmp_path / "adtk.yaml"
    cfg.write_text("split:\n  ratios: 6:2:2\n")  # YAML 1.1 reads this in base 60: 21722
    out = tmp_path / "s.parquet"
    res = run("split", crops, "-o", out, "--config", cfg)
    assert res.exit_code == 0, res.output
    assert mf.read_meta(out)["ratios"] == [6, 2, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ratios", "7:-1:2"], "every ratio must be a number >= 0"),
        (["--ratios", "0:0:0"], "at least one ratio must be > 0"),
        (["--group-by", "room"], "--group-by 'room': no such column"),
        (["--holdout-event", "flying"], "'flying': no crop has this event"),
        (["--seed", "-5"], "seed -5: expected an integer >= 0"),
    ],
)
def test_bad_options_exit_2_with_one_line(crops, tmp_path, args, message):
    out = tmp_path / "s.parquet"
    res = CliRunner().invoke(main, ["split", str(crops), "-o", str(out), *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_inspect_split_and_crop_manifests(crops, tmp_path):
    out = tmp_path / "dm" / "s.parquet"
    split_out = run("split", crops, "-o", out).output
    res = run("inspect", out)
    assert res.exit_code == 0
    table = [line for line in split_out.splitlines() if line.startswith(("train", "val", "test"))]
    assert all(line in res.output for line in table)  # the same table as split printed
    assert "schema: ok" in res.output and "seed 0, ratios 7:1:2" in res.output
    res = run("inspect", crops)
    assert res.exit_code == 0 and "crop manifest, 6000 crops" in res.output
    assert "leakage check: n/a" in res.output


def test_inspect_finds_leakage_and_schema_problems(crops, tmp_path):
    out = tmp_path / "s.parquet"
    run("split", crops, "-o", out)
    table = pq.read_table(out)
    splits = table.column("split").to_pylist()
    seq = table.column("sequence_id").to_pylist()
    first = seq[0]  # move one crop of the first sequence to another split
    i = next(i for i, s in enumerate(seq) if s == first and i > 0)
    splits[i] = "val" if splits[0] != "val" else "test"
    labels = table.column("label").to_pylist()
    labels[1] = "weird"
    table = table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits))
    table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels))
    pq.write_table(table, out)
    res = run("inspect", out)
    assert res.exit_code == 1
    assert "leakage check: FAILED, 1 sequence_id group(s) in more than one split" in res.output
    assert "'label' has value(s) 'weird'" in res.output


@pytest.mark.parametrize(
    "group_by, message",
    [("room", "--group-by 'room': no such column"), ("window:abc", "expected window:SECONDS")],
)
def test_inspect_with_a_bad_group_by_is_an_error(crops, group_by, message):
    res = CliRunner().invoke(main, ["inspect", str(crops), "--group-by", group_by])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and message in res.output


def test_inspect_lists_metadata_that_is_not_json(crops, tmp_path):
    table = pq.read_table(crops).replace_schema_metadata({mf.META_KEY: b"[1, 2"})
    pq.write_table(table, tmp_path / "m.parquet")
    res = run("inspect", tmp_path / "m.parquet")
    assert res.exit_code == 1
    assert "adtk metadata is not a JSON object" in res.output and "leakage check" in res.output


def test_inspect_missing_file_is_an_error(tmp_path):
    res = CliRunner().invoke(main, ["inspect", str(tmp_path / "nope.parquet")])
    assert res.exit_code == 2 and "no such file" in res.output


# --- extract -> split, through the real commands ----------------------------------------------


@pytest.mark.slow
def test_extract_then_split_then_move(tmp_path):
    if "extract" not in main.commands:
        pytest.skip("adtk extract is not available in this checkout")
    # three normal and two abnormal clips (labels from the folder names), two walkers each
    for i in range(3):
        make_video(tmp_path / "videos" / "normal" / f"cam{i}.avi", seed=i)
    for i in range(2):
        make_video(tmp_path / "videos" / "abnormal" / f"cam{i}.avi", seed=10 + i)
    crops = tmp_path / "crops"
    res = CliRunner().invoke(
        main,
        [
            "extract",
            str(tmp_path / "videos"),
            "--out",
            str(crops),
            "--workers",
            "1",
            "--no-progress",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    extracted = mf.read_manifest(crops / "manifest.parquet")
    assert extracted["sequence_id"].nunique() >= 6, "the tracker should give ~2 per video"

    out = tmp_path / "project" / "data_manifests" / "clips.parquet"
    res = run("split", crops / "manifest.parquet", "--out", out, "--ratios", "1:1:1")
    assert res.exit_code == 0, res.output
    assert "leakage check: ok" in res.output
    df = mf.read_manifest(out)
    assert len(df) == len(extracted)
    assert df.groupby("sequence_id")["split"].nunique().max() == 1
    assert set(df["split"]) == {"train", "val", "test"}
    # >= 3 abnormal sequences: every split has some
    assert set(df.loc[df["label"] == "abnormal", "split"]) == {"train", "val", "test"}
    assert mf.read_meta(out)["inputs"][0]["sha256"] == sha256_file(crops / "manifest.parquet")

    def images_found(manifest):
        root = mf.crops_root(manifest)
        frame = mf.read_manifest(manifest)
        return all((root / p).is_file() for p in [*frame["path"], *frame["path_oversize"]])

    assert images_found(out)
    moved = tmp_path / "elsewhere" / "clips.parquet"
    moved.parent.mkdir()
    out.rename(moved)
    assert images_found(moved)
    res = run("inspect", moved)
    assert res.exit_code == 0 and "images: 20 of 20 sampled paths found" in res.output
    # the crops moved away: inspect says so and fails
    (crops / "videos").rename(tmp_path / "videos-moved")
    res = run("inspect", moved)
    assert res.exit_code == 1 and "images: 0 of 20 sampled paths found" in res.output
    assert "MISSING: crops moved or deleted?" in res.output


def test_inspect_reads_large_string_columns_as_pandas_writes_them(crops, tmp_path):
    # pandas >= 3 writes str columns as large_string; the schema accepts them, so must inspect
    out = tmp_path / "dm" / "s.parquet"
    assert run("split", crops, "-o", out).exit_code == 0
    table = pq.read_table(out)
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.large_string()))
    pq.write_table(table, out)
    res = run("inspect", out)
    assert res.exit_code == 0, res.output
    assert "summary: not available" not in res.output
    assert "leakage check: ok" in res.output and "images: " in res.output


def test_the_folder_adtk_extract_wrote_stands_for_its_manifest(crops, tmp_path):
    folder = crops.parent  # crops/manifest.parquet, as adtk extract --out crops writes it
    by_folder, by_file = run("inspect", folder), run("inspect", crops)
    assert by_folder.exit_code == by_file.exit_code == 0
    assert by_folder.output == by_file.output
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert run("split", folder, "-o", a).exit_code == 0
    assert run("split", crops, "-o", b).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["inspect", empty], ["split", empty, "-o", tmp_path / "c.parquet"],
                 ["bench", "--data", empty, "--out", tmp_path / "runs"]):
        res = CliRunner().invoke(main, [str(a) for a in args])
        assert res.exit_code == 2, res.output
        assert res.output.startswith(f"Error: {empty}: a folder without manifest.parquet")


def test_a_folder_in_a_bench_config_file_is_its_manifest(tmp_path):
    from toolkit.data.synthetic import make_split_manifest
    from toolkit.engine.run import resolve_bench_config

    man = make_split_manifest(tmp_path / "crops", name="manifest.parquet")
    cfg_file = tmp_path / "adtk.yaml"
    cfg_file.write_text(f"bench:\n  data: {man.parent}\n")
    by_folder = resolve_bench_config(cfg_file, method="baseline", epochs=1)
    by_file = resolve_bench_config(method="baseline", epochs=1, data=str(man))
    assert by_folder.data == str(man)
    assert by_folder.run_id == by_file.run_id  # one run, however the manifest was named


def test_a_split_of_very_few_groups_says_the_ratios_cannot_be_met(tmp_path):
    m = mf.write_manifest(make_crop_manifest(45, seed=3, mean_len=10.0, abnormal=0.0,
                                             seqs_per_video=5),
                          tmp_path / "few.parquet")
    groups = mf.read_manifest(m)["sequence_id"].nunique()
    assert 2 <= groups <= 6
    res = run("split", m, "-o", tmp_path / "s.parquet")
    assert res.exit_code == 0, res.output
    assert f"note: only {groups} groups: whole groups give shares" in res.output
    assert "against 70/10/20 %" in res.output


def test_a_split_whose_input_was_relabelled_since_is_named_by_inspect_and_bench(crops, tmp_path):
    """Relabelling the crops (a rerun of extract with another labels file) leaves a split
    manifest with the old labels: inspect exits 1 and says so, bench notes it before training."""
    from toolkit.data.manifest import changed_inputs, read_meta
    from toolkit.engine.grid import changed_input_notes

    out = tmp_path / "s.parquet"
    assert run("split", crops, "--out", out).exit_code == 0
    assert run("inspect", out).exit_code == 0 and changed_inputs(read_meta(out), out) == []
    df = mf.read_manifest(crops)
    # rewritten with other metadata only (extract rerun with --workers 2): not a change
    mf.write_manifest(df, crops, meta={"config": {"workers": 2}})
    assert sha256_file(crops) != read_meta(out)["inputs"][0]["sha256"]
    assert run("inspect", out).exit_code == 0 and changed_inputs(read_meta(out), out) == []
    df.loc[df.index[:50], "label"] = "unlabeled"
    mf.write_manifest(df, crops)
    res = run("inspect", out)
    assert res.exit_code == 1 and "CHANGED: " in res.output and "split again" in res.output
    cfg = type("Cfg", (), {"data": str(out)})()
    (note,) = changed_input_notes([cfg])
    assert note.startswith(f"{out}: its input {crops} has changed since the split")


def test_inputs_with_different_columns_are_each_compared_on_their_own(tmp_path):
    """Found in review: a split of two inputs, one with interval labels beside its labels,
    counted the other as changed after a metadata-only rewrite (its rows were compared with
    a column it never had)."""
    from toolkit.data.split import split_manifests

    a = make_crop_manifest(600, seed=1, abnormal=0.2).assign(label_interval=lambda d: d["label"])
    b = make_crop_manifest(600, seed=2, abnormal=0.2)
    for col in ("crop_id", "video", "video_id", "sequence_id"):
        b[col] = "b" + b[col].astype(str)
    pa_ = mf.write_manifest(a, tmp_path / "a" / "manifest.parquet")
    pb = mf.write_manifest(b, tmp_path / "b" / "manifest.parquet")
    out = tmp_path / "s.parquet"
    split_manifests([pa_, pb], out)
    for p in (pa_, pb):  # rewritten with other metadata only
        mf.write_manifest(mf.read_manifest(p), p, meta={"config": {"workers": 2}})
    assert mf.changed_inputs(mf.read_meta(out), out) == []
    df = mf.read_manifest(pa_)
    df.loc[df.index[:5], "label_interval"] = "unlabeled"  # interval labels alone change
    mf.write_manifest(df, pa_)
    (line,) = mf.changed_inputs(mf.read_meta(out), out)
    assert line.startswith(f"{pa_} has changed since the split")
