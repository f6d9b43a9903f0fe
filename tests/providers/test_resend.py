"""Resend (Svix): `data.bounce.type`, the svix-id header as event id, Svix signatures with
several entries (rotation) and a five-minute tolerance."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.settings import SettingsInvalid, SigningKey, load_settings, parse_svix_secret
from api.signatures import SignatureInvalid, verify_svix
from projections import DecodeFailed
from projections.errors import PolicyInvalid
from projections.events import Bounce, Complaint, Deferred, Delivered, Ignored, Unsubscribe
from projections.facts import read
from projections.mapping import check_event_names
from projections.policy import parse_policy
from projections.providers import PROVIDERS, resend
from tests.conftest import AUTH, fixture_bytes, settle
from tests.doors import iso, policy, post_resend, timeline, verdict
from tests.providers.helpers import mapped, micros, only, placed, state, stored, webhook
from tests.providers.signing import (
    SVIX_KEY,
    SVIX_SECRET,
    fixture_json,
    flipped,
    reserialised,
    svix_headers,
    svix_signature,
)

KEY = SigningKey(SVIX_KEY)
HARD = fixture_bytes("resend", "hard_bounce.json")


def one(name: str, msg_id: str = "msg_1") -> Any:
    return only(mapped("resend", fixture_bytes("resend", name), headers={"svix-id": msg_id}))


# Decoding and mapping.


def test_a_permanent_bounce_is_hard_and_identified_by_the_svix_id() -> None:
    event = one("hard_bounce.json", "msg_2fX9aKq7Lm3Pz8Rt1Vw4Yb6Nc0")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.event_id == "msg_2fX9aKq7Lm3Pz8Rt1Vw4Yb6Nc0"
    assert event.recipient == "nobody@example.org"
    assert event.message_id == "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"
    assert event.at == micros("2026-05-04T10:15:02.481Z")  # created_at, not svix-timestamp
    assert event.diagnostic is not None
    assert "hard bounce" in event.diagnostic


def test_transient_is_soft_and_undetermined_counts_as_soft() -> None:
    assert one("soft_bounce.json").bounce_class == "soft"
    undetermined = one("undetermined_bounce.json")
    assert isinstance(undetermined, Bounce)
    assert undetermined.bounce_class == "soft"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("complained.json", Complaint),
        ("delivered.json", Delivered),
        ("delivery_delayed.json", Deferred),
        ("sent.json", Ignored),
        ("opened.json", Ignored),
        ("clicked.json", Ignored),
    ],
)
def test_each_resend_event_maps_to_its_kind(name: str, kind: type) -> None:
    assert isinstance(one(name), kind)


def test_every_listed_recipient_gets_the_event_but_an_unattributed_bounce_is_soft() -> None:
    got = mapped(
        "resend",
        fixture_bytes("resend", "multi_recipient_bounce.json"),
        headers={"svix-id": "msg_multi"},
    )
    assert [e.recipient for e in got] == ["one@example.org", "two@example.org"]
    assert all(isinstance(e, Bounce) and e.bounce_class == "soft" for e in got)


@pytest.mark.parametrize(
    "rules",
    [
        '[providers.resend]\nbounced = "hard_bounce"\n',
        '[[classify]]\npattern = "bounced"\nbounce = "hard"\n',
    ],
    ids=["mapping", "classify"],
)
def test_a_policy_that_makes_a_bounce_hard_never_makes_a_shared_one_hard(rules: str) -> None:
    """The mutation audit's M2: an event naming several recipients counts as a soft
    bounce for each, even when the policy maps the kind, or classifies the diagnostic,
    as hard — a co-recipient that did not bounce is never hard-bounced."""
    custom = parse_policy(rules, known_sources=frozenset(PROVIDERS))
    got = mapped(
        "resend",
        fixture_bytes("resend", "multi_recipient_bounce.json"),
        headers={"svix-id": "msg_multi"},
        policy=custom,
    )
    assert [(e.recipient, type(e), getattr(e, "bounce_class", None)) for e in got] == [
        ("one@example.org", Bounce, "soft"),
        ("two@example.org", Bounce, "soft"),
    ]
    # the same bounce naming one recipient is hard under these rules: they are in force
    document = fixture_json("resend", "multi_recipient_bounce.json")
    document["data"]["to"] = ["one@example.org"]
    single = only(mapped("resend", json.dumps(document).encode(), policy=custom))
    assert isinstance(single, Bounce)
    assert single.bounce_class == "hard"


def resend_facts(document: dict[str, Any], msg_id: str = "msg_1") -> list[Any]:
    """The ProviderEvents Resend's module reads from one event body."""
    body = json.dumps(document).encode()
    return [
        fact
        for raw in resend.decode(body, headers={"svix-id": msg_id})
        for fact in resend.facts(raw)
    ]


