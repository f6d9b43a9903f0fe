"""The pure fold: (state, event, policy) -> state. No I/O, no clock, no randomness."""

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
    Resubscribe,
    Unsubscribe,
)
from projections.policy import Policy
from projections.state import REASON_RANK, Cause, Reason, RecipientState


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
            new = _activate(state, "unsubscribe", event)
        case Resubscribe():
            new = _deactivate(state, "unsubscribe")
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
            new = replace(state, causes=(), since=None, soft_bounces=())
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


def _soft_bounce(state: RecipientState, event: Bounce, policy: Policy) -> RecipientState:
    times = state.soft_bounces
    window = policy.window_us
    if window is not None:
        times = tuple(t for t in times if t > event.at - window)
    times = (*times, event.at)[-policy.soft_bounce_threshold :]
    new = replace(state, soft_bounces=times)
    if len(times) >= policy.soft_bounce_threshold:
        new = _activate(new, "soft_bounce_threshold", event)
    return new


def _activate(state: RecipientState, reason: Reason, event: NormalizedEvent) -> RecipientState:
    if any(cause.reason == reason for cause in state.causes):
        return state
    causes = sorted(
        (*state.causes, Cause(reason, event.at, event.seq)),
        key=lambda cause: REASON_RANK.index(cause.reason),
    )
    since = state.since if state.causes else event.at
    return replace(state, causes=tuple(causes), since=since)


def _deactivate(state: RecipientState, reason: Reason) -> RecipientState:
    causes = tuple(cause for cause in state.causes if cause.reason != reason)
    if len(causes) == len(state.causes):
        return state
    return replace(state, causes=causes, since=state.since if causes else None)
