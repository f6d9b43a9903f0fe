"""`bounceledger erase`: remove one person's data from the ledger; keep their "no"."""

from __future__ import annotations

import time
from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, local_user, opened, run
from ledger import Receipt, Store, as_target, open_store
from ledger.transfer import parse_lines
from projections.erasing import ErasureReport, erase, erasures_in, reapply
from projections.erasure_keys import ErasureKey, require_key
from projections.errors import ErasureRefused
from projections.projector import Projector

_SQLITE = b"SQLite format 3\x00"


def _key() -> ErasureKey:
    try:
        return require_key()
    except ErasureRefused as exc:
        raise click.ClickException(str(exc)) from exc


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(_SQLITE)) == _SQLITE


async def _records_of(source: str) -> list[Receipt]:
    """The operator receipts of another copy of the ledger: an export file (JSON lines),
    a SQLite file or a PostgreSQL URL."""
    path = Path(source)
    if path.is_file() and not _is_sqlite(path):
        with path.open("rb") as lines:
            return [receipt for receipt in parse_lines(lines) if receipt.source == "operator"]
    other: Store = await open_store(as_target(source), pool_min=1, pool_max=2)
    try:
        found: list[Receipt] = []
        while page := await other.list_receipts(
            after_seq=found[-1].seq if found else 0, limit=1000, source="operator"
        ):
            found += page
        return found
    finally:
        await other.close()


@click.command(name="erase")
@click.argument("email", required=False)
@click.option("--note", help="Why, and who checked the request (kept in the ledger).")
@click.option("--request", "request_ref", metavar="REF", help="The request's reference.")
@click.option(
    "--again-from",
    metavar="COPY",
    help="Re-apply every erasure recorded in COPY (a newer copy of this ledger: an export "
    "file, a SQLite file or a postgresql:// URL) — after restoring an older backup.",
)
@db_option
@json_option
def erase_command(
    email: str | None,
    note: str | None,
    request_ref: str | None,
    again_from: str | None,
    db: Path | str,
    as_json: bool,
) -> None:
    """Erase EMAIL's data (GDPR Art. 17): every body about it alone is removed, every body
    that also names others is redacted, its quarantined deliveries are deleted and the
    projection forgets it. An erasure record is appended: who, when, why, the request and
    the address's keyed hash, never the address. EMAIL stays suppressed, for the causes it
    had, under any later policy and rebuild. Needs BOUNCELEDGER_ERASURE_KEY (or
    BOUNCELEDGER_ERASURE_KEY_FILE): the same key every instance looks addresses up with.

    \b
    Example:
        bounceledger erase alice@example.org --note "DSAR 2026-118, identity checked" \\
            --request 2026-118
        bounceledger erase --again-from ledger-today.jsonl   # after restoring a backup
    """
    if (email is None) == (again_from is None):
        raise click.UsageError("give EMAIL (with --note) or --again-from COPY")
    if email is not None and not (note or "").strip():
        raise click.UsageError("--note is required: say why (it is kept in the ledger)")
    key = _key()
    actor, now = f"local:{local_user()}", time.time_ns() // 1000

    async def one() -> ErasureReport:
        async with opened(db) as store:
            await Projector(store).start()
            return await erase(
                store, key, str(email), actor=actor, note=str(note), at=now, request=request_ref
            )

    async def again() -> list[ErasureReport]:
        records = erasures_in(await _records_of(str(again_from)))
        async with opened(db) as store:
            await Projector(store).start()
            return await reapply(store, key, records, actor=actor, at=now)

    if email is not None:
        output.emit(run(one()), as_json, output.erasure_text)
    else:
        output.emit(run(again()), as_json, output.erasures_reapplied)
