"""Postmark: RecordType and bounce `Type`, subscription changes, HTTP Basic at the door."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.settings import Secret
from api.signatures import BasicAuthRequired, SignatureInvalid, verify_basic_password
from projections import DecodeFailed
from projections.events import (
    Bounce,
    Complaint,
    Deferred,
    Delivered,
    Ignored,
    ProviderSuppressed,
    Unsubscribe,
)
from projections.policy import parse_policy
from projections.providers import PROVIDERS, postmark
from tests.conftest import AUTH, fixture_bytes, settle
from tests.providers.helpers import (
    RECEIVED_AT,
    mapped,
    micros,
    only,
    placed,
    state,
    stored,
    webhook,
)
from tests.providers.signing import POSTMARK_PASSWORD, basic, fixture_json

HARD = fixture_bytes("postmark", "hard_bounce.json")


def one(name: str) -> Any:
    return only(mapped("postmark", fixture_bytes("postmark", name)))


def bounce_of(type_name: str | None = None, code: int | None = None) -> Any:
    record = fixture_json("postmark", "hard_bounce.json")
    record.pop("Type")
    record.pop("TypeCode")
    if type_name is not None:
        record["Type"] = type_name
    if code is not None:
        record["TypeCode"] = code
    return only(mapped("postmark", json.dumps(record).encode()))


# Decoding and mapping.


def test_a_hard_bounce_maps_with_postmark_fields() -> None:
    event = one("hard_bounce.json")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.raw_kind == "hard_bounce"
    assert event.recipient == "nobody@example.org"
    assert event.event_id == "Bounce:4323372036854775807"
    assert event.message_id == "2f6c2a3e-8b1d-4a5e-9c7f-0d1e2f3a4b5c"
    assert event.at == micros("2026-05-04T10:15:02.481Z")  # seven fractional digits
    assert (
        event.diagnostic
        == "smtp;550 5.1.1 The email account that you tried to reach does not exist."
    )


@pytest.mark.parametrize(
    ("name", "kind", "recipient"),
    [
        ("soft_bounce.json", Bounce, "full.box@example.net"),
        ("spam_complaint.json", Complaint, "annoyed@example.com"),
        ("delivery.json", Delivered, "alice@example.com"),
        ("subscription_change.json", Unsubscribe, "bob@example.com"),
        # Origin: Customer — the customer lifting its own suppression, not consent.
        ("reactivated.json", Ignored, "bob@example.com"),
        ("transient.json", Deferred, "slow@example.net"),
        ("auto_responder.json", Ignored, "away@example.com"),
    ],
)
def test_each_postmark_record_maps_to_its_kind(name: str, kind: type, recipient: str) -> None:
    event = one(name)
    assert isinstance(event, kind)
    assert event.recipient == recipient


def test_a_soft_bounce_is_soft() -> None:
    assert one("soft_bounce.json").bounce_class == "soft"


@pytest.mark.parametrize(
    ("type_name", "kind", "bounce_class"),
    [
        ("BadEmailAddress", Bounce, "hard"),
        ("DnsError", Bounce, "soft"),
        ("Blocked", Bounce, "soft"),
        ("SpamNotification", Bounce, "soft"),
        ("Unknown", Bounce, "soft"),
        ("Unsubscribe", Unsubscribe, None),
        ("Subscribe", Ignored, None),  # not verifiable consent
        ("SpamComplaint", Complaint, None),
        ("ManuallyDeactivated", ProviderSuppressed, None),
        ("SMTPApiError", Ignored, None),
        ("DMARCPolicy", Ignored, None),
        ("ChallengeVerification", Ignored, None),
        ("VirusNotification", Ignored, None),
    ],
)
def test_every_bounce_type_maps(type_name: str, kind: type, bounce_class: str | None) -> None:
    event = bounce_of(type_name)
    assert isinstance(event, kind), type_name
    assert "unknown" not in getattr(event, "reason", "")
    if bounce_class is not None:
        assert event.bounce_class == bounce_class


def test_the_type_code_is_the_backup_when_the_type_string_is_missing() -> None:
    assert bounce_of(code=1).bounce_class == "hard"
    assert bounce_of(code=4096).bounce_class == "soft"
    assert isinstance(bounce_of(code=16), Unsubscribe)  # not `Blocked`, whatever some docs say
    assert bounce_of(code=999).raw_kind == "unknown"


@pytest.mark.parametrize(
    ("reason", "origin", "kind", "raw_kind"),
    [
        ("HardBounce", "Recipient", Bounce, "subscription_change.hard_bounce"),
        ("SpamComplaint", "Recipient", Complaint, "subscription_change.spam_complaint"),
        (
            "ManualSuppression",
            "Customer",
            ProviderSuppressed,
            "subscription_change.manual_suppression",
        ),
        ("ManualSuppression", "Recipient", Unsubscribe, "subscription_change.unsubscribed"),
    ],
)
def test_subscription_changes_mirror_postmark_suppressions(
    reason: str, origin: str, kind: type, raw_kind: str
) -> None:
    record = fixture_json("postmark", "subscription_change.json")
    record.update(SuppressionReason=reason, Origin=origin)
    event = only(mapped("postmark", json.dumps(record).encode()))
    assert isinstance(event, kind)
    assert event.raw_kind == raw_kind
    if kind is Bounce:
        assert event.bounce_class == "hard"


def record_facts(name: str, **fields: Any) -> Any:
    """The one ProviderEvent Postmark's module reads from a fixture record with `fields` changed."""
    record = fixture_json("postmark", name) | fields
    [fact] = postmark.facts(postmark.decode(json.dumps(record).encode())[0])
    return fact


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        # Issue 18, N6: the bounce type says the mailbox does not exist, whatever Details says
        ({"Type": "BadEmailAddress", "TypeCode": 100000, "Details": "Invalid email address"},
         "no_mailbox"),
        ({"Type": None, "TypeCode": 100000, "Details": "Invalid email address"}, "no_mailbox"),
        ({"Type": "HardBounce", "Details": "smtp;550 No Such User Here"}, None),
        ({"Type": "SoftBounce", "Details": "smtp;452 4.2.2 mailbox full"}, None),
    ],
)  # fmt: skip
def test_a_bad_email_address_bounce_states_that_the_mailbox_does_not_exist(
    fields: dict[str, Any], refusal: str | None
) -> None:
    assert record_facts("hard_bounce.json", **fields).refusal == refusal


