"""The pure fold: what each normalized event does to one recipient's suppression state."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace

from projections import DEFAULT_POLICY, Policy, RecipientState, fold, replay
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
from projections.fold import released_reasons
from projections.state import SUPPORT_KEPT

EMAIL = "someone@example.com"
T0 = 1_777_000_000_000_000  # 2026-04-24, microseconds
HOUR = 3_600_000_000
DAY = 24 * HOUR

# The ranking the design asks for, strongest first (written out here, not imported).
RANKING = (
    "complaint",
    "hard_bounce",
    "manual",
    "unsubscribe",
    "provider_suppressed",
    "soft_bounce_threshold",
)


class History:
    """Builds one recipient's events; each new event gets the next ledger seq."""

    def __init__(self) -> None:
        self.seq = 0

    def _common(self, hours: float, seq: int | None) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {
            "recipient": EMAIL,
            "at": T0 + int(hours * HOUR),
            "seq": seq,
            "source": "smtp2go",
            "raw_kind": "test",
        }

    def hard(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Bounce(bounce_class="hard", **self._common(hours, seq))

    def soft(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Bounce(bounce_class="soft", **self._common(hours, seq))

    def delivered(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Delivered(**self._common(hours, seq))

    def complaint(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Complaint(**self._common(hours, seq))

    def unsubscribe(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Unsubscribe(**self._common(hours, seq))

    def provider(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return ProviderSuppressed(**self._common(hours, seq))

    def resubscribe(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Resubscribe(**self._common(hours, seq))

    def deferred(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Deferred(**self._common(hours, seq))

    def ignored(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return Ignored(reason="open is ignored", **self._common(hours, seq))

    def suppress(self, hours: float, seq: int | None = None) -> NormalizedEvent:
        return OperatorSuppress(actor="ops", note="asked by phone", **self._common(hours, seq))

    def release(
        self,
        hours: float,
        seq: int | None = None,
        *,
        lifts: tuple[str, ...] | None = None,
        seen: int | None = None,
    ) -> NormalizedEvent:
        """A release; `lifts` None is one recorded before releases named their causes."""
        return OperatorRelease(
            actor="ops",
            note="fixed mailbox",
            lifts=lifts,  # type: ignore[arg-type]
            seen=seen,
            **self._common(hours, seq),
        )


def counted(state: RecipientState) -> tuple[int, ...]:
    """The event times of the soft bounces that count."""
    return tuple(c.at for c in state.soft_bounces)


def at(hours: float) -> int:
    return T0 + int(hours * HOUR)


def run(events: Sequence[NormalizedEvent], policy: Policy = DEFAULT_POLICY) -> RecipientState:
    return replay(EMAIL, events, policy)


def fold_in_order(events: Sequence[NormalizedEvent], policy: Policy) -> RecipientState:
    state = RecipientState(email=EMAIL)
    for event in events:
        state = fold(state, event, policy)
    return state


@pytest.fixture
def h() -> History:
    return History()


# -- what suppresses --------------------------------------------------------------------------


def test_a_fresh_recipient_is_not_suppressed() -> None:
    state = RecipientState(email=EMAIL)
    assert not state.suppressed
    assert state.reason is None
    assert state.since is None
    assert state.events == 0


def test_a_hard_bounce_suppresses_immediately_with_reason_hard_bounce(h: History) -> None:
    bounce = h.hard(1)
    state = run([bounce])
    assert state.suppressed
    assert state.reason == "hard_bounce"
    assert state.since == bounce.at
    assert [(c.reason, c.at, c.seq) for c in state.causes] == [("hard_bounce", at(1), 1)]


def test_a_complaint_suppresses_with_reason_complaint(h: History) -> None:
    state = run([h.complaint(2)])
    assert state.reason == "complaint"
    assert state.since == at(2)


def test_an_unsubscribe_suppresses_with_reason_unsubscribe(h: History) -> None:
    assert run([h.unsubscribe(2)]).reason == "unsubscribe"


def test_an_operator_suppress_suppresses_with_reason_manual(h: History) -> None:
    state = run([h.suppress(3)])
    assert state.reason == "manual"
    assert state.since == at(3)


@pytest.mark.parametrize("threshold", [1, 2, 3, 4])
def test_soft_bounces_below_the_threshold_do_not_suppress_and_at_it_they_do(
    h: History, threshold: int
) -> None:
    policy = Policy(soft_bounce_threshold=threshold)
    bounces = [h.soft(hour) for hour in range(threshold)]
    below = run(bounces[:-1], policy)
    assert not below.suppressed
    assert len(below.soft_bounces) == threshold - 1
    reached = run(bounces, policy)
    assert reached.suppressed
    assert reached.reason == "soft_bounce_threshold"
    assert reached.since == bounces[-1].at  # suppressed by the bounce that reached it


def test_the_default_threshold_is_three_soft_bounces(h: History) -> None:
    assert not run([h.soft(1), h.soft(2)]).suppressed
    assert run([h.soft(1), h.soft(2), h.soft(3)]).reason == "soft_bounce_threshold"


def test_soft_bounces_beyond_the_threshold_keep_the_original_suppression_time(
    h: History,
) -> None:
    state = run([h.soft(1), h.soft(2), h.soft(3), h.soft(4), h.soft(5)])
    assert state.since == at(3)
    assert state.causes[0].at == at(3)
    assert len(state.soft_bounces) == 5  # all counted: a release keeps the later ones


def test_at_most_a_bounded_number_of_soft_bounces_is_kept(h: History) -> None:
    state = run([h.soft(n) for n in range(SUPPORT_KEPT + 10)])
    assert len(state.soft_bounces) == SUPPORT_KEPT
    assert state.soft_bounces[0].at == at(10)  # the newest by event time


@pytest.mark.parametrize("threshold", [SUPPORT_KEPT, SUPPORT_KEPT + 1, 2 * SUPPORT_KEPT])
def test_a_threshold_above_the_support_kept_still_suppresses(h: History, threshold: int) -> None:
    """The mutation audit's F2: a policy may ask for more soft bounces than a cause keeps
    as support; the count then keeps as many as the threshold needs, so the threshold-th
    bounce suppresses and the one before does not."""
    policy = replace(DEFAULT_POLICY, soft_bounce_threshold=threshold, soft_bounce_window=None)
    events = [h.soft(n) for n in range(threshold)]
    assert not run(events[:-1], policy).suppressed
    state = run(events, policy)
    assert (state.suppressed, state.reason) == (True, "soft_bounce_threshold")
    assert len(state.soft_bounces) == threshold


def test_a_repeated_hard_bounce_keeps_the_first_evidence(h: History) -> None:
    state = run([h.hard(1), h.hard(5)])
    assert state.since == at(1)
    assert [(c.at, c.seq) for c in state.causes] == [(at(1), 1)]


# -- deliveries ---------------------------------------------------------------------------------


def test_a_delivery_resets_the_soft_bounce_count(h: History) -> None:
    state = run([h.soft(1), h.soft(2), h.delivered(3), h.soft(4), h.soft(5)])
    assert not state.suppressed
    assert counted(state) == (at(4), at(5))


def test_a_delivery_heals_a_soft_bounce_threshold_suppression(h: History) -> None:
    state = run([h.soft(1), h.soft(2), h.soft(3), h.delivered(4)])
    assert not state.suppressed
    assert state.since is None
    assert state.soft_bounces == ()


@pytest.mark.parametrize("kind", ["hard", "complaint", "unsubscribe", "suppress"])
def test_a_delivery_does_not_lift_a_hard_bounce_complaint_unsubscribe_or_manual(
    h: History, kind: str
) -> None:
    first = getattr(h, kind)(1)
    before = run([first])
    after = run([first, h.delivered(2)])
    assert after.suppressed
    assert after.causes == before.causes
    assert after.since == at(1)


def test_a_delivery_heals_only_the_soft_cause_of_a_recipient_also_hard_bounced(h: History) -> None:
    policy = Policy(soft_bounce_threshold=1)
    state = run([h.soft(1), h.hard(2), h.delivered(3)], policy)
    assert [c.reason for c in state.causes] == ["hard_bounce"]
    assert state.since == at(1)  # the suppression never broke


def test_when_delivery_does_not_clear_soft_bounces_the_count_is_kept(h: History) -> None:
    policy = Policy(delivery_clears_soft_bounces=False)
    state = run([h.soft(1), h.soft(2), h.delivered(3), h.soft(4)], policy)
    assert state.reason == "soft_bounce_threshold"
    assert counted(state) == (at(1), at(2), at(4))


def test_when_delivery_does_not_clear_soft_bounces_the_suppression_stays(h: History) -> None:
    policy = Policy(soft_bounce_threshold=2, delivery_clears_soft_bounces=False)
    state = run([h.soft(1), h.soft(2), h.delivered(3)], policy)
    assert state.reason == "soft_bounce_threshold"
    assert state.since == at(2)


def test_a_late_delivery_does_not_clear_soft_bounces_that_happened_after_it(h: History) -> None:
    # Arrival order: two soft bounces, then a delivery that happened *before* them but
    # was reported late (a provider retry). History order is event time.
    policy = Policy(soft_bounce_threshold=2)
    soft_1, soft_2, late = h.soft(2), h.soft(3), h.delivered(1)
    assert late.seq > soft_2.seq
    state = replay(EMAIL, [soft_1, soft_2, late], policy)
    assert state.reason == "soft_bounce_threshold"
    assert counted(state) == (at(2), at(3))
    # folding in arrival order would have wrongly healed it: replay is what sorts
    assert not fold_in_order([soft_1, soft_2, late], policy).suppressed


def test_events_at_the_same_time_are_ordered_by_ledger_sequence(h: History) -> None:
    policy = Policy(soft_bounce_threshold=1)
    # same event time: the delivery with the lower seq comes first, the bounce counts
    delivered_first = [h.soft(1, seq=9), h.delivered(1, seq=4)]
    assert run(delivered_first, policy).suppressed
    # the other way round, the delivery heals it
    bounce_first = [h.soft(1, seq=4), h.delivered(1, seq=9)]
    assert not run(bounce_first, policy).suppressed


# -- the window ---------------------------------------------------------------------------------


def test_soft_bounces_within_the_window_count(h: History) -> None:
    policy = Policy(soft_bounce_window="7d")
    state = run([h.soft(0), h.soft(3 * 24), h.soft(6 * 24)], policy)
    assert state.reason == "soft_bounce_threshold"


def test_soft_bounces_older_than_the_window_stop_counting(h: History) -> None:
    policy = Policy(soft_bounce_window="7d")
    state = run([h.soft(0), h.soft(8 * 24), h.soft(9 * 24)], policy)
    assert not state.suppressed
    assert counted(state) == (at(8 * 24), at(9 * 24))


def test_the_window_is_closed_so_two_bounces_exactly_one_window_apart_both_count(
    h: History,
) -> None:
    # [at - window, at]: "within a week of each other" includes exactly 7 days apart
    # (issue 12, item 16: the README said so, the code did not).
    policy = Policy(soft_bounce_window="7d")
    assert run([h.soft(0), h.soft(24), h.soft(7 * 24)], policy).suppressed
    assert not run([h.soft(-0.001), h.soft(24), h.soft(7 * 24)], policy).suppressed


def test_without_a_window_soft_bounces_count_however_far_apart(h: History) -> None:
    state = run([h.soft(0), h.soft(100 * 24), h.soft(200 * 24)])
    assert state.reason == "soft_bounce_threshold"


def test_a_soft_bounce_suppression_outlives_its_window_until_a_delivery(h: History) -> None:
    policy = Policy(soft_bounce_threshold=2, soft_bounce_window="1d")
    state = run([h.soft(0), h.soft(1), h.soft(100)], policy)
    assert state.reason == "soft_bounce_threshold"
    assert state.since == at(1)
    assert counted(state) == (at(100),)
    assert not run([h.soft(0), h.soft(1), h.soft(100), h.delivered(101)], policy).suppressed


# -- reasons, ranking and since ---------------------------------------------------------------

ACTIVATORS = {
    "complaint": "complaint",
    "hard_bounce": "hard",
    "manual": "suppress",
    "unsubscribe": "unsubscribe",
    "provider_suppressed": "provider",
    "soft_bounce_threshold": "soft",
}


def test_the_strongest_active_reason_is_reported_whatever_the_order() -> None:
    policy = Policy(soft_bounce_threshold=1)
    for order in itertools.permutations(RANKING):
        history = History()
        events = [getattr(history, ACTIVATORS[reason])(hour) for hour, reason in enumerate(order)]
        state = run(events, policy)
        assert state.reason == "complaint", order
        assert [c.reason for c in state.causes] == list(RANKING), order
        assert state.since == at(0), order


@pytest.mark.parametrize(("stronger", "weaker"), list(itertools.combinations(RANKING, 2)))
def test_of_two_reasons_the_higher_ranked_is_reported(stronger: str, weaker: str) -> None:
    policy = Policy(soft_bounce_threshold=1)
    for first, second in ((stronger, weaker), (weaker, stronger)):
        history = History()
        events = [getattr(history, ACTIVATORS[first])(1), getattr(history, ACTIVATORS[second])(2)]
        state = run(events, policy)
        assert state.reason == stronger
        assert state.since == at(1)


def test_since_is_the_start_of_the_unbroken_suppression(h: History) -> None:
    state = run([h.unsubscribe(1), h.hard(2), h.resubscribe(3)])
    assert state.reason == "hard_bounce"
    assert state.since == at(1)  # suppressed without a break since the unsubscribe


def test_since_restarts_after_the_suppression_was_broken(h: History) -> None:
    policy = Policy(soft_bounce_threshold=1)
    state = run([h.soft(1), h.delivered(2), h.hard(3)], policy)
    assert state.since == at(3)
    state = run([h.unsubscribe(4), h.resubscribe(5), h.complaint(6)], policy)
    assert state.since == at(6)


# -- lifting ------------------------------------------------------------------------------------


def test_a_resubscribe_lifts_an_unsubscribe(h: History) -> None:
    state = run([h.unsubscribe(1), h.resubscribe(2)])
    assert not state.suppressed
    assert state.since is None


@pytest.mark.parametrize("kind", ["hard", "complaint", "suppress", "soft"])
def test_a_resubscribe_lifts_nothing_but_an_unsubscribe(h: History, kind: str) -> None:
    policy = Policy(soft_bounce_threshold=1)
    first = getattr(h, kind)(1)
    state = run([first, h.unsubscribe(2), h.resubscribe(3)], policy)
    assert state.causes == run([first], policy).causes
    assert state.since == at(1)


def test_a_resubscribe_without_an_unsubscribe_changes_nothing_but_the_count(h: History) -> None:
    resubscribe = h.resubscribe(1)
    assert run([resubscribe]) == replace(
        RecipientState(email=EMAIL), position=resubscribe.position, events=1
    )


def test_an_unsubscribe_after_a_resubscribe_suppresses_again(h: History) -> None:
    state = run([h.unsubscribe(1), h.resubscribe(2), h.unsubscribe(3)])
    assert state.reason == "unsubscribe"
    assert state.since == at(3)


def test_a_release_that_names_every_reason_lifts_every_reason(h: History) -> None:
    policy = Policy(soft_bounce_threshold=1)
    events = [h.complaint(1), h.hard(2), h.suppress(3), h.unsubscribe(4), h.soft(5)]
    state = run([*events, h.release(6, lifts=RANKING)], policy)
    assert not state.suppressed
    assert state.causes == ()
    assert state.since is None
    assert state.soft_bounces == ()


def test_a_release_lifts_only_the_causes_it_names(h: History) -> None:
    """Issue 18, finding N2: a bounce clean-up lifts bounces, never an opt-out."""
    policy = Policy(soft_bounce_threshold=1)
    events = [h.complaint(1), h.hard(2), h.suppress(3), h.unsubscribe(4), h.soft(5)]
    bounces = run([*events, h.release(6, lifts=("hard_bounce", "soft_bounce_threshold"))], policy)
    assert [c.reason for c in bounces.causes] == ["complaint", "manual", "unsubscribe"]
    assert bounces.soft_bounces == ()
    assert bounces.since == at(1)
    also = ("hard_bounce", "soft_bounce_threshold", "unsubscribe")
    assert [c.reason for c in run([*events, h.release(6, lifts=also)], policy).causes] == [
        "complaint",
        "manual",
    ]


def test_a_release_written_before_releases_named_causes_lifts_what_every_view_showed(
    h: History,
) -> None:
    """Issue 18, finding N2: a release recorded by older code lifts the bounce-class
    causes and the one reason the views showed then (the strongest), not the opt-outs
    hidden behind it."""
    policy = Policy(soft_bounce_threshold=1)
    hidden = run([h.unsubscribe(1), h.hard(2), h.soft(3), h.release(4)], policy)
    assert [c.reason for c in hidden.causes] == ["unsubscribe"]
    shown = run([h.unsubscribe(5), h.suppress(6), h.release(7)], policy)
    assert [c.reason for c in shown.causes] == ["unsubscribe"]  # manual was shown: lifted


def test_a_release_lifts_no_evidence_newer_than_what_the_operator_saw(h: History) -> None:
    """Issue 18, finding N2: `seen` bounds what a release lifts, even for evidence that
    was in the ledger before the release itself."""
    first, second = h.hard(1), h.hard(2)
    state = run([first, second, h.release(3, lifts=("hard_bounce",), seen=first.seq)])
    assert state.reason == "hard_bounce"
    assert [c.seq for c in state.causes[0].support] == [second.seq]
    assert state.since == at(2)


def test_a_release_that_lifts_nothing_leaves_the_state_as_it_was(h: History) -> None:
    complaint = h.complaint(1)
    before = run([complaint])
    release = h.release(2, lifts=("hard_bounce", "soft_bounce_threshold"))
    after = fold(before, release, DEFAULT_POLICY)
    assert after == replace(before, position=release.position, events=2)


def test_a_hard_bounce_after_a_release_suppresses_again(h: History) -> None:
    state = run([h.hard(1), h.release(2), h.hard(3)])
    assert state.reason == "hard_bounce"
    assert state.since == at(3)
    assert state.causes[0].seq == 3


def test_a_release_resets_the_soft_bounce_count(h: History) -> None:
    state = run([h.soft(1), h.soft(2), h.release(3), h.soft(4)])
    assert not state.suppressed
    assert counted(state) == (at(4),)


def test_a_release_before_the_suppression_in_event_time_does_not_lift_it(h: History) -> None:
    # released at hour 1 but recorded after the hard bounce of hour 2
    bounce, release = h.hard(2), h.release(1)
    assert run([bounce, release]).reason == "hard_bounce"


# -- events without effect ----------------------------------------------------------------------


def _states(h: History) -> list[RecipientState]:
    policy = Policy(soft_bounce_threshold=2)
    return [
        RecipientState(email=EMAIL),
        run([h.soft(1)], policy),
        run([h.soft(1), h.soft(2), h.unsubscribe(3)], policy),
        run([h.hard(1), h.release(2)], policy),
    ]


@pytest.mark.parametrize("kind", ["deferred", "ignored"])
def test_deferred_and_ignored_change_nothing_but_position_and_count(h: History, kind: str) -> None:
    policy = Policy(soft_bounce_threshold=2)
    for before in _states(h):
        event = getattr(h, kind)(10)
        after = fold(before, event, policy)
        assert after == replace(before, position=(at(10), event.seq, 0), events=before.events + 1)


def test_every_event_is_counted_and_the_last_position_kept(h: History) -> None:
    events = [h.delivered(3), h.ignored(1), h.soft(2), h.deferred(4)]
    state = run(events)
    assert state.events == 4
    assert state.position == (at(4), 4, 0)


def test_fold_returns_a_new_state_and_leaves_the_old_one_as_it_was(h: History) -> None:
    before = RecipientState(email=EMAIL)
    after = fold(before, h.hard(1), DEFAULT_POLICY)
    assert before == RecipientState(email=EMAIL)
    assert after.suppressed


def test_replay_continues_from_a_given_state(h: History) -> None:
    policy = Policy(soft_bounce_threshold=2)
    events = [h.soft(1), h.delivered(2), h.soft(3), h.unsubscribe(4), h.soft(5)]
    for cut in range(len(events) + 1):
        partial = replay(EMAIL, events[:cut], policy)
        assert replay(EMAIL, events[cut:], policy, partial) == run(events, policy)


# -- what a release saw (issue 12, item 1) ------------------------------------------------------


def test_a_release_does_not_lift_evidence_that_reached_the_ledger_after_it(h: History) -> None:
    # hard bounce at T-1h, release at T, then a complaint dated T-2min arrives (a retry)
    hard, release = h.hard(-1), h.release(0)
    late = h.complaint(-2 / 60)
    assert late.seq > release.seq
    assert late.at < release.at
    state = run([hard, release, late])
    assert [(c.reason, c.at, c.seq) for c in state.causes] == [("complaint", late.at, late.seq)]
    assert state.since == late.at


def test_a_late_hard_bounce_of_the_same_reason_outlives_the_release(h: History) -> None:
    first, release = h.hard(1), h.release(3)
    late = h.hard(2)  # dated before the release, received after it
    state = run([first, release, late])
    assert [(c.reason, c.seq) for c in state.causes] == [("hard_bounce", late.seq)]


def test_late_soft_bounces_count_after_a_release_only_when_they_reach_the_threshold(
    h: History,
) -> None:
    policy = Policy(soft_bounce_threshold=2)
    before = [h.soft(1), h.soft(2)]
    release = h.release(10)
    one_late = h.soft(3)
    state = run([*before, release, one_late], policy)
    assert not state.suppressed
    assert [c.seq for c in state.soft_bounces] == [one_late.seq]
    two_late = h.soft(4)
    state = run([*before, release, one_late, two_late], policy)
    assert state.reason == "soft_bounce_threshold"
    assert state.causes[0].seq == two_late.seq


# -- scoped unsubscribes and provider suppressions (issue 12, items 2 and 12) ------------------


def _scoped(event: NormalizedEvent, source: str, scope: str | None) -> NormalizedEvent:
    return replace(event, source=source, scope=scope)


def test_a_resubscribe_lifts_only_the_unsubscribe_of_its_source_and_list(h: History) -> None:
    optout = _scoped(h.unsubscribe(1), "sendgrid", None)
    other_source = _scoped(h.resubscribe(2), "postmark", "outbound")
    other_list = _scoped(h.resubscribe(3), "sendgrid", "42")
    state = run([optout, other_source, other_list])
    assert [(c.reason, c.scope) for c in state.causes] == [("unsubscribe", "sendgrid:")]
    answered = _scoped(h.resubscribe(4), "sendgrid", None)
    assert not run([optout, other_source, other_list, answered]).suppressed


def test_two_lists_unsubscribed_need_two_resubscribes(h: History) -> None:
    weekly = _scoped(h.unsubscribe(1), "ses", "weekly")
    news = _scoped(h.unsubscribe(2), "ses", "news")
    back_weekly = _scoped(h.resubscribe(3), "ses", "weekly")
    state = run([weekly, news, back_weekly])
    assert [(c.reason, c.scope, c.seq) for c in state.causes] == [
        ("unsubscribe", "ses:news", news.seq)
    ]
    assert state.since == at(1)  # never mailable in between


def test_a_provider_suppression_is_lifted_by_a_release_only(h: History) -> None:
    listed = h.provider(1)
    state = run([listed, h.delivered(2), h.resubscribe(3)])
    assert state.reason == "provider_suppressed"
    assert not run([listed, h.delivered(2), h.release(4)]).suppressed


# -- the bounded support of a cause -------------------------------------------------------------


def test_a_cause_keeps_every_supporting_event_up_to_the_bound(h: History) -> None:
    state = run([h.hard(n) for n in range(SUPPORT_KEPT)])
    assert [c.seq for c in state.causes[0].support] == list(range(1, SUPPORT_KEPT + 1))


def test_beyond_the_bound_a_cause_keeps_the_evidence_shown_and_drops_the_lowest_receipt_after_it(
    h: History,
) -> None:
    """The first support is the evidence shown (the cause's `at` and `seq`) and stays; of
    the others, the one a release would lift first (the lowest seq) makes room."""
    state = run([h.hard(n) for n in range(SUPPORT_KEPT + 1)])
    (cause,) = state.causes
    assert (cause.at, cause.seq) == (at(0), 1)
    assert [c.seq for c in cause.support] == [1, *range(3, SUPPORT_KEPT + 2)]


def test_beyond_the_bound_the_lowest_receipt_goes_even_when_it_is_not_the_oldest_event(
    h: History,
) -> None:
    # history order is event time: the second event carries a late receipt, and the
    # lowest receipt after the first sits in the middle of the support
    events = [h.hard(0, seq=100), h.hard(1, seq=900)]
    events += [h.hard(2 + n, seq=200 + n) for n in range(SUPPORT_KEPT - 1)]
    state = run(events)
    seqs = [c.seq for c in state.causes[0].support]
    assert len(seqs) == SUPPORT_KEPT
    assert seqs[:2] == [100, 900]  # the evidence shown and the late receipt stay
    assert 200 not in seqs  # the lowest receipt after the first made room
    assert seqs[2:] == list(range(201, 200 + SUPPORT_KEPT - 1))


# -- the soft-bounce threshold after a release --------------------------------------------------


def test_late_soft_bounces_after_a_release_suppress_as_if_counted_afresh(h: History) -> None:
    """The cause a release leaves for late soft bounces is the one those bounces would
    have built alone: the bounce that reached the threshold and those after it."""
    policy = Policy(soft_bounce_threshold=2)
    before = [h.soft(1), h.soft(2)]
    release = h.release(10, lifts=("soft_bounce_threshold",))
    late = [h.soft(3), h.soft(4), h.soft(5)]
    state = run([*before, release, *late], policy)
    alone = run(late, policy)
    assert state.causes == alone.causes
    (cause,) = state.causes
    assert (cause.reason, cause.scope) == ("soft_bounce_threshold", "")
    assert [c.seq for c in cause.support] == [late[1].seq, late[2].seq]
    assert state.since == late[1].at


def test_a_soft_bounce_suppression_left_by_a_release_heals_with_a_delivery(h: History) -> None:
    policy = Policy(soft_bounce_threshold=2)
    history = [h.soft(1), h.soft(2), h.release(10), h.soft(3), h.soft(4)]
    assert run(history, policy).reason == "soft_bounce_threshold"
    healed = run([*history, h.delivered(11)], policy)
    assert not healed.suppressed
    assert healed.since is None


def test_a_soft_bounce_after_a_release_adds_to_the_cause_the_release_left(h: History) -> None:
    policy = Policy(soft_bounce_threshold=2)
    history = [h.soft(1), h.soft(2), h.release(10), h.soft(3), h.soft(4)]
    more = h.soft(5)
    state = run([*history, more], policy)
    (cause,) = state.causes
    assert [c.seq for c in cause.support] == [history[-1].seq, more.seq]


# -- what an old-style release lifts -------------------------------------------------------------


def test_an_old_style_release_of_an_unsuppressed_address_lifts_only_the_bounce_class() -> None:
    release = History().release(1)
    assert isinstance(release, OperatorRelease)
    lifts = released_reasons(RecipientState(email=EMAIL), release)
    assert lifts == frozenset({"hard_bounce", "soft_bounce_threshold"})


def test_an_old_style_release_lifts_the_bounce_class_and_the_reason_shown(h: History) -> None:
    state = run([h.unsubscribe(1), h.suppress(2)])
    release = h.release(3)
    assert isinstance(release, OperatorRelease)
    assert released_reasons(state, release) == frozenset(
        {"hard_bounce", "soft_bounce_threshold", "manual"}
    )


def test_a_release_naming_its_causes_lifts_exactly_those(h: History) -> None:
    state = run([h.complaint(1)])
    release = h.release(2, lifts=("unsubscribe",))
    assert isinstance(release, OperatorRelease)
    assert released_reasons(state, release) == frozenset({"unsubscribe"})


# -- shared bounces and unknown events ----------------------------------------------------------


@pytest.mark.parametrize(("shared", "counted_as_shared"), [(0, 0), (1, 0), (2, 1), (5, 1)])
def test_a_soft_bounce_is_counted_as_shared_only_when_it_names_several_recipients(
    h: History, shared: int, counted_as_shared: int
) -> None:
    """A bounce naming one recipient names its own (as facts and the mapping read it):
    only one naming several makes the projector weigh it against later deliveries."""
    bounce = replace(h.soft(1), shared=shared)
    state = run([bounce])
    assert state.shared_bounces == counted_as_shared
    assert [c.at for c in state.soft_bounces] == [at(1)]


class Opened(msgspec.Struct, frozen=True, kw_only=True):
    """An event of a kind the fold was never taught (a tracking open, say)."""

    recipient: str
    at: int
    seq: int

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.at, self.seq, 0)


def test_an_event_of_a_kind_the_fold_does_not_know_is_refused_by_name() -> None:
    opened = Opened(recipient=EMAIL, at=at(1), seq=1)
    with pytest.raises(AssertionError, match=r"unreachable, but got: Opened\("):
        fold(RecipientState(email=EMAIL), opened, DEFAULT_POLICY)  # type: ignore[arg-type]
