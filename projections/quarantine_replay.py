"""Replay quarantined deliveries into the ledger once their decoder reads them, and list
them for that.

(Named `quarantine_replay`, not `quarantine` like the storage in `ledger/quarantine.py`
and the routes in `api/`; and `replay_kept`, because `projections.fold.replay` is the
other replay: folding events. `Replay` keeps its name: it is the HTTP API's schema.)
"""

from __future__ import annotations

import msgspec

from ledger import Store
from ledger import quarantine as kept
from projections.errors import DecodeFailed
from projections.providers import PROVIDERS
from projections.recipients import format_time

ALREADY_REPLAYED = "already replayed"


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """What replaying one kept delivery did: the receipt it became, or why it did not."""

    id: int
    seq: int | None = None
    duplicate: bool = False
    error: str | None = None

    @property
    def already_replayed(self) -> bool:
        """Replayed before, as receipt `seq`: nothing was appended this time."""
        return self.error == ALREADY_REPLAYED


async def replay_kept(store: Store, qid: int) -> Replay | None:
    """Decode a kept delivery with today's decoder; append it (received time, headers and
    peer as they were) when it now reads, and mark it replayed. None when no delivery
    `qid` is kept."""
    item = await kept.get(store, qid)
    if item is None:
        return None
    if item.replayed_seq is not None:
        return Replay(id=qid, seq=item.replayed_seq, error=ALREADY_REPLAYED)
    receipt = item.receipt
    provider = PROVIDERS.get(receipt.source)
    if provider is None:
        return Replay(id=qid, error=f"no decoder for source {receipt.source!r}")
    try:
        provider.decode(receipt.body, receipt.content_type, receipt.headers)
    except DecodeFailed as exc:
        return Replay(id=qid, error=f"still undecodable: {exc}")
    result = await store.append(receipt)
    await kept.mark_replayed(store, qid, result.seq)
    return Replay(id=qid, seq=result.seq, duplicate=result.duplicate)


class Kept(msgspec.Struct, frozen=True, kw_only=True):
    """A quarantined delivery as listed: metadata and the reason (the body only on the
    per-delivery view, KeptBody)."""

    id: int
    source: str
    received_at: str
    content_type: str
    size: int
    reason: str
    seen: int
    replayed_seq: int | None


class KeptBody(Kept, frozen=True, kw_only=True):
    """One quarantined delivery with its body as text (None when it is not UTF-8)."""

    body_text: str | None


def summary(item: kept.Summary) -> Kept:
    return Kept(
        id=item.id,
        source=item.source,
        received_at=format_time(item.received_at) or "",
        content_type=item.content_type,
        size=item.size,
        reason=item.reason,
        seen=item.seen,
        replayed_seq=item.replayed_seq,
    )


def view(item: kept.Quarantined) -> KeptBody:
    body = item.receipt.body
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return KeptBody(
        id=item.id,
        source=item.receipt.source,
        received_at=format_time(item.receipt.received_at) or "",
        content_type=item.receipt.content_type,
        size=len(body),
        reason=item.reason,
        seen=item.seen,
        replayed_seq=item.replayed_seq,
        body_text=text,
    )


async def listing(
    store: Store, *, include_replayed: bool = False, after: int = 0, limit: int = -1
) -> list[Kept]:
    """Quarantined deliveries with id > `after`, oldest first, at most `limit` (-1: all),
    without bodies (replayed ones only when asked)."""
    items = await kept.listing(store, include_replayed=include_replayed, after=after, limit=limit)
    return [summary(item) for item in items]


async def item(store: Store, qid: int) -> KeptBody | None:
    """One quarantined delivery, body included."""
    found = await kept.get(store, qid)
    return view(found) if found is not None else None
