import pytest

from toolkit.config import BenchConfig, ExtractConfig, SplitConfig, config_hash, resolve
from toolkit.errors import AdtkError


def test_defaults_then_yaml_then_flags(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("extract:\n  fps: 5\n  size: 32\n")
    cfg = resolve(ExtractConfig, y, "extract", size=48, detector=None)
    assert (cfg.fps, cfg.size, cfg.detector) == (5.0, 48, ExtractConfig().detector)


def test_yaml_integer_for_a_float_gives_the_same_config_and_hash_as_the_flag(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("fps: 5\n")
    from_yaml, from_flag = resolve(ExtractConfig, y), resolve(ExtractConfig, fps=5.0)
    assert from_yaml == from_flag and isinstance(from_yaml.fps, float)
    assert config_hash(from_yaml) == config_hash(from_flag)


@pytest.mark.parametrize(
    "text,message",
    [
        ("fps: abc\n", "fps must be a number, got 'abc'"),
        ("min_size: 1.5\n", "min_size must be an integer, got 1.5"),
        ("motion_gate: maybe\n", "motion_gate must be true or false"),
        ("weights: 3\n", "weights must be a string (or empty)"),
        ("bogus: 1\n", "unknown setting(s) bogus"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_yaml_values_are_one_line_errors_naming_file_and_setting(tmp_path, text, message):
    y = tmp_path / "c.yaml"
    y.write_text(text)
    with pytest.raises(AdtkError) as e:
        resolve(ExtractConfig, y)
    assert message in str(e.value) and str(y) in str(e.value)


def test_paths_become_strings_and_lists_tuples(tmp_path):
    cfg = resolve(BenchConfig, data=tmp_path / "m.parquet")
    assert cfg.data == str(tmp_path / "m.parquet")
    assert resolve(SplitConfig, holdout_events=["fall"]).holdout_events == ("fall",)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(AdtkError, match="config file not found"):
        resolve(ExtractConfig, tmp_path / "nope.yaml")
