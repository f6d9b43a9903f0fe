"""`bounceledger rebuild`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, load, opened, policy_option, run
from projections import RebuildReport, rebuild


@click.command(name="rebuild")
@db_option
@policy_option
@click.option("--dry-run", is_flag=True, help="Change nothing; report who would change.")
@json_option
def rebuild_command(db: Path, policy: Path | None, dry_run: bool, as_json: bool) -> None:
    """Re-read all of history under a policy, replacing the projection.

    With --dry-run nothing is written: every address whose verdict would change is
    listed. Safe while the server ingests: receipts that arrive meanwhile are folded in.
    A running server configured with another policy answers 503 on queries until it is
    restarted with this one.

    \b
    Example:
        bounceledger rebuild --policy strict.toml --dry-run
        bounceledger rebuild --policy strict.toml
    """
    chosen = load(policy)

    async def go() -> RebuildReport:
        async with opened(db) as store:
            with output.progress("re-reading the ledger", enabled=sys.stderr.isatty()) as tick:
                return await rebuild(store, chosen, dry_run=dry_run, progress=tick)

    output.emit(run(go()), as_json, output.rebuild_text)