def test_a_multi_recipient_event_is_shared_by_every_listed_address() -> None:
    # H4: Resend does not say which `to` address an event is about.
    got = resend_facts(fixture_json("resend", "multi_recipient_bounce.json"))
    assert [fact.recipient for fact in got] == ["one@example.org", "two@example.org"]
    assert all(fact.raw_kind == "bounced" for fact in got)
    assert all(fact.shared == 2 for fact in got)
    assert all(fact.bounce_class is None for fact in got)  # Permanent, but for whom?
    assert resend.DEFAULT_MAPPING["bounced"] == "bounce"


@pytest.mark.parametrize("name", ["delivered.json", "complained.json"])
def test_a_delivery_or_complaint_naming_several_addresses_is_shared(name: str) -> None:
    document = fixture_json("resend", name)
    document["data"]["to"] = ["a@example.org", "innocent@example.org", "c@example.org"]
    got = resend_facts(document)
    assert [fact.recipient for fact in got] == [
        "a@example.org",
        "innocent@example.org",
        "c@example.org",
    ]
    assert all(fact.shared == 3 for fact in got)


def test_a_single_recipient_event_is_not_shared() -> None:
    [fact] = resend_facts(fixture_json("resend", "hard_bounce.json"))
    assert fact.shared == 0
    assert fact.bounce_class == "hard"


def test_an_email_suppressed_event_is_a_provider_suppression() -> None:
    document = {
        "type": "email.suppressed",
        "created_at": "2026-05-04T10:15:02.481Z",
        "data": {
            "email_id": "bf6a7576-c02d-4585-8b0e-8c936091884c",
            "to": ["suppressed@example.org"],
            "subject": "Hello",
            "suppressed": {
                "type": "OnAccountSuppressionList",
                "message": "The address is on the suppression list.",
            },
        },
    }
    [fact] = resend_facts(document)
    assert fact.raw_kind == "suppressed"
    assert fact.recipient == "suppressed@example.org"
    assert fact.bounce_class is None
    assert fact.shared == 0
    assert fact.diagnostic == "The address is on the suppression list."
    assert resend.DEFAULT_MAPPING[fact.raw_kind] == "provider_suppressed"


def test_a_bounce_on_the_account_suppression_list_is_a_provider_suppression() -> None:
    document = fixture_json("resend", "hard_bounce.json")
    document["data"]["bounce"]["subType"] = "OnAccountSuppressionList"
    [fact] = resend_facts(document)
    assert fact.raw_kind == "account_suppressed"
    assert fact.recipient == "nobody@example.org"
    assert fact.bounce_class == "hard"  # Resend's own call: Permanent
    assert resend.DEFAULT_MAPPING[fact.raw_kind] == "provider_suppressed"


@pytest.mark.parametrize(
    ("event_type", "raw_kind", "kind"),
    [
        ("suppression.added", "suppression_added", "provider_suppressed"),
        ("suppression.removed", "suppression_removed", "ignore"),
    ],
)
def test_suppression_list_events_name_their_address_in_data_email(
    event_type: str, raw_kind: str, kind: str
) -> None:
    document = {
        "type": event_type,
        "created_at": "2026-05-04T10:15:02.481Z",
        "data": {
            "id": "sup_1",
            "email": "listed@example.org",
            "to": ["someone.else@example.org", "another@example.org"],  # not the subject
            "reason": "hard_bounce",
        },
    }
    [fact] = resend_facts(document)
    assert fact.raw_kind == raw_kind
    assert fact.recipient == "listed@example.org"
    assert fact.shared == 0
    assert fact.event_id == "msg_1"
    assert fact.at == micros("2026-05-04T10:15:02.481Z")
    assert resend.DEFAULT_MAPPING[raw_kind] == kind
    assert resend.canonical_kind(event_type) == raw_kind


