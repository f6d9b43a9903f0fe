"""The fast fold over facts is the reference fold: replay(mapper.history(facts)); and
shared bounces (Resend: one event naming every `to` address) are weighed against the
deliveries of their message, whatever the order the facts arrive in (issue 18, N7)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.facts import Fact
from projections.fold import replay
from projections.mapping import Mapper
from projections.policy import ClassifyRule, Policy
from tests.conftest import examples

EMAIL = "a@example.org"
RAW_KINDS = ["delivered", "bounce", "spam", "open", "unsubscribe", "resubscribe", "reject", "x"]
# Resend events naming two recipients (shared) or one, about one of three messages.
RESEND_KINDS = ["bounced", "bounced", "delivered", "complained"]
MESSAGES = ["m1", "m2", "m3"]


def _resend(draw: st.DrawFn, ord_: int) -> Fact:
    return Fact(
        source="resend",
        raw_kind=draw(st.sampled_from(RESEND_KINDS)),
        recipient=EMAIL,
        at=draw(st.integers(0, 10)) * 3_600_000_000,
        seq=draw(st.integers(1, 5)),
        ord=ord_,
        event_id=str(ord_),
        message_id=draw(st.sampled_from(MESSAGES)),
        bounce_class=draw(st.sampled_from([None, "hard"])),
        shared=draw(st.sampled_from([0, 2, 2])),
    )


@st.composite
def histories(draw: st.DrawFn) -> list[Fact]:
    facts = []
    for ord_ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 3)) == 0:
            facts.append(_resend(draw, ord_))
            continue
        operator = draw(st.booleans()) and draw(st.integers(0, 5)) == 0
        facts.append(
            Fact(
                source="operator" if operator else "smtp2go",
                raw_kind=draw(st.sampled_from(["suppress", "release"]))
                if operator
                else draw(st.sampled_from(RAW_KINDS)),
                recipient=EMAIL,
                at=draw(st.integers(0, 10)) * 3_600_000_000,
                seq=draw(st.integers(1, 5)),
                ord=ord_,
                event_id=str(ord_),
                diagnostic=draw(st.sampled_from([None, "550 5.7.1 blocked", "452 full"])),
                bounce_class=draw(st.sampled_from([None, "hard", "soft"])),
                actor="ops" if operator else None,
                note="why" if operator else None,
            )
        )
    return sorted(facts, key=lambda fact: fact.position)


policies = st.builds(
    Policy,
    soft_bounce_threshold=st.integers(1, 4),
    soft_bounce_window=st.sampled_from([None, "5h", "1d"]),
    delivery_clears_soft_bounces=st.booleans(),
    providers=st.sampled_from(
        [{}, {"smtp2go": {"unsubscribe": "unsubscribe", "reject": "hard_bounce"}}]
    ),
    classify=st.sampled_from([[], [ClassifyRule(pattern=r"5\.7\.1", bounce="ignore")]]),
)


@settings(max_examples=examples(300), deadline=None)
@given(facts=histories(), policy=policies)
def test_fold_facts_equals_the_reference_replay(facts: list[Fact], policy: Policy) -> None:
    mapper = Mapper(policy)
    expected = replay(EMAIL, mapper.history(facts), policy)
    assert mapper.fold_facts(EMAIL, facts) == expected


@settings(max_examples=examples(200), deadline=None)
@given(facts=histories(), split=st.integers(0, 25), policy=policies)
def test_fold_facts_resumes_from_a_state(facts: list[Fact], split: int, policy: Policy) -> None:
    """Folding forward from a state equals folding the whole history whenever the
    projector folds forward (views.plan: unless Mapper.needs_history says otherwise)."""
    mapper = Mapper(policy)
    head, tail = facts[:split], facts[split:]
    state = mapper.fold_facts(EMAIL, head)
    if not mapper.needs_history(state, tail):
        assert mapper.fold_facts(EMAIL, tail, state) == mapper.fold_facts(EMAIL, facts)


@settings(max_examples=examples(300), deadline=None)
@given(facts=histories(), policy=policies)
def test_a_shared_bounce_never_counts_where_its_message_was_delivered(
    facts: list[Fact], policy: Policy
) -> None:
    mapper = Mapper(policy)
    delivered = {f.message_id for f in facts if f.source == "resend" and f.raw_kind == "delivered"}
    state = mapper.fold_facts(EMAIL, facts)
    shared = {
        (f.at, f.seq)
        for f in facts
        if f.shared and f.raw_kind == "bounced" and f.message_id in delivered
    }
    counted = {(c.at, c.seq) for c in state.soft_bounces}
    supported = {(c.at, c.seq) for cause in state.causes for c in cause.support}
    # another fact at the same place (same time and receipt) may count: only those alone
    alone = {spot for spot in shared if sum((f.at, f.seq) == spot for f in facts) == 1}
    assert not (alone & (counted | supported))
