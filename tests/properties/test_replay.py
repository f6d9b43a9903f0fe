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
    ProviderSuppressed,
    Resubscribe,
    Unsubscribe,
)
from projections.state import SUPPORT_KEPT
from tests.conftest import examples

EMAIL = "someone@example.com"
HOUR = 3_600_000_000
RANKING = (
    "complaint", "hard_bounce", "manual", "unsubscribe", "provider_suppressed",
    "soft_bounce_threshold",
)  # fmt: skip
KINDS = (
    "hard", "soft", "soft", "soft", "delivered", "delivered", "complaint", "unsubscribe",
    "unsubscribe", "resubscribe", "resubscribe", "provider", "deferred", "ignored", "suppress",
    "release", "release",
)  # fmt: skip
BOUNCES = ("hard_bounce", "soft_bounce_threshold")
ALL = RANKING
# What releases name: nothing more than the bounce class, some opt-outs too, everything,
# or nothing at all (recorded before releases named their causes).
LIFTS = (
    BOUNCES,
    (*BOUNCES, "complaint"),
    (*BOUNCES, "unsubscribe", "manual"),
    (*BOUNCES, "provider_suppressed"),
    ALL,
    None,
)
# Where an (un)subscribe comes from: a resubscribe answers only the same source and list.
SCOPES = (("smtp2go", None), ("ses", "newsletter"), ("ses", "weekly"), ("postmark", "broadcast"))

SETTINGS = settings(max_examples=examples(400), deadline=None)


