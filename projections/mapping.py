"""map: a fact becomes a normalized event under the policy.

The provider modules say what an event *is* (facts); this module says what it *means*
under the policy: mapping overrides, classification rules on the diagnostic,
exclusions, and the unknown-class-counts-as-soft default. Operator actions are never
re-read by the policy: a rebuild under any policy keeps them.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ledger import Receipt
from projections import operator
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
    Resubscribe,
    Unsubscribe,
)
from projections.facts import Fact, derive
from projections.policy import Kind, Policy
from projections.providers import PROVIDERS
from projections.recipients import to_micros

KNOWN_SOURCES = frozenset(PROVIDERS)

_SIMPLE: dict[str, type[Delivered | Complaint | Unsubscribe | Resubscribe | Deferred]] = {
    "delivered": Delivered,
    "complaint": Complaint,
    "unsubscribe": Unsubscribe,
    "resubscribe": Resubscribe,
    "deferred": Deferred,
}


class Placed(msgspec.Struct, frozen=True):
    """A normalized event with its de-duplication key (16 bytes)."""

    key: bytes
    event: NormalizedEvent


class Mapper:
    """Maps facts to normalized events under one policy (compiled once)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
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
            (ex.source, to_micros(ex.start), to_micros(ex.end), ex.note) for ex in policy.exclude
        ]

    def placed(self, receipt: Receipt) -> list[Placed]:
        """Every event in a receipt under this policy (derive, then map), with its key."""
        return [Placed(keyed.key, self.map_fact(keyed.fact)) for keyed in derive(receipt)]

    def map_fact(self, fact: Fact) -> NormalizedEvent:
        """One fact about one recipient, read under the policy."""
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
        }
        if fact.source == operator.SOURCE:
            kind = OperatorSuppress if fact.raw_kind == "suppress" else OperatorRelease
            return kind(actor=fact.actor or "", note=fact.note or "", **common)
        for ex_source, start, end, note in self._exclusions:
            if ex_source == fact.source and start <= fact.at < end:
                return Ignored(reason=f"excluded by policy{': ' + note if note else ''}", **common)
        mapping = self._mappings.get(fact.source, {})
        kind_name: Kind | None = mapping.get(fact.raw_kind)
        if kind_name is None:
            return Ignored(reason=f"unknown {fact.source} event {fact.raw_kind!r}", **common)
        if kind_name == "ignore":
            reason = f"{fact.source} {fact.raw_kind!r} is ignored by the mapping"
            return Ignored(reason=reason, **common)
        if kind_name in ("bounce", "hard_bounce", "soft_bounce"):
            return self._bounce(kind_name, fact, common)
        return _SIMPLE[kind_name](**common)

    def _bounce(self, kind: Kind, fact: Fact, common: dict[str, Any]) -> NormalizedEvent:
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
                    return Ignored(reason=f"classified by policy: {why}", **common)
                cls = verdict
                break
        return Bounce(bounce_class=cls, **common)
