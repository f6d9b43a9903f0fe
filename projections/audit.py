"""Audit read models: a recipient's timeline, the explanation of a verdict, time travel.

All computed from the recipient index (events as mapped under the current policy) and
the receipts they point at; `explain` re-runs the pure fold step by step and says what
each event did.
"""

from __future__ import annotations

import base64
from collections import Counter

import msgspec

from ledger import Receipt, Store, receipts
from projections import policy_history, streams, views
from projections.events import (
    Bounce,
    Ignored,
    NormalizedEvent,
    OperatorRelease,
    OperatorSuppress,
    kind_of,
)
from projections.facts import Fact, read
from projections.fold import fold
from projections.mapping import Mapper
from projections.policy import DEFAULT_POLICY, Policy
from projections.providers import PROVIDERS
from projections.queries import Status, require_policy, status_of
from projections.recipients import format_time, normalize_recipient
from projections.state import Cause, RecipientState


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One event about one recipient, pointing at the receipt it came from."""

    receipt: int
    source: str
    event_time: str
    received_at: str
    raw_kind: str
    kind: str
    bounce_class: str | None
    diagnostic: str | None
    event_id: str | None
    ignored: bool
    ignored_reason: str | None
    actor: str | None = None
    note: str | None = None
    scope: str | None = None
    flags: tuple[str, ...] = ()
    lifts: tuple[str, ...] | None = None  # a release: the causes it names
    seen: int | None = None  # a release: the newest evidence receipt it saw
    # the policy's streams its evidence belongs to (left out when global)
    streams: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET


class ReadEvent(msgspec.Struct, frozen=True):
    """One event a receipt holds about one recipient, as the provider module reads it."""

    recipient: str
    raw_kind: str


class ReceiptReading(msgspec.Struct, frozen=True, kw_only=True):
    """What a receipt's body says: its events by recipient, and the kinds of the events
    that name no recipient (kept in the ledger, folded into nobody's state)."""

    events: list[ReadEvent]
    unattributed: list[str]


def reading_of(receipt: Receipt) -> ReceiptReading | None:
    """The reading of a provider's receipt; None for other sources or an unreadable body."""
    provider = PROVIDERS.get(receipt.source)
    if provider is None:
        return None
    try:
        raws = provider.decode(receipt.body, receipt.content_type, receipt.headers)
        reading = read(provider, raws)
    except Exception:  # shown as "not readable"; the projector logs decoder bugs
        return None
    return ReceiptReading(
        events=[ReadEvent(recipient, seen.raw_kind) for recipient, seen in reading.events],
        unattributed=reading.unattributed,
    )


class ReceiptView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A receipt's metadata; with the body (base64, and as text when it is UTF-8)."""

    seq: int
    source: str
    received_at: str
    content_type: str
    size: int
    body_sha256: str
    chain_hash: str
    peer: str | None
    headers: dict[str, str]
    body_base64: str | None = None
    body_text: str | None = None
    reading: ReceiptReading | None = None
    # The erasure record that removed the body (then empty) or redacted it.
    erased_by: int | None = None

    @classmethod
    def summary(cls, receipt: Receipt) -> ReceiptView:
        return cls(
            seq=receipt.seq,
            source=receipt.source,
            received_at=format_time(receipt.received_at) or "",
            content_type=receipt.content_type,
            size=len(receipt.body),
            body_sha256=receipt.body_sha256.hex(),
            chain_hash=receipt.chain_hash.hex(),
            peer=receipt.peer,
            headers=receipt.headers,
            erased_by=receipt.erased_by,
        )

    @classmethod
    def full(cls, receipt: Receipt) -> ReceiptView:
        try:
            text: str | None = receipt.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return msgspec.structs.replace(
            cls.summary(receipt),
            body_base64=base64.b64encode(receipt.body).decode(),
            body_text=text,
            reading=reading_of(receipt),
        )


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """What one event did to the recipient's state under the policy."""

    event: TimelineEntry
    effect: str
    decisive: bool


class PolicyView(msgspec.Struct, frozen=True, kw_only=True):
    """The policy values that decide a verdict."""

    hash: str
    soft_bounce_threshold: int
    soft_bounce_window: str | None
    delivery_clears_soft_bounces: bool


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """A verdict, the policy that decided it, and the events that produced it."""

    status: Status
    policy: PolicyView
    evidence: list[Step]
    steps: list[Step]
    # Each of the policy's streams' verdict and the rule that decided it (left out when
    # the policy defines no streams).
    streams: list[streams.StreamVerdict] | msgspec.UnsetType = msgspec.UNSET


async def _rows(
    store: Store, email: str, policy_hash: str, received_by: int | None = None
) -> list[tuple[Fact, int]]:
    """(fact, received_at) for a recipient in history order; with `received_by`, only
    the facts of receipts received by then."""
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        facts = await views.load_facts(tx, normalize_recipient(email))
        arrived = await receipts.received(tx, {fact.seq for fact in facts})
    last = received_by if received_by is not None else 2**62
    return [(fact, arrived[fact.seq]) for fact in facts if arrived.get(fact.seq, last + 1) <= last]


async def _history(
    store: Store, email: str, mapper: Mapper, policy_hash: str
) -> list[tuple[NormalizedEvent, int]]:
    """(event under the policy, received_at) for a recipient in history order."""
    rows = await _rows(store, email, policy_hash)
    events = mapper.history([fact for fact, _ in rows])
    return [(event, received_at) for event, (_, received_at) in zip(events, rows, strict=True)]


def entry(event: NormalizedEvent, received_at: int) -> TimelineEntry:
    """The timeline view of one event."""
    return TimelineEntry(
        receipt=event.seq,
        source=event.source,
        event_time=format_time(event.at) or "",
        received_at=format_time(received_at) or "",
        raw_kind=event.raw_kind,
        kind=kind_of(event),
        bounce_class=event.bounce_class if isinstance(event, Bounce) else None,
        diagnostic=event.diagnostic,
        event_id=event.event_id,
        ignored=isinstance(event, Ignored),
        ignored_reason=event.reason if isinstance(event, Ignored) else None,
        actor=event.actor if isinstance(event, OperatorSuppress | OperatorRelease) else None,
        note=event.note if isinstance(event, OperatorSuppress | OperatorRelease) else None,
        scope=event.scope,
        flags=event.flags,
        lifts=event.lifts if isinstance(event, OperatorRelease) else None,
        seen=event.seen if isinstance(event, OperatorRelease) else None,
        streams=event.streams or msgspec.UNSET,
    )


async def timeline(
    store: Store, email: str, mapper: Mapper, policy_hash: str
) -> list[TimelineEntry]:
    """Every event for the address, in event-time order, as the policy reads it."""
    history = await _history(store, email, mapper, policy_hash)
    return [entry(event, received) for event, received in history]


async def status_as_of(
    store: Store,
    email: str,
    mapper: Mapper,
    policy_hash: str,
    as_of: int,
    stream: str | None = None,
) -> Status:
    """What the service answered at `as_of`: the address refolded from the receipts the
    ledger had received by then, under the policy in force then (the latest change the
    ledger recorded by then; the built-in defaults before its first one; the active
    policy when it records none), for `stream` as that policy defined it (UnknownStream
    when it did not). Evidence received later is left out, whatever its event time."""
    rows = await _rows(store, email, policy_hash, received_by=as_of)
    then = await _policy_at(store, as_of, mapper)
    scope = streams.scope(then.policy, stream)
    state = then.fold_facts(normalize_recipient(email), [fact for fact, _ in rows])
    return status_of(state, scope)


async def _policy_at(store: Store, moment: int, current: Mapper) -> Mapper:
    recorded = await policy_history.history(store)
    if not recorded:
        return current
    before = [item for item in recorded if item.received_at <= moment]
    policy = before[-1].change.policy if before else DEFAULT_POLICY
    return current if policy == current.policy else Mapper(policy)


async def explain(
    store: Store, email: str, mapper: Mapper, policy_hash: str, stream: str | None = None
) -> Explanation:
    """The current verdict (for every stream, or for `stream`) and, event by event, how
    the policy arrived at it; each stream's verdict and the rule that decided it."""
    policy = mapper.policy
    scope = streams.scope(policy, stream)
    history = await _history(store, email, mapper, policy_hash)
    state = RecipientState(email=normalize_recipient(email))
    effects, states = [], []
    for event, _ in history:
        before, state = state, fold(state, event, policy)
        effects.append(describe(before, state, event, policy))
        states.append(state)
    decisive = _decisive(states, [event for event, _ in history], effects)
    steps = [
        Step(event=entry(event, received), effect=effect, decisive=index in decisive)
        for index, ((event, received), effect) in enumerate(zip(history, effects, strict=True))
    ]
    return Explanation(
        status=status_of(state, scope),
        policy=PolicyView(
            hash=policy_hash,
            soft_bounce_threshold=policy.soft_bounce_threshold,
            soft_bounce_window=policy.soft_bounce_window,
            delivery_clears_soft_bounces=policy.delivery_clears_soft_bounces,
        ),
        evidence=[step for step in steps if step.decisive],
        steps=steps,
        streams=streams.verdicts(policy, state.causes) if policy.streams else msgspec.UNSET,
    )


def _decisive(
    states: list[RecipientState], events: list[NormalizedEvent], effects: list[str]
) -> set[int]:
    """Indexes of the events the current state rests on: the events that set each active
    reason, the soft bounces counted (for a soft-bounce suppression: those that reached
    the threshold; otherwise those still counted), and the reset those started after.

    `states[i]` is the state right after `events[i]`; the last one is the current state.
    """
    if not events:
        return set()
    state = states[-1]
    chosen, last = set(), len(events) - 1
    for index, event in enumerate(events):
        for cause in state.causes:
            if (event.seq, event.at) == (cause.seq, cause.at):
                chosen.add(index)
                if cause.reason == "soft_bounce_threshold":
                    last = index  # later soft bounces did not make this suppression
    counted = Counter((c.at, c.seq) for c in states[last].soft_bounces)
    for index in range(last, -1, -1):
        event = events[index]
        spot = (event.at, event.seq)
        if isinstance(event, Bounce) and event.bounce_class == "soft" and counted[spot] > 0:
            counted[spot] -= 1
            chosen.add(index)
        elif effects[index].startswith(("reset:", "released")):
            # a delivery's reset is evidence only for the soft bounces counted after it
            if states[last].soft_bounces or effects[index].startswith("released"):
                chosen.add(index)
            break
    return chosen


def describe(
    before: RecipientState, after: RecipientState, event: NormalizedEvent, policy: Policy
) -> str:
    """One line saying what `event` did, from the states before and after it."""
    had = {(c.reason, c.scope) for c in before.causes}
    has = {(c.reason, c.scope) for c in after.causes}
    gained = [_label(c) for c in after.causes if (c.reason, c.scope) not in had]
    lost = [_label(c) for c in before.causes if (c.reason, c.scope) not in has]
    if isinstance(event, Ignored):
        return f"ignored: {event.reason}"
    if isinstance(event, OperatorRelease):
        lifted = ", ".join(lost) or "nothing"
        kept = [_label(c) for c in after.causes]
        tail = f"; kept {', '.join(kept)} (evidence received after the release)" if kept else ""
        return f"released by {event.actor} ({event.note}): lifted {lifted}{tail}"
    if isinstance(event, OperatorSuppress):
        return (
            f"suppressed by {event.actor} ({event.note})"
            if gained
            else "manual suppression already active"
        )
    if gained:
        return f"suppressed: {gained[0]}"
    if isinstance(event, Bounce) and event.bounce_class == "soft":
        if any(cause.reason == "soft_bounce_threshold" for cause in before.causes):
            return "soft bounce while already suppressed (soft_bounce_threshold)"
        return f"soft bounce counted: {len(after.soft_bounces)} of {policy.soft_bounce_threshold}"
    if before.soft_bounces and not after.soft_bounces:
        healed = f"; lifted {', '.join(lost)}" if lost else ""
        return f"reset: {len(before.soft_bounces)} soft bounce(s) cleared by delivery{healed}"
    if lost:
        return f"lifted: {', '.join(lost)}"
    kind = kind_of(event)
    if after.causes and kind in ("bounce", "complaint", "unsubscribe", "provider_suppressed"):
        return f"{kind}: already suppressed ({after.reason})"
    if kind == "resubscribe" and any(c.reason == "unsubscribe" for c in after.causes):
        return f"resubscribe ({event.source}:{event.scope or ''}): answers no unsubscribe here"
    return f"{kind}: no change"


def _label(cause: Cause) -> str:
    """A cause as explain shows it: the reason, and the list of an unsubscribe."""
    return f"{cause.reason} ({cause.scope.rstrip(':')})" if cause.scope else cause.reason