@pytest.mark.parametrize(
    ("details", "refusal"),
    [
        ("smtp;550 5.1.1 The email account that you tried to reach does not exist.", "no_mailbox"),
        ("smtp;554 5.7.1 Service unavailable; client host blocked using Spamhaus", "sender"),
    ],
)
def test_the_details_text_is_the_fallback(details: str, refusal: str) -> None:
    record = fixture_json("postmark", "hard_bounce.json") | {"Details": details}
    [keyed] = placed("postmark", json.dumps(record).encode())
    assert keyed.fact.refusal == refusal


def test_a_bad_email_address_inside_an_exclusion_window_still_suppresses() -> None:
    record = fixture_json("postmark", "hard_bounce.json") | {
        "Type": "BadEmailAddress",
        "TypeCode": 100000,
        "Details": "Invalid email address",
    }
    policy = parse_policy(
        b'[[exclude]]\nsource = "postmark"\nstart = 2026-05-04T00:00:00Z\n'
        b"end = 2026-05-05T00:00:00Z\n",
        known_sources=frozenset(PROVIDERS),
    )
    event = only(mapped("postmark", json.dumps(record).encode(), policy=policy))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    record["Type"], record["TypeCode"] = "HardBounce", 1  # no field, no code: excluded
    assert isinstance(only(mapped("postmark", json.dumps(record).encode(), policy=policy)), Ignored)


def test_a_subscribe_bounce_is_kept_but_never_a_resubscribe() -> None:
    # H3: TypeCode 32 is a mail that came back to the bounce address, not consent.
    for fields in ({"Type": "Subscribe", "TypeCode": 32}, {"Type": None, "TypeCode": 32}):
        fact = record_facts("hard_bounce.json", **fields)
        assert fact.raw_kind == "subscribe"
        assert fact.bounce_class is None
        assert fact.recipient == "nobody@example.org"
        assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "ignore"