def test_the_policy_names_resend_suppression_events_in_either_spelling() -> None:
    for name in ("suppression.added", "suppression_added"):
        policy = parse_policy(
            f'[providers.resend]\n"{name}" = "hard_bounce"\n'.encode(),
            known_sources=frozenset(PROVIDERS),
        )
        check_event_names(policy)
    with pytest.raises(PolicyInvalid):
        check_event_names(
            parse_policy(
                b'[providers.resend]\n"suppression.addedd" = "ignore"\n',
                known_sources=frozenset(PROVIDERS),
            )
        )


def test_a_complaint_naming_several_addresses_suppresses_each_flagged_shared() -> None:
    # Issue 18, N3: the complainer must not be mailed again; the co-recipient is
    # suppressed too, flagged, so an operator can release them with the evidence shown.
    document = fixture_json("resend", "complained.json")
    document["data"]["to"] = ["complainer@example.org", "colleague@example.org"]
    got = mapped("resend", json.dumps(document).encode(), headers={"svix-id": "msg_cpl"})
    assert [e.recipient for e in got] == ["complainer@example.org", "colleague@example.org"]
    assert all(isinstance(e, Complaint) for e in got)
    assert all("names 2 recipients and not which one it is about" in e.flags for e in got)


def test_a_delivery_naming_several_addresses_still_heals_nobody() -> None:
    document = fixture_json("resend", "delivered.json")
    document["data"]["to"] = ["a@example.org", "b@example.org"]
    got = mapped("resend", json.dumps(document).encode())
    assert all(isinstance(e, Ignored) and "not applied as delivered" in e.reason for e in got)


@pytest.mark.parametrize(
    ("sub_type", "refusal"),
    [
        ("NoEmail", "no_mailbox"),
        ("ContentRejected", "sender"),
        ("AttachmentRejected", "sender"),
        ("General", None),
        ("MailboxFull", None),
        ("OnAccountSuppressionList", None),
    ],
)
def test_the_bounce_subtype_states_the_refusal(sub_type: str, refusal: str | None) -> None:
    # Issue 18, N6/N8: Resend's subtypes mirror SES's.
    document = fixture_json("resend", "hard_bounce.json")
    document["data"]["bounce"]["subType"] = sub_type
    [fact] = resend_facts(document)
    assert fact.refusal == refusal
    [keyed] = placed("resend", json.dumps(document).encode())
    assert keyed.fact.refusal == refusal


def test_a_bounce_message_with_an_enhanced_code_is_read_as_the_fallback() -> None:
    document = fixture_json("resend", "hard_bounce.json")
    document["data"]["bounce"]["message"] = "554 5.7.1 [CS01] Message rejected due to local policy"
    [fact] = resend_facts(document)
    assert fact.refusal is None  # Resend's own fields say nothing …
    [keyed] = placed("resend", json.dumps(document).encode())
    assert keyed.fact.refusal == "sender"  # … the text does
    assert isinstance(only(mapped("resend", json.dumps(document).encode())), Ignored)


def contact(kind: str, **data: Any) -> dict[str, Any]:
    """A Resend contact event, as resend.com/docs/webhooks/contacts/updated shows it."""
    return {
        "type": kind,
        "created_at": "2026-05-04T10:15:02.481Z",
        "data": {
            "id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
            "audience_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf",
            "created_at": "2024-10-10T15:11:54.110Z",
            "updated_at": "2026-05-04T10:15:02.481Z",
            "email": "Left.Broadcast@example.org",
            "first_name": "Steve",
            "last_name": "W",
            **data,
        },
    }


AUDIENCE = "78261eea-8f8b-4381-83c6-79fa7120f1cf"


@pytest.mark.parametrize("event_type", ["contact.updated", "contact.created"])
def test_a_contact_unsubscribed_from_an_audience_is_an_unsubscribe_scoped_to_it(
    event_type: str,
) -> None:
    # Issue 18, N4: Resend's broadcast unsubscribe.
    document = contact(event_type, unsubscribed=True)
    [fact] = resend_facts(document)
    assert fact.raw_kind == "contact_unsubscribed"
    assert fact.recipient == "Left.Broadcast@example.org"
    assert fact.scope == AUDIENCE
    assert fact.at == micros("2026-05-04T10:15:02.481Z")
    assert fact.event_id == "msg_1"
    assert fact.shared == 0
    assert resend.DEFAULT_MAPPING[fact.raw_kind] == "unsubscribe"
    event = only(mapped("resend", json.dumps(document).encode(), headers={"svix-id": "m"}))
    assert isinstance(event, Unsubscribe)
    assert event.recipient == "left.broadcast@example.org"
    assert event.scope == AUDIENCE


