"""The fast fold over facts is the reference fold: replay(map(map_fact, facts))."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.facts import Fact
from projections.fold import replay
from projections.mapping import Mapper
from projections.policy import ClassifyRule, Policy

EMAIL = "a@example.org"
RAW_KINDS = ["delivered", "bounce", "spam", "open", "unsubscribe", "resubscribe", "reject", "x"]


@st.composite
def histories(draw: st.DrawFn) -> list[Fact]:
    facts = []
    for ord_ in range(draw(st.integers(0, 25))):
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


@settings(max_examples=300, deadline=None)
@given(facts=histories(), policy=policies)
def test_fold_facts_equals_the_reference_replay(facts: list[Fact], policy: Policy) -> None:
    mapper = Mapper(policy)
    expected = replay(EMAIL, [mapper.map_fact(fact) for fact in facts], policy)
    assert mapper.fold_facts(EMAIL, facts) == expected


@settings(max_examples=200, deadline=None)
@given(facts=histories(), split=st.integers(0, 25), policy=policies)
def test_fold_facts_resumes_from_a_state(facts: list[Fact], split: int, policy: Policy) -> None:
    mapper = Mapper(policy)
    head, tail = facts[:split], facts[split:]
    resumed = mapper.fold_facts(EMAIL, tail, mapper.fold_facts(EMAIL, head))
    assert resumed == mapper.fold_facts(EMAIL, facts)
