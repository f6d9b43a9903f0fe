"""SendGrid Event Webhook: a JSON array of events per POST, each about one recipient.

A bounce's `type` tells hard from soft: `bounce` is hard, `expired` (SendGrid gave up
retrying) soft, and `blocked` (a refusal about the message or the sender, not the
address: SendGrid itself never suppresses blocks) is kept but ignored by default. Each
is its own raw kind (`bounce`, `blocked`, `expired`) so a policy can map them
separately. The opt-in `bounce_classification` refines a `bounce`: a refusal about the
sender (Reputation, Content, "Frequency or Volume Too High") is its own raw kind
(`bounce_reputation`, `bounce_content`, `bounce_frequency`), a soft bounce that is a
sender-side refusal (so ignored unless the policy says `sender_side_bounces = "soft"`);
"Technical Failure" counts as soft. A legacy bounce without `type` is hard when its
`status` is 5.x.x and soft when 4.x.x.

Refusal: the mailbox does not exist (`no_mailbox`) when `status` is 5.1.1 / 5.1.10 or
the classification is "Invalid Address"; a sender-side refusal (`sender`) when the
classification is one of the sender's or `status` is 5.7.x. `reason` is often the
receiving MTA's own words ("550 Requested action not taken: mailbox unavailable"), so
these fields are read first.

`dropped` (SendGrid refusing to send) is split by `reason`: an address on SendGrid's
own bounce, spam-report or unsubscribe list is `dropped_bounce`, `dropped_spamreport`
or `dropped_unsubscribe` (evidence of that reason); any other drop is the sender's
problem and stays `dropped`, ignored. Group (un)subscribes carry their
`asm_group_id` as scope. De-duplication is by `sg_event_id`. Authentication (ECDSA
over timestamp + raw body) is at the door.

Labels (which kind of mail an event is about): `asm_group_id` (the unsubscribe group),
each `category` (a string or an array) and `marketing_campaign_id`.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import (
    NO_MAILBOX,
    SENDER,
    Label,
    Raw,
    Refusal,
    derived_id,
    each,
    json_document,
    labels,
    status_refusal,
    stronger,
    text,
)
from projections.providers.events import ProviderEvent
from projections.recipients import parse_time

NAME = "sendgrid"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "bounce": "bounce",
    # A block is about the message or the sender, not the address: SendGrid itself
    # never suppresses blocks. Kept in the ledger; a policy can map it.
    "blocked": "ignore",
    "expired": "bounce",
    # Refusals classified as the sender's problem: no evidence against the recipient.
    # Bounces with `refusal = "sender"`, so the policy's `sender_side_bounces` decides
    # (ignored by default), as for every provider's sender-side refusal.
    "bounce_reputation": "bounce",
    "bounce_content": "bounce",
    "bounce_frequency": "bounce",
    "deferred": "deferred",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    # An unsubscribe from one suppression group is a preference, not a global opt-out.
    "group_unsubscribe": "ignore",
    "group_resubscribe": "ignore",
    # SendGrid refused an address on its own list and said why: evidence of that reason.
    "dropped_bounce": "hard_bounce",
    "dropped_spamreport": "complaint",
    "dropped_unsubscribe": "unsubscribe",
    # Any other drop (invalid header, spam content, quota, …) is the sender's problem.
    "dropped": "ignore",
    "processed": "ignore",
    "open": "ignore",
    "click": "ignore",
}

LABELS: dict[str, str] = {
    "asm_group": "`asm_group_id`: the unsubscribe (suppression) group the message was sent in",
    "category": "each of the message's `category` values (a string or an array)",
    "marketing_campaign": "`marketing_campaign_id`: the Marketing Campaigns campaign",
}

SYNONYMS = {"spam_report": "spamreport", "bounced": "bounce", "opened": "open"}

# Bounce & Block classifications that say the refusal was about the sender: own kinds.
_SENDER_SIDE = {
    "reputation": "bounce_reputation",
    "content": "bounce_content",
    "frequency or volume too high": "bounce_frequency",
}
_RECIPIENT_SIDE = {"invalid address", "mailbox unavailable"}
# The kinds a bounce's fields (status, classification) are read for.
_BOUNCES = {"bounce", "blocked", "expired", *_SENDER_SIDE.values()}
# A `dropped` event's `reason` when the address is on one of SendGrid's own lists.
_DROPPED = {
    "bounced address": "dropped_bounce",
    "spam reporting address": "dropped_spamreport",
    "unsubscribed address": "dropped_unsubscribe",
}
_GROUP = {"group_unsubscribe", "group_resubscribe"}


def canonical_kind(name: str) -> str:
    """The event name, lower-cased, with spelling synonyms folded."""
    name = name.strip().lower().replace("-", "_")
    return SYNONYMS.get(name, name)


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The events of one POST: a JSON array (a lone object is taken as a batch of one)."""
    document = json_document(body)
    items = document if isinstance(document, list) else [document]
    if not items:
        raise DecodeFailed("JSON array holds no events")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DecodeFailed(f"event {index} is not an object")
        if not text(item.get("event")):
            raise DecodeFailed(f"event {index} has no `event` field")
    return list(items)


