"""`bounceledger changes`: the change feed on a terminal — a page, or following it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import click
import msgspec

from api import output
from api.cli.common import db_option, json_option, projection, run
from ledger import Store
from projections import feed

_POLL = 0.5  # seconds between reads while following


@click.command(name="changes")
@click.option(
    "--after",
    metavar="CURSOR",
    help="Start after this cursor (the `cursor` of the last entry processed); `0`: the "
    "first entry; `now`: only what comes next. Default: the oldest entry kept.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, None),
    default=None,
    help="Print at most this many entries, then stop (default: every one there is).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing entries as they commit.")
@db_option
@json_option
def changes_command(
    after: str | None, limit: int | None, follow: bool, db: Path | str, as_json: bool
) -> None:
    """Print every verdict change after a cursor: each address that became suppressed,
    changed reason or was released, what caused it, and a rebuild's markers.

    With --json, one JSON object per line (what GET /v1/changes returns in `data`); a
    consumer stores the last `cursor` it processed and passes it as --after next time.
    Entries of an erased address show its keyed hash only.

    \b
    Example:
        bounceledger changes --after 0
        bounceledger changes --follow --json
        bounceledger changes --after 3f9a0c1e-1042 --limit 500
    """

    def show(entry: feed.Entry) -> None:
        if as_json:
            click.echo(msgspec.json.encode(entry).decode())
        else:
            click.echo(output.change_line(entry))

    async def go() -> str:
        async with projection(db, None) as (store, _):  # what the ledger holds, folded
            return await _print(store, after, limit, follow, show)

    last = run(go())
    if not as_json and not follow:
        click.echo(f"next cursor: {last}", err=True)


async def _print(
    store: Store,
    after: str | None,
    limit: int | None,
    follow: bool,
    show: Callable[[feed.Entry], None],
) -> str:
    """Print entries after `after` (and, following, those that come), at most `limit`;
    returns the cursor to go on from."""
    async with store.reading() as tx:
        at = await feed.position(tx)
        seq = feed.parse_cursor(after, at)
    left = limit
    while True:
        async with store.reading() as tx:
            at = await feed.position(tx)
            want = feed.MAX_LIMIT if left is None else min(left, feed.MAX_LIMIT)
            entries = await feed.read(tx, seq, want, at) if at.head > seq else []
        for entry in entries:
            show(entry)
        if entries:
            seq = feed.number(entries[-1])
            if left is not None:
                left -= len(entries)
                if left <= 0:
                    break
            continue
        if not follow:
            break
        await asyncio.sleep(_POLL)
    return at.cursor(seq)
