"""SendGrid: JSON-array batches, `type` bounce/blocked/expired, ECDSA-signed raw bodies."""

from __future__ import annotations

import time
from collections.abc import Callable
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
from tests.providers.helpers import mapped, placed, state, stored, webhook
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
    assert isinstance(events["full.box@example.net"], Bounce)
    assert events["full.box@example.net"].bounce_class == "soft"  # type: blocked
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


def test_expired_reputation_and_unclassified_refusals_are_soft() -> None:
    events = by_recipient(MORE)
    for address in ("expired@example.net", "blocked-ip@example.net", "nodomain@example.invalid"):
        event = events[address]
        assert isinstance(event, Bounce), address
        assert event.bounce_class == "soft", address
    assert events["expired@example.net"].raw_kind == "expired"
    # type `bounce`, but classified as the sender's reputation: not the recipient's fault
    assert events["blocked-ip@example.net"].raw_kind == "bounce"


@pytest.mark.parametrize(
    "address",
    ["carol@example.com", "dave@example.com", "erin@example.com", "alice@example.com"],
)
def test_processed_dropped_engagement_and_group_events_are_ignored(address: str) -> None:
    events = [e for e in mapped("sendgrid", MORE) if e.recipient == address]
    assert events
    assert all(isinstance(e, Ignored) for e in events)


def test_a_bounce_without_type_is_classified_by_bounce_classification() -> None:
    def one(**fields: Any) -> Any:
        body = msgspec.json.encode([{"event": "bounce", "email": "x@example.org", **fields}])
        return mapped("sendgrid", body)[0]

    assert one(bounce_classification="Invalid Address").bounce_class == "hard"
    assert one(bounce_classification="Content").bounce_class == "soft"
    assert one().bounce_class == "soft"  # unclassified counts as soft


def test_policy_overrides_the_sendgrid_mapping() -> None:
    policy = parse_policy(
        b'[providers.sendgrid]\nblocked = "ignore"\ngroup_unsubscribe = "unsubscribe"\n',
        known_sources=frozenset(PROVIDERS),
    )
    assert isinstance(by_recipient(BATCH, policy)["full.box@example.net"], Ignored)
    group = [
        e for e in mapped("sendgrid", MORE, policy=policy) if e.raw_kind == "group_unsubscribe"
    ]
    assert len(group) == 1
    assert isinstance(group[0], Unsubscribe)


def test_retried_batches_deduplicate_by_sg_event_id() -> None:
    first = {p.key for p in placed("sendgrid", BATCH)}
    again = {p.key for p in placed("sendgrid", reserialised(BATCH))}
    assert first == again
    assert len(first) == 6


def test_an_event_without_sg_event_id_gets_a_stable_derived_id() -> None:
    body = b'[{"event":"delivered","email":"a@example.org","timestamp":1777889705}]'
    one, two = mapped("sendgrid", body)[0], mapped("sendgrid", body)[0]
    assert one.event_id == two.event_id
    assert one.event_id.startswith("derived:")


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b"[1, 2]", b'[{"email": "a@example.org"}]', b"[{"]
)
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        sendgrid.decode(body)


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
        full = await state(client, "full.box@example.net")
        assert not full["suppressed"]
        assert full["soft_bounces"] == 1
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