def _raw_kind(raw: Raw) -> str:
    kind = canonical_kind(str(raw["event"]))
    if kind == "bounce":
        bounce_type = (text(raw.get("type")) or "").lower()
        if bounce_type in ("blocked", "expired"):
            return bounce_type
        classification = (text(raw.get("bounce_classification")) or "").lower()
        return _SENDER_SIDE.get(classification, kind)
    if kind == "dropped":
        return _DROPPED.get((text(raw.get("reason")) or "").lower(), kind)
    return kind


def _bounce_class(kind: str, raw: Raw) -> str | None:
    if kind in ("blocked", "expired", *_SENDER_SIDE.values()):
        return "soft"
    if kind == "dropped_bounce":
        return "hard"
    if kind != "bounce":
        return None
    classification = (text(raw.get("bounce_classification")) or "").lower()
    bounce_type = (text(raw.get("type")) or "").lower()
    if classification == "technical failure":
        return "soft"
    if bounce_type == "bounce" or classification in _RECIPIENT_SIDE:
        return "hard"
    if not bounce_type:  # a legacy payload: the enhanced status code is the call
        status = text(raw.get("status")) or ""
        return "hard" if status.startswith("5.") else "soft" if status.startswith("4.") else None
    return None


def _refusal(kind: str, raw: Raw) -> Refusal | None:
    """What the classification and the enhanced `status` say the refusal is about."""
    if kind not in _BOUNCES:
        return None
    classification = (text(raw.get("bounce_classification")) or "").lower()
    stated = (
        NO_MAILBOX
        if classification == "invalid address"
        else SENDER
        if classification in _SENDER_SIDE
        else None
    )
    return stronger(stated, status_refusal(text(raw.get("status"))))


def _labels(raw: Raw) -> tuple[Label, ...]:
    return labels(
        [
            ("asm_group", raw.get("asm_group_id")),
            *(("category", category) for category in each(raw.get("category"))),
            ("marketing_campaign", raw.get("marketing_campaign_id")),
        ]
    )


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent per event: SendGrid events are already one per recipient."""
    kind = _raw_kind(raw)
    recipient = text(raw.get("email"))
    timestamp = text(raw.get("timestamp"))
    message_id = text(raw.get("sg_message_id")) or text(raw.get("smtp-id"))
    event_id = text(raw.get("sg_event_id")) or derived_id(
        message_id, kind, timestamp, recipient=recipient
    )
    return [
        ProviderEvent(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(timestamp),
            event_id=event_id,
            message_id=message_id,
            diagnostic=text(raw.get("reason")) or text(raw.get("response")),
            bounce_class=_bounce_class(kind, raw),
            scope=text(raw.get("asm_group_id")) if kind in _GROUP else None,
            refusal=_refusal(kind, raw),
            labels=_labels(raw),
        )
    ]
