"""The mapper's edges that no provider test reaches: its defaults for fields a fact may
lack, an event source it does not know, a policy line that repeats the default, a shared
bounce the policy maps to a hard or soft bounce, and the exact words of what it ignores.
(Each was a surviving mutant of projections/mapping.py: .ci/mutation.)"""

from __future__ import annotations

import pytest

from projections.errors import PolicyInvalid
from projections.events import Ignored, OperatorRelease, OperatorSuppress
from projections.facts import Fact
from projections.mapping import Mapper, check_event_names
from projections.policy import ClassifyRule, Policy

PLAIN = Mapper(Policy())


def fact(source: str = "smtp2go", raw_kind: str = "bounce", **fields: object) -> Fact:
    defaults: dict[str, object] = {
        "recipient": "a@example.org", "at": 10, "seq": 1, "ord": 0, "event_id": "e1",
    }  # fmt: skip
    return Fact(source=source, raw_kind=raw_kind, **{**defaults, **fields})  # type: ignore[arg-type]


def test_an_operator_fact_without_actor_or_note_builds_empty_ones() -> None:
    suppress = PLAIN.build(fact("operator", "suppress"), "operator_suppress", None)
    assert isinstance(suppress, OperatorSuppress)
    assert (suppress.actor, suppress.note) == ("", "")
    release = PLAIN.build(fact("operator", "release"), "operator_release", None)
    assert isinstance(release, OperatorRelease)
    assert (release.actor, release.note) == ("", "")
    ignored = PLAIN.build(fact(), "ignored", None)
    assert isinstance(ignored, Ignored)
    assert ignored.reason == ""


def test_a_source_the_mapper_does_not_know_is_ignored_by_name() -> None:
    """A fact of a provider this code no longer has (an index written by another version)
    is read as ignored, not a crash that stops the fold."""
    assert PLAIN.decide(fact("gone-provider", "bounce")) == (
        "ignored",
        "unknown gone-provider event 'bounce'",
    )


def test_a_policy_line_repeating_the_default_changes_nothing() -> None:
    """`bounce = "bounce"` is SMTP2GO's default: a sender-side refusal stays ignored, as
    without the line (an explicit mapping that differs would win over that default)."""
    refused = fact(refusal="sender", bounce_class="hard", diagnostic="550 5.7.1 blocked")
    repeated = Mapper(Policy(providers={"smtp2go": {"bounce": "bounce"}}))
    assert PLAIN.decide(refused)[0] == "ignored"
    assert repeated.decide(refused) == PLAIN.decide(refused)
    explicit = Mapper(Policy(providers={"smtp2go": {"bounce": "hard_bounce"}}))
    assert explicit.decide(refused) == ("bounce", "hard")


@pytest.mark.parametrize("mapped", ["hard_bounce", "soft_bounce"])
def test_a_shared_bounce_the_policy_maps_to_a_hard_or_soft_bounce_is_shared(
    mapped: str,
) -> None:
    mapper = Mapper(Policy(providers={"smtp2go": {"bounce": mapped}}))  # type: ignore[dict-item]
    shared = fact(shared=3, message_id="m1", bounce_class="hard")
    delivered = fact(raw_kind="delivered", message_id="m1", seq=2, event_id="e2", at=5)
    assert mapper.shared_bounce(shared)
    assert mapper.delivered([delivered, shared]) == frozenset({"m1"})
    assert mapper.decide(shared, frozenset({"m1"})) == (
        "ignored",
        "names 3 recipients and not which one, and the same message was delivered to this "
        "address: not counted against it",
    )


def test_a_shared_bounce_a_rule_ignores_says_the_rule() -> None:
    """A [[classify]] rule that ignores a bounce names itself, also for a bounce naming
    several recipients (not the words for a shared event)."""
    mapper = Mapper(Policy(classify=[ClassifyRule(pattern="greylisted", bounce="ignore")]))
    shared = fact(shared=3, diagnostic="451 greylisted, try later")
    assert mapper.decide(shared) == ("ignored", "classified by policy: greylisted")


def test_a_refused_event_name_is_reported_against_the_policy_by_default() -> None:
    with pytest.raises(PolicyInvalid, match=r"^policy: \[providers.smtp2go\] has no event 'bogus'"):
        check_event_names(Policy(providers={"smtp2go": {"bogus": "bounce"}}))
