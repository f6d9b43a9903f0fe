"""SendGrid: JSON-array batches, `type` bounce/blocked/expired, ECDSA-signed raw bodies."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.settings import SettingsInvalid, load_settings, parse_ec_public_key
from api.signatures import SignatureInvalid, verify_sendgrid
from projections import DecodeFailed, Policy
from projections.events import Bounce, Complaint, Deferred, Delivered, Ignored, Unsubscribe
from projections.policy import parse_policy
from projections.providers import PROVIDERS, sendgrid
from tests.conftest import AUTH, fixture_bytes, settle
from tests.doors import DAY, epoch, post_sendgrid, sendgrid_batch, sg_bounce, sg_event, verdict
from tests.providers.helpers import mapped, only, placed, state, stored, webhook
from tests.providers.signing import (
    flipped,
    reserialised,
    sendgrid_headers,
    sendgrid_key,
    sendgrid_public_b64,
)

BATCH = fixture_bytes("sendgrid", "batch.json")
MORE = fixture_bytes("sendgrid", "more_events.json")


def by_recipient(body: bytes, policy: Policy | None = None) -> dict[str, Any]:
    events = mapped("sendgrid", body) if policy is None else mapped("sendgrid", body, policy=policy)
    return {event.recipient: event for event in events}


# Decoding and mapping.


def test_the_fixture_keeps_sendgrid_crlf_separators() -> None:
    assert b"},\r\n{" in BATCH
    assert BATCH.endswith(b"]\r\n")
    assert len(sendgrid.decode(BATCH)) == 6


def test_every_event_of_the_sample_batch_maps_to_its_kind() -> None:
    events = by_recipient(BATCH)
    assert isinstance(events["nobody@example.org"], Bounce)
    assert events["nobody@example.org"].bounce_class == "hard"
    # type: blocked — about the message or sender, not the address: kept, ignored.
    assert isinstance(events["full.box@example.net"], Ignored)
    assert events["full.box@example.net"].raw_kind == "blocked"
    assert isinstance(events["annoyed@example.com"], Complaint)
    assert isinstance(events["alice@example.com"], Delivered)
    assert isinstance(events["bob@example.com"], Unsubscribe)
    assert isinstance(events["slow@example.net"], Deferred)


def test_event_fields_come_from_sendgrid_names() -> None:
    bounce = by_recipient(BATCH)["nobody@example.org"]
    assert bounce.event_id == "Ym91bmNlLTAtMTExLWFiYzEyMw"
    assert bounce.message_id == "a1b2c3.filterdrecv-1-0.0"
    assert bounce.at == 1777889702 * 1_000_000
    assert bounce.diagnostic is not None
    assert bounce.diagnostic.startswith("550 5.1.1")
    assert bounce.source == "sendgrid"


def test_expired_is_soft_and_reputation_and_blocked_refusals_are_ignored() -> None:
    events = by_recipient(MORE)
    assert isinstance(events["expired@example.net"], Bounce)
    assert events["expired@example.net"].bounce_class == "soft"
    assert events["expired@example.net"].raw_kind == "expired"
    # type `bounce`, but classified as the sender's reputation: not the recipient's fault
    assert isinstance(events["blocked-ip@example.net"], Ignored)
    assert events["blocked-ip@example.net"].raw_kind == "bounce_reputation"
    assert isinstance(events["nodomain@example.invalid"], Ignored)
    assert events["nodomain@example.invalid"].raw_kind == "blocked"


@pytest.mark.parametrize(
    "address",
    ["carol@example.com", "erin@example.com", "alice@example.com"],
)
def test_processed_engagement_and_group_events_are_ignored(address: str) -> None:
    events = [e for e in mapped("sendgrid", MORE) if e.recipient == address]
    assert events
    assert all(isinstance(e, Ignored) for e in events)


def test_a_bounce_without_type_is_classified_by_bounce_classification() -> None:
    def one(**fields: Any) -> Any:
        body = msgspec.json.encode([{"event": "bounce", "email": "x@example.org", **fields}])
        return mapped("sendgrid", body)[0]

    assert one(bounce_classification="Invalid Address").bounce_class == "hard"
    assert one(bounce_classification="Technical Failure").bounce_class == "soft"
    assert isinstance(one(bounce_classification="Content"), Ignored)  # the sender's problem
    assert one().bounce_class == "soft"  # unclassified counts as soft


def test_policy_overrides_the_sendgrid_mapping() -> None:
    policy = parse_policy(
        b'[providers.sendgrid]\nblocked = "bounce"\ngroup_unsubscribe = "unsubscribe"\n',
        known_sources=frozenset(PROVIDERS),
    )
    blocked = by_recipient(BATCH, policy)["full.box@example.net"]
    assert isinstance(blocked, Bounce)
    assert blocked.bounce_class == "soft"
    group = [
        e for e in mapped("sendgrid", MORE, policy=policy) if e.raw_kind == "group_unsubscribe"
    ]
    assert len(group) == 1
    assert isinstance(group[0], Unsubscribe)


def sendgrid_fact(**fields: Any) -> Any:
    """The one ProviderEvent SendGrid's module reads from one event with these fields."""
    event = {"email": "x@example.org", "timestamp": 1777990000, "sg_event_id": "e1", **fields}
    [fact] = sendgrid.facts(sendgrid.decode(msgspec.json.encode([event]))[0])
    return fact


