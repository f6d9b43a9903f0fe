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
from projections.erasure_keys import NO_KEY, PREFIX, ErasureKey, ErasureKeyMissing, is_subject
from projections.errors import PolicyMismatch
from projections.recipients import format_time, normalize_recipient
from projections.state import Cause, RecipientState
from projections.streams import Scope, reason_names

_CHUNK = 500


class CauseView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One active cause of a suppression: its reason, the evidence shown (the earliest),
    the newest evidence for it, and for an unsubscribe the list it is about."""

    reason: str
    since: str
    receipt: int  # the earliest evidence's receipt
    newest_receipt: int  # the newest evidence's receipt
    scope: str | None = None  # an unsubscribe's `source:list`
    streams: list[str] = []  # the streams its evidence belongs to (none: global)


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
    # The keyed hash an erasure keeps the address suppressed under (projections/erasing.py)
    erased: str | None = None
    # Asked for one stream (projections/streams.py): its name; `causes` are those that
    # block it, `other_causes` those active for other streams only. Left out of an answer
    # for every stream, which reads as it did before streams.
    stream: str | msgspec.UnsetType = msgspec.UNSET
    other_causes: list[CauseView] | msgspec.UnsetType = msgspec.UNSET


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


async def status(
    store: Store,
    email: str,
    policy_hash: str,
    key: ErasureKey | None = None,
    scope: Scope | None = None,
) -> Status:
    """The status of one address (an address never seen is simply not suppressed; one
    erased is suppressed under its keyed hash, found with `key`), for every stream or the
    one of `scope` (projections/streams.py)."""
    found = await statuses(store, [email], policy_hash, key, scope)
    return found[normalize_recipient(email)]


async def statuses(
    store: Store,
    emails: list[str],
    policy_hash: str,
    key: ErasureKey | None = None,
    scope: Scope | None = None,
) -> dict[str, Status]:
    """The status of each address (normalised; keyed so), read in one transaction; with
    `key`, an erased address's keyed hash is looked up too; with `scope`, for its stream."""
    addresses = list(dict.fromkeys(normalize_recipient(email) for email in emails))
    subjects = {a: key.subject(a) for a in addresses} if key is not None else {}
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        states = await views.load_states(tx, [*addresses, *subjects.values()])
    found = {}
    for address in addresses:
        state = states.get(address) or RecipientState(email=address)
        kept = states.get(subjects.get(address, ""))
        found[address] = (
            _with_erasure(state, kept, scope)
            if kept and kept.suppressed
            else status_of(state, scope)
        )
    return found


def _with_erasure(state: RecipientState, kept: RecipientState, scope: Scope | None) -> Status:
    """An erased address's status: suppressed for the causes its keyed hash keeps (and any
    evidence that came after the erasure)."""
    shown = state if state.suppressed else msgspec.structs.replace(kept, email=state.email)
    return msgspec.structs.replace(status_of(shown, scope), erased=kept.email)


def _cause_view(cause: Cause) -> CauseView:
    return CauseView(
        reason=cause.reason,
        since=format_time(cause.at) or "",
        receipt=cause.seq,
        newest_receipt=max(c.seq for c in cause.support) if cause.support else cause.seq,
        scope=cause.scope.rstrip(":") or None,
        streams=list(cause.streams),
    )


def status_of(state: RecipientState, scope: Scope | None = None) -> Status:
    """The public view of a folded state: for every stream (the strictest verdict: any
    active cause), or for the stream of `scope` (the causes that block it)."""
    causes = state.causes if scope is None else scope.blocking(state.causes)
    others = [_cause_view(cause) for cause in state.causes if cause not in causes]
    # for a stream, its own suppression began with the earliest cause that blocks it
    since = state.since if scope is None else min((cause.at for cause in causes), default=None)
    return Status(
        email=state.email,
        suppressed=bool(causes),
        reason=causes[0].reason if causes else None,
        since=format_time(since),
        soft_bounces=len(state.soft_bounces),
        events=state.events,
        receipt=causes[0].seq if causes else None,
        last_event_at=format_time(state.position[0]) if state.events else None,
        causes=[_cause_view(cause) for cause in causes],
        newest_evidence=state.newest_evidence,
        stream=scope.name if scope else msgspec.UNSET,
        other_causes=others if scope else msgspec.UNSET,
    )