@pytest.mark.parametrize(
    ("event_type", "data", "raw_kind"),
    [
        ("contact.updated", {"unsubscribed": False}, "contact_updated"),
        ("contact.updated", {}, "contact_updated"),
        ("contact.updated", {"unsubscribed": "true"}, "contact_updated"),  # not the boolean
        ("contact.created", {"unsubscribed": False}, "contact_created"),
        ("contact.deleted", {"unsubscribed": True}, "contact_deleted"),
        ("contact.deleted", {}, "contact_deleted"),
    ],
)
def test_other_contact_events_are_kept_but_ignored_and_never_a_resubscribe(
    event_type: str, data: dict[str, Any], raw_kind: str
) -> None:
    document = contact(event_type, **data)
    [fact] = resend_facts(document)
    assert fact.raw_kind == raw_kind
    assert fact.scope == AUDIENCE
    assert resend.DEFAULT_MAPPING[raw_kind] == "ignore"
    assert isinstance(only(mapped("resend", json.dumps(document).encode())), Ignored)


def test_a_contact_event_without_an_email_is_counted_as_unattributed() -> None:
    document = contact("contact.updated", unsubscribed=True)
    del document["data"]["email"]
    reading = read(resend, resend.decode(json.dumps(document).encode()))
    assert reading.events == []
    assert reading.unattributed == ["contact_unsubscribed"]
    assert placed("resend", json.dumps(document).encode()) == []


def test_a_known_email_event_without_to_is_counted_as_unattributed() -> None:
    document = fixture_json("resend", "complained.json")
    del document["data"]["to"]
    reading = read(resend, resend.decode(json.dumps(document).encode()))
    assert (reading.events, reading.unattributed) == ([], ["complained"])
    # an event of a kind this build does not know (domain.*) is not about a recipient
    domain = {"type": "domain.updated", "created_at": "2026-05-04T10:15:02Z", "data": {}}
    assert read(resend, resend.decode(json.dumps(domain).encode())).unattributed == []


@pytest.mark.parametrize(
    "name",
    [
        "contact_updated",
        "contact.updated",
        "contact_created",
        "contact.deleted",
        "contact_unsubscribed",
    ],
)
def test_a_policy_may_map_resend_contact_events(name: str) -> None:
    policy = parse_policy(
        f'[providers.resend]\n"{name}" = "unsubscribe"\n'.encode(),
        known_sources=frozenset(PROVIDERS),
    )
    check_event_names(policy)
    updated = contact("contact.updated", unsubscribed=False)
    got = only(mapped("resend", json.dumps(updated).encode(), policy=policy))
    assert isinstance(got, Unsubscribe) is (name in ("contact_updated", "contact.updated"))


def test_the_svix_id_header_is_read_case_insensitively_and_deduplicates_retries() -> None:
    keys = {
        p.key
        for headers in ({"svix-id": "msg_1"}, {"Svix-Id": "msg_1"})
        for p in placed("resend", HARD, headers=headers)
    }
    other = placed("resend", HARD, headers={"svix-id": "msg_2"})[0].key
    assert len(keys) == 1
    assert other not in keys


def test_without_the_header_the_event_id_is_derived_and_stable() -> None:
    first = only(mapped("resend", HARD)).event_id
    assert first == only(mapped("resend", HARD)).event_id
    assert first is not None
    assert first.startswith("derived:")


@pytest.mark.parametrize("body", [b"", b"[]", b'{"data": {}}', b"{"])
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        resend.decode(body)


@pytest.mark.parametrize(
    ("event_type", "raw_kind"),
    [
        ("email.delivery-delayed", "delivery_delayed"),
        ("Email.Delivery_Delayed", "delivery_delayed"),
        (" email.delivery_delayed ", "delivery_delayed"),
        ("delivery-delayed", "delivery_delayed"),
        ("suppression-added", "suppression_added"),
    ],
)
def test_an_event_name_is_read_with_hyphens_and_dots_as_underscores(
    event_type: str, raw_kind: str
) -> None:
    assert resend.canonical_kind(event_type) == raw_kind
    document = fixture_json("resend", "delivery_delayed.json")
    document["type"] = event_type
    [fact] = resend_facts(document)
    assert fact.raw_kind == raw_kind


