"""`bounceledger quarantine`: list, and replay, deliveries refused as undecodable."""

from __future__ import annotations

from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, opened, run
from projections.quarantine_replay import Kept, KeptBody, Replay, item, listing, replay_kept


@click.group(invoke_without_command=True)
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed deliveries.")
@db_option
@json_option
@click.pass_context
def quarantine(ctx: click.Context, include_replayed: bool, db: Path | str, as_json: bool) -> None:
    """List deliveries that passed authentication but could not be decoded.

    They were refused (400) and kept aside with the reason (at most
    BOUNCELEDGER_QUARANTINE_MAX pending per source); once a decoder is fixed,
    `bounceledger quarantine replay` appends them to the ledger. The listing leaves
    the bodies out: `bounceledger quarantine show ID` prints one.

    \b
    Example:
        bounceledger quarantine --json
        bounceledger quarantine show 3
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


@quarantine.command(name="show")
@click.argument("qid", type=int)
@json_option
@click.pass_context
def show_command(ctx: click.Context, qid: int, as_json: bool) -> None:
    """Show one quarantined delivery with its body (exit 1 when there is none).

    \b
    Example:
        bounceledger quarantine show 3 --json
    """
    db: Path | str = ctx.obj["db"]

    async def go() -> KeptBody | None:
        async with opened(db) as store:
            return await item(store, qid)

    found = run(go())
    if found is None:
        click.echo(f"no quarantined delivery {qid}", err=True)
        ctx.exit(1)
    output.emit(found, as_json, output.kept_text)


def _not_kept(qid: int) -> Replay:
    """An ID with no quarantined delivery, reported among the outcomes (exit 1)."""
    return Replay(id=qid, error="no such quarantined delivery")


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
    db: Path | str = ctx.obj["db"]

    async def go() -> list[Replay]:
        async with opened(db) as store:
            chosen = list(ids) or [item.id for item in await listing(store)]
            return [await replay_kept(store, qid) or _not_kept(qid) for qid in chosen]

    outcomes = run(go())
    output.emit(outcomes, as_json, output.replay_text)
    if any(outcome.error for outcome in outcomes):
        ctx.exit(1)