async def suppressions(
    store: Store,
    policy_hash: str,
    *,
    after: str | None = None,
    limit: int | None = None,
    scope: Scope | None = None,
) -> list[Suppression]:
    """Suppressed addresses in address order, starting after `after` (keyset pagination);
    with `scope`, those its stream may not mail (rows that do not block it passed over)."""
    wanted = 2**62 if limit is None else limit
    found: list[Suppression] = []
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        while len(found) < wanted:
            asked = wanted - len(found)
            rows = await tx.fetch(
                f"SELECT {_COLUMNS} FROM suppressions WHERE email > ? ORDER BY email LIMIT ?",
                after or "",
                asked,
            )
            for row in rows:
                if (hit := _seen_by(scope, *row)) is not None:
                    found.append(hit)
            if scope is None or len(rows) < asked:
                break
            after = rows[-1][0]
    return found


_COLUMNS = "email, reason, since, seq, reasons"


def _suppression(email: str, reason: str, since: int, seq: int, reasons: str) -> Suppression:
    return Suppression(
        email=email,
        reason=reason,
        since=format_time(since) or "",
        receipt=seq,
        reasons=reason_names(reasons, reason),
    )


def _seen_by(
    scope: Scope | None, email: str, reason: str, since: int, seq: int, tags: str
) -> Suppression | None:
    """A listed suppression as every stream (`scope` None) or one stream sees it: None
    when no cause blocks that stream; else with the reasons that do (the row's `receipt`
    and `since` are the strongest cause's)."""
    if scope is None:
        return _suppression(email, reason, since, seq, tags)
    blocked = scope.blocked(tags, reason)
    if not blocked:
        return None
    shown = format_time(since) or ""
    return Suppression(email=email, reason=blocked[0], since=shown, receipt=seq, reasons=blocked)


async def check(
    store: Store,
    policy_hash: str,
    emails: list[str],
    key: ErasureKey | None = None,
    scope: Scope | None = None,
) -> dict[str, Suppression]:
    """Which of `emails` are suppressed, keyed by the address as given; with `key`, also
    those erased (suppressed under their keyed hash, which the answer names); with
    `scope`, those its stream may not mail."""
    wanted: dict[str, list[str]] = {}
    for given in emails:
        wanted.setdefault(normalize_recipient(given), []).append(given)
    if key is not None:
        for address in list(wanted):
            wanted.setdefault(key.subject(address), []).extend(wanted[address])
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
    found: dict[str, Suppression] = {}
    for row in sorted(rows, key=lambda row: is_subject(row[0])):  # the address's own first
        hit = _seen_by(scope, *row)
        if hit is None:
            continue
        for given in wanted[hit.email]:
            found.setdefault(given, hit)
    return found


async def erasure_key_ids(store: Store) -> set[str]:
    """The ids of the keys the erased addresses the projection keeps suppressed were
    hashed with."""
    async with store.reading() as tx:
        rows = await tx.fetch(
            "SELECT DISTINCT substr(email, ?, 8) FROM suppressions WHERE email LIKE ?",
            len(PREFIX) + 1,
            PREFIX + "%",
        )
    return {str(row[0]) for row in rows}


async def require_erasure_key(store: Store, key: ErasureKey | None) -> None:
    """ErasureKeyMissing when the projection keeps erased addresses suppressed under a key
    this instance does not hold: its lookups would answer "not suppressed" for them."""
    missing = sorted(await erasure_key_ids(store) - ({key.id} if key else set()))
    if missing:
        raise ErasureKeyMissing(
            f"the ledger keeps erased addresses suppressed under erasure key id "
            f"{', '.join(missing)}, which this instance does not hold: without it, a lookup "
            f'of such an address would answer "not suppressed". {NO_KEY}'
        )


async def suppression_counts(store: Store) -> dict[str, int]:
    """Suppressed addresses by reason."""
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")
    return {reason: int(count) for reason, count in rows}


async def stream_counts(store: Store, scopes: list[Scope]) -> dict[str, int]:
    """How many addresses each stream may not mail: the list grouped by its columns of
    reasons (a few distinct values), each group read per stream."""
    async with store.reading() as tx:
        rows = await tx.fetch(
            "SELECT reason, reasons, COUNT(*) FROM suppressions GROUP BY reason, reasons"
        )
    counts = dict.fromkeys((scope.name for scope in scopes), 0)
    for reason, tags, count in rows:
        for scope in scopes:
            if scope.blocked(tags, reason):
                counts[scope.name] += int(count)
    return counts


async def oldest_unprojected(store: Store) -> tuple[int, int] | None:
    """(seq, received_at) of the first receipt after the stored checkpoint — the one the
    projection waits on, whoever projects — or None when the projection is current."""
    async with store.reading() as tx:
        checkpoint = await views.read_checkpoint(tx) if await views.exists(tx) else None
    arrived = await store.arrivals(checkpoint[0] if checkpoint else 0, 1)
    return arrived[0] if arrived else None