def test_blocked_is_kept_but_ignored_by_default() -> None:
    # M1: SendGrid itself never suppresses blocks.
    fact = sendgrid_fact(event="bounce", type="blocked", reason="550 5.7.1 blocked by Spamhaus")
    assert fact.raw_kind == "blocked"
    assert fact.bounce_class == "soft"
    assert fact.recipient == "x@example.org"
    assert sendgrid.DEFAULT_MAPPING[fact.raw_kind] == "ignore"


@pytest.mark.parametrize(
    ("classification", "raw_kind"),
    [
        ("Reputation", "bounce_reputation"),
        ("Content", "bounce_content"),
        ("Frequency or Volume Too High", "bounce_frequency"),
    ],
)
@pytest.mark.parametrize("bounce_type", ["bounce", None])
def test_sender_side_bounce_classifications_are_their_own_ignored_kinds(
    classification: str, raw_kind: str, bounce_type: str | None
) -> None:
    # Issue 18, N8: soft bounces that are sender-side refusals, so ignored by default like
    # every provider's (and soft under `sender_side_bounces = "soft"`).
    typed = {} if bounce_type is None else {"type": bounce_type}
    fields = {"event": "bounce", "bounce_classification": classification, **typed}
    fact = sendgrid_fact(**fields)
    assert fact.raw_kind == raw_kind
    assert fact.bounce_class == "soft"
    assert fact.refusal == "sender"
    assert sendgrid.DEFAULT_MAPPING[raw_kind] == "bounce"
    body = msgspec.json.encode([{"email": "x@example.org", "timestamp": 1777990000, **fields}])
    ignored = only(mapped("sendgrid", body))
    assert isinstance(ignored, Ignored)
    assert ignored.reason.startswith("sender-side refusal")
    soft = only(mapped("sendgrid", body, policy=Policy(sender_side_bounces="soft")))
    assert isinstance(soft, Bounce)
    assert soft.bounce_class == "soft"
    # a policy naming the raw kind decides alone, as before
    named = Policy(providers={"sendgrid": {raw_kind: "ignore"}})
    assert isinstance(only(mapped("sendgrid", body, policy=named)), Ignored)


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        # N6: the status field or the classification says the mailbox does not exist,
        # whatever words the receiving MTA used in `reason`
        ({"status": "5.1.1", "bounce_classification": "Invalid Address"}, "no_mailbox"),
        ({"status": "5.1.1"}, "no_mailbox"),
        ({"status": "5.1.10"}, "no_mailbox"),
        ({"status": "5.0.0", "bounce_classification": "Invalid Address"}, "no_mailbox"),
        # N8: the sender's classifications and a 5.7.x status are sender-side
        ({"status": "5.7.1"}, "sender"),
        ({"status": "5.0.0", "bounce_classification": "Reputation"}, "sender"),
        # a missing mailbox wins over a sender-side field
        ({"status": "5.1.1", "bounce_classification": "Content"}, "no_mailbox"),
        ({"status": "5.0.0", "bounce_classification": "Mailbox Unavailable"}, None),
        ({"status": "4.7.1"}, None),
        ({}, None),
    ],
)
def test_the_refusal_is_read_from_status_and_classification_first(
    fields: dict[str, str], refusal: str | None
) -> None:
    reason = "550 Requested action not taken: mailbox unavailable"
    event = {"event": "bounce", "type": "bounce", "reason": reason, **fields}
    assert sendgrid_fact(**event).refusal == refusal
    [keyed] = placed("sendgrid", msgspec.json.encode([{"email": "x@example.org", **event}]))
    assert keyed.fact.refusal == refusal


