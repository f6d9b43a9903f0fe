"""map: a fact becomes a normalized event under the policy.

The provider modules say what an event *is* (facts); this module says what it *means*
under the policy: mapping overrides, classification rules on the diagnostic,
exclusions, and the unknown-class-counts-as-soft default. Operator actions are never
re-read by the policy: a rebuild under any policy keeps them.
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
from projections.recipients import to_micros
from projections.state import RecipientState

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
# A bounce saying the mailbox does not exist: the recipient's fact, never an incident's.
UNKNOWN_MAILBOX = re.compile(r"(?<!\d)(?<!\d\.)5\.1\.(?:1|10)(?!\d)(?!\.\d)")


def check_event_names(policy: Policy, origin: str = "policy") -> Policy:
    """Refuse a `[providers.NAME]` override whose event the provider does not send (a
    misspelt name would otherwise do nothing, silently)."""
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

    def placed(self, receipt: Receipt) -> list[Placed]:
        """Every event in a receipt under this policy (derive, then map), with its key."""
        return [Placed(keyed.key, self.map_fact(keyed.fact)) for keyed in derive(receipt)]

    def decide(self, fact: Fact) -> tuple[str, str | None]:
        """What the policy makes of a fact, without building the event: its kind tag, and
        the bounce class (for `bounce`) or the reason (for `ignored`)."""
        if fact.source == operator.SOURCE:
            return (
                "operator_suppress" if fact.raw_kind == "suppress" else "operator_release"
            ), None
        mapped: Kind | None = self._mappings.get(fact.source, {}).get(fact.raw_kind)
        if mapped is None:
            return "ignored", f"unknown {fact.source} event {fact.raw_kind!r}"
        if mapped == "ignore":
            return "ignored", f"{fact.source} {fact.raw_kind!r} is ignored by the mapping"
        kind: str = mapped
        detail: str | None = None
        if mapped in ("bounce", "hard_bounce", "soft_bounce"):
            kind, detail = self._bounce(mapped, fact)
            if kind == "ignored":
                return kind, detail
        excluded = self._excluded(fact, kind)
        if excluded is not None:
            return "ignored", excluded
        if fact.shared > 1:
            # The event names several recipients and not which one it is about: it may
            # count as a soft bounce for each (never hard), and acts on nobody else's
            # behalf — no delivery heals, no complaint or unsubscribe suppresses.
            if kind == "bounce":
                return "bounce", "soft"
            if kind != "deferred":
                return "ignored", (
                    f"names {fact.shared} recipients and not which one: "
                    f"not applied as {kind} to any of them"
                )
        return kind, detail

    def _excluded(self, fact: Fact, kind: str) -> str | None:
        """Why an exclusion window ignores this event, or None."""
        if not self._exclusions or fact.source == operator.SOURCE:
            return None
        named = kind
        if kind == "bounce" and fact.diagnostic and UNKNOWN_MAILBOX.search(fact.diagnostic):
            named = "unknown_mailbox"
        for ex_source, start, end, kinds, note in self._exclusions:
            if ex_source == fact.source and start <= fact.at < end and named in kinds:
                return f"excluded by policy{': ' + note if note else ''}"
        return None

    def _bounce(self, kind: Kind, fact: Fact) -> tuple[str, str | None]:
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
                    return "ignored", f"classified by policy: {why}"
                cls = verdict
                break
        return "bounce", cls

    def map_fact(self, fact: Fact) -> NormalizedEvent:
        """One fact about one recipient, read under the policy."""
        return self.build(fact, *self.decide(fact))

    @staticmethod
    def build(fact: Fact, kind: str, detail: str | None) -> NormalizedEvent:
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
        }
        if kind == "bounce":
            return Bounce(bounce_class="hard" if detail == "hard" else "soft", **common)
        if kind == "ignored":
            return Ignored(reason=detail or "", **common)
        if kind == "operator_suppress":
            return OperatorSuppress(actor=fact.actor or "", note=fact.note or "", **common)
        if kind == "operator_release":
            return OperatorRelease(actor=fact.actor or "", note=fact.note or "", **common)
        return _SIMPLE[kind](**common)

    def fold_facts(
        self, email: str, facts: Iterable[Fact], state: RecipientState | None = None
    ) -> RecipientState:
        """Fold facts that are in history order into a recipient's state under the policy.

        The same result as `replay(email, map(self.map_fact, facts), policy, state)` (a
        property test holds it to that), but faster: a fact that can change nothing but
        the state's position — an ignored or deferred event, a delivery with no soft
        bounces to clear — is counted instead of built and folded.
        """
        policy = self.policy
        clears = policy.delivery_clears_soft_bounces
        state = state or RecipientState(email=email)
        quiet, last = 0, None
        for fact in facts:
            kind, detail = self.decide(fact)
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


def _quiet(kind: str, state: RecipientState, clears: bool) -> bool:
    """Whether folding an event of this kind could change only the state's position."""
    if kind in ("ignored", "deferred"):
        return True
    if kind != "delivered":
        return False
    soft_suppressed = any(cause.reason == "soft_bounce_threshold" for cause in state.causes)
    return not (clears and (state.soft_bounces or soft_suppressed))