def make(
    kind: str,
    at: int,
    seq: int,
    where: tuple[str, str | None] = SCOPES[0],
    *,
    lifts: tuple[str, ...] | None = ALL,
    seen: int | None = None,
) -> NormalizedEvent:
    """One event; a release names `lifts` (None: one recorded before releases named
    their causes) and, with `seen`, the newest evidence the operator saw."""
    source, scope = where
    common: dict[str, Any] = {
        "recipient": EMAIL, "at": at, "seq": seq, "source": source, "raw_kind": kind,
        "scope": scope,
    }  # fmt: skip
    if kind == "hard":
        return Bounce(bounce_class="hard", **common)
    if kind == "soft":
        return Bounce(bounce_class="soft", **common)
    if kind == "suppress":
        return OperatorSuppress(actor="ops", note="n", **common)
    if kind == "release":
        return OperatorRelease(actor="ops", note="n", lifts=lifts, seen=seen, **common)  # type: ignore[arg-type]
    if kind == "ignored":
        return Ignored(reason="r", **common)
    simple: dict[str, type[NormalizedEvent]] = {
        "delivered": Delivered,
        "complaint": Complaint,
        "unsubscribe": Unsubscribe,
        "resubscribe": Resubscribe,
        "provider": ProviderSuppressed,
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
    wheres = [draw(st.sampled_from(SCOPES)) for _ in kinds]
    size = len(kinds)
    lifts = draw(st.lists(st.sampled_from(LIFTS), min_size=size, max_size=size))
    seen_by = st.one_of(st.none(), st.integers(0, size))
    seens = draw(st.lists(seen_by, min_size=size, max_size=size))
    return [
        make(kind, at, seq, where, lifts=lift, seen=seen)
        for kind, at, seq, where, lift, seen in zip(
            kinds, times, seqs, wheres, lifts, seens, strict=True
        )
    ]


POLICIES = st.builds(
    Policy,
    soft_bounce_threshold=st.integers(1, 4),
    soft_bounce_window=st.sampled_from([None, "6h", "12h", "1d", "3d"]),
    delivery_clears_soft_bounces=st.booleans(),
)


# -- the reference model ------------------------------------------------------------------------
#
# Read off the sorted history directly, prefix by prefix *from scratch*, rather than carried
# forward as the fold carries its state:
# - a release lifts evidence of the reasons it names (one recorded before releases named
#   them: the bounce-class reasons and the strongest reason active just before it) that
#   precedes it in history and that the operator saw: a seq at most its `seen` and lower
#   than its own; evidence with a higher seq survives it, whatever its event time;
# - a resubscribe lifts the unsubscribes before it with its own source and scope;
# - soft bounces count from the last delivery (when deliveries clear them), less those a
#   release lifted, within the window of the newest soft bounce.

_CLASSES: dict[str, type[NormalizedEvent]] = {
    "delivered": Delivered,
    "complaint": Complaint,
    "unsubscribe": Unsubscribe,
    "resubscribe": Resubscribe,
    "provider": ProviderSuppressed,
    "suppress": OperatorSuppress,
    "release": OperatorRelease,
}
_EVIDENCE = {
    "complaint": "complaint", "hard_bounce": "hard", "manual": "suppress",
    "provider_suppressed": "provider",
}  # fmt: skip


def _is(event: NormalizedEvent, kind: str) -> bool:
    if kind in ("hard", "soft"):
        return isinstance(event, Bounce) and event.bounce_class == kind
    return isinstance(event, _CLASSES[kind])


def _where(event: NormalizedEvent) -> str:
    return f"{event.source}:{event.scope or ''}"


class Reference:
    """The reference reading of one sorted history under one policy."""

    def __init__(
        self,
        history: list[NormalizedEvent],
        policy: Policy,
        lifts: dict[int, set[str]] | None = None,
    ) -> None:
        self.history = history
        self.policy = policy
        # what the release at each index lifts: the same for every prefix that holds it
        self._lifts: dict[int, set[str]] = {} if lifts is None else lifts

    def lifts(self, index: int) -> set[str]:
        """The reasons the release at history[index] lifts."""
        if index not in self._lifts:
            release = self.history[index]
            assert isinstance(release, OperatorRelease)
            if release.lifts is not None:
                self._lifts[index] = set(release.lifts)
            else:
                before = Reference(self.history[:index], self.policy, self._lifts).active()
                shown = min((reason for reason, _ in before), key=RANKING.index, default=None)
                self._lifts[index] = {*BOUNCES, *([shown] if shown else [])}
        return self._lifts[index]

    def released(self, index: int, until: int, reason: str) -> bool:
        """Whether a release in history[index + 1 : until + 1] lifted history[index] as
        evidence of `reason`."""
        seq = self.history[index].seq
        for later in range(index + 1, until + 1):
            release = self.history[later]
            if not isinstance(release, OperatorRelease) or reason not in self.lifts(later):
                continue
            saw = release.seq - 1 if release.seen is None else min(release.seen, release.seq - 1)
            if seq <= saw:
                return True
        return False

    def counted(self, until: int) -> list[int]:
        """Indexes of the soft bounces that count right after history[until]."""
        history, policy = self.history, self.policy
        start = 0
        for index in range(until + 1):
            if policy.delivery_clears_soft_bounces and _is(history[index], "delivered"):
                start = index + 1
        softs = [
            i
            for i in range(start, until + 1)
            if _is(history[i], "soft") and not self.released(i, until, "soft_bounce_threshold")
        ]
        newest = max(
            (history[i].at for i in range(until + 1) if _is(history[i], "soft")), default=0
        )
        window = policy.window_us
        if window is not None:
            softs = [i for i in softs if history[i].at >= newest - window]
        return softs[-max(SUPPORT_KEPT, policy.soft_bounce_threshold) :]

    def active(self) -> set[tuple[str, str]]:
        """The active (reason, scope) pairs after the whole history."""
        history, threshold = self.history, self.policy.soft_bounce_threshold
        last = len(history) - 1
        out: set[tuple[str, str]] = set()
        for reason, kind in _EVIDENCE.items():
            if any(
                _is(e, kind) and not self.released(i, last, reason) for i, e in enumerate(history)
            ):
                out.add((reason, ""))
        for i, event in enumerate(history):
            if not _is(event, "unsubscribe") or self.released(i, last, "unsubscribe"):
                continue
            answered = any(
                _is(later, "resubscribe") and _where(later) == _where(event)
                for later in history[i:]
            )
            if not answered:
                out.add(("unsubscribe", _where(event)))
        soft = False
        for index, event in enumerate(history):
            if _is(event, "soft"):
                soft = soft or len(self.counted(index)) >= threshold
            elif _is(event, "release") and "soft_bounce_threshold" in self.lifts(index):
                soft = len(self.counted(index)) >= threshold
            elif _is(event, "delivered") and self.policy.delivery_clears_soft_bounces:
                soft = False
        if soft:
            out.add(("soft_bounce_threshold", ""))
        return out


def active(history: list[NormalizedEvent], policy: Policy) -> set[tuple[str, str]]:
    """The active (reason, scope) pairs after a sorted history."""
    return Reference(history, policy).active()


def check_against_reference(
    state: RecipientState, events: list[NormalizedEvent], policy: Policy
) -> None:
    """The fold's state says what the reference says; every cause points at evidence."""
    history = sorted(events, key=lambda e: (e.at, e.seq, e.ord))
    assert state.events == len(history)
    if not history:
        assert state == RecipientState(email=EMAIL)
        return
    assert state.position == (history[-1].at, history[-1].seq, history[-1].ord)
    reference = Reference(history, policy)
    assert {(c.reason, c.scope) for c in state.causes} == reference.active()
    counted = reference.counted(len(history) - 1)
    assert [(c.at, c.seq) for c in state.soft_bounces] == [
        (history[i].at, history[i].seq) for i in counted
    ]
    assert state.suppressed == (state.since is not None)
    for cause in state.causes:
        assert state.since is not None
        assert state.since <= cause.at
        (evidence,) = [e for e in history if (e.at, e.seq) == (cause.at, cause.seq)]
        if cause.reason == "soft_bounce_threshold":
            assert _is(evidence, "soft")
        elif cause.reason == "unsubscribe":
            assert _is(evidence, "unsubscribe")
            assert _where(evidence) == cause.scope
        else:
            assert _is(evidence, _EVIDENCE[cause.reason])
    assert [c.reason for c in state.causes] == sorted(
        (c.reason for c in state.causes), key=RANKING.index
    )


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(events=histories(), policy=POLICIES)
def test_replay_agrees_with_the_reference_model(
    events: list[NormalizedEvent], policy: Policy
) -> None:
    check_against_reference(replay(EMAIL, events, policy), events, policy)


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
        keys = [(cause.reason, cause.scope) for cause in state.causes]
        assert len(keys) == len(set(keys))  # one cause per reason and list
        reasons = [reason for reason, _ in keys]
        assert reasons == sorted(reasons, key=RANKING.index)  # strongest first
        assert state.suppressed == (state.since is not None)
        assert all(state.since is not None and state.since <= c.at for c in state.causes)
        for cause in state.causes:  # the evidence shown is the earliest support
            assert (cause.at, cause.seq) == (cause.support[0].at, cause.support[0].seq)
            assert list(cause.support) == sorted(cause.support, key=lambda c: (c.at, c.seq))
        assert len(state.soft_bounces) <= max(SUPPORT_KEPT, policy.soft_bounce_threshold)
        spots = [(c.at, c.seq) for c in state.soft_bounces]
        assert spots == sorted(spots)
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


# -- a release lifts only what the ledger held (issue 12, item 1) --------------------------------


@SETTINGS
@given(
    events=histories(),
    policy=POLICIES,
    release_hours=st.integers(0, 80),
    late_hours=st.integers(0, 80),
    kind=st.sampled_from(["hard", "complaint", "provider", "suppress"]),
)
def test_evidence_reaching_the_ledger_after_a_release_suppresses_whatever_its_event_time(
    events: list[NormalizedEvent],
    policy: Policy,
    release_hours: int,
    late_hours: int,
    kind: str,
) -> None:
    release = make("release", release_hours * HOUR, len(events) + 1)
    late = make(kind, late_hours * HOUR, len(events) + 2)  # dated before or after the release
    state = replay(EMAIL, [*events, release, late], policy)
    reason = next(r for r, k in _EVIDENCE.items() if k == kind)
    assert reason in {c.reason for c in state.causes}


@SETTINGS
@given(events=histories(), policy=POLICIES)
def test_a_release_dated_after_everything_in_the_ledger_lifts_all_of_it(
    events: list[NormalizedEvent], policy: Policy
) -> None:
    last = max((e.at for e in events), default=0)
    state = replay(EMAIL, [*events, make("release", last + 1, len(events) + 1)], policy)
    assert not state.suppressed
    assert state.soft_bounces == ()


# -- a resubscribe answers only its own unsubscribe (issue 12, item 2) ---------------------------


@SETTINGS
@given(
    events=histories(),
    policy=POLICIES,
    where=st.sampled_from(SCOPES),
    others=st.lists(st.tuples(st.sampled_from(SCOPES), st.integers(0, 80)), min_size=1, max_size=5),
)
def test_a_resubscribe_never_lifts_an_unsubscribe_from_another_source_or_list(
    events: list[NormalizedEvent],
    policy: Policy,
    where: tuple[str, str | None],
    others: list[tuple[tuple[str, str | None], int]],
) -> None:
    no_releases = [
        e
        for e in events
        if not _is(e, "release") and not (_is(e, "resubscribe") and e.source == where[0])
    ]
    seq = len(events) + 1
    optout = make("unsubscribe", 0, seq, where)
    resubscribes = [
        make("resubscribe", hours * HOUR, seq + 1 + n, other)
        for n, (other, hours) in enumerate(others)
        if other != where
    ]
    state = replay(EMAIL, [*no_releases, optout, *resubscribes], policy)
    assert ("unsubscribe", _where(optout)) in {(c.reason, c.scope) for c in state.causes}
    after_all = max((e.at for e in no_releases), default=0) + 1
    answered = replay(
        EMAIL, [*no_releases, optout, make("resubscribe", after_all, seq + 99, where)], policy
    )
    assert ("unsubscribe", _where(optout)) not in {(c.reason, c.scope) for c in answered.causes}


# -- a release lifts only what the operator saw and named (issue 18, N2 and N9) ------------------


@SETTINGS
@given(events=histories(), policy=POLICIES, named=st.sampled_from(LIFTS[:-1]))
def test_a_release_never_lifts_a_cause_it_does_not_name(
    events: list[NormalizedEvent], policy: Policy, named: tuple[str, ...]
) -> None:
    before = replay(EMAIL, events, policy)
    last = max((e.at for e in events), default=0)
    release = make("release", last + 1, len(events) + 1, lifts=named)
    after = replay(EMAIL, [*events, release], policy)
    kept = {(c.reason, c.scope) for c in before.causes if c.reason not in named}
    assert {(c.reason, c.scope) for c in after.causes} == kept


@SETTINGS
@given(
    events=histories(),
    policy=POLICIES,
    named=st.sampled_from(LIFTS[:-1]),
    data=st.data(),
)
def test_a_release_never_lifts_evidence_newer_than_what_the_operator_saw(
    events: list[NormalizedEvent], policy: Policy, named: tuple[str, ...], data: st.DataObject
) -> None:
    seen = data.draw(st.integers(0, len(events)))
    last = max((e.at for e in events), default=0)
    release = make("release", last + 1, len(events) + 1, lifts=named, seen=seen)
    after = replay(EMAIL, [*events, release], policy)
    for cause in replay(EMAIL, events, policy).causes:
        # evidence the operator did not see keeps its cause (the soft-bounce threshold is
        # counted afresh from the soft bounces after `seen` instead)
        newer = [c for c in cause.support if c.seq > seen]
        if cause.reason in named and cause.reason != "soft_bounce_threshold" and newer:
            (kept,) = [
                c for c in after.causes if (c.reason, c.scope) == (cause.reason, cause.scope)
            ]
            assert [c.seq for c in kept.support] == [c.seq for c in newer]


WINDOWS = (None, "1s", "1h", "1d", "7d")  # "1s": the shortest a policy may state


@st.composite
def soft_runs(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A threshold from 1 to past twice the support kept, and that many soft bounces give
    or take two (hours apart: mostly none, sometimes a day or three)."""
    threshold = draw(st.integers(1, 2 * SUPPORT_KEPT + 2))
    count = draw(st.integers(max(0, threshold - 2), threshold + 2))
    gaps = draw(st.lists(st.sampled_from((0, 0, 0, 1, 24, 72)), min_size=count, max_size=count))
    return threshold, gaps


@SETTINGS
@given(run=soft_runs(), window=st.sampled_from(WINDOWS))
def test_soft_bounces_suppress_once_threshold_of_them_fall_within_one_window(
    run: tuple[int, list[int]], window: str | None
) -> None:
    """Long runs of soft bounces, thresholds on both sides of the support a cause keeps
    (SUPPORT_KEPT) and windows down to the shortest: suppressed exactly when, at some
    bounce, `threshold` bounces lie within the window ending there (both ends included),
    and the count kept is the bounces within the window of the last one, capped at what
    the threshold needs."""
    threshold, gaps = run
    policy = Policy(soft_bounce_threshold=threshold, soft_bounce_window=window)
    times = [sum(gaps[: n + 1]) * HOUR for n in range(len(gaps))]
    events = [make("soft", at, seq) for seq, at in enumerate(times, start=1)]
    span = policy.window_us

    def within(end: int) -> int:
        return sum(1 for t in times[: end + 1] if span is None or t >= times[end] - span)

    expected = any(within(n) >= threshold for n in range(len(times)))
    state = replay(EMAIL, events, policy)
    assert state.suppressed == expected
    assert state.reason == ("soft_bounce_threshold" if expected else None)
    if times:
        assert len(state.soft_bounces) == min(within(len(times) - 1), max(SUPPORT_KEPT, threshold))
