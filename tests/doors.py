"""Every provider's door, as the provider uses it: payloads with each provider's own
field names, signed as each provider signs, posted to the running app (the `pclient` and
`make_pclient` fixtures of tests/conftest.py: every door open), and the verdict read back
over HTTP — the status, the timeline, `explain`. Shared by the end-to-end cases of the
provider, fold, audit and storage suites."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from projections import Policy
from projections.policy import parse_policy
from projections.providers import PROVIDERS
from tests.conftest import AUTH, SECRET, settle
from tests.providers.helpers import webhook
from tests.providers.signing import (
    POSTMARK_PASSWORD,
    basic,
    dumps,
    mailgun_body,
    sendgrid_headers,
    sns_headers,
    sns_notification,
    svix_headers,
)

DAY = timedelta(days=1)


# -- the policy ---------------------------------------------------------------------------


def policy(text: str) -> Policy:
    return parse_policy(text.encode(), known_sources=frozenset(PROVIDERS))


# -- posting, as each provider posts ---------------------------------------------------


async def accepted(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


async def post_sendgrid(client: Any, body: bytes) -> dict[str, Any]:
    """One SendGrid delivery (a JSON array), signed anew as every delivery is."""
    return await accepted(
        await client.post(webhook("sendgrid"), content=body, headers=sendgrid_headers(body))
    )


def sendgrid_batch(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


async def post_smtp2go(client: Any, event: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(event, ensure_ascii=False).encode()
    return await accepted(
        await client.post(
            webhook("smtp2go"),
            content=body,
            params={"token": SECRET},
            headers={"content-type": "application/json"},
        )
    )


async def post_mailgun(client: Any, event_data: dict[str, Any]) -> dict[str, Any]:
    return await accepted(await client.post(webhook("mailgun"), content=mailgun_body(event_data)))


async def post_resend(client: Any, document: dict[str, Any], svix_id: str) -> dict[str, Any]:
    body = json.dumps(document).encode()
    return await accepted(
        await client.post(webhook("resend"), content=body, headers=svix_headers(body, svix_id))
    )


async def post_postmark(client: Any, record: dict[str, Any]) -> dict[str, Any]:
    return await accepted(
        await client.post(
            webhook("postmark"),
            content=json.dumps(record).encode(),
            headers=basic("postmark", POSTMARK_PASSWORD),
        )
    )


async def post_ses(client: Any, message: dict[str, Any], message_id: str) -> dict[str, Any]:
    envelope = sns_notification(message, message_id=message_id)
    return await accepted(
        await client.post(webhook("ses"), content=dumps(envelope), headers=sns_headers(envelope))
    )


# -- reading the verdict ----------------------------------------------------------------


async def get(client: Any, path: str) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status_code == 200, (path, response.text)
    return response.json()


async def verdict(client: Any, email: str) -> dict[str, Any]:
    """The settled status of an address."""
    await settle(client)
    return dict(await get(client, f"/v1/suppressions/{email}"))


async def timeline(client: Any, email: str) -> list[dict[str, Any]]:
    await settle(client)
    return list(await get(client, f"/v1/audit/recipients/{email}/events"))


async def explain_effects(client: Any, email: str) -> list[str]:
    await settle(client)
    steps = (await get(client, f"/v1/suppressions/{email}/explain"))["steps"]
    return [str(step["effect"]) for step in steps]


async def release(client: Any, email: str, note: str, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """A release (the bounces, and the causes named in `also`), answered 200."""
    response = await client.request(
        "DELETE", f"/v1/suppressions/{email}", json={"note": note, "also": list(also)},
        headers=AUTH,
    )  # fmt: skip
    return await accepted(response)


def flags(entry: dict[str, Any]) -> list[str]:
    return list(entry.get("flags") or [])


def suppressed_for(got: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether a status says suppressed, and for what."""
    return got["suppressed"], got["reason"]


# -- payloads with the providers' own field names ----------------------------------------


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sg_bounce(email: str, at: int, event_id: str, **fields: Any) -> dict[str, Any]:
    event = {
        "email": email,
        "timestamp": at,
        "smtp-id": f"<{event_id}@example.com>",
        "event": "bounce",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "status": "5.1.1",
        "sg_event_id": event_id,
        "sg_message_id": f"{event_id}.filterdrecv-1-0.0",
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}


def sg_event(kind: str, email: str, at: int, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": at,
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": f"{event_id}.filterdrecv-2-0.0",
        **fields,
    }


def smtp2go(kind: str, rcpt: str, at: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "id": event_id,
        "email_id": f"1xQz7a-{event_id}",
        "time": at,
        "sendtime": "2026-05-04T10:14:58.412233+00:00",
        "sender": "bounces@mail.example.com",
        "rcpt": rcpt,
        **fields,
    }


def smtp2go_hard(rcpt: str, at: str, event_id: str) -> dict[str, Any]:
    return smtp2go(
        "bounce",
        rcpt,
        at,
        event_id,
        bounce="hard",
        host="mx1.example.org [198.51.100.25]",
        message="550 5.1.1 Recipient address rejected: User unknown",
    )


def ses_mail(destination: list[str], message_id: str) -> dict[str, Any]:
    return {
        "timestamp": "2026-05-04T10:14:58.000Z",
        "source": "noreply@example.com",
        "sendingAccountId": "111122223333",
        "messageId": message_id,
        "destination": destination,
    }


def ses_bounce(address: str, at: str, *, sub_type: str = "General") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": at,
            "feedbackId": "0102018f-aaaa-bbbb-cccc-000000000001-000000",
            "reportingMTA": "dsn; a1-23.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": ses_mail([address], "0102018f-1234-5678-9abc-def012345678-000000"),
    }


def ses_subscription(
    destination: list[str], contact_list: str, *, unsubscribe_all: bool, at: str
) -> dict[str, Any]:
    """A list-management `Subscription` event: unsubscribeAll flipped to the given value."""
    return {
        "eventType": "Subscription",
        "subscription": {
            "contactList": contact_list,
            "timestamp": at,
            "source": "noreply@example.com",
            "newTopicPreferences": {"unsubscribeAll": unsubscribe_all},
            "oldTopicPreferences": {"unsubscribeAll": not unsubscribe_all},
        },
        "mail": ses_mail(destination, f"0102018f-5555-6666-7777-{contact_list}-000000"),
    }


def resend(kind: str, to: list[str], at: str, email_id: str, **data: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "created_at": at,
        "data": {
            "email_id": email_id,
            "from": "Example App <noreply@example.com>",
            "to": to,
            "subject": "Team update",
            **data,
        },
    }


def mailgun_failed(recipient: str, at: float, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "log-level": "error",
        "id": event_id,
        "timestamp": at,
        "recipient": recipient,
        "recipient-domain": recipient.rpartition("@")[2],
        "delivery-status": {"attempt-no": 1, "code": 550, "message": "5.1.1 no such user"},
        "message": {"headers": {"message-id": f"{event_id}@mg.example.com"}},
        **fields,
    }


def postmark_change(
    recipient: str, at: str, *, suppress: bool, origin: str, reason: str | None, stream: str
) -> dict[str, Any]:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": None,
        "ServerID": 23,
        "MessageStream": stream,
        "ChangedAt": at,
        "Recipient": recipient,
        "Origin": origin,
        "SuppressSending": suppress,
        "SuppressionReason": reason,
        "Tag": None,
        "Metadata": {},
    }
