"""The ``adtk`` command line: thin commands that parse options, build a config, call one function.

Heavy imports (torch, cv2) happen inside the commands so that ``adtk --help`` stays fast.
"""

from __future__ import annotations

import sys

import click

from toolkit import __version__
from toolkit.errors import AdtkError


class _Group(click.Group):
    """Turns :class:`AdtkError` into a one-line ``Error: ...`` message (exit 2), no traceback."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except AdtkError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adtk")
def main() -> None:
    """adtk: visual anomaly detection with negative learning (ADNL).

    \b
    Pipeline (every stage reads and writes files, so any stage can be re-run):
      adtk extract videos/ --out crops/     person crops + crops/manifest.parquet
      adtk split crops/manifest.parquet     sequence-grouped 7:1:2 split manifest
      adtk bench --method adnl ...          train + score baseline / ADNL, tables, report
      adtk report runs/                     self-contained HTML report of finished runs
    """


# Commands are added below, one block per stage. Keep each block thin: options -> config -> call.
# --- commands ---


# --- adtk split / inspect (issue 3) ---


@main.command("split")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--out", "-o", required=True, type=click.Path(dir_okay=False), help="Split manifest to write."
)
@click.option(
    "--group-by",
    default=None,
    help="Column whose values form the groups kept together (default sequence_id), or "
    "window:300s to group each video's crops per time window.",
)
@click.option("--ratios", default=None, help="train:val:test weights (default 7:1:2).")
@click.option("--seed", type=int, default=None, help="Seed of the assignment (default 0).")
@click.option(
    "--holdout-event",
    "holdout_events",
    multiple=True,
    help="Send every group with this event (anomaly kind) to test only. Repeatable.",
)
@click.option(
    "--config", type=click.Path(dir_okay=False), default=None, help="YAML file (split: section)."
)
def split_command(manifests, out, group_by, ratios, seed, holdout_events, config) -> None:
    """Assign whole groups of MANIFESTS (merged) to train/val/test; write a split manifest."""
    from toolkit.config import SplitConfig, resolve
    from toolkit.data.split import split_manifests

    cfg = resolve(
        SplitConfig,
        config,
        "split",
        group_by=group_by,
        ratios=ratios,
        seed=seed,
        holdout_events=tuple(holdout_events) or None,
    )
    click.echo(split_manifests(manifests, out, cfg).report())


@main.command("inspect")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option(
    "--group-by",
    default=None,
    help="Grouping for the leakage check (default: the one the file was split by, "
    "else sequence_id).",
)
def inspect_command(manifest, group_by) -> None:
    """Print the summary table, provenance and schema problems of a crop or split manifest.

    Exits with 1 when the manifest has schema problems or a group in two splits.
    """
    from toolkit.data.inspect import inspect_manifest

    found = inspect_manifest(manifest, group_by)
    click.echo(found.text)
    if found.problems or (found.summary is not None and found.summary.leaked_groups):
        sys.exit(1)
