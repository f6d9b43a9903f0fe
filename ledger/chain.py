"""Pure hashing for the receipt chain: no I/O.

Each record's chain hash is SHA-256 over the previous record's chain hash and a
canonical encoding of this record's fields. The chain commits to the body's digest,
not the body itself, so the chain can be recomputed from digests alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec

from ledger.erasures import Erased, confirmed
from ledger.errors import AppendRejected
from ledger.records import AppendResult, NewReceipt, Receipt

GENESIS = bytes(32)

_encode = msgspec.json.Encoder(order="sorted").encode


def body_digest(body: bytes) -> bytes:
    """SHA-256 of a receipt body."""
    return hashlib.sha256(body).digest()


def encode_headers(headers: dict[str, str]) -> str:
    """The canonical stored form of the audit headers (sorted JSON)."""
    return _encode(headers).decode()


def link_hash(
    prev_hash: bytes,
    *,
    seq: int,
    received_at: int,
    source: str,
    content_type: str,
    headers_json: str,
    peer: str | None,
    body_sha256: bytes,
) -> bytes:
    """The chain hash of one record, given the previous record's chain hash."""
    fields = _encode(
        [seq, received_at, source, content_type, headers_json, peer, body_sha256.hex()]
    )
    return hashlib.sha256(prev_hash + fields).digest()


class ChainRow(msgspec.Struct, frozen=True, array_like=True):
    """The stored columns that the chain covers, as read back from the store, the body
    read back from body storage (None: no body is stored, or it cannot be read), and the
    erasure record that changed the body, if one did (ledger/erasures.py)."""

    seq: int
    received_at: int
    source: str
    content_type: str
    headers_json: str
    peer: str | None
    body: bytes | None
    body_sha256: bytes
    chain_hash: bytes
    erased_by: int | None = None


def first_broken(
    rows: Iterable[ChainRow], prev_hash: bytes, prev_seq: int, erased: Mapping[int, Erased]
) -> int | None:
    """The sequence number of the first row that does not match the chain, or None.

    A row fails when its body is missing or no longer hashes to its stored digest (unless
    `erased`, the changes erasure records name, holds the body's change as it is), when
    its stored chain hash differs from the one recomputed from its fields, or when its
    sequence number does not follow the previous one (a deleted or reordered row).
    """
    for row in rows:
        expected = link_hash(
            prev_hash,
            seq=row.seq,
            received_at=row.received_at,
            source=row.source,
            content_type=row.content_type,
            headers_json=row.headers_json,
            peer=row.peer,
            body_sha256=row.body_sha256,
        )
        if (
            row.seq != prev_seq + 1
            or row.body is None
            or not _body_holds(row, row.body, erased)
            or expected != row.chain_hash
        ):
            # the row itself, or the one missing before it (the sequence breaks there)
            return prev_seq + 1
        prev_hash, prev_seq = row.chain_hash, row.seq
    return None


def _body_holds(row: ChainRow, body: bytes, erased: Mapping[int, Erased]) -> bool:
    """Whether a row's stored body is the one its digest names or, for a body an erasure
    changed, exactly what the record that changed it says it left."""
    if row.erased_by is None:
        return body_digest(body) == row.body_sha256
    named = erased.get(row.seq)
    if named is None or named.by != row.erased_by or named.sha256 != row.body_sha256:
        return False
    return body == b"" if named.kept is None else body_digest(body) == named.kept


# A body to store beside its receipt row: (seq, source, body).
BodyRow = tuple[int, str, bytes]


class Linked(msgspec.Struct, frozen=True):
    """A batch chained onto a head: the rows to insert (in the receipts table's column
    order), each request's result, the new head, the door identities to record
    (source, identity, seq, body digest; already recorded ones may be among them), and
    the bodies to store."""

    rows: list[tuple[Any, ...]]
    results: list[AppendResult]
    seq: int
    chain_hash: bytes
    identities: list[tuple[str, str, int, bytes]] = []
    bodies: list[BodyRow] = []


