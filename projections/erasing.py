"""Erasure: remove one person's data from the ledger and the projection, keep their "no".

`erase` does it all in one transaction that holds the ledger's head (nothing is
appended meanwhile), then has the store forget what it freed (ledger/store.py):

1. the projection is brought up to the head, as the projector would fold it, so that
   every receipt about the address is in the recipient index;
2. each receipt that names the address loses its body — removed when it is about the
   address alone, replaced by a redacted copy when it also names others, whose facts
   stay as they were (projections/redaction.py); deliveries kept in quarantine that
   mention it are deleted;
3. the erasure record is appended (projections/operator.py, `Erasure`): who, when, why,
   the request, the address's keyed hash (projections/erasure_keys.py), the causes that
   were active, and every body changed with its digest — what `verify` holds them to;
4. the projection forgets the address and folds the record: its keyed hash is
   suppressed for the causes the address had (none: `manual`), under every later policy
   and rebuild, until a recorded release names the keyed hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from ledger import Store, quarantine, receipts
from ledger.erasures import Removed
from ledger.records import Receipt
from ledger.sql import Tx
from projections import feed, operator, views
from projections.erasure_keys import ErasureKey, is_subject
from projections.errors import DecodeFailed, ErasureRefused
from projections.facts import derive
from projections.mapping import Mapper
from projections.recipients import normalize_recipient
from projections.redaction import mentions, redact
from projections.state import Reason

_CHUNK = 2000


class ErasureReport(msgspec.Struct, frozen=True, kw_only=True):
    """What an erasure did: its record, the keyed hash the address is known by now, the
    causes it keeps, the bodies removed and redacted, the quarantined deliveries
    deleted."""

    seq: int
    subject: str
    reasons: tuple[Reason, ...]
    removed: list[int]
    redacted: list[int]
    quarantined: int


async def erase(
    store: Store,
    key: ErasureKey,
    email: str,
    *,
    actor: str,
    note: str,
    at: int,
    request: str | None = None,
    also_keep: tuple[Reason, ...] = (),
) -> ErasureReport:
    """Erase `email` (see the module docstring), keeping it suppressed for the causes it
    has and `also_keep`; ErasureRefused when it is no address, the note is empty or the
    ledger was never projected (nothing is written then)."""
    address = normalize_recipient(email)
    if "@" not in address or is_subject(address):
        raise ErasureRefused(f"not an email address: {email!r}")
    return await _erase(
        store, key.subject(address), address, actor=actor, note=note, at=at,
        request=request, also_keep=also_keep,
    )  # fmt: skip


async def _erase(
    store: Store,
    subject: str,
    address: str | None,
    *,
    actor: str,
    note: str,
    at: int,
    request: str | None,
    also_keep: tuple[Reason, ...],
) -> ErasureReport:
    """Erase `address` as `subject` — or, with no address (it is not in this ledger), only
    record the erasure, so its keyed hash is suppressed here too."""
    if not note.strip():
        raise ErasureRefused("an erasure needs a note saying why (the request, who checked it)")
    changes: dict[int, bytes | None] = {}
    bodies: tuple[Removed, ...] = ()
    deleted = 0
    async with store.erasing() as tx:
        meta = await views.read_meta(tx, lock=True) if await views.exists(tx) else None
        if meta is None:
            raise ErasureRefused("the ledger has never been projected: start the service once")
        mapper = Mapper(meta.policy)
        await _fold_to_head(tx, meta.seq, mapper)
        state = await views.load_state(tx, address) if address else None
        if address:
            changes, bodies = await _changes(tx, address, subject)
            deleted = await quarantine.forget(tx, lambda body: mentions(body, address))
        had = tuple(cause.reason for cause in state.causes) if state else ()
        reasons = tuple(dict.fromkeys((*had, *also_keep)))
        record = operator.Erasure(
            "erase", subject, actor, note.strip(), at, request, reasons, bodies, deleted
        )
        appended = await store.erase_in(tx, operator.record_receipt(record), changes)
        anonymous = await feed.erase(tx, address, subject) if address else []
        if address:
            await views.forget(tx, address)
        was = await views.load_state(tx, subject)
        written = await receipts.one(tx, appended.seq)
        await views.apply(tx, derive(written) if written else [], mapper)
        now = await views.load_state(tx, subject)
        await feed.erased(
            tx, subject, (feed.verdict(was), feed.verdict(now)), erases=anonymous,
            receipt=appended.seq, policy_hash=meta.policy_hash,
        )  # fmt: skip
        await tx.execute("UPDATE projection_meta SET seq = ? WHERE id = 1", appended.seq)
    await store.forget_freed()
    return ErasureReport(
        seq=appended.seq,
        subject=subject,
        reasons=reasons,
        removed=sorted(seq for seq, kept in changes.items() if kept is None),
        redacted=sorted(seq for seq, kept in changes.items() if kept is not None),
        quarantined=deleted,
    )


def erasures_in(found: Iterable[Receipt]) -> list[operator.Erasure]:
    """The erasure records among receipts (another copy of a ledger, its export)."""
    records = []
    for receipt in found:
        if receipt.source != operator.SOURCE:
            continue
        try:
            action = operator.decode(receipt.body)
        except DecodeFailed:
            continue
        if isinstance(action, operator.Erasure):
            records.append(action)
    return records


async def reapply(
    store: Store, key: ErasureKey, records: Iterable[operator.Erasure], *, actor: str, at: int
) -> list[ErasureReport]:
    """Re-apply erasures recorded in another copy of the ledger (a newer one, its export)
    to this one — an older backup restored, an old export imported — so nothing erased
    comes back: each address of this ledger whose keyed hash an erasure names is erased
    again, keeping the causes it has here and those the record kept; an erasure of an
    address this ledger never saw is recorded as it is. Erasures already here are
    skipped. ErasureRefused when a record was made with another key (nothing written)."""
    wanted: dict[str, operator.Erasure] = {}
    for record in records:
        if record.subject.split(":")[1] != key.id:
            raise ErasureRefused(
                f"an erasure ({record.subject[:24]}…) was made with another key than this "
                f"one (id {key.id}): set the key it was made with"
            )
        wanted.setdefault(record.subject, record)
    await _catch_up(store)  # every address of the ledger is in the projection
    found: dict[str, str] = {}
    async with store.reading() as tx:
        here = await views.load_states(tx, list(wanted))
        after = ""
        while rows := await tx.fetch(
            "SELECT email FROM recipient_state WHERE email > ? ORDER BY email LIMIT ?",
            after,
            _CHUNK,
        ):
            for (email,) in rows:
                subject = key.subject(str(email))
                if subject in wanted:
                    found[subject] = str(email)
            after = str(rows[-1][0])
    reports = []
    for subject, record in wanted.items():
        if subject in here and subject not in found:
            continue  # erased here already
        report = await _erase(
            store, subject, found.get(subject), actor=actor, note=f"re-applied: {record.note}",
            at=at, request=record.request, also_keep=record.reasons,
        )  # fmt: skip
        reports.append(report)
    return reports


async def _fold_to_head(tx: Tx, seq: int, mapper: Mapper) -> int:
    """Fold the receipts after the checkpoint `seq`, as the projector would; returns the
    last one folded (the caller moves the checkpoint)."""
    while batch := await receipts.after(tx, seq, _CHUNK):
        await views.apply(tx, [item for receipt in batch for item in derive(receipt)], mapper)
        seq = batch[-1].seq
    return seq


async def _catch_up(store: Store) -> None:
    """Fold everything the projection has not, and move its checkpoint there."""
    async with store.erasing() as tx:
        meta = await views.read_meta(tx, lock=True) if await views.exists(tx) else None
        if meta is None:
            raise ErasureRefused("the ledger has never been projected: start the service once")
        seq = await _fold_to_head(tx, meta.seq, Mapper(meta.policy))
        await tx.execute("UPDATE projection_meta SET seq = ? WHERE id = 1", seq)


async def _changes(
    tx: Tx, address: str, subject: str
) -> tuple[dict[int, bytes | None], tuple[Removed, ...]]:
    """The bodies that name `address` (the recipient index says which): each one's
    redacted copy (None: removed), and the record's account of them."""
    seqs = await views.receipts_about(tx, address)
    changes: dict[int, bytes | None] = {}
    named: list[Removed] = []
    for seq in seqs:
        receipt = await receipts.one(tx, seq)
        if receipt is None:
            continue
        kept = _redacted(receipt, address, subject)
        if kept == receipt.body:
            continue
        changes[seq] = kept
        named.append(
            Removed(
                seq=seq,
                sha256=receipt.body_sha256.hex(),
                kept=None if kept is None else hashlib.sha256(kept).hexdigest(),
            )
        )
    return changes, tuple(named)


def _redacted(receipt: Receipt, address: str, subject: str) -> bytes | None:
    """The body to keep in place of a receipt's (None: nothing)."""
    if receipt.body == b"":
        return b""  # removed by an earlier erasure: nothing left to erase
    return redact(receipt, address, subject)
