"""Mailtura webhooks, per its spec: `{"id", "type": "email.bounced", "timestamp", "data"}`.

The recipient is `data.recipient`, hard/soft is `data.bounceType` (`hard` | `soft`), the
event id is `id`. The event names are `sent`, `delivered`, `opened`, `clicked`,
`bounced`, `complained` and `failed` (the `email.` prefix is optional). The flat shape
some notes guess at (`event`, `email`, `occurred_at`, `bounce_type`, `message_id`) is
read too. Whether the mailbox does not exist or the sender was refused is read from the
enhanced code in `diagnosticCode` (projections.facts.place). The HMAC over the raw body
is checked at the door.

Labels: the spec names no field saying which kind of mail an event is about, so these
are our own convention: `data.stream` (top-level `stream` in the flat shape) is
`stream`, and `data.tags` (likewise `tags`) is `tag` for each entry of an array of
strings, or `tag:<name>` for each entry of an object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import (
    Label,
    Raw,
    derived_id,
    each,
    json_object,
    keyed,
    labels,
    obj,
    text,
)
from projections.providers.events import ProviderEvent
from projections.recipients import parse_time

NAME = "mailtura"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "bounced": "bounce",
    "complained": "complaint",
    "sent": "ignore",
    "opened": "ignore",
    "clicked": "ignore",
    "failed": "ignore",  # Mailtura could not send: the sender's problem
}

# Not in Mailtura's spec: the fields a sender is asked to set (see the docstring).
LABELS: dict[str, str] = {
    "stream": "`data.stream`: the stream the email was sent in",
    "tag": "each of `data.tags`, when it is an array of strings",
    "tag:": "each entry of `data.tags`, when it is an object name -> value",
}

SYNONYMS = {"bounce": "bounced", "complaint": "complained", "open": "opened", "click": "clicked"}


def canonical_kind(name: str) -> str:
    """`email.bounced` -> `bounced`, with synonyms folded."""
    name = name.strip().lower().replace("-", "_").removeprefix("email.")
    return SYNONYMS.get(name, name)


def event_name(document: Raw) -> str | None:
    """The event's name: `type` per the spec, `event` in the flat shape."""
    return text(document.get("type")) or text(document.get("event"))


def event_time(document: Raw) -> str | None:
    """The event's time: `timestamp` per the spec, `occurred_at` in the flat shape."""
    return text(document.get("timestamp")) or text(document.get("occurred_at"))


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The one event of a POST (it must have a `type`)."""
    document = json_object(body)
    if event_name(document) is None:
        raise DecodeFailed("body has no `type` field")
    return [document]


def _labels(stream: str | None, tags: Any) -> tuple[Label, ...]:
    named = keyed("tag:", tags) if isinstance(tags, dict) else [("tag", t) for t in each(tags)]
    return labels([("stream", stream), *named])


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent: a Mailtura event names one recipient."""
    kind = canonical_kind(event_name(raw) or "")
    data = obj(raw.get("data"))

    def field(*names: str) -> str | None:
        return next((v for v in (text(data.get(n)) or text(raw.get(n)) for n in names) if v), None)

    recipient = field("recipient", "email")
    message_id = field("emailId", "message_id")
    when = event_time(raw)
    bounce = (field("bounceType", "bounce_type") or "").lower()
    reason = " ".join(part for part in (field("diagnosticCode"), field("reason")) if part)
    return [
        ProviderEvent(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(when),
            event_id=text(raw.get("id")) or derived_id(message_id, kind, when, recipient=recipient),
            message_id=message_id,
            diagnostic=reason or None,
            bounce_class=bounce if bounce in ("hard", "soft") else None,
            labels=_labels(field("stream"), data.get("tags") or raw.get("tags")),
        )
    ]
