"""Postmark webhooks: one JSON object per POST, routed by `RecordType`.

A `Bounce` record's raw kind is its `Type` in snake case (`hard_bounce`, `soft_bounce`,
`transient`, `spam_notification`, …; `TypeCode` when `Type` is missing), because
Postmark files list-unsubscribe replies, auto-responders and challenge mails under
bounces too. A `Subscribe` bounce (TypeCode 32) is a message that came back to the
bounce address, not verifiable consent: ignored, never a resubscribe.
`ManuallyDeactivated` is Postmark refusing an address on its own list without saying
why (`provider_suppressed`). A `BadEmailAddress` bounce says the mailbox does not exist
(refusal `no_mailbox`); other refusals are read from the enhanced code in `Details`
(projections.facts.place).

`SubscriptionChange` records (Postmark's own suppression list) become
`subscription_change.hard_bounce`, `….spam_complaint`, `….unsubscribed` (a
`ManualSuppression` with `Origin: Recipient`) or `….manual_suppression` (the customer
or an admin suppressed it: `provider_suppressed`). A reactivation
(`SuppressSending: false`) is `….resubscribed` when the recipient did it and
`….reactivated` otherwise: a customer lifting its own suppression is not the
recipient's consent, so it is ignored by default. Unsubscribe and resubscribe records
carry the record's `MessageStream` as their scope.

Labels (which kind of mail a record is about): the record's `MessageStream`, its `Tag`
and each scalar entry of its `Metadata` (`metadata:<key>`).

Bounce and SpamComplaint records carry a numeric `ID`; other records are identified by
(RecordType, MessageID, recipient, time). Postmark does not sign: HTTP Basic auth is
checked at the door.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import (
    NO_MAILBOX,
    Label,
    Raw,
    derived_id,
    json_object,
    keyed,
    labels,
    snake,
    text,
)
from projections.providers.events import ProviderEvent
from projections.recipients import parse_time

NAME = "postmark"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivery": "delivered",
    "spam_complaint": "complaint",
    "open": "ignore",
    "click": "ignore",
    # Bounce types (the record's `Type`).
    "hard_bounce": "bounce",
    "bad_email_address": "bounce",
    "soft_bounce": "bounce",
    "dns_error": "bounce",
    "blocked": "bounce",
    "spam_notification": "bounce",  # the receiving server's filter, not the recipient
    "unknown": "bounce",
    "transient": "deferred",  # Postmark is still trying
    "unsubscribe": "unsubscribe",  # a list-unsubscribe reply
    # A mail that came back to the bounce address: not verifiable consent, and it must
    # never reverse a recipient's opt-out (kept in the ledger).
    "subscribe": "ignore",
    "auto_responder": "ignore",
    "address_change": "ignore",
    "open_relay_test": "ignore",
    "challenge_verification": "ignore",
    "virus_notification": "ignore",
    # Postmark refusing an address on its own list without saying why.
    "manually_deactivated": "provider_suppressed",
    "unconfirmed": "ignore",
    "smtp_api_error": "ignore",
    "inbound_error": "ignore",
    "dmarc_policy": "ignore",
    "template_rendering_failed": "ignore",
    # Subscription changes (Postmark's own suppression list).
    "subscription_change.hard_bounce": "bounce",
    "subscription_change.spam_complaint": "complaint",
    "subscription_change.unsubscribed": "unsubscribe",  # Origin: Recipient
    # The customer or an admin suppressed the address and said no more.
    "subscription_change.manual_suppression": "provider_suppressed",
    "subscription_change.resubscribed": "resubscribe",  # the recipient re-subscribed
    # The customer or an admin lifted its own suppression: not the recipient's consent.
    "subscription_change.reactivated": "ignore",
}

LABELS: dict[str, str] = {
    "message_stream": "the record's `MessageStream` (`outbound`, `broadcast`, …)",
    "tag": "the message's `Tag`",
    "metadata:": "each scalar entry of the message's `Metadata`, by its key",
}

TYPE_CODES = {
    1: "HardBounce",
    2: "Transient",
    16: "Unsubscribe",
    32: "Subscribe",
    64: "AutoResponder",
    128: "AddressChange",
    256: "DnsError",
    512: "SpamNotification",
    1024: "OpenRelayTest",
    2048: "Unknown",
    4096: "SoftBounce",
    8192: "VirusNotification",
    16384: "ChallengeVerification",
    100000: "BadEmailAddress",
    100001: "SpamComplaint",
    100002: "ManuallyDeactivated",
    100003: "Unconfirmed",
    100006: "Blocked",
    100007: "SMTPApiError",
    100008: "InboundError",
    100009: "DMARCPolicy",
    100010: "TemplateRenderingFailed",
}

_HARD = {"hard_bounce", "bad_email_address", "subscription_change.hard_bounce"}
_SOFT = {"soft_bounce", "transient", "dns_error", "blocked", "spam_notification"}
_SPELLINGS = {"smtpapi_error": "smtp_api_error", "dmarcpolicy": "dmarc_policy"}
# Records about (un)subscribing to one message stream: their scope is `MessageStream`.
_SCOPED = {
    "unsubscribe",
    "subscribe",
    "subscription_change.unsubscribed",
    "subscription_change.resubscribed",
    "subscription_change.reactivated",
}


def canonical_kind(name: str) -> str:
    """`HardBounce` and `hard_bounce` alike; `SMTPApiError` -> `smtp_api_error`."""
    head, dot, tail = name.strip().partition(".")
    kind = snake(head) + (dot + snake(tail) if dot else "")
    return _SPELLINGS.get(kind, kind)


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The one record of a POST (it must carry a `RecordType`)."""
    document = json_object(body)
    if not text(document.get("RecordType")):
        raise DecodeFailed("body has no `RecordType` field")
    return [document]


