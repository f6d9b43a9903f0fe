"""`bounceledger verify`, `export`, `import` and `migrate`: the ledger itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import click
import msgspec

from api import output
from api.cli.common import db_option, json_option, opened, require_ledger, run
from ledger import (
    Migration,
    SQLiteStore,
    export_receipts,
    import_receipts,
    is_url,
    migrate,
    open_store,
)
from ledger.postgres import redact


class Verification(msgspec.Struct, frozen=True):
    """The outcome of a chain check."""

    intact: bool
    receipts: int
    first_broken: int | None


@click.command()
@db_option
@json_option
def verify(db: Path, as_json: bool) -> None:
    """Recompute the hash chain; exit 1 naming the first receipt that does not match.

    \b
    Example:
        bounceledger verify && echo "ledger intact"
    """

    async def go() -> Verification:
        async with opened(db) as store:
            count, broken = await store.verify()
        return Verification(broken is None, count, broken)

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
def export_command(db: Path, out: Path | None) -> None:
    """Write the whole ledger as JSON lines, one receipt per line (bodies in base64).

    \b
    Example:
        bounceledger export --out ledger.jsonl
    """

    async def go(sink: BinaryIO) -> int:
        async with opened(db) as store:
            enabled = out is not None and sys.stderr.isatty()
            with output.progress("exporting", enabled=enabled) as tick:
                return await export_receipts(store, sink, progress=tick)

    if out is None:
        run(go(sys.stdout.buffer))
        return
    with out.open("wb") as sink:
        count = run(go(sink))
    click.echo(f"exported {count} receipts to {out}", err=True)


@click.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The ledger to restore into: new, or one whose head the file continues exactly.",
)
def import_command(file: Path, db: Path) -> None:
    """Restore an export: the same sequence numbers, bodies and chain.

    Importing into a non-empty ledger is refused unless the file continues exactly
    from its head. Run `bounceledger rebuild --db …` afterwards to project it.

    \b
    Example:
        bounceledger import ledger.jsonl --db restored.db && bounceledger verify --db restored.db
    """

    async def go() -> int:
        store = await SQLiteStore.open(db)
        try:
            with file.open("rb") as lines:
                return await import_receipts(store, lines)
        finally:
            await store.close()

    count = run(go())
    click.echo(f"imported {count} receipts into {db}")


def _where(target: str) -> str:
    return redact(target) if is_url(target) else target


@click.command(name="migrate")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="DB",
    help="The ledger to copy: a SQLite file, or a postgresql:// URL.",
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="DB",
    help="Where to: an empty ledger (created if need be), or one this migration began.",
)
@json_option
def migrate_command(source: str, target: str, as_json: bool) -> None:
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
    if not is_url(source):
        require_ledger(Path(source))

    async def go() -> Migration:
        source_store = await open_store(source)
        try:
            target_store = await open_store(target)
            try:
                with output.progress("migrating", enabled=sys.stderr.isatty()) as tick:
                    return await migrate(source_store, target_store, progress=tick)
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
        f"migrated {result.copied} receipts from {_where(source)} to {_where(target)}{resumed}; "
        f"target verified: {result.verified} receipts, chain intact"
    )
