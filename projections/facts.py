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
from projections.erasure_keys import is_subject
from projections.errors import DecodeFailed
from projections.policy import DERIVATION_VERSION
from projections.providers import PROVIDERS, Provider, ProviderEvent
from projections.providers.common import Refusal, text_refusal
from projections.recipients import format_time, normalize_recipient
from projections.state import Reason

__all__ = [
    "DERIVATION_VERSION",
    "Fact",
    "Keyed",
    "Reading",
    "decode_fact",
    "derive",
    "derive_raws",
    "encode_fact",
    "is_erasure",
    "place",
    "read",
]

# How far past its receipt an event time may lie (clock skew) before it is replaced by
# the receipt time: an event cannot happen after its webhook arrived, and a time in the
# far future (`9999-12-31`) would otherwise sort after all later evidence forever.
FUTURE_TOLERANCE_US = 5 * 60 * 1_000_000
# Events that are about engagement only: naming no recipient, they are no loss.
ENGAGEMENT = frozenset({"open", "opened", "click", "clicked"})


log = logging.getLogger("bounceledger.facts")


class Fact(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    """One provider (or operator) event about one recipient, placed in the ledger.

    `at` is the event time (the receipt's received time when the provider gave none);
    `seq` and `ord` are the receipt and the position among its facts. `refusal` says
    who a refusal is about: `no_mailbox` (the mailbox does not exist) or `sender` (the
    sender or the message was refused), from the provider's own fields, else from an
    enhanced status code in the diagnostic text (see `place`).
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
    scope: str | None = None
    shared: int = 0
    flags: tuple[str, ...] = ()
    refusal: Refusal | None = None
    lifts: tuple[Reason, ...] | None = None  # a release: the causes it lifts
    seen: int | None = None  # a release: the newest evidence receipt the operator saw
    # The provider's fields saying which kind of mail it is about (ProviderEvent.labels);
    # an operator action's streams, as ("stream", name).
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.at, self.seq, self.ord)


def is_erasure(fact: Fact) -> bool:
    """Whether a fact is an erasure record's (projections/erasing.py)."""
    return fact.source == operator.SOURCE and fact.raw_kind == "erase"


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
        if isinstance(action, operator.Erasure):
            return [_erasure(action, receipt.seq)]
        if isinstance(action, operator.Retention):
            return []  # about no one
        recipient = operator.recipient(action.email)
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
            lifts=action.lifts,
            seen=action.seen,
            labels=tuple((operator.STREAM_LABEL, stream) for stream in action.streams),
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


def _erasure(erasure: operator.Erasure, seq: int) -> Keyed:
    """An erasure's one fact: about its keyed hash, carrying the causes it keeps."""
    fact = Fact(
        source=operator.SOURCE,
        raw_kind=erasure.action,
        recipient=erasure.subject,
        at=erasure.at,
        seq=seq,
        ord=0,
        event_id=f"operator:{seq}",
        actor=erasure.actor,
        note=erasure.note,
        lifts=erasure.reasons,
    )
    return Keyed(dedup_key(operator.SOURCE, fact.event_id, erasure.subject), fact)


def _derive(provider: Provider, receipt: Receipt) -> list[Keyed]:
    raws = provider.decode(receipt.body, receipt.content_type, receipt.headers)
    return derive_raws(provider, raws, receipt.source, receipt.seq, receipt.received_at)


class Reading(msgspec.Struct, frozen=True):
    """What a provider's raw events say: the events about a recipient (with the
    address normalized), and the kinds of those that name none (engagement aside)."""

    events: list[tuple[str, ProviderEvent]]
    unattributed: list[str]

    @property
    def ambiguous(self) -> int:
        """Events that name several recipients without saying which one they are about."""
        return sum(1 for _, seen in self.events if seen.shared > 1)


def read(provider: Provider, raws: list[dict[str, Any]]) -> Reading:
    """The provider's reading of decoded raw events (pure; no ledger position yet)."""
    events: list[tuple[str, ProviderEvent]] = []
    unattributed: list[str] = []
    for raw in raws:
        for seen in provider.facts(raw):
            recipient = normalize_recipient(seen.recipient or "")
            if is_subject(recipient):
                continue  # a recipient an erasure redacted: no fact about anyone
            if recipient:
                events.append((recipient, seen))
            elif seen.raw_kind not in ENGAGEMENT:
                unattributed.append(seen.raw_kind)
    return Reading(events, unattributed)


def place(reading: Reading, source: str, seq: int, received_at: int) -> list[Keyed]:
    """The facts of a reading, placed in receipt `seq` received at `received_at`.

    A refusal the provider's fields do not state is read, for every provider alike, from
    an enhanced status code in the diagnostic text: 5.1.1 / 5.1.10 says the mailbox does
    not exist, 5.7.x that the sender or the message was refused (the first wins). The
    provider's own fields win over the text.
    """
    out: list[Keyed] = []
    for recipient, seen in reading.events:
        at, flags = _event_time(seen.at, received_at)
        if seen.shared > 1:
            flags = (*flags, f"names {seen.shared} recipients and not which one it is about")
        fact = Fact(
            source=source,
            raw_kind=seen.raw_kind,
            recipient=recipient,
            at=at,
            seq=seq,
            ord=len(out),
            event_id=seen.event_id,
            message_id=seen.message_id,
            diagnostic=seen.diagnostic,
            bounce_class=seen.bounce_class,
            scope=seen.scope,
            shared=seen.shared if seen.shared > 1 else 0,
            flags=flags,
            refusal=seen.refusal or text_refusal(seen.diagnostic),
            labels=seen.labels,
        )
        out.append(Keyed(dedup_key(source, seen.event_id, recipient), fact))
    return out


def derive_raws(
    provider: Provider, raws: list[dict[str, Any]], source: str, seq: int, received_at: int
) -> list[Keyed]:
    """The facts of raw events already decoded from receipt `seq` (what `derive` would
    give for that receipt: the door hands them over so the body is parsed only once)."""
    return place(read(provider, raws), source, seq, received_at)


def _event_time(at: int | None, received_at: int) -> tuple[int, tuple[str, ...]]:
    """The time an event is placed at, and a flag when it is not the provider's."""
    if at is None:
        return received_at, ("no readable event time: the receipt time is used",)
    if at > received_at + FUTURE_TOLERANCE_US:
        shown = format_time(at)
        return received_at, (f"event time {shown} is after the receipt: the receipt time is used",)
    return at, ()
