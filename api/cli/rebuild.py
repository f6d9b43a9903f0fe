"""`bounceledger rebuild`."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, load, local_user, opened, policy_option, run
from ledger import NewReceipt
from projections import RebuildReport, policy_history, rebuild
from projections.rebuild import active_policy


def default_actor() -> str:
    """Who runs this command, for the policy history: user@host."""
    return f"{local_user()}@{socket.gethostname()}"


@click.command(name="rebuild")
@db_option
@policy_option
@click.option(
    "--note",
    default=None,
    metavar="TEXT",
    help="Why the policy changes (required when --policy differs from the active policy).",
)
@click.option(
    "--by",
    "actor",
    default=None,
    metavar="NAME",
    help="Who changes the policy, for its history (default: user@host).",
)
@click.option("--dry-run", is_flag=True, help="Change nothing; report who would change.")
@json_option
def rebuild_command(
    db: Path | str,
    policy: Path | None,
    note: str | None,
    actor: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Re-read all of history under a policy, replacing the projection.

    Without --policy, history is re-read under the ledger's active policy. With a
    --policy that differs from it, the change is recorded in the ledger (who, when, the
    --note, the file verbatim; see `bounceledger audit policies`) in the same
    transaction that swaps the new projection in, and every running instance serves
    the new state within a few seconds, without a restart.

    With --dry-run nothing is written: every address whose verdict would change is
    listed. Safe while servers ingest: receipts that arrive meanwhile are folded in.

    \b
    Example:
        bounceledger rebuild --policy strict.toml --dry-run
        bounceledger rebuild --policy strict.toml --note "threshold 2 from today"
    """
    chosen = load(policy)
    text = policy.read_text() if policy is not None else ""

    async def go() -> RebuildReport:
        async with opened(db) as store:
            current = await active_policy(store)
            target = chosen if chosen is not None else current
            change: NewReceipt | None = None
            if target != current and not dry_run:
                if not note or not note.strip():
                    raise click.UsageError(
                        "this rebuild changes the active policy: say why with --note "
                        '(e.g. --note "threshold 2 from today")'
                    )
                change = policy_history.change_receipt(
                    target,
                    text,
                    actor=actor or default_actor(),
                    note=note,
                    at=time.time_ns() // 1000,
                    origin=str(policy),
                )
            with output.progress("re-reading the ledger", enabled=sys.stderr.isatty()) as tick:
                return await rebuild(store, target, dry_run=dry_run, progress=tick, record=change)

    output.emit(run(go()), as_json, output.rebuild_text)