def test_the_reason_text_is_the_fallback_and_the_provider_fields_win_over_it() -> None:
    def refusal(**fields: str) -> str | None:
        event = {"email": "x@example.org", "event": "bounce", "type": "bounce", **fields}
        [keyed] = placed("sendgrid", msgspec.json.encode([event]))
        return keyed.fact.refusal

    assert refusal(reason="550 5.7.1 client host blocked using Spamhaus") == "sender"
    assert refusal(reason="550 5.1.1 no such user") == "no_mailbox"
    assert refusal(reason="550 5.7.1 blocked", bounce_classification="Invalid Address") == (
        "no_mailbox"
    )
    assert refusal(reason="550 5.1.1 no such user", status="5.7.1") == "sender"


def test_an_invalid_address_bounce_in_the_mta_s_own_words_is_hard() -> None:
    # the event SendGrid documents (reference: bounce_classification "Invalid Address")
    event = {
        "email": "nouser@example.org",
        "timestamp": 1777990000,
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 Requested action not taken: mailbox unavailable",
        "bounce_classification": "Invalid Address",
        "sg_event_id": "n6",
    }
    got = only(mapped("sendgrid", msgspec.json.encode([event])))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


def test_a_technical_failure_stays_a_soft_bounce() -> None:
    fact = sendgrid_fact(event="bounce", type="bounce", bounce_classification="Technical Failure")
    assert fact.raw_kind == "bounce"
    assert fact.bounce_class == "soft"
    assert sendgrid.DEFAULT_MAPPING[fact.raw_kind] == "bounce"


@pytest.mark.parametrize(
    ("status", "bounce_class"), [("5.1.1", "hard"), ("4.2.2", "soft"), (None, None)]
)
def test_a_legacy_bounce_without_type_is_classified_by_its_status(
    status: str | None, bounce_class: str | None
) -> None:
    fields = {} if status is None else {"status": status}
    fact = sendgrid_fact(event="bounce", reason="550 5.1.1 no such user", **fields)
    assert fact.raw_kind == "bounce"
    assert fact.bounce_class == bounce_class
    assert sendgrid.DEFAULT_MAPPING[fact.raw_kind] == "bounce"


@pytest.mark.parametrize(
    ("reason", "raw_kind", "bounce_class", "kind"),
    [
        ("Bounced Address", "dropped_bounce", "hard", "hard_bounce"),
        ("Spam Reporting Address", "dropped_spamreport", None, "complaint"),
        ("Unsubscribed Address", "dropped_unsubscribe", None, "unsubscribe"),
        ("Invalid SMTPAPI header", "dropped", None, "ignore"),
        ("Spam Content (if spam checker app enabled)", "dropped", None, "ignore"),
        ("Recipient List over Package Quota", "dropped", None, "ignore"),
        (None, "dropped", None, "ignore"),
    ],
)
def test_dropped_is_split_by_the_list_sendgrid_names(
    reason: str | None, raw_kind: str, bounce_class: str | None, kind: str
) -> None:
    # M4: an address on SendGrid's own list is evidence of the reason it names.
    fields = {} if reason is None else {"reason": reason}
    fact = sendgrid_fact(event="dropped", **fields)
    assert fact.raw_kind == raw_kind
    assert fact.bounce_class == bounce_class
    assert fact.recipient == "x@example.org"
    assert sendgrid.DEFAULT_MAPPING[raw_kind] == kind


def test_a_drop_of_a_bounced_address_is_a_hard_bounce_in_the_sample() -> None:
    dave = by_recipient(MORE)["dave@example.com"]
    assert isinstance(dave, Bounce)
    assert dave.bounce_class == "hard"
    assert dave.raw_kind == "dropped_bounce"


