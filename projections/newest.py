"""The newest receipts first: what the console's ledger page lists.

The store lists receipts oldest first (`list_receipts`, keyset pages on `after_seq`);
a page of the newest ones, filtered by source, walks the ledger the other way
(ledger/receipts.py: one statement per page, newest first, `before` a seq), without
bodies except where one is decoded (operator actions).
"""

from __future__ import annotations

import msgspec

from ledger import Store, receipts
from projections import operator
from projections.errors import DecodeFailed
from projections.recipients import format_time


def _when(micros: int) -> str:
    """A stored time as text ("" for one no calendar shows: an odd imported value)."""
    try:
        return format_time(micros) or ""
    except (OverflowError, ValueError):
        return ""


class Listed(msgspec.Struct, frozen=True, kw_only=True):
    """One receipt as listed: where it is, where it came from, when, how big."""

    seq: int
    source: str
    received_at: str
    size: int


class ActionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One operator action, decoded from its receipt."""

    seq: int
    at: str
    action: str
    email: str
    actor: str
    note: str


async def newest_receipts(
    store: Store, *, before: int | None = None, source: str | None = None, limit: int = 50
) -> list[Listed]:
    """At most `limit` receipts with seq < `before` (None: up to the head), newest first,
    of `source` only when given."""
    async with store.reading() as tx:
        rows = await receipts.newest(tx, before=before, source=source, limit=limit)
    return [
        Listed(seq=seq, source=kind, received_at=_when(received_at), size=size)
        for seq, kind, received_at, size in rows
    ]


async def newest_operator_actions(store: Store, *, limit: int = 50) -> list[ActionEntry]:
    """The newest `limit` operator receipts, newest first, decoded (one that does not
    decode as an action is left out, as the policy history leaves out its own)."""
    async with store.reading() as tx:
        rows = await receipts.newest_bodies(tx, source=operator.SOURCE, limit=limit)
    found = []
    for seq, body in rows:
        try:
            action = operator.decode(body)
        except DecodeFailed:
            continue
        found.append(
            ActionEntry(
                seq=int(seq),
                at=_when(action.at),
                action=action.action,
                email=_about(action),
                actor=action.actor,
                note=action.note,
            )
        )
    return found


def _about(action: operator.OperatorAction | operator.Erasure | operator.Retention) -> str:
    """Whom an operator receipt is about: an address, an erased one's keyed hash, or no one
    (a retention record)."""
    if isinstance(action, operator.Erasure):
        return action.subject
    if isinstance(action, operator.Retention):
        return ""
    return action.email
