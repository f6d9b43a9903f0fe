"""Retention: let go of the bodies the policy's `[retention]` no longer keeps, with the
same proof an erasure leaves.

A receipt's body expires when every event in it is of a kind the policy keeps for a
period (`delivered`, `deferred`, `ignored`; a receipt naming no one counts as `ignored`),
the longest of those periods has passed since it was received, and it is no evidence of
an active suppression (no cause's support, no soft bounce still counted). Bounces,
complaints, unsubscribes and operator actions are never expired.

`plan` reads and reports (`retention --dry-run`); `apply` re-checks each body against
the evidence inside the transaction that removes it, appends a retention record naming
every body it removes with its digest (ledger/erasures.py: what `verify` holds them to),
and deletes those receipts' facts from the recipient index, as a re-derivation would
find them. Verdicts do not change; a later rebuild re-reads only the bodies left, so a
soft bounce that a removed delivery had cleared may count again (never a release).
"""

from __future__ import annotations

from collections import Counter

import msgspec

from ledger import Receipt, Store, receipts
from ledger.erasures import Removed
from ledger.sql import Tx
from projections import operator, views
from projections.facts import derive
from projections.mapping import Mapper
from projections.policy import Policy, duration_us
from projections.state import decode_state

_PAGE = 2000
# Bodies one retention record names at most (one transaction each).
RECORD_MAX = 10_000


class Expiring(msgspec.Struct, frozen=True):
    """A body the policy lets go: its receipt, the kind that decided, its size, and the
    addresses its facts are about (what the recipient index holds of it)."""

    seq: int
    kind: str
    received_at: int
    size: int
    emails: tuple[str, ...] = ()


class RetentionReport(msgspec.Struct, frozen=True, kw_only=True):
    """What retention removes (or would, on a dry run): bodies and bytes per kind, the
    bodies kept as evidence of an active suppression, and the records written."""

    dry_run: bool
    periods: dict[str, str]
    bodies: int
    bytes: int
    by_kind: dict[str, int]
    kept_as_evidence: int
    records: list[int] = []


def _periods(policy: Policy) -> dict[str, int]:
    return {kind: duration_us(kept) for kind, kept in policy.retention.items() if kept != "forever"}


async def evidence(tx: Tx) -> set[int]:
    """The receipts the projection's states rest on: every cause's support and every soft
    bounce still counted."""
    seqs: set[int] = set()
    after = ""
    while rows := await tx.fetch(
        "SELECT email, state FROM recipient_state WHERE email > ? ORDER BY email LIMIT ?",
        after,
        _PAGE,
    ):
        for _, blob in rows:
            state = decode_state(blob)
            seqs.update(c.seq for cause in state.causes for c in cause.support)
            seqs.update(c.seq for c in state.soft_bounces)
        after = str(rows[-1][0])
    return seqs


def expiring(
    receipt: Receipt, mapper: Mapper, periods: dict[str, int], now: int
) -> Expiring | None:
    """The receipt's body if the policy lets it go now (None: it is kept)."""
    if receipt.source == operator.SOURCE or receipt.erased_by is not None:
        return None
    facts = [keyed.fact for keyed in derive(receipt)]
    kinds = {mapper.decide(fact)[0] for fact in facts} or {"ignored"}
    if not kinds <= periods.keys():
        return None
    longest = max(kinds, key=lambda kind: periods[kind])
    if receipt.received_at >= now - periods[longest]:
        return None
    emails = tuple(sorted({fact.recipient for fact in facts}))
    return Expiring(receipt.seq, longest, receipt.received_at, len(receipt.body), emails)


async def plan(store: Store, policy: Policy, now: int) -> tuple[list[Expiring], int]:
    """The bodies `policy` lets go at `now`, and how many more it would but for being
    evidence of an active suppression (reads only)."""
    periods = _periods(policy)
    if not periods:
        return [], 0
    mapper = Mapper(policy)
    until = now - min(periods.values())
    async with store.reading() as tx:
        kept = await evidence(tx) if await views.exists(tx) else set()
    found: list[Expiring] = []
    held = 0
    after = 0
    while page := await store.list_receipts(after_seq=after, limit=_PAGE, until=until):
        for receipt in page:
            item = expiring(receipt, mapper, periods, now)
            if item is None:
                continue
            if item.seq in kept:
                held += 1
            else:
                found.append(item)
        after = page[-1].seq
    return found, held


async def apply(
    store: Store, policy: Policy, now: int, *, actor: str, note: str, dry_run: bool = False
) -> RetentionReport:
    """Remove the bodies `policy` lets go at `now` (see the module docstring), or only
    report them (`dry_run`)."""
    found, held = await plan(store, policy, now)
    records: list[int] = []
    removed = found
    if not dry_run and found:
        removed, records = [], []
        for start in range(0, len(found), RECORD_MAX):
            chunk = found[start : start + RECORD_MAX]
            seq, gone = await _remove(store, policy, chunk, actor=actor, note=note, at=now)
            held += len(chunk) - len(gone)
            removed += gone
            if seq is not None:
                records.append(seq)
        await store.forget_freed()
    return RetentionReport(
        dry_run=dry_run,
        periods={str(kind): period for kind, period in policy.retention.items()},
        bodies=len(removed),
        bytes=sum(item.size for item in removed),
        by_kind=dict(Counter(item.kind for item in removed)),
        kept_as_evidence=held,
        records=records,
    )


async def _remove(
    store: Store, policy: Policy, chunk: list[Expiring], *, actor: str, note: str, at: int
) -> tuple[int | None, list[Expiring]]:
    """One retention record and the bodies it removes (those still no evidence)."""
    async with store.erasing() as tx:
        kept = await evidence(tx) if await views.exists(tx) else set()
        gone = [item for item in chunk if item.seq not in kept]
        held = await receipts.digests(tx, [item.seq for item in gone])
        named = tuple(Removed(seq=item.seq, sha256=held[item.seq][0].hex()) for item in gone)
        if not named:
            return None, []
        periods = {str(kind): period for kind, period in policy.retention.items()}
        record = operator.Retention("retain", actor, note, at, periods, named)
        removed: dict[int, bytes | None] = {item.seq: None for item in gone}
        result = await store.erase_in(tx, operator.record_receipt(record), removed)
        if await views.exists(tx):
            await views.forget_receipts(tx, [(e, item.seq) for item in gone for e in item.emails])
    return result.seq, gone
