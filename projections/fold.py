"""The pure fold: (state, event, policy) -> state. No I/O, no clock, no randomness.

Events reach the fold in history order (event time, then ledger order): a late event
makes the projector refold the recipient from the start. Two rules reach across that
order, because they are about what the ledger held, not about when things happened:

- an operator release lifts only the evidence that was in the ledger when it was made
  (receipts with a lower sequence number); evidence that reaches the ledger afterwards
  suppresses again, whatever its event time;
- a resubscribe lifts only the unsubscribe it answers: the same source and scope.
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
    OperatorRelease,
    OperatorSuppress,
    ProviderSuppressed,
    Resubscribe,
    Unsubscribe,
)
from projections.policy import Policy
from projections.state import REASON_RANK, Cause, Counted, Reason, RecipientState


def fold(state: RecipientState, event: NormalizedEvent, policy: Policy) -> RecipientState:
    """Apply one event, which must sort after every event already folded into `state`."""
    match event:
        case Bounce(bounce_class="hard"):
            new = _activate(state, "hard_bounce", event)
        case Bounce():
            new = _soft_bounce(state, event, policy)
        case Complaint():
            new = _activate(state, "complaint", event)
        case Unsubscribe():
            new = _activate(state, "unsubscribe", event, unsubscribe_scope(event))
        case Resubscribe():
            new = _deactivate(state, "unsubscribe", unsubscribe_scope(event))
        case ProviderSuppressed():
            new = _activate(state, "provider_suppressed", event)
        case Delivered():
            # A delivery proves the mailbox works *at that time*: soft bounces before it
            # stop counting, and a soft-bounce suppression heals. Hard bounces and
            # complaints stay: one good delivery does not undo them.
            new = state
            if policy.delivery_clears_soft_bounces:
                new = _deactivate(replace(state, soft_bounces=()), "soft_bounce_threshold")
        case OperatorSuppress():
            new = _activate(state, "manual", event)
        case OperatorRelease():
            new = _release(state, event, policy)
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
    event-time order, so one that falls out of the window never counts again. Without
    a window only how many there are matters — also after a release, which keeps those
    with a higher sequence number — so the `threshold` newest receipts are kept.
    """
    threshold, window = policy.soft_bounce_threshold, policy.window_us
    counted = state.soft_bounces
    if window is not None:
        counted = tuple(c for c in counted if c.at >= event.at - window)
    counted = (*counted, Counted(event.at, event.seq))
    if window is None and len(counted) > threshold:
        newest = sorted(range(len(counted)), key=lambda i: counted[i].seq)[-threshold:]
        counted = tuple(counted[i] for i in sorted(newest))
    new = replace(state, soft_bounces=counted)
    if len(counted) >= threshold:
        new = _activate(new, "soft_bounce_threshold", event)
    return new


def _release(state: RecipientState, event: OperatorRelease, policy: Policy) -> RecipientState:
    """Lift every cause whose evidence was all in the ledger before the release; a cause
    with later evidence stays, pointing at that evidence. The soft bounces that count
    are those that reached the ledger after the release."""
    counted = tuple(c for c in state.soft_bounces if c.seq > event.seq)
    causes = [
        replace(cause, at=cause.last_at, seq=cause.last_seq)
        for cause in state.causes
        if cause.last_seq > event.seq and cause.reason != "soft_bounce_threshold"
    ]
    if len(counted) >= policy.soft_bounce_threshold:
        last = max(counted, key=lambda c: (c.at, c.seq))
        causes.append(Cause("soft_bounce_threshold", last.at, last.seq, "", last.at, last.seq))
    causes.sort(key=lambda cause: REASON_RANK.index(cause.reason))
    since = min(cause.at for cause in causes) if causes else None
    return replace(state, causes=tuple(causes), since=since, soft_bounces=counted)


def _activate(
    state: RecipientState, reason: Reason, event: NormalizedEvent, scope: str = ""
) -> RecipientState:
    for index, cause in enumerate(state.causes):
        if cause.reason == reason and cause.scope == scope:
            if event.seq <= cause.last_seq:
                return state
            newer = replace(cause, last_at=event.at, last_seq=event.seq)
            causes = (*state.causes[:index], newer, *state.causes[index + 1 :])
            return replace(state, causes=causes)
    added = Cause(reason, event.at, event.seq, scope, event.at, event.seq)
    ranked = sorted((*state.causes, added), key=lambda cause: REASON_RANK.index(cause.reason))
    since = state.since if state.causes else event.at
    return replace(state, causes=tuple(ranked), since=since)


def _deactivate(state: RecipientState, reason: Reason, scope: str = "") -> RecipientState:
    causes = tuple(c for c in state.causes if not (c.reason == reason and c.scope == scope))
    if len(causes) == len(state.causes):
        return state
    return replace(state, causes=causes, since=state.since if causes else None)
