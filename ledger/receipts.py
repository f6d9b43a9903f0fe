"""Reads of the receipt log, over a `Tx`: the one module (with the backends' appends) whose
SQL names the `receipts` table. The stores serve them (ledger/sqlstore.py); the
projections call them inside their own transactions, so that a page of newest receipts
or the source of an evidence receipt is read in the same snapshot as the projection.

A receipt's body is kept apart from its chained row, in body storage
(ledger/body_store.py): every read here joins the two and gives the body back verbatim.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ledger.bodies import unpack
from ledger.body_store import dictionaries, stored
from ledger.chain import ChainRow, body_digest
from ledger.errors import BodyMissing
from ledger.records import Receipt
from ledger.sql import Row, Tx

# The chained row's columns, in the order the appends insert them.
COLUMNS = "seq, received_at, source, content_type, headers, peer, body_sha256, chain_hash"
# What SQLite indexes of a body's digest (ledger/sqlite.py), and a lookup by digest
# names: its first 8 bytes. (PostgreSQL's lookups use its UNIQUE (source, body_sha256).)
DIGEST_PREFIX = "substr(body_sha256, 1, 8)"
# A receipt with its stored body (codec, dictionary, data: ledger/bodies.py).
_SELECT = (
    "SELECT r.seq, r.received_at, r.source, r.content_type, r.headers, r.peer, "
    "r.body_sha256, r.chain_hash, b.codec, b.dictionary, b.data, b.erased_by "
    "FROM receipts r LEFT JOIN bodies b ON b.seq = r.seq"
)
_NO_END = 2**62
_CHUNK = 500

_decode_headers = msgspec.json.Decoder(dict[str, str]).decode


async def _receipts(tx: Tx, rows: list[Row]) -> list[Receipt]:
    """Receipts from rows of _SELECT; BodyMissing names one whose body cannot be read."""
    known = await dictionaries(tx, (row[9] for row in rows))
    return [
        Receipt(
            seq=int(row[0]),
            received_at=int(row[1]),
            source=row[2],
            content_type=row[3],
            headers=_decode_headers(row[4]),
            peer=row[5],
            body=_body(row, known),
            body_sha256=bytes(row[6]),
            chain_hash=bytes(row[7]),
            erased_by=_erased_by(row),
        )
        for row in rows
    ]


def _erased_by(row: Row) -> int | None:
    return None if row[11] is None else int(row[11])


def _body(row: Row, known: dict[int, Any]) -> bytes:
    body = stored(row[8], row[9], row[10])
    if body is None:
        raise BodyMissing(f"receipt {row[0]}: its body is not in body storage")
    try:
        return unpack(body, known)
    except BodyMissing as exc:
        raise BodyMissing(f"receipt {row[0]}: {exc}") from exc


async def after(tx: Tx, seq: int, limit: int) -> list[Receipt]:
    """Receipts with a sequence number above `seq`, in order, at most `limit`."""
    rows = await tx.fetch(f"{_SELECT} WHERE r.seq > ? ORDER BY r.seq LIMIT ?", seq, limit)
    return await _receipts(tx, rows)


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
    sql = f"{_SELECT} WHERE r.seq > ? AND r.received_at >= ? AND r.received_at < ?"
    args: list[object] = [after_seq, since or 0, until or _NO_END]
    if source is not None:
        sql += " AND r.source = ?"
        args.append(source)
    rows = await tx.fetch(sql + " ORDER BY r.seq LIMIT ?", *args, limit)
    return await _receipts(tx, rows)


async def one(tx: Tx, seq: int) -> Receipt | None:
    """One receipt by sequence number."""
    rows = await tx.fetch(f"{_SELECT} WHERE r.seq = ?", seq)
    return (await _receipts(tx, rows))[0] if rows else None


async def last_seq(tx: Tx) -> int:
    """The newest receipt's sequence number (0 when the log is empty)."""
    rows = await tx.fetch("SELECT MAX(seq) FROM receipts")  # one row, NULL when empty
    return int(rows[0][0] or 0)


async def chain_rows(tx: Tx, seq: int, limit: int) -> list[ChainRow]:
    """The chained fields of the receipts after `seq`, in order, at most `limit`, each
    with its body (None where it is not stored or cannot be read back)."""
    rows = await tx.fetch(f"{_SELECT} WHERE r.seq > ? ORDER BY r.seq LIMIT ?", seq, limit)
    known = await dictionaries(tx, (row[9] for row in rows), confirm=True)
    return [_chain_row(row, known) for row in rows]


def _chain_row(r: Row, known: dict[int, Any]) -> ChainRow:
    body = _readable(r, known)
    return ChainRow(
        r[0], r[1], r[2], r[3], r[4], r[5], body, bytes(r[6]), bytes(r[7]), _erased_by(r)
    )


def _readable(row: Row, known: dict[int, Any]) -> bytes | None:
    try:
        return _body(row, known)
    except BodyMissing:
        return None


async def newest(
    tx: Tx, *, before: int | None, source: str | None, limit: int
) -> list[tuple[int, str, int, int]]:
    """(seq, source, received_at, body size) of at most `limit` receipts below `before`
    (None: up to the head), newest first, of `source` only when given."""
    sql = (
        "SELECT r.seq, r.source, r.received_at, COALESCE(b.size, 0) "
        "FROM receipts r LEFT JOIN bodies b ON b.seq = r.seq WHERE r.seq < ?"
    )
    args: list[object] = [before if before is not None else _NO_END]
    if source is not None:
        sql += " AND r.source = ?"
        args.append(source)
    rows = await tx.fetch(sql + " ORDER BY r.seq DESC LIMIT ?", *args, limit)
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


async def newest_bodies(tx: Tx, *, source: str, limit: int) -> list[tuple[int, bytes]]:
    """(seq, body) of the newest `limit` receipts of `source` whose body is stored, newest
    first."""
    rows = await tx.fetch(
        f"{_SELECT} WHERE r.source = ? AND b.data IS NOT NULL ORDER BY r.seq DESC LIMIT ?",
        source,
        limit,
    )
    known = await dictionaries(tx, (row[9] for row in rows))
    return [(int(row[0]), _body(row, known)) for row in rows]


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


async def digests(tx: Tx, seqs: list[int]) -> dict[int, tuple[bytes, str]]:
    """seq -> (body digest, source) of the receipts `seqs` names that exist."""
    found: dict[int, tuple[bytes, str]] = {}
    for start in range(0, len(seqs), _CHUNK):
        chunk = seqs[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetch(
            f"SELECT seq, body_sha256, source FROM receipts WHERE seq IN ({marks})", *chunk
        )
        for seq, digest, source in rows:
            found[int(seq)] = (bytes(digest), str(source))
    return found


async def body_of(tx: Tx, seq: int) -> bytes | None:
    """Receipt `seq`'s body if it is stored, readable and still hashes to its digest (what
    an erasure record must be to be believed), else None."""
    rows = await tx.fetch(f"{_SELECT} WHERE r.seq = ?", seq)
    if not rows:
        return None
    body = _readable(rows[0], await dictionaries(tx, [rows[0][9]]))
    return body if body is not None and body_digest(body) == bytes(rows[0][6]) else None