def _bounce_kind(raw: Raw) -> str:
    name = text(raw.get("Type"))
    if name is None:
        code = raw.get("TypeCode")
        name = TYPE_CODES.get(code, "Unknown") if isinstance(code, int) else "Unknown"
    return canonical_kind(name)


def _subscription_kind(raw: Raw) -> str:
    by_recipient = (text(raw.get("Origin")) or "").lower() == "recipient"
    if raw.get("SuppressSending") is False:
        return f"subscription_change.{'resubscribed' if by_recipient else 'reactivated'}"
    reason = canonical_kind(text(raw.get("SuppressionReason")) or "manual_suppression")
    if reason == "manual_suppression" and by_recipient:
        reason = "unsubscribed"
    return f"subscription_change.{reason}"


def _raw_kind(raw: Raw) -> str:
    record = canonical_kind(str(raw["RecordType"]))
    if record == "bounce":
        return _bounce_kind(raw)
    if record == "subscription_change":
        return _subscription_kind(raw)
    return record


_TIME_FIELDS = ("BouncedAt", "DeliveredAt", "ReceivedAt", "ChangedAt")


def _labels(raw: Raw) -> tuple[Label, ...]:
    return labels(
        [
            ("message_stream", raw.get("MessageStream")),
            ("tag", raw.get("Tag")),
            *keyed("metadata:", raw.get("Metadata")),
        ]
    )


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent: a Postmark record names one recipient (`Email` or `Recipient`)."""
    kind = _raw_kind(raw)
    record = text(raw.get("RecordType"))
    recipient = text(raw.get("Email")) or text(raw.get("Recipient"))
    when = next((t for t in (text(raw.get(f)) for f in _TIME_FIELDS) if t), None)
    message_id = text(raw.get("MessageID"))
    numeric = text(raw.get("ID"))
    event_id = (
        f"{record}:{numeric}"
        if numeric
        else derived_id(record, kind, message_id, when, recipient=recipient)
    )
    bounce_class = "hard" if kind in _HARD else "soft" if kind in _SOFT else None
    return [
        ProviderEvent(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(when),
            event_id=event_id,
            message_id=message_id,
            diagnostic=text(raw.get("Details")) or text(raw.get("Description")),
            bounce_class=bounce_class,
            scope=text(raw.get("MessageStream")) if kind in _SCOPED else None,
            refusal=NO_MAILBOX if kind == "bad_email_address" else None,
            labels=_labels(raw),
        )
    ]
