"""Export and import of the ledger as JSON lines, one receipt per line, and migration
from one store to another (any two backends) without the file in between.

Each line is a receipt exactly as stored (msgspec JSON: bytes fields in base64), so an
import restores the same sequence numbers, bodies and chain. Import recomputes the
chain as it goes and refuses a line that does not continue it, or one that holds
what no door writes (ImportRules): an unknown source, a header no door keeps (never
`authorization` or a cookie), a time outside year 2000 .. now + 1 day. The chain is
unkeyed: anyone can recompute it over an edited file, so only a chain head recorded
elsewhere (printed by `export` and `verify`) proves an export authentic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import BinaryIO

import msgspec

from ledger.errors import AppendRejected
from ledger.records import Receipt
from ledger.store import Identify, Store

Progress = Callable[[int, int], None]
_CHUNK = 2000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Receipt).decode


class Exported(msgspec.Struct, frozen=True):
    """What an export wrote: how many receipts, and the last one's seq and chain hash
    (the head to record elsewhere; 0 and None for an empty ledger)."""

    count: int
    head_seq: int
    head_hash: bytes | None


async def export_ledger(store: Store, out: BinaryIO, progress: Progress | None = None) -> Exported:
    """Write every receipt to `out` as JSON lines; returns how many, and the head."""
    head = await store.last_seq()
    after = count = 0
    last: Receipt | None = None
    while receipts := await store.read(after, _CHUNK):
        out.write(b"".join(_encode(receipt) + b"\n" for receipt in receipts))
        after, last = receipts[-1].seq, receipts[-1]
        count += len(receipts)
        if progress:
            progress(count, head)
    return Exported(count, last.seq if last else 0, last.chain_hash if last else None)


# Header names that carry credentials: never in a receipt, whatever the rules allow.
NEVER_STORED = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
EARLIEST = 946_684_800_000_000  # 2000-01-01T00:00:00Z, in microseconds
_DAY = 86_400_000_000


class ImportRules(msgspec.Struct, frozen=True, kw_only=True):
    """What an imported receipt may hold. `sources` and `headers` are the doors' (the
    CLI passes them in; None: not checked); credential headers and times outside
    EARLIEST .. now + 1 day are always refused."""

    sources: frozenset[str] | None = None
    headers: frozenset[str] | None = None


def check_receipt(receipt: Receipt, rules: ImportRules, *, now: int | None = None) -> str | None:
    """Why `receipt` is not one a door could have written, or None."""
    latest = (time.time_ns() // 1000 if now is None else now) + _DAY
    if rules.sources is not None and receipt.source not in rules.sources:
        return f"unknown source {receipt.source!r}"
    for name in receipt.headers:
        lowered = name.lower()
        if lowered in NEVER_STORED:
            return f"header {name!r} is never stored (credentials)"
        if rules.headers is not None and lowered not in rules.headers:
            return f"header {name!r} is not one a door keeps"
    if not EARLIEST <= receipt.received_at <= latest:
        return f"received_at {receipt.received_at} is outside year 2000 .. now + 1 day"
    return None


def parse_lines(lines: Iterable[bytes], rules: ImportRules | None = None) -> Iterable[Receipt]:
    """Receipts from export lines; AppendRejected names the first unreadable line, or
    the first that breaks `rules` (by default: no credential headers, sane times)."""
    rules = rules or ImportRules()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            receipt = _decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise AppendRejected(f"line {number}: not an exported receipt ({exc})") from exc
        problem = check_receipt(receipt, rules)
        if problem is not None:
            raise AppendRejected(f"line {number} (receipt {receipt.seq}): {problem}: refused")
        yield receipt


async def import_receipts(
    store: Store,
    lines: Iterable[bytes],
    progress: Progress | None = None,
    *,
    rules: ImportRules | None = None,
    identify: Identify | None = None,
) -> int:
    """Restore exported receipts. The first must follow the ledger's head exactly (so an
    empty ledger takes an export from its start); returns how many were imported.

    One transaction: a line that cannot be read, breaks `rules` or does not continue
    the chain refuses the whole import, and nothing is written."""
    tick = (lambda done: progress(done, 0)) if progress else None
    return await store.append_verbatim(parse_lines(lines, rules), tick, identify)


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """What a migration did: receipts copied, the target's head before and after, and
    the receipts the target's chain verified."""

    copied: int
    resumed_from: int
    head: int
    verified: int


async def migrate(
    source: Store,
    target: Store,
    progress: Progress | None = None,
    identify: Identify | None = None,
) -> Migration:
    """Copy every receipt of `source` that `target` lacks, with the same sequence
    numbers and chain, then verify the target.

    The target must be empty or hold exactly a prefix of the source (a migration that
    was interrupted is resumed): anything else is refused, and nothing is written. Each
    chunk is its own transaction, so an interruption leaves a prefix to resume from.
    `identify` gives the door identities to record beside the receipts (replay
    protection, api/door_identity.py), which a copy of the receipts alone would lose.
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
        copied += await target.append_verbatim(receipts, identify=identify)
        after = receipts[-1].seq
        if progress:
            progress(after, head)
    verified, broken = await target.verify()
    if broken is not None:
        raise AppendRejected(f"the target does not verify: receipt {broken} breaks its chain")
    return Migration(copied=copied, resumed_from=start, head=after, verified=verified)
