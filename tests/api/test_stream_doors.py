"""Streams end to end through every provider's door, on both backends: each provider's
own stream field (a Postmark message stream, a SendGrid unsubscribe group, Mailgun tags,
SES message tags and configuration sets, Resend tags and audiences, an SMTP2GO custom
header, Mailtura's `stream` and `tags`) on an opt-out of that provider, posted signed as
the provider signs, in a body shaped like the provider's own (the fixtures under
tests/fixtures/ where there is one).

For each case, one address opts out with the field naming the newsletter and another
opts out the same way without it (or, where the provider always sends the field, with a
value no stream names): the first blocks the newsletter only, though its reason is in
the transactional stream's `blocked_by` (the evidence belongs to the newsletter), and is
suppressed when no stream is asked; the second is global evidence and blocks both.
Asked over `GET /v1/suppressions/{email}?stream=` and `POST /v1/suppressions/check`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from api.settings import load_settings
from tests.conftest import API_KEY, AUTH, SECRET, settle
from tests.doors import epoch, iso, policy
from tests.providers.helpers import webhook
from tests.providers.signing import (
    MAILGUN_KEY,
    MAILTURA_SECRET,
    POSTMARK_PASSWORD,
    SVIX_SECRET,
    TOPIC,
    basic,
    dumps,
    fixture_json,
    mailgun_body,
    mailtura_headers,
    place_certificate,
    sendgrid_headers,
    sendgrid_public_b64,
    sns_headers,
    sns_notification,
    svix_headers,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

LABELLED = "reader@example.org"  # its opt-out carries the field naming the newsletter
UNLABELLED = "someone@example.org"  # its opt-out names no stream: global evidence
TRANSACTIONAL = ["hard_bounce", "complaint", "unsubscribe", "manual", "provider_suppressed"]

Event = dict[str, Any]


# -- the doors: the settings that open each, and a body posted as the provider posts it --


@dataclass(frozen=True)
class Door:
    provider: str  # posted to /v1/webhooks/<provider>/events
    env: dict[str, str]  # the provider's own settings, beside the ledger and the API key
    post: Callable[[Event], dict[str, Any]]  # an event -> the request's content and headers


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _smtp2go(event: Event) -> dict[str, Any]:
    """SMTP2GO does not sign: the shared secret as the webhook's Authorization header."""
    return {
        "content": _json(event),
        "headers": {"content-type": "application/json", "Authorization": f"Bearer {SECRET}"},
    }


def _smtp2go_form(event: Event) -> dict[str, Any]:
    """SMTP2GO's default output: the same fields form-encoded, the secret as ?token=."""
    return {
        "content": urlencode(event).encode(),
        "params": {"token": SECRET},
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    }


def _ses(event: Event) -> dict[str, Any]:
    """The SES event in an SNS notification signed with the stand-in certificate."""
    envelope = sns_notification(event, message_id=str(uuid.uuid4()))
    return {"content": dumps(envelope), "headers": sns_headers(envelope)}


def _sendgrid(event: Event) -> dict[str, Any]:
    """A batch of one, ECDSA-signed over the timestamp and the raw body."""
    body = _json([event])
    return {"content": body, "headers": sendgrid_headers(body)}


def _mailgun(event: Event) -> dict[str, Any]:
    """`event-data` beside a fresh HMAC signature of timestamp + token."""
    return {"content": mailgun_body(event), "headers": {"content-type": "application/json"}}


def _resend(event: Event) -> dict[str, Any]:
    """Svix: the HMAC over id.timestamp.body; the svix-id is the event's id."""
    body = _json(event)
    return {"content": body, "headers": svix_headers(body, f"msg_{uuid.uuid4().hex}")}


def _postmark(event: Event) -> dict[str, Any]:
    """Postmark does not sign: HTTP Basic credentials set on the webhook."""
    return {"content": _json(event), "headers": basic("postmark", POSTMARK_PASSWORD)}


def _mailtura(event: Event) -> dict[str, Any]:
    """The hex HMAC of the raw body (whose `timestamp` the builders keep fresh)."""
    body = _json(event)
    return {"content": body, "headers": mailtura_headers(body)}