@pytest.mark.parametrize("origin", ["Customer", "Admin", None])
def test_a_reactivation_not_by_the_recipient_is_ignored(origin: str | None) -> None:
    # H2: the customer or an admin lifting Postmark's suppression is not re-consent.
    fact = record_facts("reactivated.json", Origin=origin)
    assert fact.raw_kind == "subscription_change.reactivated"
    assert fact.recipient == "bob@example.com"
    assert fact.scope == "broadcast"
    assert fact.shared == 0
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "ignore"


def test_a_reactivation_by_the_recipient_is_a_resubscribe_to_its_stream() -> None:
    fact = record_facts("reactivated.json", Origin="Recipient")
    assert fact.raw_kind == "subscription_change.resubscribed"
    assert fact.recipient == "bob@example.com"
    assert fact.scope == "broadcast"
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "resubscribe"


def test_a_recipient_unsubscribe_is_scoped_to_its_message_stream() -> None:
    fact = record_facts("subscription_change.json")  # ManualSuppression, Origin: Recipient
    assert fact.raw_kind == "subscription_change.unsubscribed"
    assert fact.recipient == "bob@example.com"
    assert fact.scope == "broadcast"
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "unsubscribe"


def test_an_unsubscribe_bounce_is_scoped_to_its_message_stream() -> None:
    fact = record_facts("hard_bounce.json", Type="Unsubscribe", TypeCode=16, MessageStream="news")
    assert fact.raw_kind == "unsubscribe"
    assert fact.scope == "news"
    assert fact.bounce_class is None
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "unsubscribe"


@pytest.mark.parametrize("origin", ["Customer", "Admin"])
def test_a_manual_suppression_by_the_customer_is_a_provider_suppression(origin: str) -> None:
    fact = record_facts("subscription_change.json", Origin=origin)
    assert fact.raw_kind == "subscription_change.manual_suppression"
    assert fact.recipient == "bob@example.com"
    assert fact.scope is None  # not an unsubscribe: no stream preference to lift later
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "provider_suppressed"


def test_a_manually_deactivated_bounce_is_a_provider_suppression() -> None:
    fact = record_facts("hard_bounce.json", Type="ManuallyDeactivated", TypeCode=100002)
    assert fact.raw_kind == "manually_deactivated"
    assert fact.bounce_class is None
    assert fact.scope is None
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "provider_suppressed"


def test_bounces_and_suppressions_by_reason_carry_no_scope() -> None:
    assert record_facts("hard_bounce.json").scope is None
    hard = record_facts("subscription_change.json", SuppressionReason="HardBounce")
    assert hard.raw_kind == "subscription_change.hard_bounce"
    assert hard.scope is None


def test_records_without_an_id_get_a_stable_derived_one() -> None:
    body = fixture_bytes("postmark", "delivery.json")
    first, again = placed("postmark", body), placed("postmark", body)
    assert first[0].key == again[0].key
    assert first[0].fact.event_id.startswith("derived:")
    later = json.loads(body) | {"DeliveredAt": "2026-05-04T11:00:00Z"}
    assert placed("postmark", json.dumps(later).encode())[0].key != first[0].key


def test_a_bounce_and_its_subscription_change_are_both_kept() -> None:
    bounce = placed("postmark", HARD)[0]
    record = fixture_json("postmark", "subscription_change.json")
    record.update(Recipient="nobody@example.org", SuppressionReason="HardBounce")
    change = placed("postmark", json.dumps(record).encode())[0]
    assert bounce.key != change.key  # the fold makes the second one a no-op


@pytest.mark.parametrize("body", [b"", b"[]", b'{"Email": "a@example.org"}', b"{"])
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        postmark.decode(body)