@pytest.mark.parametrize("event", ["group_unsubscribe", "group_resubscribe"])
def test_group_events_are_ignored_but_scoped_to_their_group(event: str) -> None:
    fact = sendgrid_fact(event=event, asm_group_id=42)
    assert fact.raw_kind == event
    assert fact.scope == "42"
    assert sendgrid.DEFAULT_MAPPING[event] == "ignore"
    assert sendgrid_fact(event="unsubscribe", asm_group_id=42).scope is None  # global


def test_retried_batches_deduplicate_by_sg_event_id() -> None:
    first = {p.key for p in placed("sendgrid", BATCH)}
    again = {p.key for p in placed("sendgrid", reserialised(BATCH))}
    assert first == again
    assert len(first) == 6


def test_an_event_without_sg_event_id_gets_a_stable_derived_id() -> None:
    body = b'[{"event":"delivered","email":"a@example.org","timestamp":1777889705}]'
    one, two = mapped("sendgrid", body)[0], mapped("sendgrid", body)[0]
    assert one.event_id == two.event_id
    assert (one.event_id or "").startswith("derived:")


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b"[1, 2]", b'[{"email": "a@example.org"}]', b"[{"]
)
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        sendgrid.decode(body)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Spam-Report", "spamreport"),
        ("spam_report", "spamreport"),
        ("bounced", "bounce"),
        ("opened", "open"),
        (" Group-Unsubscribe ", "group_unsubscribe"),
        ("DELIVERED", "delivered"),
    ],
)
def test_event_names_are_read_case_and_hyphen_blind_with_synonyms_folded(
    name: str, kind: str
) -> None:
    assert sendgrid.canonical_kind(name) == kind
    assert sendgrid_fact(event=name).raw_kind == kind


def test_a_lone_event_object_is_read_as_a_batch_of_one() -> None:
    event = {"event": "delivered", "email": "a@example.org", "sg_event_id": "lone"}
    assert sendgrid.decode(msgspec.json.encode(event)) == [event]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "JSON array holds no events"),
        (b'[{"event": "delivered"}, 1]', "event 1 is not an object"),
        (b'[{"event": "delivered"}, {"email": "a@example.org"}]', "event 1 has no `event` field"),
        (b'[{"event": "  "}]', "event 0 has no `event` field"),
    ],
)
def test_an_undecodable_batch_says_what_is_wrong_with_it(body: bytes, message: str) -> None:
    # the message is what the caller reads in the 400 ("undecodable body: ...")
    with pytest.raises(DecodeFailed, match=rf"^{re.escape(message)}$"):
        sendgrid.decode(body)


@pytest.mark.parametrize(
    ("fields", "raw_kind"),
    [
        ({"event": "bounce", "type": "expired"}, "expired"),
        ({"event": "bounce", "type": "blocked"}, "blocked"),
        ({"event": "bounce", "bounce_classification": "Content"}, "bounce_content"),
    ],
)
def test_expired_blocked_and_sender_side_bounces_are_soft_as_read(
    fields: dict[str, str], raw_kind: str
) -> None:
    fact = sendgrid_fact(**fields)
    assert fact.raw_kind == raw_kind
    assert fact.bounce_class == "soft"


def test_the_smtp_id_is_the_message_id_when_sg_message_id_is_missing() -> None:
    smtp_id = "<a1b2c3@example.com>"
    assert sendgrid_fact(event="delivered", **{"smtp-id": smtp_id}).message_id == smtp_id
    both = sendgrid_fact(event="delivered", sg_message_id="a1b2c3.0", **{"smtp-id": smtp_id})
    assert both.message_id == "a1b2c3.0"


def test_the_smtp_response_is_the_diagnostic_when_there_is_no_reason() -> None:
    response = "421 4.7.0 Try again later"
    assert sendgrid_fact(event="deferred", response=response).diagnostic == response
    alice = by_recipient(BATCH)["alice@example.com"]  # delivered, with `response` only
    assert alice.diagnostic == "250 2.0.0 OK"
    both = sendgrid_fact(event="bounce", reason="550 5.1.1 no such user", response=response)
    assert both.diagnostic == "550 5.1.1 no such user"


UNIDENTIFIED = {
    "event": "delivered",
    "email": "a@example.org",
    "timestamp": 1777889705,
    "sg_message_id": "j1k2l3.filterdrecv-4-0.0",
}