# (source, identity) -> (seq, body digest) of the receipt that first carried it.
KnownIdentities = dict[tuple[str, str], tuple[int, bytes]]


def batch_identities(batch: list[NewReceipt]) -> list[str]:
    """The distinct identities a batch carries (to look up before linking it)."""
    return list({receipt.identity for receipt in batch if receipt.identity is not None})


def link_batch(
    batch: list[NewReceipt],
    digests: list[bytes],
    known: dict[tuple[str, bytes], int],
    seq: int,
    prev_hash: bytes,
    identities: KnownIdentities | None = None,
) -> Linked:
    """Chain a batch onto the head (`seq`, `prev_hash`). A body already stored from the
    same source (`known`: (source, digest) -> seq), or earlier in this batch, is a
    redelivery: it gets the first copy's sequence number and no row. A receipt whose
    identity is already known (`identities`, or earlier in this batch) with another
    body is a replay: it gets that receipt's number, `conflict`, and no row."""
    known = dict(known)
    ids: KnownIdentities = dict(identities or {})
    rows: list[tuple[Any, ...]] = []
    results: list[AppendResult] = []
    recorded: list[tuple[str, str, int, bytes]] = []
    bodies: list[BodyRow] = []
    for receipt, digest in zip(batch, digests, strict=True):
        key = (receipt.source, receipt.identity) if receipt.identity is not None else None
        existing = known.get((receipt.source, digest))
        if existing is not None:
            results.append(AppendResult(existing, duplicate=True))
            if key is not None and key not in ids:  # stored before its identity was
                ids[key] = (existing, digest)
                recorded.append((*key, existing, digest))
            continue
        first = ids.get(key) if key is not None else None
        if first is not None:  # same identity: other bytes (the same were found above)
            conflict = first[1] != digest
            results.append(AppendResult(first[0], duplicate=True, conflict=conflict))
            continue
        seq += 1
        headers_json = encode_headers(receipt.headers)
        prev_hash = link_hash(
            prev_hash,
            seq=seq,
            received_at=receipt.received_at,
            source=receipt.source,
            content_type=receipt.content_type,
            headers_json=headers_json,
            peer=receipt.peer,
            body_sha256=digest,
        )
        rows.append(
            (seq, receipt.received_at, receipt.source, receipt.content_type,
             headers_json, receipt.peer, digest, prev_hash)
        )  # fmt: skip
        bodies.append((seq, receipt.source, receipt.body))
        known[(receipt.source, digest)] = seq
        if key is not None:
            ids[key] = (seq, digest)
            recorded.append((*key, seq, digest))
        results.append(AppendResult(seq, duplicate=False))
    return Linked(rows, results, seq, prev_hash, recorded, bodies)


def verbatim_row(receipt: Receipt, seq: int, prev_hash: bytes) -> tuple[Any, ...]:
    """The row of an already-chained receipt (an import) that must continue the head
    (`seq`, `prev_hash`); AppendRejected when it does not follow it or match its hash. A
    body an erasure changed is taken as it comes here: `verbatim_chunks` holds it to the
    record when the record arrives."""
    row = ChainRow(
        receipt.seq, receipt.received_at, receipt.source, receipt.content_type,
        encode_headers(receipt.headers), receipt.peer, receipt.body, receipt.body_sha256,
        receipt.chain_hash, receipt.erased_by,
    )  # fmt: skip
    if receipt.seq != seq + 1:
        raise AppendRejected(f"receipt {receipt.seq} does not follow the ledger's head {seq}")
    if first_broken([row], prev_hash, seq, _as_erased(receipt)) is not None:
        raise AppendRejected(f"receipt {receipt.seq} does not match its chain hash")
    return (
        row.seq, row.received_at, row.source, row.content_type, row.headers_json,
        row.peer, row.body_sha256, row.chain_hash,
    )  # fmt: skip


