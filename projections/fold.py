"""The pure fold: (state, event, policy) -> state. No I/O, no clock, no randomness.

Events reach the fold in history order (event time, then ledger order): a late event
makes the projector refold the recipient from the start. Two rules reach across that
order, because they are about what the ledger held, not about when things happened:

- an operator release lifts only the evidence the operator saw: receipts in the ledger
  before it (a lower sequence number, and at most the `seen` receipt it names), of the
  causes it names (the bounce-class ones unless told more), for the streams it names
  (every stream unless told); evidence that reaches the ledger afterwards suppresses
  again, whatever its event time;
- a resubscribe lifts only the unsubscribe it answers: the same source, scope and
  streams.

A cause keeps the streams its evidence belongs to (`event.streams`, the policy's
`[streams]`: projections/streams.py); bounces are global, whatever their labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from msgspec.structs import replace

from projections.events import (
    Bounce,
    Complaint,
    Deferred,
    Delivered,
    Ignored,
    NormalizedEvent,
    OperatorErase,
    OperatorRelease,
    OperatorSuppress,
    ProviderSuppressed,
    Resubscribe,
    Unsubscribe,
)
from projections.policy import Policy
from projections.state import (
    BOUNCE_CLASS,
    REASON_RANK,
    SUPPORT_KEPT,
    Cause,
    Counted,
    Reason,
    RecipientState,
)
from projections.streams import within


def fold(state: RecipientState, event: NormalizedEvent, policy: Policy) -> RecipientState:
    """Apply one event, which must sort after every event already folded into `state`."""
    match event:
        case Bounce(bounce_class="hard"):
            new = _activate(state, "hard_bounce", event)
        case Bounce(shared=shared) if shared > 1:
            new = _soft_bounce(state, event, policy)
            new = replace(new, shared_bounces=state.shared_bounces + 1)
        case Bounce():
            new = _soft_bounce(state, event, policy)
        case Complaint():
            new = _activate(state, "complaint", event, streams=event.streams)
        case Unsubscribe():
            new = _activate(state, "unsubscribe", event, unsubscribe_scope(event), event.streams)
        case Resubscribe():
            new = _deactivate(state, "unsubscribe", unsubscribe_scope(event), event.streams)
        case ProviderSuppressed():
            new = _activate(state, "provider_suppressed", event, streams=event.streams)
        case Delivered():
            # A delivery proves the mailbox works *at that time*: soft bounces before it
            # stop counting, and a soft-bounce suppression heals. Hard bounces and
            # complaints stay: one good delivery does not undo them.
            new = state
            if policy.delivery_clears_soft_bounces:
                new = _deactivate(replace(state, soft_bounces=()), "soft_bounce_threshold")
        case OperatorSuppress():
            new = _activate(state, "manual", event, streams=event.streams)
        case OperatorRelease():
            new = _release(state, event, policy)
        case OperatorErase():
            new = _erase(state, event)
        case Deferred() | Ignored():
            new = state
        case _:
            assert_never(event)
    return replace(new, position=event.position, events=state.events + 1)


def replay(
    email: str,
    events: Iterable[NormalizedEvent],
    policy: Policy,
    state: RecipientState | None = None,
) -> RecipientState:
    """Fold a recipient's events in history order (event time, then ledger order)."""
    state = state or RecipientState(email=email)
    for event in sorted(events, key=lambda e: e.position):
        state = fold(state, event, policy)
    return state


def unsubscribe_scope(event: Unsubscribe | Resubscribe) -> str:
    """What an (un)subscribe is about: its source and the provider's list, if any."""
    return f"{event.source}:{event.scope or ''}"


def _soft_bounce(state: RecipientState, event: Bounce, policy: Policy) -> RecipientState:
    """Count a soft bounce; suppress when the threshold is reached.

    With a window, a soft bounce counts while it is at most the window older than the
    newest (two bounces exactly `7d` apart are within a `7d` window); events arrive in
    event-time order, so one that falls out of the window never counts again.
    """
    threshold, window = policy.soft_bounce_threshold, policy.window_us
    counted = state.soft_bounces
    if window is not None:
        counted = tuple(c for c in counted if c.at >= event.at - window)
    counted = (*counted, Counted(event.at, event.seq))[-max(SUPPORT_KEPT, threshold) :]
    new = replace(state, soft_bounces=counted)
    if len(counted) >= threshold:
        new = _activate(new, "soft_bounce_threshold", event)
    return new