def derived_event_id(**fields: Any) -> str:
    """The event id of one event that carries no `sg_event_id`."""
    [fact] = sendgrid.facts({**UNIDENTIFIED, **fields})
    return str(fact.event_id)


@pytest.mark.parametrize(
    "other",
    [
        {"sg_message_id": "x9.filterdrecv-4-0.0"},
        {"event": "open"},
        {"timestamp": 1777889706},
        {"email": "b@example.org"},
    ],
)
def test_events_without_sg_event_id_are_told_apart_by_message_kind_time_and_recipient(
    other: dict[str, Any],
) -> None:
    assert derived_event_id() == derived_event_id()
    assert derived_event_id(**other) != derived_event_id()


def test_a_derived_event_id_reads_the_recipient_case_blind() -> None:
    assert derived_event_id(email="A@Example.org") == derived_event_id()


# The signature, as a pure function.


def verify(body: bytes, headers: dict[str, str], *, now: float | None = None) -> None:
    verify_sendgrid(
        body,
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
        parse_ec_public_key(sendgrid_public_b64()),
        now=time.time() if now is None else now,
    )


def test_a_real_signature_over_the_raw_bytes_verifies() -> None:
    verify(BATCH, sendgrid_headers(BATCH))


def test_a_flipped_body_byte_is_refused() -> None:
    headers = sendgrid_headers(BATCH)
    with pytest.raises(SignatureInvalid):
        verify(flipped(BATCH, b"nobody@"), headers)


def test_a_reserialised_body_is_refused() -> None:
    headers = sendgrid_headers(BATCH)
    with pytest.raises(SignatureInvalid):
        verify(reserialised(BATCH), headers)


@pytest.mark.parametrize("skew", [-301, 301, -86400])
def test_a_timestamp_outside_five_minutes_is_refused(skew: int) -> None:
    now = time.time()
    headers = sendgrid_headers(BATCH, timestamp=int(now) + skew)
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify(BATCH, headers, now=now)


def test_a_timestamp_within_tolerance_verifies() -> None:
    now = time.time()
    verify(BATCH, sendgrid_headers(BATCH, timestamp=int(now) - 250), now=now)


def test_a_signature_by_another_key_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureInvalid):
        verify(BATCH, sendgrid_headers(BATCH, key=other))


def test_the_signed_timestamp_cannot_be_swapped() -> None:
    headers = sendgrid_headers(BATCH)
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(time.time()) + 1)
    with pytest.raises(SignatureInvalid):
        verify(BATCH, headers)


@pytest.mark.parametrize(
    ("signature", "timestamp"), [(None, "1"), ("", "1"), ("AAAA", None), ("!!notb64", "1")]
)
def test_missing_or_malformed_headers_are_refused(signature: Any, timestamp: Any) -> None:
    key = parse_ec_public_key(sendgrid_public_b64())
    with pytest.raises(SignatureInvalid):
        verify_sendgrid(BATCH, signature, timestamp, key, now=1.0)