@pytest.mark.parametrize("code", [None, 1.0, "1", [1], {"code": 1}])
def test_a_bounce_whose_type_code_is_missing_or_not_an_integer_is_read_as_unknown(
    code: Any,
) -> None:
    # Only an integer TypeCode is looked up: `1.0` or `"1"` is not Postmark's HardBounce code.
    fact = record_facts("hard_bounce.json", Type=None, TypeCode=code)
    assert fact.raw_kind == "unknown"
    assert fact.bounce_class is None  # Postmark made no hard/soft call
    assert postmark.DEFAULT_MAPPING[fact.raw_kind] == "bounce"


@pytest.mark.parametrize(
    ("type_name", "bounce_class"),
    [
        ("HardBounce", "hard"),
        ("BadEmailAddress", "hard"),
        ("SoftBounce", "soft"),
        ("Transient", "soft"),
        ("DnsError", "soft"),
        ("Blocked", "soft"),
        ("SpamNotification", "soft"),
        ("Unknown", None),
        ("AutoResponder", None),
        ("ManuallyDeactivated", None),
    ],
)
def test_the_bounce_type_states_postmarks_hard_or_soft_call(
    type_name: str, bounce_class: str | None
) -> None:
    assert record_facts("hard_bounce.json", Type=type_name).bounce_class == bounce_class


@pytest.mark.parametrize(
    ("origin", "raw_kind"),
    [
        ("Recipient", "subscription_change.unsubscribed"),
        ("Customer", "subscription_change.manual_suppression"),
        (None, "subscription_change.manual_suppression"),
    ],
)
def test_a_suppression_without_a_reason_is_a_manual_suppression(
    origin: str | None, raw_kind: str
) -> None:
    fact = record_facts("subscription_change.json", SuppressionReason=None, Origin=origin)
    assert fact.raw_kind == raw_kind


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("HardBounce", "hard_bounce"),
        ("SMTPApiError", "smtp_api_error"),
        ("DMARCPolicy", "dmarc_policy"),
        ("SubscriptionChange.HardBounce", "subscription_change.hard_bounce"),
        ("subscription_change.manual_suppression", "subscription_change.manual_suppression"),
        # each side of the dot is read on its own, blanks around it aside
        ("SubscriptionChange. HardBounce", "subscription_change.hard_bounce"),
        (" SubscriptionChange .SpamComplaint ", "subscription_change.spam_complaint"),
    ],
)
def test_record_and_type_names_are_read_in_snake_case(name: str, kind: str) -> None:
    assert postmark.canonical_kind(name) == kind


@pytest.mark.parametrize(
    "body",
    [
        b'{"Email": "a@example.org"}',
        b'{"RecordType": "", "Email": "a@example.org"}',
        b'{"RecordType": {"name": "Bounce"}, "Email": "a@example.org"}',
    ],
)
def test_a_body_without_a_record_type_is_refused_saying_so(body: bytes) -> None:
    with pytest.raises(DecodeFailed) as refused:
        postmark.decode(body)
    assert str(refused.value) == "body has no `RecordType` field"


def test_a_record_without_a_time_is_placed_at_the_receipt_time() -> None:
    fact = record_facts("delivery.json", DeliveredAt=None)
    assert fact.at is None
    record = fixture_json("postmark", "delivery.json")
    del record["DeliveredAt"]
    [keyed] = placed("postmark", json.dumps(record).encode())
    assert keyed.fact.at == RECEIVED_AT


def derived_from(*parts: str) -> str:
    """A derived event id, computed independently: SHA-256 over the parts joined by US."""
    return "derived:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def test_a_record_without_an_id_is_identified_by_type_kind_message_time_and_recipient() -> None:
    fact = record_facts("delivery.json", Recipient="Alice@Example.com")
    assert fact.event_id == derived_from(
        "Delivery",
        "delivery",
        "c3d4e5f6-a7b8-4c9d-0e1f-2a3b4c5d6e7f",
        "2026-05-04T10:15:05.3000000Z",
        "alice@example.com",  # as addresses are compared: case-insensitively
    )
    complaint = record_facts("spam_complaint.json", ID=None)
    bounce = record_facts("spam_complaint.json", ID=None, RecordType="Bounce", Type="SpamComplaint")
    assert complaint.raw_kind == bounce.raw_kind == "spam_complaint"
    assert complaint.event_id != bounce.event_id  # another record type, another record


