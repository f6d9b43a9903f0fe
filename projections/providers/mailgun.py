"""Mailgun webhooks: `{"signature": {...}, "event-data": {...}}`, one event per POST.

A `failed` event is told apart by `severity`, under Mailgun's own webhook names:
`permanent_fail` (a hard bounce; `reason: old`, the retry limit reached, counts as soft)
and `temporary_fail` (Mailgun is still retrying: deferred). A permanent failure whose
`reason` is `suppress-bounce`, `suppress-unsubscribe` or `suppress-complaint` is Mailgun
refusing an address it already suppresses: raw kinds `suppress_bounce`, … that carry no
new state by default. `event-data.id` is unique only within a day, so the event id is
the id plus the event timestamp. The signature (over timestamp + token) is checked at
the door.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import Raw, derived_id, json_object, obj, text
from projections.providers.facts import Facts
from projections.recipients import parse_time

NAME = "mailgun"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "permanent_fail": "bounce",
    "temporary_fail": "deferred",
    "failed": "bounce",  # a `failed` without severity: unclassified, so soft
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
    "suppress_bounce": "ignore",
    "suppress_unsubscribe": "ignore",
    "suppress_complaint": "ignore",
    "accepted": "ignore",
    "rejected": "ignore",
    "opened": "ignore",
    "clicked": "ignore",
    "stored": "ignore",
}

SYNONYMS = {
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "open": "opened",
    "click": "clicked",
}

_SUPPRESSED = {"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"}


def canonical_kind(name: str) -> str:
    """The event name, lower-cased, `-` as `_`, with synonyms folded."""
    name = name.strip().lower().replace("-", "_")
    return SYNONYMS.get(name, name)


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The `event-data` object of the one event in a POST."""
    document = json_object(body)
    event = document.get("event-data")
    if not isinstance(event, dict):
        raise DecodeFailed("body has no `event-data` object")
    if not text(event.get("event")):
        raise DecodeFailed("`event-data` has no `event` field")
    return [event]


def _kind_and_class(raw: Raw) -> tuple[str, str | None]:
    kind = canonical_kind(str(raw["event"]))
    if kind != "failed":
        return kind, None
    severity = (text(raw.get("severity")) or "").lower()
    reason = (text(raw.get("reason")) or "").lower()
    if severity == "temporary":
        return "temporary_fail", "soft"
    if severity == "permanent":
        if reason in _SUPPRESSED:
            return reason.replace("-", "_"), None
        return "permanent_fail", "soft" if reason == "old" else "hard"
    return "failed", None


def facts(raw: Raw) -> list[Facts]:
    """One Facts: a Mailgun event names one recipient."""
    kind, bounce_class = _kind_and_class(raw)
    recipient = text(raw.get("recipient"))
    timestamp = text(raw.get("timestamp"))
    headers = obj(obj(raw.get("message")).get("headers"))
    message_id = text(headers.get("message-id"))
    event_id = text(raw.get("id"))
    status = obj(raw.get("delivery-status"))
    return [
        Facts(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(timestamp),
            event_id=(
                f"{event_id}@{timestamp}"
                if event_id
                else derived_id(message_id, kind, timestamp, recipient=recipient)
            ),
            message_id=message_id,
            diagnostic=(
                text(status.get("message"))
                or text(status.get("description"))
                or text(raw.get("reason"))
            ),
            bounce_class=bounce_class,
        )
    ]
