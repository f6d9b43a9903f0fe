"""The newest receipts first: what the console's ledger page lists.

The store lists receipts oldest first (`list_receipts`, keyset pages on `after_seq`);
a page of the newest ones, filtered by source, walks the ledger the other way. These
read the receipts table in one statement per page (newest first, `before` a seq), and
without bodies except where one is decoded (operator actions).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ledger import Store
from projections import operator
from projections.errors import DecodeFailed
from projections.recipients import format_time

_NO_END = 2**62


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
    sql = "SELECT seq, source, received_at, length(body) FROM receipts WHERE seq < ?"
    args: list[Any] = [before if before is not None else _NO_END]
    if source is not None:
        sql += " AND source = ?"
        args.append(source)
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    async with store.reading() as tx:
        rows = await tx.fetch(sql, *args)
    return [
        Listed(
            seq=int(row[0]),
            source=str(row[1]),
            received_at=_when(int(row[2])),
            size=int(row[3]),
        )
        for row in rows
    ]


async def newest_operator_actions(store: Store, *, limit: int = 50) -> list[ActionEntry]:
    """The newest `limit` operator receipts, newest first, decoded (one that does not
    decode as an action is left out, as the policy history leaves out its own)."""
    async with store.reading() as tx:
        rows = await tx.fetch(
            "SELECT seq, body FROM receipts WHERE source = ? ORDER BY seq DESC LIMIT ?",
            operator.SOURCE,
            limit,
        )
    found = []
    for seq, body in rows:
        try:
            action = operator.decode(bytes(body))
        except DecodeFailed:
            continue
        found.append(
            ActionEntry(
                seq=int(seq),
                at=_when(action.at),
                action=action.action,
                email=action.email,
                actor=action.actor,
                note=action.note,
            )
        )
    return found