@pytest.mark.parametrize(
    "change",
    [
        {"Recipient": "carol@example.com"},
        {"MessageID": "0a1b2c3d-0000-4000-8000-000000000000"},
        {"DeliveredAt": "2026-05-04T11:00:00Z"},
    ],
)
def test_a_record_without_an_id_about_another_recipient_message_or_time_is_another_record(
    change: dict[str, str],
) -> None:
    same = record_facts("delivery.json", Recipient="ALICE@example.com").event_id
    assert record_facts("delivery.json").event_id == same
    assert record_facts("delivery.json", **change).event_id != same


@pytest.mark.parametrize("details", [None, "", "   "])
def test_a_bounce_without_details_gives_its_description(details: str | None) -> None:
    fact = record_facts("hard_bounce.json", Details=details)
    assert fact.diagnostic == (
        "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
    )


# Basic auth, as a pure function.

SECRET = Secret(POSTMARK_PASSWORD)


@pytest.mark.parametrize("user", ["postmark", "", "Post Mark ü"])  # RFC 7617: no colon
def test_the_password_is_checked_whatever_the_user(user: str) -> None:
    verify_basic_password(basic(user, POSTMARK_PASSWORD)["Authorization"], SECRET)


def test_a_wrong_password_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_basic_password(basic("postmark", "wrong")["Authorization"], SECRET)


@pytest.mark.parametrize("header", [None, "", f"Bearer {POSTMARK_PASSWORD}", "Basic"])
def test_missing_credentials_ask_for_basic(header: str | None) -> None:
    with pytest.raises(BasicAuthRequired):
        verify_basic_password(header, SECRET)


@pytest.mark.parametrize("value", ["!!!", "bm8tY29sb24="])  # not base64; base64 of "no-colon"
def test_malformed_credentials_are_refused(value: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify_basic_password(f"Basic {value}", SECRET)


# Through the door.


async def test_an_authenticated_record_is_stored_without_the_authorization_header(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    headers = basic("postmark", POSTMARK_PASSWORD) | {
        "X-PM-Webhook-Trace-Id": "trace-1",
        "X-PM-Retries-Remaining": "6",
    }
    async with make_pclient() as client:
        response = await client.post(webhook("postmark"), content=HARD, headers=headers)
        assert response.status_code == 200, response.text
        await settle(client)
        assert (await state(client, "nobody@example.org"))["reason"] == "hard_bounce"
    [receipt] = await stored(db_path)
    assert receipt.body == HARD
    assert receipt.headers["x-pm-webhook-trace-id"] == "trace-1"
    assert "authorization" not in {name.lower() for name in receipt.headers}
    assert POSTMARK_PASSWORD not in json.dumps(receipt.headers)


async def test_missing_credentials_get_a_basic_challenge(pclient: Any) -> None:
    response = await pclient.post(webhook("postmark"), content=HARD)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_wrong_password_is_refused_and_nothing_is_stored(pclient: Any) -> None:
    response = await pclient.post(
        webhook("postmark"), content=HARD, headers=basic("postmark", "wrong")
    )
    assert response.status_code == 403
    assert (await pclient.get("/healthz", headers=AUTH)).json()["receipts"] == 0


async def test_an_ignored_record_type_is_acknowledged(pclient: Any) -> None:
    body = fixture_bytes("postmark", "auto_responder.json")
    headers = basic("pm", POSTMARK_PASSWORD)
    response = await pclient.post(webhook("postmark"), content=body, headers=headers)
    assert response.status_code == 200
    await settle(pclient)
    assert (await state(pclient, "away@example.com"))["suppressed"] is False


async def test_the_endpoint_does_not_exist_without_a_secret(client: Any) -> None:
    headers = basic("postmark", POSTMARK_PASSWORD)
    assert (
        await client.post(webhook("postmark"), content=HARD, headers=headers)
    ).status_code == 404
