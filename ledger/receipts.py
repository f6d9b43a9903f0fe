"""Reads of the receipt log, over a `Tx`: the one module (with the backends' appends) whose
SQL names the `receipts` table. The stores serve them (ledger/sqlstore.py); the
projections call them inside their own transactions, so that a page of newest receipts
or the source of an evidence receipt is read in the same snapshot as the projection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ledger.chain import ChainRow
from ledger.records import Receipt
from ledger.sql import Row, Tx, fetchrow

COLUMNS = "seq, received_at, source, content_type, headers, peer, body, body_sha256, chain_hash"
_NO_END = 2**62
_CHUNK = 500

_decode_headers = msgspec.json.Decoder(dict[str, str]).decode


def receipt(row: Row) -> Receipt:
    """A receipt from a row of COLUMNS."""
    return Receipt(
        seq=int(row[0]),
        received_at=int(row[1]),
        source=row[2],
        content_type=row[3],
        headers=_decode_headers(row[4]),
        peer=row[5],
        body=bytes(row[6]),
        body_sha256=bytes(row[7]),
        chain_hash=bytes(row[8]),
    )


async def after(tx: Tx, seq: int, limit: int) -> list[Receipt]:
    """Receipts with a sequence number above `seq`, in order, at most `limit`."""
    rows = await tx.fetch(
        f"SELECT {COLUMNS} FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?", seq, limit
    )
    return [receipt(row) for row in rows]


async def arrivals(tx: Tx, seq: int, limit: int) -> list[tuple[int, int]]:
    """(seq, received_at) of the receipts after `seq`, in order, at most `limit`."""
    rows = await tx.fetch(
        "SELECT seq, received_at FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?", seq, limit
    )
    return [(int(row[0]), int(row[1])) for row in rows]


async def listing(
    tx: Tx,
    *,
    after_seq: int,
    limit: int,
    source: str | None,
    since: int | None,
    until: int | None,
) -> list[Receipt]:
    """Receipts in sequence order after `after_seq`, of `source` when given, received in
    [since, until)."""
    sql = f"SELECT {COLUMNS} FROM receipts WHERE seq > ? AND received_at >= ? AND received_at < ?"
    args: list[object] = [after_seq, since or 0, until or _NO_END]
    if source is not None:
        sql += " AND source = ?"
        args.append(source)
    rows = await tx.fetch(sql + " ORDER BY seq LIMIT ?", *args, limit)
    return [receipt(row) for row in rows]


async def one(tx: Tx, seq: int) -> Receipt | None:
    """One receipt by sequence number."""
    row = await fetchrow(tx, f"SELECT {COLUMNS} FROM receipts WHERE seq = ?", seq)
    return receipt(row) if row else None


async def last_seq(tx: Tx) -> int:
    """The newest receipt's sequence number (0 when the log is empty)."""
    row = await fetchrow(tx, "SELECT MAX(seq) FROM receipts")
    return int(row[0] or 0) if row else 0


async def chain_rows(tx: Tx, seq: int, limit: int) -> list[ChainRow]:
    """The chained fields of the receipts after `seq`, in order, at most `limit`."""
    rows = await tx.fetch(
        f"SELECT {COLUMNS} FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?", seq, limit
    )
    return [
        ChainRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), bytes(r[7]), bytes(r[8]))
        for r in rows
    ]


async def newest(
    tx: Tx, *, before: int | None, source: str | None, limit: int
) -> list[tuple[int, str, int, int]]:
    """(seq, source, received_at, body size) of at most `limit` receipts below `before`
    (None: up to the head), newest first, of `source` only when given."""
    sql = "SELECT seq, source, received_at, length(body) FROM receipts WHERE seq < ?"
    args: list[object] = [before if before is not None else _NO_END]
    if source is not None:
        sql += " AND source = ?"
        args.append(source)
    rows = await tx.fetch(sql + " ORDER BY seq DESC LIMIT ?", *args, limit)
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


async def newest_bodies(tx: Tx, *, source: str, limit: int) -> list[tuple[int, bytes]]:
    """(seq, body) of the newest `limit` receipts of `source`, newest first."""
    rows = await tx.fetch(
        "SELECT seq, body FROM receipts WHERE source = ? ORDER BY seq DESC LIMIT ?", source, limit
    )
    return [(int(r[0]), bytes(r[1])) for r in rows]


async def sources(tx: Tx, seqs: Iterable[int]) -> dict[int, str]:
    """The source of each of these receipts (those that exist)."""
    return {seq: str(value) for seq, value in await _column(tx, "source", seqs)}


async def received(tx: Tx, seqs: Iterable[int]) -> dict[int, int]:
    """The received time of each of these receipts (those that exist)."""
    return {seq: int(value) for seq, value in await _column(tx, "received_at", seqs)}


async def _column(tx: Tx, column: str, seqs: Iterable[int]) -> list[tuple[int, Any]]:
    wanted = sorted(set(seqs))
    found: list[tuple[int, Any]] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetch(f"SELECT seq, {column} FROM receipts WHERE seq IN ({marks})", *chunk)
        found.extend((int(row[0]), row[1]) for row in rows)
    return found