@pytest.mark.parametrize("body", [b'{"data": {}}', b'{"type": ""}', b'{"type": {"x": 1}}'])
def test_a_body_without_a_type_is_refused_saying_the_type_is_missing(body: bytes) -> None:
    # The text reaches the provider's delivery log: "undecodable body: …".
    with pytest.raises(DecodeFailed, match=r"^body has no `type` field$"):
        resend.decode(body)


def derived_ids(*documents: dict[str, Any]) -> list[str]:
    """The event id of each body's one fact, posted without the `svix-id` header."""
    ids = []
    for document in documents:
        [raw] = resend.decode(json.dumps(document).encode())
        [fact] = resend.facts(raw)
        event_id = fact.event_id
        assert event_id is not None
        assert event_id.startswith("derived:")
        ids.append(event_id)
    return ids


def test_without_the_header_the_derived_id_tells_messages_kinds_and_times_apart() -> None:
    bounce = fixture_json("resend", "hard_bounce.json")
    other_message = json.loads(json.dumps(bounce))
    other_message["data"]["email_id"] = "0d3cfd1a-5b4e-4f9e-9d8a-2b6f4c1e7a90"
    other_kind = json.loads(json.dumps(bounce)) | {"type": "email.complained"}
    other_time = json.loads(json.dumps(bounce)) | {"created_at": "2026-05-04T10:16:40.002Z"}
    ids = derived_ids(bounce, other_message, other_kind, other_time)
    assert len(set(ids)) == 4
    assert derived_ids(bounce) == ids[:1]  # and the same event keeps its id


def test_without_the_header_contact_events_are_told_apart_by_the_contact_id() -> None:
    first = contact("contact.updated", unsubscribed=True)
    same = contact("contact.updated", unsubscribed=True)
    other = contact("contact.updated", unsubscribed=True)
    other["data"]["id"] = "5c0e3f7a-9d21-4b6a-8e44-0f1a2b3c4d5e"
    first_id, same_id, other_id = derived_ids(first, same, other)
    assert first_id == same_id
    assert other_id != first_id


@pytest.mark.parametrize(
    "document",
    [
        fixture_json("resend", "hard_bounce.json"),
        fixture_json("resend", "complained.json"),
        {
            "type": "suppression.added",
            "created_at": "2026-05-04T10:15:02.481Z",
            "data": {"id": "sup_1", "email": "listed@example.org", "reason": "hard_bounce"},
        },
    ],
    ids=["bounce", "complaint", "suppression_added"],
)
def test_only_a_contact_event_is_scoped_to_an_audience(document: dict[str, Any]) -> None:
    [fact] = resend_facts(document)
    assert fact.scope is None


SUPPRESSED_AT = "2026-05-04T10:15:02.481Z"


@pytest.mark.parametrize(
    ("document", "diagnostic"),
    [
        (
            {
                "type": "email.bounced",
                "created_at": SUPPRESSED_AT,
                "data": {
                    "email_id": "b1",
                    "to": ["full@example.org"],
                    "bounce": {"type": "Transient", "subType": "MailboxFull"},
                },
            },
            "MailboxFull",
        ),
        (
            {
                "type": "email.suppressed",
                "created_at": SUPPRESSED_AT,
                "data": {
                    "email_id": "s1",
                    "to": ["suppressed@example.org"],
                    "suppressed": {"type": "OnAccountSuppressionList"},
                },
            },
            "OnAccountSuppressionList",
        ),
        (
            {
                "type": "suppression.added",
                "created_at": SUPPRESSED_AT,
                "data": {"id": "sup_1", "email": "listed@example.org", "reason": "hard_bounce"},
            },
            "hard_bounce",
        ),
        (
            {
                "type": "email.suppressed",
                "created_at": SUPPRESSED_AT,
                "data": {
                    "email_id": "s2",
                    "to": ["suppressed@example.org"],
                    "suppressed": {"message": "Listed.", "type": "OnAccountSuppressionList"},
                    "reason": "complaint",
                },
            },
            "Listed.",
        ),
        (
            {
                "type": "email.suppressed",
                "created_at": SUPPRESSED_AT,
                "data": {
                    "email_id": "s3",
                    "to": ["suppressed@example.org"],
                    "suppressed": {"type": "OnAccountSuppressionList"},
                    "reason": "complaint",
                },
            },
            "OnAccountSuppressionList",
        ),
    ],
    ids=[
        "bounce-subtype",
        "suppressed-type",
        "suppression-reason",
        "suppressed-message-first",
        "suppressed-type-before-reason",
    ],
)
def test_without_a_message_the_diagnostic_is_the_most_specific_field_resend_filled(
    document: dict[str, Any], diagnostic: str
) -> None:
    [fact] = resend_facts(document)
    assert fact.diagnostic == diagnostic


