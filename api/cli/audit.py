"""`bounceledger audit`: a recipient's timeline, one receipt's raw bytes, receipt listings."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api import output
from api.cli.common import (
    db_option,
    json_option,
    load,
    opened,
    policy_option,
    projection,
    run,
    when,
)
from ledger import Receipt
from projections.audit import ReceiptView, TimelineEntry, timeline
from projections.erasure_history import ErasureEntry, erasures
from projections.policy_history import PolicyHistory, history_view
from projections.rebuild import active_policy


@click.group()
def audit() -> None:
    """Evidence: every event for an address, and the receipts exactly as received.

    \b
    Example:
        bounceledger audit recipient alice@example.org
        bounceledger audit receipt 17 --raw > body.bin
        bounceledger audit receipts --source smtp2go --since 2026-05-01
        bounceledger audit policies
        bounceledger audit erasures
    """


@audit.command(name="erasures")
@db_option
@json_option
def erasures_command(db: Path | str, as_json: bool) -> None:
    """Every erasure: who, when, why, the request, what it kept suppressed and what it
    removed — by keyed hash, never the address.

    \b
    Example:
        bounceledger audit erasures --json
    """

    async def go() -> list[ErasureEntry]:
        async with opened(db) as store:
            return await erasures(store)

    output.emit(run(go()), as_json, output.erasures_table)


@audit.command(name="policies")
@db_option
@json_option
def policies_command(db: Path | str, as_json: bool) -> None:
    """Every policy that was put into effect: when, its hash, who set it and why.

    A change is recorded by `bounceledger rebuild --policy FILE --note WHY` (and by the
    first `serve --policy FILE` on a ledger without a history), with the file verbatim
    (in --json).

    \b
    Example:
        bounceledger audit policies --json
    """

    async def go() -> PolicyHistory:
        async with opened(db) as store:
            return await history_view(store, await active_policy(store))

    output.emit(run(go()), as_json, output.policies_table)


@audit.command(name="recipient")
@click.argument("email")
@db_option
@policy_option
@json_option
def recipient_command(email: str, db: Path | str, policy: Path | None, as_json: bool) -> None:
    """Every event for EMAIL in event-time order, with its receipt and what the policy made of it.

    \b
    Example:
        bounceledger audit recipient alice@example.org --json
    """
    chosen = load(policy)

    async def go() -> list[TimelineEntry]:
        async with projection(db, chosen) as (store, projector):
            return await timeline(store, email, projector.mapper, projector.policy_hash)

    output.emit(run(go()), as_json, output.timeline_table)


@audit.command(name="receipt")
@click.argument("seq", type=int)
@click.option("--raw", is_flag=True, help="Write the stored body to stdout, byte for byte.")
@db_option
@json_option
def receipt_command(seq: int, raw: bool, db: Path | str, as_json: bool) -> None:
    """Show receipt SEQ: its metadata and body; --raw writes the body exactly as received.

    \b
    Example:
        bounceledger audit receipt 17
        bounceledger audit receipt 17 --raw | sha256sum
    """

    async def go() -> Receipt | None:
        async with opened(db) as store:
            return await store.get(seq)

    found = run(go())
    if found is None:
        raise click.ClickException(f"no receipt {seq}")
    if raw:
        sys.stdout.buffer.write(found.body)
        sys.stdout.buffer.flush()
        return
    output.emit(ReceiptView.full(found), as_json, output.receipt_text)


@audit.command(name="receipts")
@click.option("--source", help="Only receipts from this source (smtp2go, operator, …).")
@click.option("--since", metavar="TIME", help="Received at or after this time.")
@click.option("--until", metavar="TIME", help="Received before this time.")
@click.option("--limit", type=int, default=None, help="At most this many.")
@db_option
@json_option
def receipts_command(
    source: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    db: Path | str,
    as_json: bool,
) -> None:
    """List receipts in ledger order (metadata only).

    \b
    Example:
        bounceledger audit receipts --source smtp2go --since 2026-05-04T00:00:00Z --json
    """
    start, end = when(since, "--since"), when(until, "--until")

    async def go() -> list[ReceiptView]:
        found: list[ReceiptView] = []
        after = 0
        async with opened(db) as store:
            while limit is None or len(found) < limit:
                page = await store.list_receipts(
                    after_seq=after, limit=1000, source=source, since=start, until=end
                )
                if not page:
                    break
                found += [ReceiptView.summary(item) for item in page]
                after = page[-1].seq
        return found[:limit] if limit is not None else found

    output.emit(run(go()), as_json, output.receipts_table)
