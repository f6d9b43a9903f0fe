"""Resend (delivered by Svix): `{"type": "email.bounced", "created_at": …, "data": {…}}`.

The body carries no event id: the `svix-id` header (the same on every retry) is the id,
read from the receipt's stored headers. `data.bounce.type` is Permanent (hard),
Transient (soft) or Undetermined (unclassified, so soft); a bounce whose `subType` is
`OnAccountSuppressionList` is Resend refusing an address on its own list without saying
why (`account_suppressed`), as is `email.suppressed`.

`data.to` is an array with no marker of which recipient an event is about: every listed
address gets the event, and when there are several each Facts carries `shared` (how
many), so the mapping never heals, complains or unsubscribes on anyone's behalf from
it; such a bounce is also left unclassified (soft), because a hard bounce must not
suppress the addresses that did not bounce.

`suppression.added` / `suppression.removed` (Resend's own suppression list) name their
address in `data.email`; they become `suppression_added` (`provider_suppressed`: Resend
does not say why) and `suppression_removed` (ignored: lifting its own list is not the
recipient's consent). The Svix signature is verified at the door.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import Raw, derived_id, json_object, obj, text
from projections.providers.facts import Facts
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
}

_BOUNCE_CLASS = {"permanent": "hard", "transient": "soft"}


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


def facts(raw: Raw) -> list[Facts]:
    """One Facts per address in `data.to` (`data.email` for suppression-list events)."""
    kind = canonical_kind(str(raw["type"]))
    data = obj(raw.get("data"))
    created = text(raw.get("created_at"))
    message_id = text(data.get("email_id"))
    email = text(data.get("email")) if kind in _SUPPRESSION_LIST else None
    recipients = [email] if email else _recipients(data)
    bounce = obj(data.get("bounce"))
    bounce_class = _BOUNCE_CLASS.get((text(bounce.get("type")) or "").lower())
    sub_type = (text(bounce.get("subType")) or "").lower()
    if kind == "bounced" and sub_type == "onaccountsuppressionlist":
        kind = "account_suppressed"
    shared = len(recipients) if len(recipients) > 1 else 0
    if shared:
        bounce_class = None
    event_id = text(raw.get(SVIX_ID)) or derived_id(message_id, kind, created)
    suppressed = obj(data.get("suppressed"))
    diagnostic = (
        text(bounce.get("message"))
        or text(bounce.get("subType"))
        or text(suppressed.get("message"))
        or text(suppressed.get("type"))
        or text(data.get("reason"))
    )
    return [
        Facts(
            raw_kind=kind,
            recipient=recipient,
            at=parse_time(created),
            event_id=event_id,
            message_id=message_id,
            diagnostic=diagnostic,
            bounce_class=bounce_class if kind in ("bounced", "account_suppressed") else None,
            shared=shared,
        )
        for recipient in recipients
    ]
