"""Pure properties of `replay` (no database), against an independent reference model.

The reference reads the rules of design.md directly off a recipient's sorted history —
"which reasons are active after this prefix?" — instead of carrying state forward event
by event as the fold does, so the two agreeing on random histories is real evidence.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections import Policy, RecipientState, fold, replay
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
from projections.state import Cause

EMAIL = "someone@example.com"
HOUR = 3_600_000_000
RANKING = ("complaint", "hard_bounce", "manual", "unsubscribe", "soft_bounce_threshold")
KINDS = (
    "hard", "soft", "soft", "soft", "delivered", "delivered", "complaint", "unsubscribe",
    "resubscribe", "deferred", "ignored", "suppress", "release",
)  # fmt: skip

SETTINGS = settings(max_examples=400, deadline=None)


def make(kind: str, at: int, seq: int) -> NormalizedEvent:
    common: dict[str, Any] = {
        "recipient": EMAIL, "at": at, "seq": seq, "source": "smtp2go", "raw_kind": kind,
    }  # fmt: skip
    if kind == "hard":
        return Bounce(bounce_class="hard", **common)
    if kind == "soft":
        return Bounce(bounce_class="soft", **common)
    if kind == "suppress":
        return OperatorSuppress(actor="ops", note="n", **common)
    if kind == "release":
        return OperatorRelease(actor="ops", note="n", **common)
    if kind == "ignored":
        return Ignored(reason="r", **common)
    simple: dict[str, type[Delivered | Complaint | Unsubscribe | Resubscribe | Deferred]] = {
        "delivered": Delivered,
        "complaint": Complaint,
        "unsubscribe": Unsubscribe,
        "resubscribe": Resubscribe,
        "deferred": Deferred,
    }
    return simple[kind](**common)


@st.composite
def histories(draw: st.DrawFn, max_size: int = 14) -> list[NormalizedEvent]:
    """A recipient's events in arrival order: times on a coarse grid (ties are common),
    ledger sequence numbers unique but unrelated to time (late arrivals are common)."""
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=max_size))
    times = [draw(st.integers(0, 12)) * 6 * HOUR for _ in kinds]
    seqs = draw(st.permutations(range(1, len(kinds) + 1)))
    return [make(kind, at, seq) for kind, at, seq in zip(kinds, times, seqs, strict=True)]


POLICIES = st.builds(
    Policy,
    soft_bounce_threshold=st.integers(1, 4),
    soft_bounce_window=st.sampled_from([None, "6h", "12h", "1d", "3d"]),
    delivery_clears_soft_bounces=st.booleans(),
)


# -- the reference model ------------------------------------------------------------------------


def _is(event: NormalizedEvent, kind: str) -> bool:
    if kind in ("hard", "soft"):
        return isinstance(event, Bounce) and event.bounce_class == kind
    classes = {
        "delivered": Delivered,
        "complaint": Complaint,
        "unsubscribe": Unsubscribe,
        "resubscribe": Resubscribe,
        "suppress": OperatorSuppress,
        "release": OperatorRelease,
    }
    return isinstance(event, classes[kind])


def _after_last(events: list[NormalizedEvent], *kinds: str) -> list[NormalizedEvent]:
    """The events after the last one of any of `kinds` (all of them if there is none)."""
    cut = max((i for i, e in enumerate(events) if any(_is(e, k) for k in kinds)), default=-1)
    return events[cut + 1 :]


def _first(events: list[NormalizedEvent], kind: str) -> NormalizedEvent | None:
    return next((e for e in events if _is(e, kind)), None)


def _soft_bounce_resets(policy: Policy) -> tuple[str, ...]:
    return ("release", "delivered") if policy.delivery_clears_soft_bounces else ("release",)


def active(history: list[NormalizedEvent], policy: Policy) -> dict[str, NormalizedEvent]:
    """The active reasons after a sorted history, each with the event that set it."""
    released = _after_last(history, "release")  # a release lifts everything before it
    out: dict[str, NormalizedEvent | None] = {
        "complaint": _first(released, "complaint"),
        "hard_bounce": _first(released, "hard"),
        "manual": _first(released, "suppress"),
        "unsubscribe": _first(_after_last(released, "resubscribe"), "unsubscribe"),
    }
    # soft bounces count from the last reset; the first one at which `threshold` of them
    # fall within the window ending at it suppresses until the next reset
    window = policy.window_us
    softs = [e for e in _after_last(history, *_soft_bounce_resets(policy)) if _is(e, "soft")]
    for index, bounce in enumerate(softs):
        counted = [s for s in softs[: index + 1] if window is None or s.at > bounce.at - window]
        if len(counted) >= policy.soft_bounce_threshold:
            out["soft_bounce_threshold"] = bounce
            break
    return {reason: event for reason, event in out.items() if event is not None}


def reference(events: list[NormalizedEvent], policy: Policy) -> RecipientState:
    history = sorted(events, key=lambda e: (e.at, e.seq, e.ord))
    if not history:
        return RecipientState(email=EMAIL)
    now = active(history, policy)
    since = None
    if now:  # the start of the unbroken run of suppressed prefixes that reaches the end
        start = len(history) - 1
        while start > 0 and active(history[:start], policy):
            start -= 1
        since = history[start].at
    softs = [e for e in _after_last(history, *_soft_bounce_resets(policy)) if _is(e, "soft")]
    window = policy.window_us
    counted = [s.at for s in softs if window is None or s.at > softs[-1].at - window][
        -policy.soft_bounce_threshold :
    ]
    return RecipientState(
        email=EMAIL,
        causes=tuple(
            Cause(reason, now[reason].at, now[reason].seq)  # type: ignore[arg-type]
            for reason in RANKING
            if reason in now
        ),
        since=since,
        soft_bounces=tuple(counted),
        position=(history[-1].at, history[-1].seq, history[-1].ord),
        events=len(history),
    )


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(events=histories(), policy=POLICIES)
def test_replay_agrees_with_the_reference_model(
    events: list[NormalizedEvent], policy: Policy
) -> None:
    assert replay(EMAIL, events, policy) == reference(events, policy)


@SETTINGS
@given(events=histories(), policy=POLICIES, data=st.data())
def test_replay_does_not_depend_on_the_order_events_are_given_in(
    events: list[NormalizedEvent], policy: Policy, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    assert replay(EMAIL, shuffled, policy) == replay(EMAIL, events, policy)


@SETTINGS
@given(events=histories(), policy=POLICIES, data=st.data())
def test_replay_can_resume_from_any_point_of_the_history(
    events: list[NormalizedEvent], policy: Policy, data: st.DataObject
) -> None:
    ordered = sorted(events, key=lambda e: e.position)
    cut = data.draw(st.integers(0, len(ordered)))
    partial = replay(EMAIL, ordered[:cut], policy)
    assert replay(EMAIL, ordered[cut:], policy, partial) == replay(EMAIL, events, policy)


@SETTINGS
@given(events=histories(), policy=POLICIES)
def test_the_state_is_internally_consistent_after_every_event(
    events: list[NormalizedEvent], policy: Policy
) -> None:
    state = RecipientState(email=EMAIL)
    for count, event in enumerate(sorted(events, key=lambda e: e.position), start=1):
        state = fold(state, event, policy)
        reasons = [cause.reason for cause in state.causes]
        assert reasons == sorted(set(reasons), key=RANKING.index)  # unique, strongest first
        assert state.suppressed == (state.since is not None)
        assert all(state.since is not None and state.since <= c.at for c in state.causes)
        assert len(state.soft_bounces) <= policy.soft_bounce_threshold
        assert list(state.soft_bounces) == sorted(state.soft_bounces)
        assert state.events == count
        assert state.position == event.position


@SETTINGS
@given(events=histories(), policy=POLICIES, hours=st.integers(0, 80))
def test_a_hard_bounce_or_complaint_after_the_last_release_always_suppresses(
    events: list[NormalizedEvent], policy: Policy, hours: int
) -> None:
    last = max((e.at for e in events if isinstance(e, OperatorRelease)), default=-1)
    at = max(last + 1, hours * HOUR)
    for kind in ("hard", "complaint"):
        state = replay(EMAIL, [*events, make(kind, at, 10_000)], policy)
        assert state.reason in ("complaint", "hard_bounce")


@SETTINGS
@given(events=histories(), policy=POLICIES, kind=st.sampled_from(["deferred", "ignored"]))
def test_deferred_and_ignored_events_never_change_a_verdict(
    events: list[NormalizedEvent], policy: Policy, kind: str
) -> None:
    base = replay(EMAIL, events, policy)
    noisy = replay(EMAIL, [*events, make(kind, 6 * HOUR, 10_000)], policy)
    assert (noisy.causes, noisy.since, noisy.soft_bounces) == (
        base.causes,
        base.since,
        base.soft_bounces,
    )
    assert noisy.events == base.events + 1
