"""The mapper's build: an operator's fact becomes the event the fold reads, every field
carried over — a release's causes and the evidence it saw, an erasure's kept causes, the
actor and the note — and the fold then does what those fields say."""

from __future__ import annotations

from projections.events import (
    Complaint,
    OperatorErase,
    OperatorRelease,
    OperatorSuppress,
    Unsubscribe,
)
from projections.facts import Fact
from projections.fold import replay
from projections.mapping import Mapper
from projections.policy import DEFAULT_POLICY

MAPPER = Mapper(DEFAULT_POLICY)


def operator_fact(raw_kind: str, seq: int, **fields: object) -> Fact:
    return Fact(
        source="operator", raw_kind=raw_kind, recipient="a@example.org", at=seq * 10,
        seq=seq, ord=0, event_id=f"operator:{seq}", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_suppression_carries_its_actor_and_note() -> None:
    event = MAPPER.map_fact(operator_fact("suppress", 1, actor="ops", note="by phone"))
    assert isinstance(event, OperatorSuppress)
    assert (event.actor, event.note) == ("ops", "by phone")


def test_a_release_carries_the_causes_it_lifts_and_the_evidence_it_saw() -> None:
    release = operator_fact("release", 4, actor="ops", note="asked", lifts=("unsubscribe",), seen=2)
    event = MAPPER.map_fact(release)
    assert isinstance(event, OperatorRelease)
    assert (event.actor, event.note, event.lifts, event.seen) == (
        "ops",
        "asked",
        ("unsubscribe",),
        2,
    )
    # folded: the complaint stays (not named); the unsubscribe seen goes; one after `seen`
    # (receipt 3, before the release was recorded) keeps it
    common = {"recipient": "a@example.org", "source": "smtp2go"}
    history = [
        Complaint(at=1, seq=1, raw_kind="spam", **common),
        Unsubscribe(at=2, seq=2, raw_kind="unsubscribe", **common),
        Unsubscribe(at=3, seq=3, raw_kind="unsubscribe", **common),
        event,
    ]
    state = replay("a@example.org", history, DEFAULT_POLICY)
    assert [(c.reason, c.seq) for c in state.causes] == [("complaint", 1), ("unsubscribe", 3)]


def test_an_erasure_carries_its_actor_note_and_kept_causes() -> None:
    fact = operator_fact("erase", 5, actor="dpo", note="DSAR 1", lifts=("complaint", "manual"))
    event = MAPPER.map_fact(fact)
    assert isinstance(event, OperatorErase)
    assert (event.actor, event.note, event.reasons) == ("dpo", "DSAR 1", ("complaint", "manual"))
    state = replay("a@example.org", [event], DEFAULT_POLICY)
    assert [c.reason for c in state.causes] == ["complaint", "manual"]
    bare = MAPPER.map_fact(operator_fact("erase", 6))
    assert isinstance(bare, OperatorErase)
    assert (bare.actor, bare.note, bare.reasons) == ("", "", ())
