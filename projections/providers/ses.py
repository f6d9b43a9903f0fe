"""Amazon SES through SNS: an SNS envelope whose `Message` is the SES event, JSON in a string.

Both SES styles are read: feedback notifications (`notificationType`) and event
publishing (`eventType`). One SES event may name several recipients (a bounce's
`bouncedRecipients`, a delivery's `recipients`): each gets its own ProviderEvent. The
event id is the SNS `MessageId` (stable across SNS retries); the mapping adds the
recipient.
`bounceType` Permanent is hard, Transient soft, Undetermined unclassified (soft). A
bounce with `bounceSubType: OnAccountSuppressionList` is SES refusing an address on
the account's own list without saying whether a bounce or a complaint put it there
(`account_suppressed`); `Suppressed` (SES's global list) stays a bounce. Complaints
whose `complaintFeedbackType` is `not-spam`, `auth-failure` or `virus` are reports
about the message, not the recipient pressing "spam": their own raw kinds, ignored.

Refusal: `bounceSubType: NoEmail`, or a bounced recipient's `status` 5.1.1 / 5.1.10,
says the mailbox does not exist (`no_mailbox`); `ContentRejected` /
`AttachmentRejected`, or a recipient's `status` 5.7.x, is a refusal of the message or
the sender (`sender`).

A complaint's `complainedRecipients` are the recipients that *may* have complained:
with several, every ProviderEvent carries `shared` (how many). List-management
`Subscription` events name no address: the recipients are `mail.destination`, and with
several every ProviderEvent carries `shared` likewise. A shared complaint or
unsubscribe still suppresses every listed address (see projections.mapping). Their
scope is `subscription.contactList`.

Labels (which kind of mail an event is about) come from `mail.tags` (event publishing;
name -> list of values): the `ses:configuration-set` tag is `configuration_set`, each
value of the sender's own tags is `tag:<name>`, and SES's other built-in `ses:` tags
(source IP, from domain, caller identity…) are not labels. Feedback notifications carry
no tags.

SNS subscription handshakes and SES's plain-text "Successfully validated SNS topic"
notification hold no events. The signature is verified at the door.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import (
    JSON_ERRORS,
    NO_MAILBOX,
    SENDER,
    Label,
    Raw,
    Refusal,
    derived_id,
    each,
    json_object,
    labels,
    obj,
    snake,
    status_refusal,
    stronger,
    text,
)
from projections.providers.events import ProviderEvent
from projections.recipients import parse_time

NAME = "ses"

DEFAULT_MAPPING: dict[str, Kind] = {
    "bounce": "bounce",
    "complaint": "complaint",
    # An ISP's feedback loop saying the user marked the mail as *not* spam.
    "complaint_not_spam": "ignore",
    # Reports about the message (failed authentication, a virus), not a user's complaint.
    "complaint_auth_failure": "ignore",
    "complaint_virus": "ignore",
    # SES refused an address on the account's suppression list and did not say whether
    # a bounce or a complaint put it there.
    "account_suppressed": "provider_suppressed",
    "delivery": "delivered",
    "delivery_delay": "deferred",
    "unsubscribe_all": "unsubscribe",
    "resubscribe_all": "resubscribe",
    # A change of one topic's preference is not a global opt-out.
    "subscription": "ignore",
    "send": "ignore",
    "reject": "ignore",
    "open": "ignore",
    "click": "ignore",
    "rendering_failure": "ignore",
}

LABELS: dict[str, str] = {
    "configuration_set": "the mail's configuration set (its `ses:configuration-set` tag)",
    "tag:": "each value of the sender's own message tags (`mail.tags`), by tag name",
}

_BOUNCE_CLASS = {"permanent": "hard", "transient": "soft"}
# Complaint feedback types (RFC 5965) that are not a recipient's spam report.
_NOT_A_COMPLAINT = {
    "not-spam": "complaint_not_spam",
    "auth-failure": "complaint_auth_failure",
    "virus": "complaint_virus",
}
_SUBSCRIPTION_KINDS = {"subscription", "unsubscribe_all", "resubscribe_all"}
_COMPLAINT_KINDS = {"complaint", *_NOT_A_COMPLAINT.values()}
# What a bounce's subtype says the refusal is about.
_SUB_TYPE_REFUSAL: dict[str, Refusal] = {
    "noemail": NO_MAILBOX,
    "contentrejected": SENDER,
    "attachmentrejected": SENDER,
}
# The event object's key in the SES message, where it differs from the kind's name.
_DETAIL_KEY = {"delivery_delay": "deliveryDelay", "rendering_failure": "failure"}
_json = msgspec.json.Decoder()


def canonical_kind(name: str) -> str:
    """`DeliveryDelay`, `deliverydelay` and `delivery-delay` all become `delivery_delay`."""
    kind = snake(name)
    return {"deliverydelay": "delivery_delay", "renderingfailure": "rendering_failure"}.get(
        kind, kind
    )


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The SES event in an SNS notification; none for handshakes and plain-text tests.

    The body is JSON whatever the Content-Type says (SNS sends `text/plain`). A body
    without an SNS envelope is read as SES JSON delivered raw.
    """
    document = json_object(body)
    if "Type" not in document:
        return [{"sns_message_id": None, "sns_timestamp": None, "message": document}]
    if document["Type"] != "Notification":
        return []
    message = document.get("Message")
    if not isinstance(message, str):
        raise DecodeFailed("SNS notification has no `Message` string")
    try:
        event = _json.decode(message)
    except JSON_ERRORS:
        return []  # "Successfully validated SNS topic for Amazon SES event publishing."
    if not isinstance(event, dict):
        return []
    return [
        {
            "sns_message_id": text(document.get("MessageId")),
            "sns_timestamp": text(document.get("Timestamp")),
            "topic_arn": text(document.get("TopicArn")),
            "message": event,
        }
    ]


