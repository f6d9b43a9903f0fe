"""Mailtura, per its spec (seeds/003): `email.*` events, `data.bounceType`, and a hex
HMAC-SHA256 of the raw body in X-Mailtura-Signature, with the body's `timestamp` fresh."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.settings import SigningKey
from api.signatures import SignatureInvalid, verify_mailtura
from projections import DecodeFailed
from projections.events import Bounce, Complaint, Delivered, Ignored
from projections.providers import mailtura
from tests.conftest import AUTH, fixture_bytes, settle
from tests.providers.helpers import mapped, micros, only, state, stored, webhook
from tests.providers.signing import (
    MAILTURA_SECRET,
    flipped,
    mailtura_body,
    mailtura_headers,
    reserialised,
)

KEY = SigningKey(MAILTURA_SECRET.encode())


def one(name: str) -> Any:
    return only(mapped("mailtura", fixture_bytes("mailtura", name)))


# Decoding and mapping.


def test_a_hard_bounce_maps_with_the_spec_fields() -> None:
    event = one("bounced_hard.json")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.raw_kind == "bounced"
    assert event.recipient == "gone@example.com"
    assert event.event_id == "evt_123459"
    assert event.message_id == "msg_123460"
    assert event.at == micros("2024-12-30T10:00:10Z")
    assert event.diagnostic == "550 5.1.1 Mailbox does not exist"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bounced_soft.json", Bounce),
        ("delivered.json", Delivered),
        ("complained.json", Complaint),
        ("sent.json", Ignored),
        ("opened.json", Ignored),
        ("clicked.json", Ignored),
        ("failed.json", Ignored),
    ],
)
def test_each_mailtura_event_maps_to_its_kind(name: str, kind: type) -> None:
    event = one(name)
    assert isinstance(event, kind)
    assert "unknown" not in getattr(event, "reason", "")


def test_a_soft_bounce_is_soft_and_a_missing_bounce_type_counts_as_soft() -> None:
    assert one("bounced_soft.json").bounce_class == "soft"
    document = json.loads(fixture_bytes("mailtura", "bounced_hard.json"))
    del document["data"]["bounceType"]
    event = only(mapped("mailtura", json.dumps(document).encode()))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "soft"


def test_the_flat_shape_is_read_too() -> None:
    event = one("flat_bounced.json")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.recipient == "nobody@example.org"
    assert event.event_id == "evt_01J0Z7Y8X9W6V5T4S3R2Q1P0"


@pytest.mark.parametrize("body", [b"", b"[]", b'{"data": {}}', b"{"])
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        mailtura.decode(body)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("email.bounced", "bounced"),
        ("bounce", "bounced"),
        ("email.complaint", "complained"),
        ("open", "opened"),
        ("Email.Click", "clicked"),
        ("email.delivery-delayed", "delivery_delayed"),
    ],
)
def test_event_names_are_read_without_prefix_and_with_synonyms_folded(name: str, kind: str) -> None:
    assert mailtura.canonical_kind(name) == kind


def test_an_event_named_by_a_synonym_maps_as_its_spec_name() -> None:
    document = json.loads(fixture_bytes("mailtura", "bounced_hard.json")) | {"type": "bounce"}
    event = only(mapped("mailtura", json.dumps(document).encode()))
    assert isinstance(event, Bounce)
    assert event.raw_kind == "bounced"


@pytest.mark.parametrize(
    "body", [b'{"data": {}}', b'{"type": "", "event": " "}', b'{"type": ["email.bounced"]}']
)
def test_a_body_without_an_event_name_is_refused_saying_so(body: bytes) -> None:
    with pytest.raises(DecodeFailed) as refused:
        mailtura.decode(body)
    assert str(refused.value) == "body has no `type` field"


def test_the_flat_shape_gives_its_time_and_message_id() -> None:
    event = one("flat_bounced.json")
    assert event.at == micros("2026-05-04T10:15:02Z")
    assert event.message_id == "msg_01J0Z7Y8"


def fact_of(document: dict[str, Any]) -> Any:
    """The one ProviderEvent Mailtura's module reads from a document."""
    [fact] = mailtura.facts(mailtura.decode(json.dumps(document).encode())[0])
    return fact


def derived_from(*parts: str) -> str:
    """A derived event id, computed independently: SHA-256 over the parts joined by US."""
    return "derived:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def test_an_event_without_an_id_is_identified_by_message_kind_time_and_recipient() -> None:
    document = json.loads(fixture_bytes("mailtura", "bounced_hard.json"))
    del document["id"]
    document["data"]["recipient"] = "Gone@Example.com"
    assert fact_of(document).event_id == derived_from(
        "msg_123460",
        "bounced",
        "2024-12-30T10:00:10Z",
        "gone@example.com",  # as addresses are compared: case-insensitively
    )


