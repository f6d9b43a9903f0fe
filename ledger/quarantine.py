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

from collections.abc import Sequence
from typing import Any

import msgspec

from ledger.chain import body_digest, encode_headers
from ledger.records import NewReceipt
from ledger.sqlite import SQLiteStore

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
    store: SQLiteStore, receipt: NewReceipt, reason: str, *, cap: int = DEFAULT_CAP
) -> int | None:
    """Keep a refused delivery aside; a retry of the same bytes counts as seen again.
    None, and nothing kept, when its source already has `cap` pending deliveries."""
    digest = body_digest(receipt.body)
    async with store.write() as db:
        async with db.execute(
            "SELECT id FROM quarantine WHERE body_sha256 = ? AND source = ? "
            "AND replayed_seq IS NULL",
            (digest, receipt.source),
        ) as cur:
            found = await cur.fetchone()
        if found is not None:
            await db.execute("UPDATE quarantine SET seen = seen + 1 WHERE id = ?", (found[0],))
            return int(found[0])
        async with db.execute(
            "SELECT COUNT(*) FROM quarantine WHERE source = ? AND replayed_seq IS NULL",
            (receipt.source,),
        ) as cur:
            pending = await cur.fetchone()
        if pending is not None and pending[0] >= cap:
            return None
        cursor = await db.execute(
            "INSERT INTO quarantine (received_at, source, content_type, headers, peer, body, "
            "body_sha256, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (receipt.received_at, receipt.source, receipt.content_type,
             encode_headers(receipt.headers), receipt.peer, receipt.body, digest, reason),
        )  # fmt: skip
        return int(cursor.lastrowid or 0)


async def listing(
    store: SQLiteStore, *, include_replayed: bool = False, after: int = 0, limit: int = -1
) -> list[Summary]:
    """Kept deliveries with id > `after`, oldest first, at most `limit` (-1: all), without
    their bodies; replayed ones only when asked."""
    async with (
        store.snapshot() as db,
        db.execute(
            f"SELECT {_SUMMARY} FROM quarantine WHERE id > ? AND (? OR replayed_seq IS NULL) "
            "ORDER BY id LIMIT ?",
            (after, include_replayed, limit),
        ) as cur,
    ):
        return [_summary(row) for row in await cur.fetchall()]


def _summary(row: Sequence[Any]) -> Summary:
    qid, received_at, source, content_type, size, reason, seen, replayed = row
    return Summary(
        id=qid, received_at=received_at, source=source, content_type=content_type,
        size=size, reason=reason, seen=seen, replayed_seq=replayed,
    )  # fmt: skip


async def get(store: SQLiteStore, qid: int) -> Quarantined | None:
    async with (
        store.snapshot() as db,
        db.execute(f"SELECT {_COLUMNS} FROM quarantine WHERE id = ?", (qid,)) as cur,
    ):
        row = await cur.fetchone()
    return _row(row) if row else None


async def mark_replayed(store: SQLiteStore, qid: int, seq: int) -> None:
    async with store.write() as db:
        await db.execute("UPDATE quarantine SET replayed_seq = ? WHERE id = ?", (seq, qid))
