"""Mailgun webhooks: `{"signature": {...}, "event-data": {...}}`, one event per POST.

A `failed` event is told apart by `severity`, under Mailgun's own webhook names:
`permanent_fail` (a hard bounce) and `temporary_fail` (Mailgun is still retrying:
deferred). `reason: old` is Mailgun giving up after its retries: `permanent_fail`
counted as soft whatever the severity (the final give-up can arrive as `temporary`).
A permanent failure whose `reason` is `suppress-bounce`, `suppress-complaint` or
`suppress-unsubscribe` is Mailgun refusing an address on its own list and naming why:
raw kinds `suppress_bounce` (a hard bounce), `suppress_complaint` (a complaint) and
`suppress_unsubscribe` (an unsubscribe). A permanent failure whose `reason` is
`espblock` (the receiving mailbox provider blocked the sender: Apple's "5.7.1 [CS01]
Message rejected due to local policy") is its own raw kind, `espblock`, a sender-side
refusal.

Refusal: `delivery-status.enhanced-code` (or the code at the start of
`delivery-status.message`) 5.1.1 / 5.1.10 says the mailbox does not exist
(`no_mailbox`); 5.7.x, whatever the `reason` (`generic`, `bounce`, …), and `espblock`
are refusals of the sender (`sender`). An `unsubscribed` event whose `tags` list is
not empty is `tag_unsubscribed`, its scope the tags joined with `,` (the payload does
not reliably say whether the tag link or the global link was used, so it still
unsubscribes by default). `event-data.id` is unique only within a day, so the event id
is the id plus the event timestamp. The signature (over timestamp + token) is checked
at the door.

Labels (which kind of mail an event is about): each of `tags`, and each scalar entry of
`user-variables` (`user_variable:<key>`).
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import (
    SENDER,
    Label,
    Raw,
    Refusal,
    derived_id,
    json_object,
    keyed,
    labels,
    obj,
    status_refusal,
    stronger,
    text,
)
from projections.providers.events import ProviderEvent
from projections.recipients import parse_time

NAME = "mailgun"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "permanent_fail": "bounce",
    # The mailbox provider blocked the sender (refusal `sender`): a bounce that the
    # policy's `sender_side_bounces` decides (ignored by default).
    "espblock": "bounce",
    "temporary_fail": "deferred",
    "failed": "bounce",  # a `failed` without severity: unclassified, so soft
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
    # An unsubscribe from a message with tags: maybe only from those tags, but the payload
    # does not say which link was used, and a suppression list errs toward not mailing.
    "tag_unsubscribed": "unsubscribe",
    # Mailgun refused an address on its own list and said why: evidence of that reason.
    "suppress_bounce": "hard_bounce",
    "suppress_unsubscribe": "unsubscribe",
    "suppress_complaint": "complaint",
    "accepted": "ignore",
    "rejected": "ignore",
    "opened": "ignore",
    "clicked": "ignore",
    "stored": "ignore",
}

LABELS: dict[str, str] = {
    "tag": "each of the message's `tags` (`o:tag` / `X-Mailgun-Tag` at sending)",
    "user_variable:": "each scalar entry of `user-variables` (`v:` / `X-Mailgun-Variables`)",
}

SYNONYMS = {
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "open": "opened",
    "click": "clicked",
}

_SUPPRESSED = {"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"}
# The failures whose delivery status says what the refusal was about.
_FAILURES = {"permanent_fail", "espblock", "temporary_fail", "failed"}


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
    if reason == "old":  # Mailgun gave up retrying, whatever severity it reports
        return "permanent_fail", "soft"
    if severity == "temporary":
        return "temporary_fail", "soft"
    if severity == "permanent":
        if reason in _SUPPRESSED:
            return reason.replace("-", "_"), None
        if reason == "espblock":
            return "espblock", "hard"
        return "permanent_fail", "hard"
    return "failed", None


def _tags(raw: Raw) -> list[str]:
    tags = raw.get("tags")
    return [tag for tag in (text(t) for t in tags) if tag] if isinstance(tags, list) else []


def _labels(raw: Raw) -> tuple[Label, ...]:
    return labels(
        [*(("tag", tag) for tag in _tags(raw)), *keyed("user_variable:", raw.get("user-variables"))]
    )


def _refusal(kind: str, raw: Raw, status: Raw) -> Refusal | None:
    """What the delivery status (and an `espblock` reason) says the refusal is about."""
    if kind not in _FAILURES:
        return None
    code = text(status.get("enhanced-code")) or text(status.get("message"))
    return stronger(status_refusal(code), SENDER if kind == "espblock" else None)


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent: a Mailgun event names one recipient."""
    kind, bounce_class = _kind_and_class(raw)
    tags = _tags(raw) if kind == "unsubscribed" else []
    if tags:
        kind = "tag_unsubscribed"
    recipient = text(raw.get("recipient"))
    timestamp = text(raw.get("timestamp"))
    headers = obj(obj(raw.get("message")).get("headers"))
    message_id = text(headers.get("message-id"))
    event_id = text(raw.get("id"))
    status = obj(raw.get("delivery-status"))
    return [
        ProviderEvent(
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
            scope=",".join(tags) or None,
            refusal=_refusal(kind, raw, status),
            labels=_labels(raw),
        )
    ]
