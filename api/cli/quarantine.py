"""`bounceledger quarantine`: list, and replay, deliveries refused as undecodable."""

from __future__ import annotations

from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, opened, run
from projections.quarantine import Kept, Replay, listing, replay


@click.group(invoke_without_command=True)
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed deliveries.")
@db_option
@json_option
@click.pass_context
def quarantine(ctx: click.Context, include_replayed: bool, db: Path, as_json: bool) -> None:
    """List deliveries that passed authentication but could not be decoded.

    They were refused (400) and kept aside with the reason; once a decoder is fixed,
    `bounceledger quarantine replay` appends them to the ledger.

    \b
    Example:
        bounceledger quarantine --json
        bounceledger quarantine replay --all
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    if ctx.invoked_subcommand is not None:
        return

    async def go() -> list[Kept]:
        async with opened(db) as store:
            return await listing(store, include_replayed=include_replayed)

    output.emit(run(go()), as_json, output.quarantine_table)


@quarantine.command(name="replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Replay every delivery not yet replayed.")
@json_option
@click.pass_context
def replay_command(ctx: click.Context, ids: tuple[int, ...], every: bool, as_json: bool) -> None:
    """Replay quarantined deliveries (by ID, or --all) into the ledger.

    Each is decoded with today's decoder; one that reads is appended as it arrived
    (received time, headers, peer), one that still does not is left where it is. Exit 1
    when any could not be replayed.

    \b
    Example:
        bounceledger quarantine replay 3 4
    """
    if not ids and not every:
        raise click.UsageError("name the deliveries to replay, or pass --all")
    db: Path = ctx.obj["db"]

    async def go() -> list[Replay]:
        async with opened(db) as store:
            chosen = list(ids) or [item.id for item in await listing(store)]
            return [await replay(store, qid) for qid in chosen]

    outcomes = run(go())
    output.emit(outcomes, as_json, output.replay_text)
    if any(outcome.error for outcome in outcomes):
        ctx.exit(1)