@pytest.mark.parametrize("name", ["delivery_delayed.json", "complained.json", "delivered.json"])
def test_a_bounce_object_on_an_event_that_is_not_a_bounce_classifies_nothing(name: str) -> None:
    document = fixture_json("resend", name)
    document["data"]["bounce"] = {"type": "Permanent", "subType": "NoEmail"}
    [fact] = resend_facts(document)
    assert fact.raw_kind == resend.canonical_kind(document["type"])
    assert fact.bounce_class is None
    assert fact.refusal is None


# The signature, as a pure function.


def verify(body: bytes, headers: dict[str, str], *, now: float | None = None) -> None:
    verify_svix(
        body,
        headers.get("svix-id"),
        headers.get("svix-timestamp"),
        headers.get("svix-signature"),
        KEY,
        now=time.time() if now is None else now,
    )


def test_a_real_signature_verifies() -> None:
    verify(HARD, svix_headers(HARD, "msg_1"))


def test_any_v1_entry_of_a_rotating_header_verifies() -> None:
    headers = svix_headers(HARD, "msg_1")
    old = svix_signature(HARD, "msg_1", headers["svix-timestamp"], key=b"the-old-secret")
    headers["svix-signature"] = f"{old} v2,ignored {headers['svix-signature']}"
    verify(HARD, headers)


def test_a_flipped_byte_or_a_reserialised_body_is_refused() -> None:
    headers = svix_headers(HARD, "msg_1")
    for body in (flipped(HARD, b"nobody@"), reserialised(HARD)):
        with pytest.raises(SignatureInvalid):
            verify(body, headers)


def test_the_svix_id_is_signed() -> None:
    headers = svix_headers(HARD, "msg_1") | {"svix-id": "msg_other"}
    with pytest.raises(SignatureInvalid):
        verify(HARD, headers)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused(skew: int) -> None:
    now = time.time()
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify(HARD, svix_headers(HARD, "msg_1", timestamp=int(now) + skew), now=now)


def test_the_literal_secret_string_as_key_is_refused() -> None:
    # The classic bug: HMAC with the `whsec_…` text instead of its base64-decoded bytes.
    headers = svix_headers(HARD, "msg_1", key=SVIX_SECRET.encode())
    with pytest.raises(SignatureInvalid):
        verify(HARD, headers)


@pytest.mark.parametrize("signature", ["", "v1", "v2,abc", "v1,"])
def test_headers_without_a_v1_match_are_refused(signature: str) -> None:
    headers = svix_headers(HARD, "msg_1") | {"svix-signature": signature}
    with pytest.raises(SignatureInvalid):
        verify(HARD, headers)


def test_the_secret_is_parsed_with_or_without_its_prefix() -> None:
    message = b"x"
    expected = KEY.sign(message)
    assert parse_svix_secret(SVIX_SECRET).sign(message) == expected
    assert parse_svix_secret(base64.b64encode(SVIX_KEY).decode()).sign(message) == expected


@pytest.mark.parametrize("value", ["whsec_not base64!", "whsec_"])
def test_an_unusable_secret_is_a_settings_error(value: str) -> None:
    with pytest.raises(SettingsInvalid, match="RESEND_WEBHOOK_SECRET"):
        load_settings({"RESEND_WEBHOOK_SECRET": value})


# Through the door.


