"""Facts: what a receipt says about each recipient, before any policy reads it.

Derived once from the receipt's bytes (decode + the provider's field reading), stored
in the recipient index, and re-read by every fold, audit and rebuild — so a rebuild
under a new policy never parses a body again. Derivation depends only on the decoder
code: `DERIVATION_VERSION` is bumped when it changes, and stored facts are then
re-derived from the receipts.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import msgspec

from ledger import Receipt
from projections import operator
from projections.errors import DecodeFailed
from projections.policy import DERIVATION_VERSION
from projections.providers import PROVIDERS, Provider
from projections.recipients import normalize_recipient

__all__ = [
    "DERIVATION_VERSION",
    "Fact",
    "Keyed",
    "decode_fact",
    "derive",
    "derive_raws",
    "encode_fact",
]


log = logging.getLogger("bounceledger.facts")


class Fact(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    """One provider (or operator) event about one recipient, placed in the ledger.

    `at` is the event time (the receipt's received time when the provider gave none);
    `seq` and `ord` are the receipt and the position among its facts.
    """

    source: str
    raw_kind: str
    recipient: str
    at: int
    seq: int
    ord: int
    event_id: str
    message_id: str | None = None
    diagnostic: str | None = None
    bounce_class: str | None = None
    actor: str | None = None
    note: str | None = None

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.at, self.seq, self.ord)


class Keyed(msgspec.Struct, frozen=True, array_like=True):
    """A fact with its de-duplication key (16 bytes)."""

    key: bytes
    fact: Fact


encode_fact = msgspec.msgpack.Encoder().encode
decode_fact = msgspec.msgpack.Decoder(Fact).decode


def dedup_key(source: str, event_id: str, recipient: str) -> bytes:
    """The identity of one provider event about one recipient."""
    text = f"{source}\x1f{event_id}\x1f{recipient}".encode()
    return hashlib.blake2b(text, digest_size=16).digest()


def derive(receipt: Receipt) -> list[Keyed]:
    """Every fact in a receipt that names a recipient; an undecodable receipt has none."""
    if receipt.source == operator.SOURCE:
        try:
            action = operator.decode(receipt.body)
        except DecodeFailed:
            return []
        recipient = normalize_recipient(action.email)
        fact = Fact(
            source=operator.SOURCE,
            raw_kind=action.action,
            recipient=recipient,
            at=action.at,
            seq=receipt.seq,
            ord=0,
            event_id=f"operator:{receipt.seq}",
            actor=action.actor,
            note=action.note,
        )
        return [Keyed(dedup_key(operator.SOURCE, fact.event_id, recipient), fact)]
    provider = PROVIDERS.get(receipt.source)
    if provider is None:
        return []
    try:
        return _derive(provider, receipt)
    except DecodeFailed:
        return []
    except Exception:
        # A decoder bug must not stall the projection behind one receipt: the receipt
        # stays in the ledger, and a fixed decoder (DERIVATION_VERSION) re-derives it.
        log.exception("cannot derive facts from receipt %d (%s)", receipt.seq, receipt.source)
        return []


def _derive(provider: Provider, receipt: Receipt) -> list[Keyed]:
    raws = provider.decode(receipt.body, receipt.content_type, receipt.headers)
    return derive_raws(provider, raws, receipt.source, receipt.seq, receipt.received_at)


def derive_raws(
    provider: Provider, raws: list[dict[str, Any]], source: str, seq: int, received_at: int
) -> list[Keyed]:
    """The facts of raw events already decoded from receipt `seq` (what `derive` would
    give for that receipt: the door hands them over so the body is parsed only once)."""
    out: list[Keyed] = []
    for raw in raws:
        for seen in provider.facts(raw):
            recipient = normalize_recipient(seen.recipient or "")
            if not recipient:
                continue
            fact = Fact(
                source=source,
                raw_kind=seen.raw_kind,
                recipient=recipient,
                at=seen.at if seen.at is not None else received_at,
                seq=seq,
                ord=len(out),
                event_id=seen.event_id,
                message_id=seen.message_id,
                diagnostic=seen.diagnostic,
                bounce_class=seen.bounce_class,
            )
            out.append(Keyed(dedup_key(source, seen.event_id, recipient), fact))
    return out