def _addresses(items: Any) -> list[tuple[str, Raw]]:
    """(address, entry) pairs from a list of strings or of `{"emailAddress": …}` objects."""
    out: list[tuple[str, Raw]] = []
    for item in items if isinstance(items, list) else []:
        entry = obj(item)
        address = text(item) if isinstance(item, str) else text(entry.get("emailAddress"))
        if address:
            out.append((address, entry))
    return out


def _subscription_kind(subscription: Raw) -> str:
    new = obj(subscription.get("newTopicPreferences")).get("unsubscribeAll")
    old = obj(subscription.get("oldTopicPreferences")).get("unsubscribeAll")
    if new is True:
        return "unsubscribe_all"
    if new is False and old is True:
        return "resubscribe_all"
    return "subscription"


def _labels(mail: Raw) -> tuple[Label, ...]:
    """`mail.tags`: the configuration set, and the sender's own tags (not SES's `ses:`)."""
    pairs: list[tuple[str, Any]] = []
    for name, values in obj(mail.get("tags")).items():
        tag = name.strip().lower()
        if tag == "ses:configuration-set":
            pairs += (("configuration_set", value) for value in each(values))
        elif not tag.startswith("ses:"):
            pairs += ((f"tag:{tag}", value) for value in each(values))
    return labels(pairs)


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent per recipient the SES event names."""
    message: Raw = raw["message"]
    name = text(message.get("eventType")) or text(message.get("notificationType")) or "unknown"
    kind = canonical_kind(name)
    mail = obj(message.get("mail"))
    detail = obj(message.get(_DETAIL_KEY.get(kind, kind)))
    bounce_class: str | None = None
    sub_type_refusal: Refusal | None = None
    diagnostic_key = "diagnosticCode"
    if kind == "bounce":
        recipients = _addresses(detail.get("bouncedRecipients"))
        bounce_class = _BOUNCE_CLASS.get((text(detail.get("bounceType")) or "").lower())
        sub_type = (text(detail.get("bounceSubType")) or "").lower()
        if sub_type == "onaccountsuppressionlist":
            kind = "account_suppressed"
        sub_type_refusal = _SUB_TYPE_REFUSAL.get(sub_type)
    elif kind == "complaint":
        recipients = _addresses(detail.get("complainedRecipients"))
        feedback = (text(detail.get("complaintFeedbackType")) or "").lower()
        kind = _NOT_A_COMPLAINT.get(feedback, kind)
    elif kind == "delivery":
        recipients = _addresses(detail.get("recipients"))
        diagnostic_key = "smtpResponse"
    elif kind == "delivery_delay":
        recipients = _addresses(detail.get("delayedRecipients"))
    else:
        recipients = _addresses(mail.get("destination"))
        if kind == "subscription":
            kind = _subscription_kind(detail)
    when = text(detail.get("timestamp")) or raw.get("sns_timestamp") or text(mail.get("timestamp"))
    message_id = text(mail.get("messageId"))
    sns_id = raw.get("sns_message_id") or derived_id(message_id, kind, when)
    common = text(detail.get(diagnostic_key)) or text(detail.get("bounceSubType"))
    scope, shared = None, 0
    if kind in _SUBSCRIPTION_KINDS:
        scope = text(detail.get("contactList"))
    if kind in _SUBSCRIPTION_KINDS or kind in _COMPLAINT_KINDS:
        shared = len(recipients) if len(recipients) > 1 else 0
    found = _labels(mail)
    return [
        ProviderEvent(
            raw_kind=kind,
            recipient=address,
            at=parse_time(when),
            event_id=sns_id,
            message_id=message_id,
            diagnostic=text(entry.get("diagnosticCode")) or text(entry.get("status")) or common,
            bounce_class=bounce_class,
            scope=scope,
            shared=shared,
            refusal=(
                stronger(sub_type_refusal, status_refusal(text(entry.get("status"))))
                if kind == "bounce"
                else None
            ),
            labels=found,
        )
        for address, entry in recipients
    ]
