"""Streams, as properties: for any history and any policy's streams, each stream's verdict
is what a reference model reads off the history directly; without a stream the verdict
is the strictest of them all; and adding a stream never lifts a global cause."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from projections import operator
from projections.facts import Fact
from projections.mapping import Mapper
from projections.policy import EVERY_STREAM, Policy, Stream
from projections.queries import status_of
from projections.state import REASON_RANK
from projections.streams import scope

NAMES = ("transactional", "newsletter", "digest")
POSTMARK_STREAMS = ("outbound", "broadcast", "other")
KINDS = ("hard", "complaint", "unsubscribe", "resubscribe", "manual")
REASON = {"hard": "hard_bounce", "complaint": "complaint", "unsubscribe": "unsubscribe"}
RAW = {
    "hard": "hard_bounce",
    "complaint": "spam_complaint",
    "unsubscribe": "subscription_change.unsubscribed",
    "resubscribe": "subscription_change.resubscribed",
}
OPTIONAL = [reason for reason in REASON_RANK if reason not in EVERY_STREAM]


@dataclass(frozen=True)
class Happened:
    kind: str
    label: str  # a Postmark message stream, or the stream an operator names ("": none)


@st.composite
def streams(draw: st.DrawFn, names: tuple[str, ...] = NAMES) -> dict[str, Stream]:
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    rules = {}
    for name in chosen:
        blocked = [*EVERY_STREAM, *draw(st.lists(st.sampled_from(OPTIONAL), unique=True))]
        wider = draw(st.lists(st.sampled_from(blocked), unique=True))
        matched = draw(st.lists(st.sampled_from(POSTMARK_STREAMS), unique=True))
        rules[name] = Stream(
            blocked_by=blocked,  # type: ignore[arg-type]
            blocked_by_any_stream=wider,  # type: ignore[arg-type]
            match={"postmark_message_stream": list(matched)} if matched else {},
        )
    return rules


histories = st.lists(
    st.builds(
        Happened,
        st.sampled_from(KINDS),
        st.sampled_from(("", *POSTMARK_STREAMS, *NAMES, "gone")),
    ),
    max_size=12,
)


def facts(history: list[Happened]) -> list[Fact]:
    made = []
    for n, happened in enumerate(history, start=1):
        common: dict[str, Any] = {
            "recipient": "r@example.org",
            "at": 1_000_000 * n,
            "seq": n,
            "ord": 0,
        }
        if happened.kind == "manual":
            labels = ((operator.STREAM_LABEL, happened.label),) if happened.label else ()
            made.append(
                Fact(
                    source=operator.SOURCE,
                    raw_kind="suppress",
                    event_id=f"operator:{n}",
                    actor="ops",
                    note="by hand",
                    labels=labels,
                    **common,
                )
            )
            continue
        label = message_stream(happened)
        made.append(
            Fact(
                source="postmark",
                raw_kind=RAW[happened.kind],
                event_id=f"e{n}",
                bounce_class="hard" if happened.kind == "hard" else None,
                scope=label or None,
                labels=(("message_stream", label),) if label else (),
                **common,
            )
        )
    return made


def message_stream(happened: Happened) -> str:
    """The Postmark message stream a provider event names ("": none)."""
    return happened.label if happened.label in POSTMARK_STREAMS else ""


def evidence_streams(happened: Happened, rules: dict[str, Stream]) -> frozenset[str]:
    """The model's own reading of which streams an event belongs to."""
    if happened.kind == "hard":
        return frozenset()
    if happened.kind == "manual":
        return frozenset({happened.label} & set(rules))
    return frozenset(
        name
        for name, stream in rules.items()
        if message_stream(happened) in stream.match.get("postmark_message_stream", [])  # type: ignore[operator]
    )


def model_blocked(history: list[Happened], rules: dict[str, Stream], name: str) -> bool:
    """Whether the history holds active evidence that blocks stream `name`: an event whose
    reason the stream is blocked by, about every stream, this one, or any stream for a
    reason it takes from any — an unsubscribe only while no later resubscribe answers it
    (same list, same streams)."""
    stream = rules[name]
    for index, happened in enumerate(history):
        if happened.kind == "resubscribe":
            continue
        reason = "manual" if happened.kind == "manual" else REASON[happened.kind]
        own = evidence_streams(happened, rules)
        if happened.kind == "unsubscribe":
            answered = any(
                later.kind == "resubscribe"
                and message_stream(later) == message_stream(happened)
                and evidence_streams(later, rules) == own
                for later in history[index + 1 :]
            )
            if answered:
                continue
        if reason in stream.blocked_by and (
            not own or name in own or reason in stream.blocked_by_any_stream
        ):
            return True
    return False


@given(histories, streams())
def test_each_streams_verdict_is_the_reference_models(
    history: list[Happened], rules: dict[str, Stream]
) -> None:
    policy = Policy(streams=rules)
    state = Mapper(policy).fold_facts("r@example.org", facts(history))
    for name in rules:
        got = status_of(state, scope(policy, name))
        assert got.suppressed == model_blocked(history, rules, name), name
        assert got.stream == name
        assert isinstance(got.other_causes, list)
        assert {c.reason for c in got.causes} | {c.reason for c in got.other_causes} == {
            c.reason for c in state.causes
        }


@given(histories, streams())
def test_without_a_stream_the_verdict_is_the_strictest(
    history: list[Happened], rules: dict[str, Stream]
) -> None:
    policy = Policy(streams=rules)
    state = Mapper(policy).fold_facts("r@example.org", facts(history))
    everything = status_of(state)
    assert everything.suppressed == bool(state.causes)
    for name in rules:
        if status_of(state, scope(policy, name)).suppressed:
            assert everything.suppressed
    # and the same as a policy without streams at all would answer
    plain = Mapper(Policy()).fold_facts("r@example.org", facts(history))
    assert everything.suppressed == plain.suppressed


@given(histories, streams(NAMES[:2]), streams(NAMES[2:]))
def test_adding_a_stream_never_lifts_a_global_cause(
    history: list[Happened], before: dict[str, Stream], added: dict[str, Stream]
) -> None:
    """A stream added to the policy (one whose labels no event carries and no operator
    action names, so no evidence changes stream) changes no other stream's verdict; a
    hard bounce blocks it, and so does every global cause whose reason it is blocked by."""
    history = [Happened(h.kind, "gone" if h.label in added else h.label) for h in history]
    added = {
        name: Stream(blocked_by=s.blocked_by, blocked_by_any_stream=s.blocked_by_any_stream)
        for name, s in added.items()
    }
    old, new = Policy(streams=before), Policy(streams={**before, **added})
    then = Mapper(old).fold_facts("r@example.org", facts(history))
    now = Mapper(new).fold_facts("r@example.org", facts(history))
    for name in before:
        assert status_of(now, scope(new, name)) == status_of(then, scope(old, name))
    for name, stream in added.items():
        verdict = status_of(now, scope(new, name))
        for cause in now.causes:
            if not cause.streams and cause.reason in stream.blocked_by:
                assert verdict.suppressed, (name, cause.reason)
        if any(happened.kind == "hard" for happened in history):
            assert verdict.reason is not None
