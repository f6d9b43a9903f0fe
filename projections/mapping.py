"""decode -> map: a receipt's bytes become normalized events under a policy.

The provider modules say what a raw event *is* (Facts); this module says what it
*means* under the policy: mapping overrides, classification rules on the diagnostic,
exclusions, and the unknown-class-counts-as-soft default.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from ledger import Receipt
from projections import operator
from projections.errors import DecodeFailed
from projections.events import (
    Bounce,
    BounceClass,
    Complaint,
    Deferred,
    Delivered,
    Ignored,
    NormalizedEvent,
    Resubscribe,
    Unsubscribe,
)
from projections.policy import Kind, Policy
from projections.providers import PROVIDERS, Facts, Provider
from projections.recipients import normalize_recipient, to_micros

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


def dedup_key(source: str, event_id: str, recipient: str) -> bytes:
    """The identity of one provider event about one recipient."""
    text = f"{source}\x1f{event_id}\x1f{recipient}".encode()
    return hashlib.blake2b(text, digest_size=16).digest()


class Mapper:
    """Maps receipts to normalized events under one policy (compiled once)."""

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
        """Every event in a receipt that names a recipient; undecodable receipts yield none."""
        if receipt.source == operator.SOURCE:
            try:
                key, event = operator.placed_event(receipt)
            except DecodeFailed:
                return []
            return [Placed(key, event)]
        provider = PROVIDERS.get(receipt.source)
        if provider is None:
            return []
        try:
            raws = provider.decode(receipt.body, receipt.content_type, receipt.headers)
        except DecodeFailed:
            return []
        return list(self._place(provider, receipt, raws))

    def _place(
        self, provider: Provider, receipt: Receipt, raws: list[dict[str, Any]]
    ) -> Iterator[Placed]:
        ord_ = 0
        for raw in raws:
            for fact in provider.facts(raw):
                if fact.recipient is None:
                    continue
                recipient = normalize_recipient(fact.recipient)
                if not recipient:
                    continue
                event = self.map_event(receipt.source, fact, recipient, receipt, ord_)
                yield Placed(dedup_key(receipt.source, fact.event_id, recipient), event)
                ord_ += 1

    def map_event(
        self, source: str, fact: Facts, recipient: str, receipt: Receipt, ord_: int
    ) -> NormalizedEvent:
        """One fact about one recipient, read under the policy."""
        at = fact.at if fact.at is not None else receipt.received_at
        common: dict[str, Any] = {
            "recipient": recipient,
            "at": at,
            "seq": receipt.seq,
            "ord": ord_,
            "source": source,
            "raw_kind": fact.raw_kind,
            "event_id": fact.event_id,
            "message_id": fact.message_id,
            "diagnostic": fact.diagnostic,
        }
        for ex_source, start, end, note in self._exclusions:
            if ex_source == source and start <= at < end:
                return Ignored(reason=f"excluded by policy{': ' + note if note else ''}", **common)
        kind: Kind | None = self._mappings[source].get(fact.raw_kind)
        if kind is None:
            return Ignored(reason=f"unknown {source} event {fact.raw_kind!r}", **common)
        if kind == "ignore":
            return Ignored(reason=f"{source} {fact.raw_kind!r} is ignored by the mapping", **common)
        if kind in ("bounce", "hard_bounce", "soft_bounce"):
            return self._bounce(kind, fact, source, common)
        return _SIMPLE[kind](**common)

    def _bounce(
        self, kind: Kind, fact: Facts, source: str, common: dict[str, Any]
    ) -> NormalizedEvent:
        cls: BounceClass
        if kind == "hard_bounce":
            cls = "hard"
        elif kind == "soft_bounce" or fact.bounce_class != "hard":
            cls = "soft"  # unknown or missing classification counts as soft
        else:
            cls = "hard"
        for pattern, verdict, rule_source, why in self._rules:
            if rule_source not in (None, source) or not fact.diagnostic:
                continue
            if pattern.search(fact.diagnostic):
                if verdict == "ignore":
                    return Ignored(reason=f"classified by policy: {why}", **common)
                cls = verdict
                break
        return Bounce(bounce_class=cls, **common)
