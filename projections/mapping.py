"""map: a fact becomes a normalized event under the policy.

The provider modules say what an event *is* (facts); this module says what it *means*
under the policy: mapping overrides, classification rules on the diagnostic,
exclusions, sender-side refusals, events naming several recipients, and the
unknown-class-counts-as-soft default. Operator actions are never re-read by the policy:
a rebuild under any policy keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from msgspec.structs import replace

from ledger import Receipt
from projections import operator
from projections.errors import PolicyInvalid
from projections.events import (
    Bounce,
    BounceClass,
    Complaint,
    Deferred,
    Delivered,
    Ignored,
    NormalizedEvent,
    OperatorErase,
    OperatorRelease,
    OperatorSuppress,
    ProviderSuppressed,
    Resubscribe,
    Unsubscribe,
)
from projections.facts import Fact, derive
from projections.fold import fold
from projections.policy import Kind, Policy, load_policy
from projections.providers import PROVIDERS
from projections.providers.common import NO_MAILBOX, SENDER
from projections.recipients import to_micros
from projections.state import RecipientState
from projections.streams import Streams, matches

KNOWN_SOURCES = frozenset(PROVIDERS)

_SIMPLE: dict[
    str, type[Delivered | Complaint | Unsubscribe | Resubscribe | ProviderSuppressed | Deferred]
] = {
    "delivered": Delivered,
    "complaint": Complaint,
    "unsubscribe": Unsubscribe,
    "resubscribe": Resubscribe,
    "provider_suppressed": ProviderSuppressed,
    "deferred": Deferred,
}
_OPERATOR = {
    "suppress": "operator_suppress",
    "release": "operator_release",
    "erase": "operator_erase",
}
# Events naming several recipients that still act for each of them: an opt-out must
# not be lost because the provider did not say which recipient pressed the button.
_SHARED_ACTS = frozenset({"complaint", "unsubscribe", "deferred"})


def check_event_names(policy: Policy, origin: str = "policy") -> Policy:
    """Refuse a `[providers.NAME]` override whose event the provider does not send, and a
    stream's match naming a label its provider does not read (a misspelt name would
    otherwise do nothing, silently)."""
    for stream_name, stream in policy.streams.items():
        try:
            matches(stream)
        except ValueError as exc:
            raise PolicyInvalid(f"{origin}: [streams.{stream_name}.match] {exc}") from exc
    for name, table in policy.providers.items():
        provider = PROVIDERS[name]
        for event in table:
            if provider.canonical_kind(event) not in provider.DEFAULT_MAPPING:
                known = ", ".join(sorted(provider.DEFAULT_MAPPING))
                raise PolicyInvalid(
                    f"{origin}: [providers.{name}] has no event {event!r} (known: {known})"
                )
    return policy


def read_policy(path: str | Path | None) -> Policy:
    """The policy file at `path` (built-in defaults for None), fully checked."""
    return check_event_names(load_policy(path, known_sources=KNOWN_SOURCES), str(path))


class Placed(msgspec.Struct, frozen=True):
    """A normalized event with its de-duplication key (16 bytes)."""

    key: bytes
    event: NormalizedEvent


class Mapper:
    """Maps facts to normalized events under one policy (compiled once)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = check_event_names(policy)
        self._mappings = {
            name: {
                **provider.DEFAULT_MAPPING,
                **{
                    provider.canonical_kind(k): v for k, v in policy.providers.get(name, {}).items()
                },
            }
            for name, provider in PROVIDERS.items()
        }
        self._rules = [
            (
                re.compile(rule.pattern, re.IGNORECASE),
                rule.bounce,
                rule.source,
                rule.note or rule.pattern,
            )
            for rule in policy.classify
        ]
        self._exclusions = [
            (ex.source, to_micros(ex.start), to_micros(ex.end), frozenset(ex.kinds), ex.note)
            for ex in policy.exclude
        ]
        # Raw kinds the policy maps otherwise than the default mapping does: its mapping
        # is explicit and wins over the sender-side default, as a matching [[classify]]
        # rule does (a line that repeats the default changes nothing).
        self._overridden = frozenset(
            (name, kind)
            for name, table in policy.providers.items()
            for kind, mapped in (
                (PROVIDERS[name].canonical_kind(event), mapped) for event, mapped in table.items()
            )
            if PROVIDERS[name].DEFAULT_MAPPING.get(kind) != mapped
        )
        self._sender_side_soft = policy.sender_side_bounces == "soft"
        self.streams = Streams(policy)

    def placed(self, receipt: Receipt) -> list[Placed]:
        """Every event in a receipt under this policy (derive, then map), with its key."""
        return [Placed(keyed.key, self.map_fact(keyed.fact)) for keyed in derive(receipt)]

    def delivers(self, fact: Fact) -> bool:
        """Whether the fact is a delivery of a message it names (shared or not)."""
        mapped = self._mappings.get(fact.source, {}).get(fact.raw_kind)
        return mapped == "delivered" and fact.message_id is not None

    def shared_bounce(self, fact: Fact) -> bool:
        """Whether the fact is a bounce naming several recipients and not which one."""
        mapped = self._mappings.get(fact.source, {}).get(fact.raw_kind)
        return fact.shared > 1 and mapped in ("bounce", "hard_bounce", "soft_bounce")

    def delivered(self, facts: Iterable[Fact]) -> frozenset[str]:
        """The messages a recipient's facts say were delivered to it (what a shared
        bounce of the same message is weighed against); none unless some fact is a
        shared bounce."""
        facts = list(facts)
        if not any(self.shared_bounce(fact) for fact in facts):
            return frozenset()
        return frozenset(str(fact.message_id) for fact in facts if self.delivers(fact))

    def decide(self, fact: Fact, delivered: frozenset[str] = frozenset()) -> tuple[str, str | None]:
        """What the policy makes of a fact, without building the event: its kind tag, and
        the bounce class (for `bounce`) or the reason (for `ignored`). `delivered` holds
        the messages the recipient's history says were delivered to it (`delivered`)."""
        if fact.source == operator.SOURCE:
            return _OPERATOR[fact.raw_kind], None
        mapped: Kind | None = self._mappings.get(fact.source, {}).get(fact.raw_kind)
        if mapped is None:
            return "ignored", f"unknown {fact.source} event {fact.raw_kind!r}"
        if mapped == "ignore":
            return "ignored", f"{fact.source} {fact.raw_kind!r} is ignored by the mapping"
        kind: str = mapped
        detail: str | None = None
        classified = False
        if mapped in ("bounce", "hard_bounce", "soft_bounce"):
            kind, detail, classified = self._bounce(mapped, fact)
            if kind == "ignored":
                return kind, detail
        excluded = self._excluded(fact, kind)
        if excluded is not None:
            return "ignored", excluded
        if (
            kind == "bounce"
            and fact.refusal == SENDER
            and not classified
            and (fact.source, fact.raw_kind) not in self._overridden
        ):
            # A refusal of the sender or the message (policy, reputation, blocklist)
            # says nothing about the address: in a reputation incident every recipient
            # at one mailbox provider would otherwise be suppressed.
            if not self._sender_side_soft:
                return "ignored", (
                    "sender-side refusal: the sender or the message was refused, not the "
                    'address (policy: sender_side_bounces = "ignore")'
                )
            detail = "soft"
        if fact.shared > 1:
            # The event names several recipients and not which one it is about. A
            # complaint or unsubscribe suppresses every listed address (the complainer
            # must not be mailed again; the others can be released with the evidence
            # shown); a bounce counts as soft for each (never hard: a hard bounce must
            # not suppress the addresses that did not bounce); nothing else acts on
            # anyone's behalf — no delivery heals, no resubscribe lifts an opt-out.
            if kind == "bounce":
                if fact.message_id is not None and fact.message_id in delivered:
                    return "ignored", (
                        f"names {fact.shared} recipients and not which one, and the same "
                        "message was delivered to this address: not counted against it"
                    )
                return "bounce", "soft"
            if kind not in _SHARED_ACTS:
                return "ignored", (
                    f"names {fact.shared} recipients and not which one: "
                    f"not applied as {kind} to any of them"
                )
        return kind, detail

    def _excluded(self, fact: Fact, kind: str) -> str | None:
        """Why an exclusion window ignores this event, or None.

        A bounce saying the mailbox does not exist is the recipient's fact, never an
        incident's: it is `unknown_mailbox`, which a window names only explicitly. Facts
        carry it as `refusal == "no_mailbox"` (the provider's own field, such as SES
        `NoEmail`, else the code 5.1.1 / 5.1.10 in the diagnostic text).
        """
        if not self._exclusions or fact.source == operator.SOURCE:
            return None
        named = "unknown_mailbox" if kind == "bounce" and fact.refusal == NO_MAILBOX else kind
        for ex_source, start, end, kinds, note in self._exclusions:
            if ex_source == fact.source and start <= fact.at < end and named in kinds:
                return f"excluded by policy{': ' + note if note else ''}"
        return None

    def _bounce(self, kind: Kind, fact: Fact) -> tuple[str, str | None, bool]:
        """The bounce's class (or `ignored` and why), and whether a [[classify]] rule
        of the policy decided it."""
        cls: BounceClass
        if kind == "hard_bounce":
            cls = "hard"
        elif kind == "soft_bounce" or fact.bounce_class != "hard":
            cls = "soft"  # unknown or missing classification counts as soft
        else:
            cls = "hard"
        for pattern, verdict, rule_source, why in self._rules:
            if rule_source not in (None, fact.source) or not fact.diagnostic:
                continue
            if pattern.search(fact.diagnostic):
                if verdict == "ignore":
                    return "ignored", f"classified by policy: {why}", True
                return "bounce", verdict, True
        return "bounce", cls, False

    def map_fact(self, fact: Fact, delivered: frozenset[str] = frozenset()) -> NormalizedEvent:
        """One fact about one recipient, read under the policy (`delivered`: see decide)."""
        return self.build(fact, *self.decide(fact, delivered))

    def history(self, facts: list[Fact]) -> list[NormalizedEvent]:
        """A recipient's whole history of facts, each read under the policy and weighed
        against the others (a shared bounce against the deliveries of its message)."""
        delivered = self.delivered(facts)
        return [self.map_fact(fact, delivered) for fact in facts]

    def build(self, fact: Fact, kind: str, detail: str | None) -> NormalizedEvent:
        """The normalized event for a fact and what the policy decided about it."""
        common: dict[str, Any] = {
            "recipient": fact.recipient,
            "at": fact.at,
            "seq": fact.seq,
            "ord": fact.ord,
            "source": fact.source,
            "raw_kind": fact.raw_kind,
            "event_id": fact.event_id,
            "message_id": fact.message_id,
            "diagnostic": fact.diagnostic,
            "scope": fact.scope,
            "flags": fact.flags,
            "shared": fact.shared,
            "streams": self.streams.of(fact.source, fact.labels) if fact.labels else (),
        }
        if kind == "bounce":
            return Bounce(bounce_class="hard" if detail == "hard" else "soft", **common)
        if kind == "ignored":
            return Ignored(reason=detail or "", **common)
        if kind == "operator_suppress":
            return OperatorSuppress(actor=fact.actor or "", note=fact.note or "", **common)
        if kind == "operator_erase":
            return OperatorErase(
                actor=fact.actor or "", note=fact.note or "", reasons=fact.lifts or (), **common
            )
        if kind == "operator_release":
            return OperatorRelease(
                actor=fact.actor or "",
                note=fact.note or "",
                lifts=fact.lifts,
                seen=fact.seen,
                **common,
            )
        return _SIMPLE[kind](**common)

    def fold_facts(
        self, email: str, facts: Iterable[Fact], state: RecipientState | None = None
    ) -> RecipientState:
        """Fold facts that are in history order into a recipient's state under the policy.

        The same result as `replay(email, self.history(facts), policy, state)` (a
        property test holds it to that), but faster: a fact that can change nothing but
        the state's position — an ignored or deferred event, a delivery with no soft
        bounces to clear — is counted instead of built and folded.

        A shared bounce is weighed against the deliveries among `facts`: resuming from a
        `state`, the facts must hold the whole history whenever one of them is a shared
        bounce, or a delivery while the state holds shared bounces (`needs_history`).
        """
        policy = self.policy
        clears = policy.delivery_clears_soft_bounces
        state = state or RecipientState(email=email)
        facts = list(facts)
        delivered = self.delivered(facts)
        quiet, last = 0, None
        for fact in facts:
            kind, detail = self.decide(fact, delivered)
            if _quiet(kind, state, clears):
                quiet, last = quiet + 1, fact
                continue
            if last is not None:
                state = replace(state, position=last.position, events=state.events + quiet)
                quiet, last = 0, None
            state = fold(state, self.build(fact, kind, detail), policy)
        if last is not None:
            state = replace(state, position=last.position, events=state.events + quiet)
        return state

    def needs_history(self, state: RecipientState, facts: list[Fact]) -> bool:
        """Whether folding new `facts` forward from `state` could weigh a shared bounce
        against a delivery the state does not show: a new shared bounce (its message may
        have been delivered before), or a new delivery while the state holds shared
        bounces (it may take one back). The recipient is then refolded from its whole
        history."""
        if any(self.shared_bounce(fact) for fact in facts):
            return True
        return bool(state.shared_bounces) and any(self.delivers(fact) for fact in facts)


def _quiet(kind: str, state: RecipientState, clears: bool) -> bool:
    """Whether folding an event of this kind could change only the state's position."""
    if kind in ("ignored", "deferred"):
        return True
    if kind != "delivered":
        return False
    soft_suppressed = any(cause.reason == "soft_bounce_threshold" for cause in state.causes)
    return not (clears and (state.soft_bounces or soft_suppressed))
