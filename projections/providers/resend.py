"""Resend (delivered by Svix): `{"type": "email.bounced", "created_at": …, "data": {…}}`.

The body carries no event id: the `svix-id` header (the same on every retry) is the id,
read from the receipt's stored headers. `data.bounce.type` is Permanent (hard),
Transient (soft) or Undetermined (unclassified, so soft); a bounce whose `subType` is
`OnAccountSuppressionList` is Resend refusing an address on its own list without saying
why (`account_suppressed`), as is `email.suppressed`.

Refusal (the subtypes mirror SES): `bounce.subType: NoEmail` says the mailbox does not
exist (`no_mailbox`); `ContentRejected` / `AttachmentRejected` refuse the message
(`sender`).

`data.to` is an array with no marker of which recipient an event is about: every listed
address gets the event, and when there are several each ProviderEvent carries `shared`
(how many): the mapping never heals anyone from it, a complaint suppresses every listed
address, and such a bounce is left unclassified (soft), because a hard bounce must not
suppress the addresses that did not bounce.

`suppression.added` / `suppression.removed` (Resend's own suppression list) name their
address in `data.email`; they become `suppression_added` (`provider_suppressed`: Resend
does not say why) and `suppression_removed` (ignored: lifting its own list is not the
recipient's consent).

Contact events (`contact.created`, `contact.updated`, `contact.deleted`) name their
address in `data.email` and are scoped to `data.audience_id`. A contact created or
updated with `unsubscribed: true` is `contact_unsubscribed` (an unsubscribe from that
audience); with `unsubscribed: false` it stays `contact_created` / `contact_updated`,
ignored: Resend sends `contact.updated` for any change (a name edit) and the payload
carries no previous value, so it is never a resubscribe. `contact.deleted` is
`contact_deleted`, ignored. A known event naming no address is still read (recipient
None), so it is counted as unattributed. The Svix signature is verified at the door.

Labels (which kind of mail an event is about): each of `data.tags` (`tag:<name>`; an
object name -> value, or an array of `{name, value}`) and `data.audience_id`
(`audience`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    json_object,
    keyed,
    labels,
    obj,
    text,
)
from projections.providers.events import ProviderEvent
from projections.recipients import parse_time

NAME = "resend"

# The key under which decode() puts the `svix-id` header in each raw event.
SVIX_ID = "svix-id"

DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "bounced": "bounce",
    "delivery_delayed": "deferred",
    "complained": "complaint",
    "sent": "ignore",
    "opened": "ignore",
    "clicked": "ignore",
    "failed": "ignore",  # Resend could not send: the sender's problem
    # Resend refused an address on its own list and did not say why.
    "suppressed": "provider_suppressed",
    "account_suppressed": "provider_suppressed",  # a bounce, subType OnAccountSuppressionList
    "suppression_added": "provider_suppressed",
    # Resend (or the customer) lifted its own suppression: not the recipient's consent.
    "suppression_removed": "ignore",
    "scheduled": "ignore",
    "received": "ignore",
    # A contact created or updated with `unsubscribed: true`: an unsubscribe from the
    # audience (`data.audience_id`).
    "contact_unsubscribed": "unsubscribe",
    # Any other change of a contact: the payload carries no previous value, so
    # `unsubscribed: false` is never a resubscribe.
    "contact_created": "ignore",
    "contact_updated": "ignore",
    "contact_deleted": "ignore",
}

LABELS: dict[str, str] = {
    "tag:": "each of the email's `tags`, by tag name",
    "audience": "`audience_id`: the audience (contact events name theirs)",
}

_BOUNCE_CLASS = {"permanent": "hard", "transient": "soft"}
_SUB_TYPE_REFUSAL: dict[str, Refusal] = {
    "noemail": NO_MAILBOX,
    "contentrejected": SENDER,
    "attachmentrejected": SENDER,
}


def canonical_kind(name: str) -> str:
    """`email.bounced` -> `bounced` (the `email.` prefix is optional in a policy);
    `suppression.added` -> `suppression_added`."""
    name = name.strip().lower().replace("-", "_").removeprefix("email.")
    return name.replace(".", "_")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value.strip() or None
    return None


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The one event of a POST, with the `svix-id` header added under `SVIX_ID`."""
    document = json_object(body)
    if not text(document.get("type")):
        raise DecodeFailed("body has no `type` field")
    return [{**document, SVIX_ID: _header(headers, SVIX_ID)}]


def _recipients(data: Raw) -> list[str]:
    to = data.get("to")
    listed = to if isinstance(to, list) else [to]
    return [address for address in (text(item) for item in listed) if address]


_SUPPRESSION_LIST = {"suppression_added", "suppression_removed"}
_CONTACT = {"contact_created", "contact_updated", "contact_deleted"}


def _contact_kind(kind: str, data: Raw) -> str:
    """`contact_unsubscribed` for a contact created or updated as unsubscribed."""
    if kind != "contact_deleted" and data.get("unsubscribed") is True:
        return "contact_unsubscribed"
    return kind


def _tags(tags: Any) -> list[tuple[str, Any]]:
    """`data.tags`: an object name -> value, or an array of `{"name", "value"}`."""
    if isinstance(tags, dict):
        return keyed("tag:", tags)
    entries = [obj(entry) for entry in each(tags)]
    return [(f"tag:{name}", e.get("value")) for e in entries if (name := text(e.get("name")))]


def _labels(data: Raw) -> tuple[Label, ...]:
    return labels([*_tags(data.get("tags")), ("audience", data.get("audience_id"))])


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent per address in `data.to` (`data.email` for suppression-list and
    contact events)."""
    kind = canonical_kind(str(raw["type"]))
    data = obj(raw.get("data"))
    created = text(raw.get("created_at"))
    message_id = text(data.get("email_id"))
    scope = contact_id = None
    by_email = kind in _SUPPRESSION_LIST or kind in _CONTACT
    if kind in _CONTACT:
        contact_id = text(data.get("id"))
        scope = text(data.get("audience_id"))
        kind = _contact_kind(kind, data)
    email = text(data.get("email")) if by_email else None
    recipients: list[str | None] = [email] if by_email else [*_recipients(data)]
    if not recipients and kind in DEFAULT_MAPPING:
        recipients = [None]  # a known event naming nobody: counted as unattributed
    bounce = obj(data.get("bounce"))
    bounce_class = _BOUNCE_CLASS.get((text(bounce.get("type")) or "").lower())
    sub_type = (text(bounce.get("subType")) or "").lower()
    if kind == "bounced" and sub_type == "onaccountsuppressionlist":
        kind = "account_suppressed"
    refusal = _SUB_TYPE_REFUSAL.get(sub_type) if kind == "bounced" else None
    shared = len(recipients) if len(recipients) > 1 else 0
    if shared:
        bounce_class = None
    event_id = text(raw.get(SVIX_ID)) or derived_id(message_id or contact_id, kind, created)
    suppressed = obj(data.get("suppressed"))
    found = _labels(data)
    diagnostic = (
        text(bounce.get("message"))
        or text(bounce.get("subType"))
        or text(suppressed.get("message"))
        or text(suppressed.get("type"))
        or text(data.get("reason"))
    )
    return [
        ProviderEvent(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(created),
            event_id=event_id,
            message_id=message_id,
            diagnostic=diagnostic,
            bounce_class=bounce_class if kind in ("bounced", "account_suppressed") else None,
            scope=scope,
            shared=shared,
            refusal=refusal,
            labels=found,
        )
        for recipient in recipients
    ]