def _as_erased(receipt: Receipt) -> dict[int, Erased]:
    """What a receipt whose body an erasure changed says of the change (or nothing)."""
    if receipt.erased_by is None or receipt.erased_by <= receipt.seq:
        return {}
    kept = None if receipt.body == b"" else body_digest(receipt.body)
    return {receipt.seq: Erased(receipt.erased_by, receipt.body_sha256, kept)}


async def verify_chain(
    rows_after: Callable[[int], Awaitable[list[ChainRow]]], erased: Mapping[int, Erased]
) -> tuple[int, int | None]:
    """Recompute a whole chain read in chunks (`rows_after(seq)`: the next rows, in
    order, empty at the end), holding the bodies erasures changed to `erased`: (receipts
    checked, first broken seq or None)."""
    prev_hash, prev_seq, count = GENESIS, 0, 0
    while rows := await rows_after(prev_seq):
        broken = first_broken(rows, prev_hash, prev_seq, erased)
        if broken is not None:
            # the rows of this chunk before the broken one verified too
            return count + broken - prev_seq - 1, broken
        count += len(rows)
        prev_hash, prev_seq = rows[-1].chain_hash, rows[-1].seq
    return count, None


IdentityRow = tuple[str, str, int, bytes]


class VerbatimChunk(msgspec.Struct, frozen=True):
    """Receipts to append verbatim, checked against the head: their rows, their door
    identities' rows, the head after them, their bodies, and (seq, record) of each body
    an erasure record changed."""

    rows: list[tuple[Any, ...]]
    identities: list[IdentityRow]
    seq: int
    chain_hash: bytes
    bodies: list[BodyRow] = []
    erased: list[tuple[int, int]] = []


def verbatim_chunks(
    receipts: Iterable[Receipt],
    seq: int,
    prev_hash: bytes,
    identify: Callable[[str, bytes], str | None] | None,
    size: int,
) -> Iterator[VerbatimChunk]:
    """Already-chained receipts (an import, a migration) in chunks of `size`, each
    checked to continue the head (`seq`, `prev_hash`): AppendRejected at the first that
    does not, and at a body an erasure changed that its record (which must follow in the
    same copy) does not name as it is. `identify` gives the door identities to keep
    beside them, so that replay protection survives the copy. An empty input yields one
    empty chunk (the head)."""
    rows: list[tuple[Any, ...]] = []
    identities: list[IdentityRow] = []
    bodies: list[BodyRow] = []
    erased: list[tuple[int, int]] = []
    pending: dict[int, Erased] = {}
    for receipt in receipts:
        rows.append(verbatim_row(receipt, seq, prev_hash))
        bodies.append((receipt.seq, receipt.source, receipt.body))
        seq, prev_hash = receipt.seq, receipt.chain_hash
        found = identify(receipt.source, receipt.body) if identify is not None else None
        if found is not None:
            identities.append((receipt.source, found, receipt.seq, receipt.body_sha256))
        if receipt.erased_by is not None:
            pending.update(_as_erased(receipt))
            erased.append((receipt.seq, receipt.erased_by))
        if any(named.by == receipt.seq for named in pending.values()):
            _settle(pending, receipt)
        if len(rows) >= size:
            yield VerbatimChunk(rows, identities, seq, prev_hash, bodies, erased)
            rows, identities, bodies, erased = [], [], [], []
    if pending:
        first = min(pending)
        raise AppendRejected(
            f"receipt {first}'s body was erased by receipt {pending[first].by}, "
            "which the copy does not hold"
        )
    yield VerbatimChunk(rows, identities, seq, prev_hash, bodies, erased)


def _settle(pending: dict[int, Erased], record: Receipt) -> None:
    """Hold the bodies `pending` says `record` changed to what the record names (each is
    then settled); AppendRejected at the first it does not name so."""
    waiting = {seq: named.by for seq, named in pending.items() if named.by == record.seq}
    named = confirmed({record.seq: record.body}, waiting)
    for seq in sorted(waiting):
        if named.get(seq) != pending.pop(seq):
            raise AppendRejected(
                f"receipt {seq}'s body was changed by receipt {record.seq}, "
                "which does not name that change"
            )
