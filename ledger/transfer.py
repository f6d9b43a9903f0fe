"""Export and import of the ledger as JSON lines, one receipt per line, and migration
from one store to another (any two backends) without the file in between.

Each line is a receipt exactly as stored (msgspec JSON: bytes fields in base64), so an
import restores the same sequence numbers, bodies and chain. Import recomputes the
chain as it goes and refuses a line that does not continue it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import BinaryIO

import msgspec

from ledger.errors import AppendRejected
from ledger.records import Receipt
from ledger.store import Store

Progress = Callable[[int, int], None]
_CHUNK = 2000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Receipt).decode


async def export_receipts(store: Store, out: BinaryIO, progress: Progress | None = None) -> int:
    """Write every receipt to `out` as JSON lines; returns how many."""
    head = await store.last_seq()
    after = count = 0
    while receipts := await store.read(after, _CHUNK):
        out.write(b"".join(_encode(receipt) + b"\n" for receipt in receipts))
        after = receipts[-1].seq
        count += len(receipts)
        if progress:
            progress(count, head)
    return count


def parse_lines(lines: Iterable[bytes]) -> Iterable[Receipt]:
    """Receipts from export lines; AppendRejected names the first unreadable line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield _decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise AppendRejected(f"line {number}: not an exported receipt ({exc})") from exc


async def import_receipts(
    store: Store, lines: Iterable[bytes], progress: Progress | None = None
) -> int:
    """Restore exported receipts. The first must follow the ledger's head exactly (so an
    empty ledger takes an export from its start); returns how many were imported.

    One transaction: a line that cannot be read or does not continue the chain refuses
    the whole import, and nothing is written."""
    tick = (lambda done: progress(done, 0)) if progress else None
    return await store.append_verbatim(parse_lines(lines), progress=tick)


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """What a migration did: receipts copied, the target's head before and after, and
    the receipts the target's chain verified."""

    copied: int
    resumed_from: int
    head: int
    verified: int


async def migrate(source: Store, target: Store, progress: Progress | None = None) -> Migration:
    """Copy every receipt of `source` that `target` lacks, with the same sequence
    numbers and chain, then verify the target.

    The target must be empty or hold exactly a prefix of the source (a migration that
    was interrupted is resumed): anything else is refused, and nothing is written. Each
    chunk is its own transaction, so an interruption leaves a prefix to resume from.
    """
    head, start = await source.last_seq(), await target.last_seq()
    if start > head:
        raise AppendRejected(
            f"the target holds {start} receipts, more than the source's {head}: "
            "it is another ledger"
        )
    if start:
        mine, theirs = await target.get(start), await source.get(start)
        if mine is None or theirs is None or mine.chain_hash != theirs.chain_hash:
            raise AppendRejected(
                f"the target's receipt {start} is not the source's: it is another ledger "
                "(a migration needs an empty target, or one it already began)"
            )
    after, copied = start, 0
    while receipts := await source.read(after, _CHUNK):
        copied += await target.append_verbatim(receipts)
        after = receipts[-1].seq
        if progress:
            progress(after, head)
    verified, broken = await target.verify()
    if broken is not None:
        raise AppendRejected(f"the target does not verify: receipt {broken} breaks its chain")
    return Migration(copied=copied, resumed_from=start, head=after, verified=verified)