def test_the_key_is_accepted_as_console_base64_or_pem() -> None:
    pem = (
        sendgrid_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    from_pem, from_b64 = parse_ec_public_key(pem), parse_ec_public_key(sendgrid_public_b64())
    assert from_pem.public_numbers() == from_b64.public_numbers()


@pytest.mark.parametrize("value", ["not a key", "AAAA", "-----BEGIN PUBLIC KEY-----\nxx\n"])
def test_an_unusable_key_is_a_settings_error(value: str) -> None:
    with pytest.raises(SettingsInvalid, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        load_settings({"SENDGRID_WEBHOOK_PUBLIC_KEY": value})


def test_a_key_on_another_curve_is_a_settings_error() -> None:
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SettingsInvalid, match="P-256"):
        parse_ec_public_key(der.decode())


# Through the door.


async def test_a_signed_batch_is_stored_verbatim_and_folded(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    headers = sendgrid_headers(BATCH)
    async with make_pclient() as client:
        response = await client.post(webhook("sendgrid"), content=BATCH, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"seq": 1, "events": 6, "duplicate": False}
        await settle(client)
        nobody = await state(client, "nobody@example.org")
        assert nobody["suppressed"]
        assert nobody["reason"] == "hard_bounce"
        annoyed = await state(client, "annoyed@example.com")
        assert annoyed["suppressed"]
        assert annoyed["reason"] == "complaint"
        full = await state(client, "full.box@example.net")  # a block: ignored by default
        assert not full["suppressed"]
        assert full["soft_bounces"] == 0
    [receipt] = await stored(db_path)
    assert receipt.body == BATCH
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    assert receipt.headers["x-twilio-email-event-webhook-signature"] == signature
    timestamp = headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert receipt.headers["x-twilio-email-event-webhook-timestamp"] == timestamp


async def test_a_redelivered_batch_is_acknowledged_once(pclient: Any) -> None:
    first = await pclient.post(webhook("sendgrid"), content=BATCH, headers=sendgrid_headers(BATCH))
    again = await pclient.post(webhook("sendgrid"), content=BATCH, headers=sendgrid_headers(BATCH))
    assert first.json()["duplicate"] is False
    assert again.status_code == 200
    assert again.json() == {"seq": 1, "events": 6, "duplicate": True}


async def test_a_batch_of_only_ignored_events_is_acknowledged(pclient: Any) -> None:
    body = b'[{"event":"open","email":"a@example.org","sg_event_id":"x"}]'
    response = await pclient.post(webhook("sendgrid"), content=body, headers=sendgrid_headers(body))
    assert response.status_code == 200
    await settle(pclient)
    assert (await state(pclient, "a@example.org"))["suppressed"] is False


@pytest.mark.parametrize("tamper", ["flip", "reserialise", "stale", "unsigned"])
async def test_bad_signatures_are_refused_and_nothing_is_stored(pclient: Any, tamper: str) -> None:
    headers = sendgrid_headers(
        BATCH, timestamp=int(time.time()) - 3600 if tamper == "stale" else None
    )
    body = {"flip": flipped(BATCH, b"nobody@"), "reserialise": reserialised(BATCH)}.get(
        tamper, BATCH
    )
    if tamper == "unsigned":
        headers = {"content-type": "application/json"}
    response = await pclient.post(webhook("sendgrid"), content=body, headers=headers)
    assert response.status_code == 403
    health = (await pclient.get("/healthz", headers=AUTH)).json()
    assert health["receipts"] == 0


async def test_the_endpoint_does_not_exist_without_a_key(client: Any) -> None:
    response = await client.post(
        webhook("sendgrid"), content=BATCH, headers=sendgrid_headers(BATCH)
    )
    assert response.status_code == 404


# End to end: posted through the door of the app with every door open, the verdict read
# back over HTTP, on SQLite and on PostgreSQL.

MAY_4 = epoch(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))


@pytest.mark.both_backends
async def test_sendgrid_drops_for_addresses_on_its_own_lists_are_imported(pclient: Any) -> None:
    """Issue 12, item 12 (review M4): SendGrid `dropped` is split by `reason`: an address
    on SendGrid's bounce, spam-report or unsubscribe list is evidence of that reason; a
    content drop stays ignored."""
    at = epoch(datetime.now(UTC) - DAY)
    cases = {
        "Bounced Address": ("dropped.bounce@example.org", "hard_bounce"),
        "Spam Reporting Address": ("dropped.spam@example.org", "complaint"),
        "Unsubscribed Address": ("dropped.unsub@example.org", "unsubscribe"),
        "Invalid SMTPAPI header": ("dropped.header@example.org", None),
    }
    events = [
        sg_event("dropped", address, at, f"m4-{n}", reason=reason)
        for n, (reason, (address, _)) in enumerate(cases.items())
    ]
    await post_sendgrid(pclient, sendgrid_batch(*events))
    for address, reason in cases.values():
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["reason"]) == (reason is not None, reason), address


@pytest.mark.both_backends
async def test_a_legacy_sendgrid_bounce_without_type_is_hard_on_a_5xx_status(pclient: Any) -> None:
    """Issue 12, item 16 (review L3): a legacy SendGrid `bounce` without `type` and with
    status 5.1.1 is a hard bounce."""
    address = "legacy@example.org"
    event = sg_bounce(address, MAY_4, "l3-legacy", type=None, bounce_classification=None)
    await post_sendgrid(pclient, sendgrid_batch(event))
    got = await verdict(pclient, address)
    assert (got["suppressed"], got["reason"]) == (True, "hard_bounce")
