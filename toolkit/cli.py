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