SMTP2GO = {"SMTP2GO_WEBHOOK_SECRET": SECRET}
DOORS: dict[str, Door] = {
    "smtp2go": Door("smtp2go", SMTP2GO, _smtp2go),
    "smtp2go-form": Door("smtp2go", SMTP2GO, _smtp2go_form),
    "ses": Door("ses", {"SES_SNS_TOPIC_ARNS": TOPIC, "SES_SNS_FETCH": "off"}, _ses),
    "sendgrid": Door("sendgrid", {"SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_b64()}, _sendgrid),
    "mailgun": Door("mailgun", {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}, _mailgun),
    "resend": Door("resend", {"RESEND_WEBHOOK_SECRET": SVIX_SECRET}, _resend),
    "postmark": Door("postmark", {"POSTMARK_WEBHOOK_SECRET": POSTMARK_PASSWORD}, _postmark),
    "mailtura": Door("mailtura", {"MAILTURA_WEBHOOK_SECRET": MAILTURA_SECRET}, _mailtura),
}


# -- the opt-outs, shaped like each provider's own (email, labelled) -> event -----------


def _at() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def _id() -> str:
    return uuid.uuid4().hex


def smtp2go_event(name: str) -> Callable[[str, bool], Event]:
    """An SMTP2GO fixture with the webhook passing on the sender's `X-Stream` header (a
    top-level key named as the header)."""

    def build(email: str, labelled: bool) -> Event:
        event = {**fixture_json("smtp2go", name), "rcpt": email, "id": _id(), "time": iso(_at())}
        return {**event, "X-Stream": "newsletter"} if labelled else event

    return build


# SES event publishing: `mail.tags` holds SES's own tags (the configuration set among
# them) and the sender's. Feedback notifications carry no tags at all.
def _ses_tags(configuration_set: str, **own: str) -> dict[str, list[str]]:
    return {
        "ses:operation": ["SendEmail"],
        "ses:configuration-set": [configuration_set],
        "ses:source-ip": ["192.0.2.10"],
        "ses:from-domain": ["example.com"],
        "ses:caller-identity": ["mailer"],
        **{name: [value] for name, value in own.items()},
    }


def ses_complaint(email: str, labelled: bool) -> Event:
    """A complaint (fixture ses/complaint.json) as event publishing sends it; the
    sender's `stream` tag on the newsletter's, only SES's own tags on the other."""
    fixture = fixture_json("ses", "complaint.json")
    complaint = {
        **fixture["complaint"],
        "complainedRecipients": [{"emailAddress": email}],
        "timestamp": iso(_at()),
        "feedbackId": f"0102018f-{_id()}-000000",
    }
    own = {"stream": "newsletter"} if labelled else {}
    mail = {
        **fixture["mail"],
        "messageId": f"0102018f-{_id()}-000000",
        "destination": [email],
        "tags": _ses_tags("mail-events", **own),
    }
    return {"eventType": "Complaint", "complaint": complaint, "mail": mail}


def ses_unsubscribe_all(email: str, labelled: bool) -> Event:
    """A list-management unsubscribe from every topic (fixture ses/unsubscribe.json):
    event publishing, so it always names a configuration set — `newsletter`, or
    `transactional`, which no stream names."""
    fixture = fixture_json("ses", "unsubscribe.json")
    mail = {
        **fixture["mail"],
        "messageId": f"0102018f-{_id()}-000000",
        "destination": [email],
        "tags": _ses_tags("newsletter" if labelled else "transactional"),
    }
    subscription = {**fixture["subscription"], "timestamp": iso(_at())}
    return {**fixture, "subscription": subscription, "mail": mail}


def _sendgrid_fixture(name: str, kind: str) -> Event:
    return next(e for e in fixture_json("sendgrid", name) if e["event"] == kind)


def sendgrid_spamreport(email: str, labelled: bool) -> Event:
    """The spam report of fixture sendgrid/batch.json, from mail sent in group 4211."""
    event = {
        **_sendgrid_fixture("batch.json", "spamreport"),
        "email": email,
        "timestamp": epoch(_at()),
        "sg_event_id": _id(),
    }
    return {**event, "asm_group_id": 4211} if labelled else event


def sendgrid_group_unsubscribe(email: str, labelled: bool) -> Event:
    """An unsubscribe from one group (fixture sendgrid/more_events.json): it always
    names its group — 4211, or 42, which no stream names."""
    return {
        **_sendgrid_fixture("more_events.json", "group_unsubscribe"),
        "email": email,
        "timestamp": epoch(_at()),
        "sg_event_id": _id(),
        "asm_group_id": 4211 if labelled else 42,
    }


def mailgun_event(name: str) -> Callable[[str, bool], Event]:
    """A Mailgun fixture's `event-data`, from a message tagged `newsletter` (`o:tag`); a
    tagged `unsubscribed` is the raw kind `tag_unsubscribed`, an unsubscribe by default."""

    def build(email: str, labelled: bool) -> Event:
        data = fixture_json("mailgun", name)["event-data"]
        event = {**data, "recipient": email, "id": _id(), "timestamp": _at().timestamp()}
        return {**event, "tags": ["newsletter"]} if labelled else event

    return build


def resend_complained(email: str, labelled: bool) -> Event:
    """Fixture resend/complained.json, from an email sent with the tag category=newsletter
    (`data.tags` as an object name -> value)."""
    fixture = fixture_json("resend", "complained.json")
    data = {**fixture["data"], "email_id": str(uuid.uuid4()), "to": [email]}
    if labelled:
        data["tags"] = {"category": "newsletter"}
    return {**fixture, "created_at": iso(_at()), "data": data}


NEWSLETTER_AUDIENCE = "78261eea-8f8b-4381-83c6-79fa7120f1cf"
OTHER_AUDIENCE = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"


def resend_contact_unsubscribed(email: str, labelled: bool) -> Event:
    """`contact.updated` with `unsubscribed: true`: a contact of an audience always names
    it — the newsletter's, or one no stream names. (No fixture: shaped as Resend's docs.)"""
    at = iso(_at())
    return {
        "type": "contact.updated",
        "created_at": at,
        "data": {
            "id": str(uuid.uuid4()),
            "audience_id": NEWSLETTER_AUDIENCE if labelled else OTHER_AUDIENCE,
            "created_at": iso(_at() - timedelta(days=30)),
            "updated_at": at,
            "email": email,
            "first_name": "Sam",
            "last_name": "Reader",
            "unsubscribed": True,
        },
    }


def postmark_unsubscribe(email: str, labelled: bool) -> Event:
    """Fixture postmark/subscription_change.json (the recipient unsubscribed). Every
    record names its message stream: `broadcast`, or `outbound`, which no stream names.
    (Its `Tag: newsletter` is a label too, `tag`, which no stream names either.)"""
    return {
        **fixture_json("postmark", "subscription_change.json"),
        "MessageID": str(uuid.uuid4()),
        "Recipient": email,
        "ChangedAt": iso(_at()),
        "MessageStream": "broadcast" if labelled else "outbound",
    }


def postmark_spam_complaint(email: str, labelled: bool) -> Event:
    """Fixture postmark/spam_complaint.json, in the `broadcast` stream or in `outbound`."""
    return {
        **fixture_json("postmark", "spam_complaint.json"),
        "ID": uuid.uuid4().int >> 66,
        "MessageID": str(uuid.uuid4()),
        "Email": email,
        "BouncedAt": iso(_at()),
        "MessageStream": "broadcast" if labelled else "outbound",
    }


def mailtura_complained(**fields: Any) -> Callable[[str, bool], Event]:
    """Fixture mailtura/complained.json with `fields` in `data` on the newsletter's (our
    own convention: Mailtura's spec names no stream field); a fresh `timestamp`, signed."""

    def build(email: str, labelled: bool) -> Event:
        fixture = fixture_json("mailtura", "complained.json")
        data = {**fixture["data"], "recipient": email, "emailId": f"msg_{_id()}"}
        if labelled:
            data.update(fields)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {**fixture, "id": f"evt_{_id()}", "timestamp": stamp, "data": data}

    return build


# -- the cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    door: str  # a key of DOORS
    match: str  # the newsletter's `[streams.newsletter.match]`, as a policy file says it
    event: Callable[[str, bool], Event]  # (address, carries the newsletter's field)
    reason: str  # the cause the opt-out is evidence of
    mapping: str = ""  # `[providers.NAME]`, where the default mapping ignores the kind


CASES = {
    # SMTP2GO's `unsubscribe` is ignored by default (as upstream documents): mapped here.
    "smtp2go-unsubscribe": Case(
        "smtp2go",
        'smtp2go_header = { "X-Stream" = "newsletter" }',
        smtp2go_event("unsubscribe.json"),
        "unsubscribe",
        mapping='unsubscribe = "unsubscribe"',
    ),
    "smtp2go-spam": Case(
        "smtp2go",
        'smtp2go_header = { "X-Stream" = "newsletter" }',
        smtp2go_event("spam.json"),
        "complaint",
    ),
    "smtp2go-spam-form": Case(
        "smtp2go-form",
        'smtp2go_header = { "X-Stream" = "newsletter" }',
        smtp2go_event("spam.json"),
        "complaint",
    ),
    "ses-complaint-tag": Case(
        "ses", 'ses_tag = { stream = "newsletter" }', ses_complaint, "complaint"
    ),
    "ses-unsubscribe-configuration-set": Case(
        "ses", 'ses_configuration_set = ["newsletter"]', ses_unsubscribe_all, "unsubscribe"
    ),
    "sendgrid-spamreport": Case(
        "sendgrid", "sendgrid_asm_group = [4211]", sendgrid_spamreport, "complaint"
    ),
    # A group unsubscribe is ignored by default (a preference, not a global opt-out):
    # with streams it is the newsletter's own opt-out, so the policy maps it.
    "sendgrid-group-unsubscribe": Case(
        "sendgrid",
        "sendgrid_asm_group = [4211]",
        sendgrid_group_unsubscribe,
        "unsubscribe",
        mapping='group_unsubscribe = "unsubscribe"',
    ),
    "mailgun-unsubscribed": Case(
        "mailgun", 'mailgun_tag = ["newsletter"]', mailgun_event("unsubscribed.json"), "unsubscribe"
    ),
    "mailgun-complained": Case(
        "mailgun", 'mailgun_tag = ["newsletter"]', mailgun_event("complained.json"), "complaint"
    ),
    "resend-complained": Case(
        "resend", 'resend_tag = { category = "newsletter" }', resend_complained, "complaint"
    ),
    "resend-contact-unsubscribed": Case(
        "resend",
        f'resend_audience = ["{NEWSLETTER_AUDIENCE}"]',
        resend_contact_unsubscribed,
        "unsubscribe",
    ),
    "postmark-unsubscribe": Case(
        "postmark", 'postmark_message_stream = ["broadcast"]', postmark_unsubscribe, "unsubscribe"
    ),
    "postmark-spam-complaint": Case(
        "postmark", 'postmark_message_stream = ["broadcast"]', postmark_spam_complaint, "complaint"
    ),
    "mailtura-complained-stream": Case(
        "mailtura",
        'mailtura_stream = ["newsletter"]',
        mailtura_complained(stream="newsletter"),
        "complaint",
    ),
    "mailtura-complained-tag": Case(
        "mailtura",
        'mailtura_tag = ["newsletter"]',
        mailtura_complained(tags=["newsletter", "weekly"]),
        "complaint",
    ),
}


def policy_for(case: Case) -> str:
    provider = DOORS[case.door].provider
    mapping = f"[providers.{provider}]\n{case.mapping}\n" if case.mapping else ""
    return f"""{mapping}
[streams.transactional]
blocked_by = {json.dumps(TRANSACTIONAL)}

[streams.newsletter]  # blocked by every reason
[streams.newsletter.match]
{case.match}
"""


# -- reading the verdicts ---------------------------------------------------------------


async def status(client: Any, email: str, stream: str | None = None) -> dict[str, Any]:
    params = {"stream": stream} if stream else {}
    got = await client.get(f"/v1/suppressions/{email}", params=params, headers=AUTH)
    assert got.status_code == 200, got.text
    return dict(got.json())


async def checked(client: Any, stream: str | None = None) -> set[str]:
    asked: dict[str, Any] = {"emails": [LABELLED, UNLABELLED]}
    if stream:
        asked["stream"] = stream
    got = await client.post("/v1/suppressions/check", json=asked, headers=AUTH)
    assert got.status_code == 200, got.text
    return {hit["email"] for hit in got.json()["suppressed"]}


BLOCKED = {"newsletter": {LABELLED, UNLABELLED}, "transactional": {UNLABELLED}}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_an_opt_out_with_the_providers_stream_field_blocks_that_stream_alone(
    case: Case, make_client: Any, db_path: Path, tmp_path: Path
) -> None:
    door = DOORS[case.door]
    settings = load_settings(
        {
            "BOUNCELEDGER_DB": str(db_path),
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
            "SES_SNS_CERT_CACHE": str(place_certificate(tmp_path / "sns-certs").parent),
            **door.env,
        }
    )
    async with make_client(settings=settings, policy=policy(policy_for(case))) as client:
        for email, labelled in ((LABELLED, True), (UNLABELLED, False)):
            event = case.event(email, labelled)
            response = await client.post(webhook(door.provider), **door.post(event))
            assert response.status_code == 200, response.text
        await settle(client)

        # Without a stream: the strictest verdict, each cause with the streams it is about.
        for email, streams in ((LABELLED, ["newsletter"]), (UNLABELLED, [])):
            got = await status(client, email)
            assert (got["suppressed"], got["reason"]) == (True, case.reason), (email, got)
            assert [c.get("streams", []) for c in got["causes"]] == [streams], (email, got)
        assert await checked(client) == {LABELLED, UNLABELLED}

        for stream, blocked in BLOCKED.items():
            for email in (LABELLED, UNLABELLED):
                got = await status(client, email, stream)
                assert got["suppressed"] is (email in blocked), (stream, email, got)
            assert await checked(client, stream) == blocked, stream
        # The newsletter's opt-out is a reason transactional mail is blocked by, but it
        # is about the newsletter: named among the other causes, not as the verdict.
        passed = await status(client, LABELLED, "transactional")
        assert [cause["reason"] for cause in passed["other_causes"]] == [case.reason]
