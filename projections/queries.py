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


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """One address: suppressed or not, why, since when, on which receipt's evidence."""

    email: str
    suppressed: bool
    reason: str | None
    since: str | None
    soft_bounces: int
    events: int
    receipt: int | None  # the receipt whose event set the reported reason
    last_event_at: str | None


class Suppression(msgspec.Struct, frozen=True, kw_only=True):
    """One suppressed address in the list."""

    email: str
    reason: str
    since: str
    receipt: int


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


def status_of(state: RecipientState) -> Status:
    """The public view of a folded state."""
    return Status(
        email=state.email,
        suppressed=state.suppressed,
        reason=state.reason,
        since=format_time(state.since),
        soft_bounces=len(state.soft_bounces),
        events=state.events,
        receipt=state.causes[0].seq if state.causes else None,
        last_event_at=format_time(state.position[0]) if state.events else None,
    )


async def suppressions(
    store: Store, policy_hash: str, *, after: str | None = None, limit: int | None = None
) -> list[Suppression]:
    """Suppressed addresses in address order, starting after `after` (keyset pagination)."""
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        rows = await tx.fetch(
            "SELECT email, reason, since, seq FROM suppressions "
            "WHERE email > ? ORDER BY email LIMIT ?",
            after or "",
            2**62 if limit is None else limit,
        )
    return [
        Suppression(email=email, reason=reason, since=format_time(since) or "", receipt=seq)
        for email, reason, since, seq in rows
    ]


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
                "SELECT email, reason, since, seq FROM suppressions "
                f"WHERE email IN ({','.join('?' * len(chunk))})",
                *chunk,
            )
    found = {}
    for email, reason, since, seq in rows:
        hit = Suppression(email=email, reason=reason, since=format_time(since) or "", receipt=seq)
        for given in wanted[email]:
            found[given] = hit
    return found


async def suppression_counts(store: Store) -> dict[str, int]:
    """Suppressed addresses by reason."""
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")
    return {reason: int(count) for reason, count in rows}
