"""SendGrid Event Webhook: a JSON array of events per POST, each about one recipient.

A bounce's `type` tells hard from soft: `bounce` is hard, `blocked` (a temporary
refusal, often the sender's reputation) and `expired` (SendGrid gave up retrying) are
soft. Each is its own raw kind (`bounce`, `blocked`, `expired`) so a policy can map them
separately. The opt-in `bounce_classification` refines a `bounce`: a refusal classified
as the sender's problem (content, reputation, volume, technical) counts as soft.
De-duplication is by `sg_event_id`. Authentication (ECDSA over timestamp + raw body) is
at the door.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import Raw, derived_id, json_document, text
from projections.providers.facts import Facts
from projections.recipients import parse_time

NAME = "sendgrid"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "bounce": "bounce",
    "blocked": "bounce",
    "expired": "bounce",
    "deferred": "deferred",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    # An unsubscribe from one suppression group is a preference, not a global opt-out.
    "group_unsubscribe": "ignore",
    "group_resubscribe": "ignore",
    # `dropped` is SendGrid refusing to send (usually to an address it already
    # suppresses): it carries no new state about the recipient.
    "dropped": "ignore",
    "processed": "ignore",
    "open": "ignore",
    "click": "ignore",
}

SYNONYMS = {"spam_report": "spamreport", "bounced": "bounce", "opened": "open"}

# Bounce & Block classifications that say the refusal was about the sender.
_SENDER_SIDE = {"content", "reputation", "frequency or volume too high", "technical failure"}
_RECIPIENT_SIDE = {"invalid address", "mailbox unavailable"}


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
    return kind


def _bounce_class(kind: str, raw: Raw) -> str | None:
    classification = (text(raw.get("bounce_classification")) or "").lower()
    if kind in ("blocked", "expired"):
        return "soft"
    if kind != "bounce":
        return None
    if classification in _SENDER_SIDE:
        return "soft"
    if (text(raw.get("type")) or "").lower() == "bounce" or classification in _RECIPIENT_SIDE:
        return "hard"
    return None


def facts(raw: Raw) -> list[Facts]:
    """One Facts per event: SendGrid events are already one per recipient."""
    kind = _raw_kind(raw)
    recipient = text(raw.get("email"))
    timestamp = text(raw.get("timestamp"))
    message_id = text(raw.get("sg_message_id")) or text(raw.get("smtp-id"))
    event_id = text(raw.get("sg_event_id")) or derived_id(
        message_id, kind, timestamp, recipient=recipient
    )
    return [
        Facts(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(timestamp),
            event_id=event_id,
            message_id=message_id,
            diagnostic=text(raw.get("reason")) or text(raw.get("response")),
            bounce_class=_bounce_class(kind, raw),
        )
    ]
