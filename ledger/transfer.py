"""Export and import of the ledger as JSON lines, one receipt per line.

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
from ledger.sqlite import SQLiteStore

Progress = Callable[[int, int], None]
_CHUNK = 2000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Receipt).decode


async def export_receipts(
    store: SQLiteStore, out: BinaryIO, progress: Progress | None = None
) -> int:
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
    store: SQLiteStore, lines: Iterable[bytes], progress: Progress | None = None
) -> int:
    """Restore exported receipts. The first must follow the ledger's head exactly (so an
    empty ledger takes an export from its start); returns how many were imported.

    One transaction: a line that cannot be read or does not continue the chain refuses
    the whole import, and nothing is written."""
    tick = (lambda done: progress(done, 0)) if progress else None
    return await store.append_verbatim(parse_lines(lines), progress=tick)
