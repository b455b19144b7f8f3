"""Project hygiene that a fresh clone relies on: the declared Python floor, the lint and test
commands of README / tox / CI agreeing, the test settings, and comments and helpers in order."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def test_declared_python_floor_is_the_one_linted_and_documented():
    floor = re.fullmatch(r">=\s*3\.(\d+)", _setup_cfg()["options"]["python_requires"].strip())
    assert floor, "python_requires must be a plain >=3.N floor"
    minor = int(floor.group(1))
    # ruff's pyupgrade rules rewrite code to the target version's features (datetime.UTC is
    # 3.11+), so the target must be the floor, or code would stop running on the floor.
    assert _pyproject()["tool"]["ruff"]["target-version"] == f"py3{minor}"
    assert f"Python 3.{minor}+" in (REPO / "README.md").read_text()
    assert sys.version_info >= (3, minor)


def _ruff_commands(text: str) -> list[str]:
    return [m.strip() for m in re.findall(r"(ruff check[^&\n]*)", text)]


def test_readme_tox_and_ci_lint_the_same_paths():
    readme = _ruff_commands((REPO / "README.md").read_text())
    tox = _ruff_commands((REPO / "tox.ini").read_text())
    ci = _ruff_commands((REPO / ".ci" / "run").read_text())
    assert readme and tox and ci
    assert set(readme) == set(tox) == set(ci) == {"ruff check ."}


def test_unused_noqa_is_a_lint_error():
    lint = _pyproject()["tool"]["ruff"]["lint"]
    assert "RUF100" in lint["select"]


def test_ruff_passes_with_unused_noqa_checked():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--extend-select", "RUF100",
                           "--output-format", "concise", "."], cwd=REPO, capture_output=True,
                          text=True)
    if ruff.returncode and "No module named ruff" in ruff.stderr:
        pytest.skip("ruff is not installed")
    assert ruff.returncode == 0, ruff.stdout


def test_per_test_timeout_and_the_fast_subset_are_configured():
    ini = _pyproject()["tool"]["pytest"]["ini_options"]
    assert int(ini["timeout"]) > 0  # pytest-timeout reads it
    assert "pytest-timeout" in _setup_cfg()["options.extras_require"]["test"]
    assert any(m.startswith("slow:") for m in ini["markers"])
    readme = (REPO / "README.md").read_text()
    assert 'pytest -q -m "not slow"' in readme
    # the README's test command stays the full suite (what CI runs)
    assert "ruff check . && pytest -q\n" in readme


def _comments(path) -> list[tuple[int, str]]:
    import tokenize

    with open(path, "rb") as fh:
        return [(t.start[0], t.string) for t in tokenize.tokenize(fh.readline)
                if t.type == tokenize.COMMENT]


def test_no_comment_names_an_issue_or_is_scaffolding():
    bad = []
    for path in sorted((REPO / "toolkit").rglob("*.py")) + sorted(
            (REPO / "benchmarks").rglob("*.py")):
        text = path.read_text()
        for line, c in _comments(path):
            if re.search(r"\bissues? #?\d+", c, re.I) or re.search(r"added below", c, re.I):
                bad.append(f"{path.relative_to(REPO)}:{line}: {c}")
        for m in re.finditer(r"\(issue #?\d+\)", text):
            bad.append(f"{path.relative_to(REPO)}: {m.group()}")
    assert not bad, "\n".join(bad)


def _test_modules():
    return sorted(p for p in (REPO / "tests").rglob("test_*.py"))


def test_test_modules_import_no_helpers_from_other_test_modules():
    bad = []
    for path in _test_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests"):
                bad.append(f"{path.relative_to(REPO)}: from {node.module} import ...")
    assert not bad, "\n".join(bad)


def test_each_fixture_has_one_home():
    # The same data built by the same call in fixtures of two test modules is a copy: it
    # belongs in conftest.py (or the toolkit's own builder), once.
    homes = defaultdict(set)
    for path in _test_modules():
        tree = ast.parse(path.read_text())
        builders = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    and (n.module or "").startswith("toolkit") for a in n.names}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                    "fixture" in ast.unparse(d) for d in node.decorator_list):
                for call in (c for stmt in node.body for c in ast.walk(stmt)):
                    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                            and call.func.id in builders):
                        homes[ast.unparse(call)].add(path.name)
    copies = {k: sorted(v) for k, v in homes.items() if len(v) > 1}
    assert not copies, copies


def test_every_option_of_every_command_has_help_text():
    import click

    from toolkit.cli import main

    missing = []
    for name, cmd in main.commands.items():
        for p in cmd.params:
            if isinstance(p, click.Option) and not (p.help or "").strip():
                missing.append(f"adtk {name} {'/'.join(p.opts)}")
    assert not missing, missing


def test_bench_help_explains_the_manifest_dataset():
    from click.testing import CliRunner

    from toolkit.cli import main

    text = " ".join(CliRunner().invoke(main, ["bench", "--help"]).output.split())
    assert "manifest: the crop manifest given with --data" in text


def test_readme_offers_the_cpu_only_torch_install_beside_the_quick_start():
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "pip install -e . && adtk demo --out demo" in quick
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu" in quick
    assert "5.5 GB" in quick  # the measured CUDA install, stated beside it


def test_bench_help_is_in_sections_and_loses_no_option():
    """249 lines of options in one list were hard to read: sections, each option once."""
    import re

    import click
    from click.testing import CliRunner

    from toolkit.cli import main

    out = CliRunner().invoke(main, ["bench", "--help"], terminal_width=100).output
    titles = re.findall(r"^(\S[^:\n]*):$", out, re.M)
    assert titles[:5] == ["What to run", "Data", "Training", "Frame-level evaluation (video)",
                          "Running and output"]
    assert "Method settings (made from each method's own settings)" in titles

    def section(title: str) -> str:
        return out.split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]

    assert "--frame-labels" in section("Frame-level evaluation (video)")
    assert "--neg-select" in section("Method settings (made from each method's own settings)")
    cmd = main.commands["bench"]
    for p in cmd.get_params(click.Context(cmd)):
        for opt in p.opts:
            if opt.startswith("--"):
                assert len(re.findall(rf"(?<![\w-]){re.escape(opt)}(?![\w-])[ ,\[/]", out)) \
                    >= 1, opt
