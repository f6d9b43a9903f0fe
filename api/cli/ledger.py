"""`bounceledger verify`, `export`, `import` and `migrate`: the ledger itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import click
import msgspec

from api import output
from api.cli.common import StoreAddress, db_option, json_option, opened, require_ledger, run, where
from api.door_identity import identity
from ledger import (
    BodyStats,
    Migration,
    import_receipts,
    migrate,
    open_store,
)
from ledger.transfer import Exported, ImportRules, export_ledger


def import_rules() -> ImportRules:
    """What an imported receipt may hold: the doors' sources (the providers, `operator`
    and `import`) and the headers the doors keep."""
    from api.authenticators import DOORS  # the doors, only when importing
    from api.webhooks import AUDIT_HEADERS
    from projections.operator import SOURCE as OPERATOR
    from projections.policy_history import SOURCE as POLICY
    from projections.providers import PROVIDERS

    headers = {*AUDIT_HEADERS, *(name for door in DOORS.values() for name in door.headers)}
    return ImportRules(
        sources=frozenset({*PROVIDERS, OPERATOR, POLICY, "import"}), headers=frozenset(headers)
    )


class Verification(msgspec.Struct, frozen=True):
    """The outcome of a chain check, and the head it verified (the last receipt that
    matched: its seq and chain hash in hex; None for an empty ledger). Only a head
    recorded elsewhere proves the ledger authentic: compare this one with it."""

    intact: bool
    receipts: int
    first_broken: int | None
    head_seq: int | None = None
    head_chain_hash: str | None = None
    bodies: BodyStats | None = None


@click.command(name="verify")
@db_option
@json_option
def verify_command(db: Path | str, as_json: bool) -> None:
    """Recompute the hash chain and read back every body; exit 1 naming the first
    receipt that does not match (its fields, its chain hash, or a body that is missing or
    does not hash to its digest). Also says what body storage holds.

    \b
    Example:
        bounceledger verify && echo "ledger intact"
    """

    async def go() -> Verification:
        async with opened(db) as store:
            count, broken = await store.verify()
            # seqs are dense: the last verified receipt is number `count`
            head = await store.get(count) if count else None
            bodies = await store.body_stats()
        if head is None:
            return Verification(broken is None, count, broken, bodies=bodies)
        return Verification(broken is None, count, broken, head.seq, head.chain_hash.hex(), bodies)

    result = run(go())
    output.emit(result, as_json, output.verification_text)
    if not result.intact:
        sys.exit(1)


@click.command(name="export")
@db_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: stdout).",
)
def export_command(db: Path | str, out: Path | None) -> None:
    """Write the whole ledger as JSON lines, one receipt per line (bodies in base64).

    The head (last seq and chain hash) is printed on stderr: record it somewhere the
    ledger's writers cannot reach. The chain alone does not make an export authentic.

    \b
    Example:
        bounceledger export --out ledger.jsonl
    """

    async def go(sink: BinaryIO) -> Exported:
        async with opened(db) as store:
            enabled = out is not None and sys.stderr.isatty()
            with output.progress("exporting", enabled=enabled) as tick:
                return await export_ledger(store, sink, progress=tick)

    if out is None:
        exported = run(go(sys.stdout.buffer))
    else:
        with out.open("wb") as sink:
            exported = run(go(sink))
        click.echo(f"exported {exported.count} receipts to {out}", err=True)
    click.echo(output.head_text(exported.head_seq, exported.head_hash), err=True)


@click.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--db",
    type=StoreAddress(),
    required=True,
    help="The ledger to restore into (a SQLite file or a postgresql:// URL): new, or one "
    "whose head the file continues exactly.",
)
def import_command(file: Path, db: Path | str) -> None:
    """Restore an export: the same sequence numbers, bodies and chain.

    Importing into a non-empty ledger is refused unless the file continues exactly
    from its head. A line no door could have written (an unknown source, a header no
    door keeps, `authorization`, a time outside year 2000 .. now + 1 day) refuses the
    file. The chain proves the file consistent, not authentic: compare the imported
    head (`bounceledger verify`) with one recorded elsewhere. Run
    `bounceledger rebuild --db …` afterwards to project it.

    \b
    Example:
        bounceledger import ledger.jsonl --db restored.db && bounceledger verify --db restored.db
    """

    async def go() -> int:
        async with opened(db, create=True) as store:
            with file.open("rb") as lines:
                return await import_receipts(store, lines, rules=import_rules(), identify=identity)

    count = run(go())
    click.echo(f"imported {count} receipts into {where(db)}")


@click.command(name="migrate")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="DB",
    type=StoreAddress(),
    help="The ledger to copy: a SQLite file, or a postgresql:// URL.",
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="DB",
    type=StoreAddress(),
    help="Where to: an empty ledger (created if need be), or one this migration began.",
)
@json_option
def migrate_command(source: Path | str, target: Path | str, as_json: bool) -> None:
    """Copy a ledger to another store, any backend to any, with the same sequence
    numbers and chain, then verify the copy.

    The target must be empty, or hold a prefix of the source that an interrupted
    migration left (it is resumed); anything else is refused and nothing is written.
    The source is only read: a server may keep appending to it, and running the same
    command again copies what arrived meanwhile.

    \b
    Example:
        bounceledger migrate --from data/ledger.db \\
            --to postgresql://bl@db.internal:5432/bounceledger
    """
    require_ledger(source)

    async def go() -> Migration:
        source_store = await open_store(source)
        try:
            target_store = await open_store(target)
            try:
                with output.progress("migrating", enabled=sys.stderr.isatty()) as tick:
                    return await migrate(
                        source_store, target_store, progress=tick, identify=identity
                    )
            finally:
                await target_store.close()
        finally:
            await source_store.close()

    result = run(go())
    if as_json:
        click.echo(msgspec.json.encode(result).decode())
        return
    resumed = f" (resumed after receipt {result.resumed_from})" if result.resumed_from else ""
    click.echo(
        f"migrated {result.copied} receipts from {where(source)} to {where(target)}{resumed}; "
        f"target verified: {result.verified} receipts, chain intact"
    )
