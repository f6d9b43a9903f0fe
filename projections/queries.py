"""Read models over the projection: status, the suppression list, campaign checks.

Every query checks, in the same read transaction, that the projection was built under
the policy the caller is configured with; otherwise it raises PolicyMismatch rather
than answer from state built under other rules.
"""

from __future__ import annotations

import msgspec

from ledger import Store
from ledger.sql import Tx
from projections import views
from projections.errors import PolicyMismatch
from projections.recipients import format_time, normalize_recipient
from projections.state import RecipientState

_CHUNK = 500


class CauseView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One active cause of a suppression: its reason, the evidence shown (the earliest),
    the newest evidence for it, and for an unsubscribe the list it is about."""

    reason: str
    since: str
    receipt: int  # the earliest evidence's receipt
    newest_receipt: int  # the newest evidence's receipt
    scope: str | None = None  # an unsubscribe's `source:list`


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """One address: suppressed or not, why (the strongest reason, and every active
    cause), since when, on which receipt's evidence. `newest_evidence` is the receipt of
    the newest evidence the verdict rests on: a release may name it as its precondition
    (`If-Match`, `--expect`), and is refused when newer evidence has arrived since."""

    email: str
    suppressed: bool
    reason: str | None
    since: str | None
    soft_bounces: int
    events: int
    receipt: int | None  # the receipt whose event set the reported reason
    last_event_at: str | None
    causes: list[CauseView] = []
    newest_evidence: int = 0


class Suppression(msgspec.Struct, frozen=True, kw_only=True):
    """One suppressed address in the list: the strongest reason, and every active one."""

    email: str
    reason: str
    since: str
    receipt: int
    reasons: list[str] = []


async def require_policy(tx: Tx, policy_hash: str) -> int:
    meta = await views.read_checkpoint(tx)
    if meta is None or meta[1] != policy_hash:
        raise PolicyMismatch(meta[1] if meta else "(none)", policy_hash)
    return meta[0]


async def status(store: Store, email: str, policy_hash: str) -> Status:
    """The status of one address (an address never seen is simply not suppressed)."""
    email = normalize_recipient(email)
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        state = await views.load_state(tx, email)
    return status_of(state or RecipientState(email=email))


async def statuses(store: Store, emails: list[str], policy_hash: str) -> dict[str, Status]:
    """The status of each address (normalised; keyed so), read in one transaction."""
    addresses = list(dict.fromkeys(normalize_recipient(email) for email in emails))
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        states = await views.load_states(tx, addresses)
    return {a: status_of(states.get(a) or RecipientState(email=a)) for a in addresses}


def status_of(state: RecipientState) -> Status:
    """The public view of a folded state."""
    causes = [
        CauseView(
            reason=cause.reason,
            since=format_time(cause.at) or "",
            receipt=cause.seq,
            newest_receipt=max(c.seq for c in cause.support) if cause.support else cause.seq,
            scope=cause.scope.rstrip(":") or None,
        )
        for cause in state.causes
    ]
    return Status(
        email=state.email,
        suppressed=state.suppressed,
        reason=state.reason,
        since=format_time(state.since),
        soft_bounces=len(state.soft_bounces),
        events=state.events,
        receipt=state.causes[0].seq if state.causes else None,
        last_event_at=format_time(state.position[0]) if state.events else None,
        causes=causes,
        newest_evidence=state.newest_evidence,
    )


async def suppressions(
    store: Store, policy_hash: str, *, after: str | None = None, limit: int | None = None
) -> list[Suppression]:
    """Suppressed addresses in address order, starting after `after` (keyset pagination)."""
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM suppressions WHERE email > ? ORDER BY email LIMIT ?",
            after or "",
            2**62 if limit is None else limit,
        )
    return [_suppression(*row) for row in rows]


_COLUMNS = "email, reason, since, seq, reasons"


def _suppression(email: str, reason: str, since: int, seq: int, reasons: str) -> Suppression:
    return Suppression(
        email=email,
        reason=reason,
        since=format_time(since) or "",
        receipt=seq,
        reasons=reasons.split(",") if reasons else [reason],
    )


async def check(store: Store, policy_hash: str, emails: list[str]) -> dict[str, Suppression]:
    """Which of `emails` are suppressed, keyed by the address as given."""
    wanted: dict[str, list[str]] = {}
    for given in emails:
        wanted.setdefault(normalize_recipient(given), []).append(given)
    addresses = list(wanted)
    rows = []
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        for start in range(0, len(addresses), _CHUNK):
            chunk = addresses[start : start + _CHUNK]
            rows += await tx.fetch(
                f"SELECT {_COLUMNS} FROM suppressions "
                f"WHERE email IN ({','.join('?' * len(chunk))})",
                *chunk,
            )
    found = {}
    for row in rows:
        hit = _suppression(*row)
        for given in wanted[hit.email]:
            found[given] = hit
    return found


async def suppression_counts(store: Store) -> dict[str, int]:
    """Suppressed addresses by reason."""
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")
    return {reason: int(count) for reason, count in rows}


async def oldest_unprojected(store: Store) -> tuple[int, int] | None:
    """(seq, received_at) of the first receipt after the stored checkpoint — the one the
    projection waits on, whoever projects — or None when the projection is current."""
    async with store.reading() as tx:
        checkpoint = await views.read_checkpoint(tx) if await views.exists(tx) else None
    arrived = await store.arrivals(checkpoint[0] if checkpoint else 0, 1)
    return arrived[0] if arrived else None
