"""The erasures the ledger records, read back for audit: who, when, why, the request, the
keyed hash, what was kept suppressed and what was removed — never an address."""

from __future__ import annotations

import msgspec

from ledger import Store
from projections import operator
from projections.errors import DecodeFailed
from projections.recipients import format_time

_PAGE = 1000


class ErasureEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One erasure record as an auditor reads it."""

    seq: int
    at: str
    actor: str
    note: str
    request: str | None
    subject: str
    reasons: list[str]
    removed: list[int]
    redacted: list[int]
    quarantined: int


async def erasures(store: Store) -> list[ErasureEntry]:
    """Every erasure record in the ledger, oldest first."""
    found: list[ErasureEntry] = []
    after = 0
    while page := await store.list_receipts(after_seq=after, limit=_PAGE, source=operator.SOURCE):
        for receipt in page:
            try:
                action = operator.decode(receipt.body)
            except DecodeFailed:
                continue
            if isinstance(action, operator.Erasure):
                found.append(_entry(receipt.seq, action))
        after = page[-1].seq
    return found


def _entry(seq: int, erasure: operator.Erasure) -> ErasureEntry:
    return ErasureEntry(
        seq=seq,
        at=format_time(erasure.at) or "",
        actor=erasure.actor,
        note=erasure.note,
        request=erasure.request,
        subject=erasure.subject,
        reasons=list(erasure.reasons),
        removed=[body.seq for body in erasure.bodies if body.kept is None],
        redacted=[body.seq for body in erasure.bodies if body.kept is not None],
        quarantined=erasure.quarantined,
    )
