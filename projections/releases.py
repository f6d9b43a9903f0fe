"""Releases: what an operator's release lifts, checked against what the operator saw.

A release lifts the bounce-class causes (`hard_bounce`, `soft_bounce_threshold`) of an
address; a complaint, an unsubscribe, a manual suppression or a provider's suppression
is someone's "no", and a release lifts it only when it names it (`also`). A release may
carry a precondition: the newest evidence receipt the operator saw (`expect`, the
`newest_evidence` of every status view). When newer evidence has arrived since, the
release is refused (ReleaseRefused, HTTP 409) and nothing is recorded; whether or not
it carries one, the release records the evidence it saw (`seen`) and the fold never
lifts anything newer.

A release is dated at the later of the clock and the newest event it saw, so that it
sorts after every event already in the ledger even when a provider's clock runs ahead
(the fold reads history in event-time order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import msgspec

from ledger import Store
from projections import operator, views
from projections.erasure_keys import ErasureKey
from projections.errors import ProjectionBehind, ReleaseRefused
from projections.queries import Status, require_policy, status_of, statuses
from projections.recipients import normalize_recipient
from projections.state import BOUNCE_CLASS, NAMED_ONLY, Reason, RecipientState
from projections.streams import within

__all__ = [
    "NAMED_ONLY",
    "Asked",
    "Outcome",
    "Plan",
    "ReleaseRefused",
    "parse_also",
    "plan",
    "release",
    "release_many",
]

# Waits until receipt N is folded; False when it was not within its time.
Settle = Callable[[int], Awaitable[bool]]


class Plan(msgspec.Struct, frozen=True):
    """What a release will record: the causes it lifts, the evidence it saw, its time."""

    lifts: tuple[Reason, ...]
    seen: int
    at: int
    streams: tuple[str, ...] = ()  # the streams it is for (none: every stream)


def parse_also(names: Iterable[str]) -> tuple[Reason, ...]:
    """The causes named beyond the bounce class (`complaint`, `unsubscribe`, `manual`,
    `provider_suppressed`, or `all` of them), from a list whose items may themselves be
    comma-separated; ValueError names an unknown one."""
    chosen: set[str] = set()
    for name in names:
        for part in name.split(","):
            part = part.strip().lower()
            if part == "all":
                chosen.update(NAMED_ONLY)
            elif part in NAMED_ONLY or part in BOUNCE_CLASS:
                chosen.add(part)
            elif part:
                known = ", ".join((*NAMED_ONLY, "all"))
                raise ValueError(f"also: {part[:40]!r} is not a cause to lift (known: {known})")
    return tuple(r for r in NAMED_ONLY if r in chosen)


def plan(
    state: RecipientState,
    *,
    also: tuple[Reason, ...],
    expect: int | None,
    now: int,
    streams: tuple[str, ...] = (),
) -> Plan | None:
    """What releasing `state` (for `streams`; none: every stream) records now; None when
    there is nothing to lift (not suppressed and no soft bounce counting — or, for some
    streams, no cause of theirs alone). ReleaseRefused when newer evidence than `expect`
    has arrived, or when every cause in reach is one the release does not name."""
    newest = state.newest_evidence
    current = status_of(state)
    if expect is not None and expect != newest:
        raise ReleaseRefused(_changed(expect, current), current)
    reach = [cause for cause in state.causes if within(cause, streams)]
    if not reach and (streams or not state.soft_bounces):
        return None
    lifts = (*BOUNCE_CLASS, *also)
    if reach and not any(cause.reason in lifts for cause in reach):
        unnamed = sorted({cause.reason for cause in reach}, key=NAMED_ONLY.index)
        where = f" for stream {', '.join(streams)}" if streams else ""
        raise ReleaseRefused(
            f"{state.email} is suppressed{where} by {', '.join(unnamed)}, which a release "
            f"lifts only when named (also={','.join(unnamed)}): nothing was released",
            current,
        )
    return Plan(lifts=lifts, seen=newest, at=max(now, state.position[0]), streams=streams)


def _changed(expect: int, current: Status) -> str:
    causes = ", ".join(f"{c.reason} (receipt {c.newest_receipt})" for c in current.causes)
    now = f"now: {causes}" if causes else "now: not suppressed"
    return (
        f"the evidence changed since receipt {expect}: the newest is receipt "
        f"{current.newest_evidence} ({now}); look again, then release: nothing was released"
    )


class Asked(msgspec.Struct, frozen=True):
    """One address to release, and the newest evidence the operator saw (None: no
    precondition)."""

    email: str
    expect: int | None = None


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one asked release: the receipt that records it, or why it was
    refused (nothing recorded), or neither (there was nothing to release)."""

    email: str
    receipt: int | None = None
    refused: str | None = None