async def test_a_signed_event_is_stored_with_its_svix_headers_and_folded(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    headers = svix_headers(HARD, "msg_abc")
    async with make_pclient() as client:
        response = await client.post(webhook("resend"), content=HARD, headers=headers)
        assert response.status_code == 200, response.text
        await settle(client)
        assert (await state(client, "nobody@example.org"))["reason"] == "hard_bounce"
    [receipt] = await stored(db_path)
    assert receipt.body == HARD
    for name in ("svix-id", "svix-timestamp", "svix-signature"):
        assert receipt.headers[name] == headers[name]
    # The event id comes from the stored header, so a rebuild finds the same identity.
    assert only(mapped("resend", receipt.body, headers=receipt.headers)).event_id == "msg_abc"


async def test_a_retry_with_a_fresh_timestamp_is_a_duplicate(pclient: Any) -> None:
    first = await pclient.post(webhook("resend"), content=HARD, headers=svix_headers(HARD, "msg_r"))
    retry = await pclient.post(
        webhook("resend"),
        content=HARD,
        headers=svix_headers(HARD, "msg_r", timestamp=int(time.time()) + 5),
    )
    assert first.status_code == retry.status_code == 200
    assert retry.json()["duplicate"] is True


@pytest.mark.parametrize("tamper", ["flip", "reserialise", "stale", "unsigned"])
async def test_bad_signatures_are_refused_and_nothing_is_stored(pclient: Any, tamper: str) -> None:
    stamp = int(time.time()) - 600 if tamper == "stale" else None
    headers = svix_headers(HARD, "msg_1", timestamp=stamp)
    body = {"flip": flipped(HARD, b"nobody@"), "reserialise": reserialised(HARD)}.get(tamper, HARD)
    if tamper == "unsigned":
        headers = {"content-type": "application/json"}
    response = await pclient.post(webhook("resend"), content=body, headers=headers)
    assert response.status_code == 403
    assert (await pclient.get("/healthz", headers=AUTH)).json()["receipts"] == 0


async def test_the_endpoint_does_not_exist_without_a_secret(client: Any) -> None:
    response = await client.post(webhook("resend"), content=HARD, headers=svix_headers(HARD, "m"))
    assert response.status_code == 404


# End to end: posted through the door of the app with every door open, the verdict read
# back over HTTP, on SQLite and on PostgreSQL.


def contact_updated(email: str | None, at: str, *, unsubscribed: bool) -> dict[str, Any]:
    """Resend's `contact.updated`, as resend.com/docs/webhooks/contacts/updated shows it."""
    data: dict[str, Any] = {
        "id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
        "audience_id": AUDIENCE,
        "created_at": "2024-10-10T15:11:54.110Z",
        "updated_at": at,
        "email": email,
        "first_name": "Steve",
        "last_name": "W",
        "unsubscribed": unsubscribed,
    }
    return {
        "type": "contact.updated",
        "created_at": at,
        "data": {key: value for key, value in data.items() if value is not None},
    }


@pytest.mark.both_backends
async def test_a_resend_contact_unsubscribed_from_an_audience_is_an_unsubscribe(
    make_pclient: Callable[..., Any],
) -> None:
    """Issue 18, finding N4: `contact.updated` with `unsubscribed: true` unsubscribes
    `data.email`, scoped to `data.audience_id`. A later `unsubscribed: false` (Resend
    sends `contact.updated` for any change, with no previous value) is kept but ignored:
    not a resubscribe that lifts the opt-out, and it suppresses nobody by itself. A
    contact event naming no address is counted as unattributed, and the contact events'
    names may be mapped in a policy."""
    now = datetime.now(UTC)
    left, renamed = "left.broadcast@example.org", "renamed@example.org"
    async with make_pclient() as client:
        await post_resend(
            client,
            contact_updated(left, iso(now - timedelta(hours=2)), unsubscribed=True),
            "msg_n4_unsub",
        )
        await post_resend(
            client,
            contact_updated(left, iso(now - timedelta(hours=1)), unsubscribed=False),
            "msg_n4_edit",
        )
        await post_resend(
            client,
            contact_updated(renamed, iso(now - timedelta(hours=1)), unsubscribed=False),
            "msg_n4_other",
        )
        got = await verdict(client, left)
        assert (got["suppressed"], got["reason"], got["events"]) == (True, "unsubscribe", 2)
        unsubscribed, edited = await timeline(client, left)
        assert (unsubscribed["raw_kind"], unsubscribed["kind"]) == (
            "contact_unsubscribed",
            "unsubscribe",
        )
        assert unsubscribed["scope"] == AUDIENCE
        assert (edited["raw_kind"], edited["ignored"]) == ("contact_updated", True)
        got = await verdict(client, renamed)
        assert (got["suppressed"], got["events"]) == (False, 1)

        nameless = contact_updated(None, iso(now), unsubscribed=True)
        answer = await post_resend(client, nameless, "msg_n4_nameless")
        assert (answer["events"], answer["unattributed"]) == (0, 1)

    mapped_off = policy(
        '[providers.resend]\ncontact_updated = "ignore"\ncontact_unsubscribed = "ignore"\n'
    )
    async with make_pclient(policy=mapped_off) as client:
        assert (await verdict(client, left))["suppressed"] is False