def released_reasons(state: RecipientState, event: OperatorRelease) -> frozenset[Reason]:
    """The reasons a release lifts: the ones it names. A release recorded before
    releases named them lifts the bounce-class causes and the one reason every view
    showed when it was made — the strongest active when it is folded."""
    if event.lifts is not None:
        return frozenset(event.lifts)
    shown = () if state.reason is None else (state.reason,)
    return frozenset((*BOUNCE_CLASS, *shown))


def _release(state: RecipientState, event: OperatorRelease, policy: Policy) -> RecipientState:
    """Lift the evidence the operator saw — receipts up to `seen`, all in the ledger
    before the release — of the causes the release names. A named cause with later
    evidence stays, resting on that evidence alone; a cause it does not name stays as it
    is. When it lifts the soft-bounce threshold, the soft bounces that count are those
    after `seen`."""
    lifts = released_reasons(state, event)
    seen = event.seq - 1 if event.seen is None else min(event.seen, event.seq - 1)
    causes = []
    for cause in state.causes:
        if cause.reason not in lifts or not within(cause, event.streams):
            causes.append(cause)
        elif cause.reason != "soft_bounce_threshold":
            later = tuple(c for c in cause.support if c.seq > seen)
            if later:
                causes.append(replace(cause, at=later[0].at, seq=later[0].seq, support=later))
    counted = state.soft_bounces
    if "soft_bounce_threshold" in lifts and not event.streams:
        counted = tuple(c for c in counted if c.seq > seen)
        if len(counted) >= policy.soft_bounce_threshold:
            # as if counted afresh: the bounce that reaches the threshold, and those after it
            support = counted[policy.soft_bounce_threshold - 1 :]
            reached = support[0]
            causes.append(Cause("soft_bounce_threshold", reached.at, reached.seq, "", support))
    if tuple(causes) == state.causes and counted == state.soft_bounces:
        return state  # lifted nothing
    causes.sort(key=lambda cause: REASON_RANK.index(cause.reason))
    since = min(cause.at for cause in causes) if causes else None
    return replace(state, causes=tuple(causes), since=since, soft_bounces=counted)


def _erase(state: RecipientState, event: OperatorErase) -> RecipientState:
    """An erased address's keyed hash stays suppressed for every cause the address had
    (none: for the erasure itself, as `manual`) until a release names it."""
    for reason in event.reasons or ("manual",):
        state = _activate(state, reason, event)
    return state


def _activate(
    state: RecipientState,
    reason: Reason,
    event: NormalizedEvent,
    scope: str = "",
    streams: tuple[str, ...] = (),
) -> RecipientState:
    """Add the event as evidence for the cause of `reason` about `scope` (an unsubscribe's
    list) and `streams` (the kinds of mail its evidence belongs to: none, every kind)."""
    seen = Counted(event.at, event.seq)
    for index, cause in enumerate(state.causes):
        if cause.reason == reason and cause.scope == scope and cause.streams == streams:
            support = (*cause.support, seen)
            if len(support) > SUPPORT_KEPT:  # the lowest seq is the first a release lifts
                lowest = min(range(1, len(support)), key=lambda i: support[i].seq)
                support = support[:lowest] + support[lowest + 1 :]
            causes = list(state.causes)
            causes[index] = replace(cause, support=support)
            return replace(state, causes=tuple(causes))
    added = Cause(reason, event.at, event.seq, scope, (seen,), streams)
    ranked = sorted((*state.causes, added), key=lambda cause: REASON_RANK.index(cause.reason))
    since = state.since if state.causes else event.at
    return replace(state, causes=tuple(ranked), since=since)


def _deactivate(
    state: RecipientState, reason: Reason, scope: str = "", streams: tuple[str, ...] = ()
) -> RecipientState:
    causes = tuple(
        c
        for c in state.causes
        if not (c.reason == reason and c.scope == scope and c.streams == streams)
    )
    if len(causes) == len(state.causes):
        return state
    return replace(state, causes=causes, since=state.since if causes else None)