async def release_many(
    store: Store,
    policy_hash: str,
    asked: list[Asked],
    *,
    actor: str,
    note: str,
    also: tuple[Reason, ...] = (),
    now: int,
    settle: Settle,
    streams: tuple[str, ...] = (),
) -> list[Outcome]:
    """Release each asked address as `actor`, once `settle(head)` has folded what the
    ledger holds: each is checked on its evidence as it stands, recorded (together, so
    the ledger commits them in a few transactions) and folded (`settle`).

    Raises ProjectionBehind (nothing recorded) and ValueError (an empty note, or an
    asked entry without an address)."""
    if not note.strip():
        raise ValueError("an operator action needs a note saying why")
    addresses = [normalize_recipient(item.email) for item in asked]
    if not all(addresses):
        raise ValueError("a release needs an email address")
    if not await settle(await store.last_seq()):
        raise ProjectionBehind(
            "the projection has not folded the ledger's newest receipts yet: the release was "
            "not checked against them, and nothing was recorded; try again"
        )
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        states = await views.load_states(tx, addresses)
    outcomes: list[Outcome] = []
    planned: list[tuple[int, str, Plan]] = []
    for item, address in zip(asked, addresses, strict=True):
        state = states.get(address) or RecipientState(email=address)
        try:
            chosen = plan(state, also=also, expect=item.expect, now=now, streams=streams)
        except ReleaseRefused as exc:
            outcomes.append(Outcome(email=address, refused=str(exc)))
            continue
        outcomes.append(Outcome(email=address))
        if chosen is not None:
            planned.append((len(outcomes) - 1, address, chosen))
    seqs = await asyncio.gather(
        *(
            operator.record(
                store,
                "release",
                address,
                actor=actor,
                note=note,
                at=chosen.at,
                lifts=chosen.lifts,
                seen=chosen.seen,
                streams=chosen.streams,
            )
            for _, address, chosen in planned
        )
    )
    for (index, address, _), seq in zip(planned, seqs, strict=True):
        outcomes[index] = Outcome(email=address, receipt=seq)
    if seqs:
        await settle(max(seqs))
    return outcomes


async def release(
    store: Store,
    policy_hash: str,
    email: str,
    *,
    actor: str,
    note: str,
    also: tuple[Reason, ...] = (),
    expect: int | None = None,
    now: int,
    settle: Settle,
    key: ErasureKey | None = None,
    streams: tuple[str, ...] = (),
) -> Status:
    """Release one address (release_many); returns its status after the release (with
    `key`, as lookups see it: an erased address stays suppressed under its keyed hash).

    Raises ReleaseRefused and ProjectionBehind (nothing recorded), and ValueError (an
    empty note or address). An address kept suppressed only by an erasure is refused,
    naming the keyed hash to release instead."""
    (outcome,) = await release_many(
        store,
        policy_hash,
        [Asked(email, expect)],
        actor=actor,
        note=note,
        also=also,
        now=now,
        settle=settle,
        streams=streams,
    )
    status = (await statuses(store, [outcome.email], policy_hash, key))[outcome.email]
    if outcome.refused is not None:
        raise ReleaseRefused(outcome.refused, status)
    if outcome.receipt is None and status.suppressed and status.erased:
        raise ReleaseRefused(
            f"{outcome.email} was erased and is kept suppressed as {status.erased}: release "
            "that keyed hash to lift it (name its causes with also); nothing was released",
            status,
        )
    return status
