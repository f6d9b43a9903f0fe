"""Quarantine: deliveries that passed authentication but could not be decoded.

They were refused (400), so they are not receipts and not in the chain — but the
provider's retries run out after a day or two, and the data must not. Each is kept
here with its reason, once per distinct body (a retry only raises `seen`), until it is
replayed into the ledger by a fixed decoder.

It is capped per source (`cap` pending deliveries; a full source's new bodies are
refused all the same, but not kept) and listed in pages without the bodies, which
are read one at a time (`get`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ledger.chain import body_digest, encode_headers
from ledger.records import NewReceipt
from ledger.sql import Tx, fetchrow
from ledger.store import Store

_decode_headers = msgspec.json.Decoder(dict[str, str]).decode
_COLUMNS = "id, received_at, source, content_type, headers, peer, body, reason, seen, replayed_seq"
_SUMMARY = "id, received_at, source, content_type, length(body), reason, seen, replayed_seq"
DEFAULT_CAP = 1000  # pending deliveries kept per source


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """A kept delivery without its body (listings)."""

    id: int
    received_at: int
    source: str
    content_type: str
    size: int
    reason: str
    seen: int
    replayed_seq: int | None


class Quarantined(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery kept aside: what arrived, why it was refused, whether it was replayed."""

    id: int
    receipt: NewReceipt
    reason: str
    seen: int
    replayed_seq: int | None


def _row(row: Sequence[Any]) -> Quarantined:
    qid, received_at, source, content_type, headers, peer, body, reason, seen, replayed = row
    return Quarantined(
        id=qid,
        receipt=NewReceipt(
            source=source,
            received_at=received_at,
            content_type=content_type,
            body=body,
            headers=_decode_headers(headers),
            peer=peer,
        ),
        reason=reason,
        seen=seen,
        replayed_seq=replayed,
    )


async def keep(
    store: Store, receipt: NewReceipt, reason: str, *, cap: int = DEFAULT_CAP
) -> int | None:
    """Keep a refused delivery aside; a retry of the same bytes counts as seen again.
    None, and nothing kept, when its source already has `cap` pending deliveries."""
    digest = body_digest(receipt.body)
    async with store.writing() as tx:
        found = await fetchrow(
            tx,
            "SELECT id FROM quarantine WHERE body_sha256 = ? AND source = ? "
            "AND replayed_seq IS NULL" + tx.for_update,
            digest,
            receipt.source,
        )
        if found is not None:
            await tx.execute("UPDATE quarantine SET seen = seen + 1 WHERE id = ?", found[0])
            return int(found[0])
        pending = await fetchrow(
            tx,
            "SELECT COUNT(*) FROM quarantine WHERE source = ? AND replayed_seq IS NULL",
            receipt.source,
        )
        if pending is not None and pending[0] >= cap:
            return None
        inserted = await fetchrow(
            tx,
            "INSERT INTO quarantine (received_at, source, content_type, headers, peer, body, "
            "body_sha256, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            receipt.received_at, receipt.source, receipt.content_type,
            encode_headers(receipt.headers), receipt.peer, receipt.body, digest, reason,
        )  # fmt: skip
        return int(inserted[0]) if inserted else None


async def listing(
    store: Store, *, include_replayed: bool = False, after: int = 0, limit: int = -1
) -> list[Summary]:
    """Kept deliveries with id > `after`, oldest first, at most `limit` (-1: all), without
    their bodies; replayed ones only when asked."""
    async with store.reading() as tx:
        rows = await tx.fetch(
            f"SELECT {_SUMMARY} FROM quarantine WHERE id > ? AND (? OR replayed_seq IS NULL) "
            "ORDER BY id LIMIT ?",
            after,
            include_replayed,
            2**62 if limit < 0 else limit,
        )
    return [_summary(row) for row in rows]


def _summary(row: Sequence[Any]) -> Summary:
    qid, received_at, source, content_type, size, reason, seen, replayed = row
    return Summary(
        id=qid, received_at=received_at, source=source, content_type=content_type,
        size=size, reason=reason, seen=seen, replayed_seq=replayed,
    )  # fmt: skip


async def get(store: Store, qid: int) -> Quarantined | None:
    async with store.reading() as tx:
        row = await fetchrow(tx, f"SELECT {_COLUMNS} FROM quarantine WHERE id = ?", qid)
    return _row(row) if row else None


async def mark_replayed(store: Store, qid: int, seq: int) -> None:
    async with store.writing() as tx:
        await tx.execute("UPDATE quarantine SET replayed_seq = ? WHERE id = ?", seq, qid)


async def forget(tx: Tx, about: Callable[[bytes], bool]) -> int:
    """Inside the caller's write transaction: delete every kept delivery (replayed or not)
    whose body `about` says is about the person being erased; returns how many."""
    doomed: list[tuple[int]] = []
    last = 0
    while rows := await tx.fetch(
        "SELECT id, body FROM quarantine WHERE id > ? ORDER BY id LIMIT 500", last
    ):
        doomed += [(int(qid),) for qid, body in rows if about(bytes(body))]
        last = int(rows[-1][0])
    await tx.executemany("DELETE FROM quarantine WHERE id = ?", doomed)
    return len(doomed)