@pytest.mark.parametrize(
    ("bounce_type", "bounce_class"),
    [("hard", "hard"), ("soft", "soft"), ("Soft", "soft"), ("transient", None), ("", None)],
)
def test_the_bounce_type_is_mailturas_hard_or_soft_call_and_nothing_else(
    bounce_type: str, bounce_class: str | None
) -> None:
    document = json.loads(fixture_bytes("mailtura", "bounced_hard.json"))
    document["data"]["bounceType"] = bounce_type
    assert fact_of(document).bounce_class == bounce_class


def test_a_bounce_without_a_bounce_type_states_no_class() -> None:
    document = json.loads(fixture_bytes("mailtura", "bounced_hard.json"))
    del document["data"]["bounceType"]
    assert fact_of(document).bounce_class is None  # the mapping counts it as soft


# The signature, as a pure function.


def test_a_real_signature_verifies() -> None:
    body = mailtura_body("bounced_hard.json")
    verify_mailtura(body, mailtura_headers(body)["X-Mailtura-Signature"], KEY, now=time.time())


def test_an_uppercase_or_prefixed_hex_signature_verifies() -> None:
    body = mailtura_body("delivered.json")
    digest = mailtura_headers(body)["X-Mailtura-Signature"]
    for given in (digest.upper(), f"sha256={digest}"):
        verify_mailtura(body, given, KEY, now=time.time())


def test_a_flipped_byte_or_a_reserialised_body_is_refused() -> None:
    body = mailtura_body("bounced_hard.json")
    signature = mailtura_headers(body)["X-Mailtura-Signature"]
    for changed in (flipped(body, b"gone@"), reserialised(body)):
        with pytest.raises(SignatureInvalid, match="does not match"):
            verify_mailtura(changed, signature, KEY, now=time.time())


def test_another_secret_is_refused() -> None:
    body = mailtura_body("delivered.json")
    signature = mailtura_headers(body, "another-secret")["X-Mailtura-Signature"]
    with pytest.raises(SignatureInvalid):
        verify_mailtura(body, signature, KEY, now=time.time())


@pytest.mark.parametrize("minutes", [-6, 6, -600])
def test_an_event_older_or_newer_than_five_minutes_is_refused(minutes: int) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    body = mailtura_body("bounced_hard.json", at=at)
    signature = mailtura_headers(body)["X-Mailtura-Signature"]
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify_mailtura(body, signature, KEY, now=time.time())


def test_a_signed_body_without_a_timestamp_is_refused() -> None:
    body = b'{"id":"evt_1","type":"email.delivered","data":{"recipient":"a@example.org"}}'
    signature = hmac.new(MAILTURA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureInvalid, match="timestamp"):
        verify_mailtura(body, signature, KEY, now=time.time())


@pytest.mark.parametrize("signature", [None, "", "zz"])
def test_missing_or_malformed_signatures_are_refused(signature: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        verify_mailtura(mailtura_body("delivered.json"), signature, KEY, now=time.time())


# Through the door.


async def test_a_signed_event_is_stored_with_its_signature_and_folded(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    body = mailtura_body("bounced_hard.json")
    headers = mailtura_headers(body)
    async with make_pclient() as client:
        response = await client.post(webhook("mailtura"), content=body, headers=headers)
        assert response.status_code == 200, response.text
        await settle(client)
        assert (await state(client, "gone@example.com"))["reason"] == "hard_bounce"
    [receipt] = await stored(db_path)
    assert receipt.body == body
    assert receipt.headers["x-mailtura-signature"] == headers["X-Mailtura-Signature"]


@pytest.mark.parametrize("tamper", ["flip", "reserialise", "stale", "unsigned"])
async def test_bad_signatures_are_refused_and_nothing_is_stored(pclient: Any, tamper: str) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1) if tamper == "stale" else None
    body = mailtura_body("bounced_hard.json", at=at)
    headers = mailtura_headers(body)
    body = {"flip": flipped(body, b"gone@"), "reserialise": reserialised(body)}.get(tamper, body)
    if tamper == "unsigned":
        headers = {"content-type": "application/json"}
    response = await pclient.post(webhook("mailtura"), content=body, headers=headers)
    assert response.status_code == 403
    assert (await pclient.get("/healthz", headers=AUTH)).json()["receipts"] == 0


async def test_an_ignored_event_type_is_acknowledged(pclient: Any) -> None:
    body = mailtura_body("opened.json")
    response = await pclient.post(webhook("mailtura"), content=body, headers=mailtura_headers(body))
    assert response.status_code == 200
    assert response.json()["events"] == 1


async def test_the_endpoint_does_not_exist_without_a_secret(client: Any) -> None:
    body = mailtura_body("delivered.json")
    response = await client.post(webhook("mailtura"), content=body, headers=mailtura_headers(body))
    assert response.status_code == 404
