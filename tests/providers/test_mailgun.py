"""Mailgun: `event-data` with `severity`, HMAC over timestamp + token, single-use tokens."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.settings import SigningKey
from api.signatures import SignatureInvalid, verify_mailgun
from projections import DecodeFailed
from projections.events import Bounce, Complaint, Deferred, Delivered, Ignored, Unsubscribe
from projections.policy import parse_policy
from projections.providers import PROVIDERS, mailgun
from tests.conftest import AUTH, settle
from tests.doors import DAY, mailgun_failed, policy, post_mailgun, timeline, verdict
from tests.providers.helpers import mapped, only, placed, state, stored, webhook
from tests.providers.signing import (
    MAILGUN_KEY,
    fixture_json,
    flipped,
    mailgun_body,
    mailgun_signature,
    reserialised,
)

KEY = SigningKey(MAILGUN_KEY.encode())


def event_data(name: str) -> dict[str, Any]:
    return dict(fixture_json("mailgun", name)["event-data"])


def one(name: str, **policy: Any) -> Any:
    return only(mapped("mailgun", mailgun_body(event_data(name)), **policy))


# Decoding and mapping.


def test_a_permanent_failure_is_a_hard_bounce() -> None:
    event = one("hard_bounce.json")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.raw_kind == "permanent_fail"
    assert event.recipient == "nobody@example.org"
    assert event.event_id == "Xq7pR2sT9uVwYzA1bC3dEf@1777889702.512345"
    assert event.at == 1777889702512345
    assert event.message_id == "20260504101458.abc123@mg.example.com"
    assert event.diagnostic == "5.1.1 The email account that you tried to reach does not exist"


def test_a_temporary_failure_is_deferred_while_mailgun_retries() -> None:
    event = one("temporary_fail.json")
    assert isinstance(event, Deferred)
    assert event.raw_kind == "temporary_fail"
    [fact] = placed("mailgun", mailgun_body(event_data("temporary_fail.json")))
    assert fact.fact.bounce_class == "soft"


def test_giving_up_after_retries_is_a_soft_bounce() -> None:
    event = one("retries_exhausted.json")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "soft"


def test_a_refusal_of_an_address_on_the_bounce_list_is_a_hard_bounce() -> None:
    # Mailgun refused to send and named its reason: evidence of that reason.
    event = one("suppress_bounce.json")
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.raw_kind == "suppress_bounce"


def facts_of(data: dict[str, Any]) -> Any:
    """The one ProviderEvent Mailgun's module reads from an `event-data` object."""
    [fact] = mailgun.facts(mailgun.decode(mailgun_body(data))[0])
    return fact


@pytest.mark.parametrize("severity", ["temporary", "permanent", None])
def test_retries_given_up_is_a_soft_bounce_whatever_the_severity(severity: str | None) -> None:
    # H7: the final give-up of a retry series can arrive as `temporary` + `old`.
    data = event_data("temporary_fail.json") | {"reason": "old"}
    if severity is None:
        del data["severity"]
    else:
        data["severity"] = severity
    fact = facts_of(data)
    assert fact.raw_kind == "permanent_fail"
    assert fact.bounce_class == "soft"
    assert fact.recipient == "full.box@example.net"
    assert mailgun.DEFAULT_MAPPING[fact.raw_kind] == "bounce"


def test_a_temporary_failure_that_is_not_old_is_still_deferred() -> None:
    fact = facts_of(event_data("temporary_fail.json"))
    assert fact.raw_kind == "temporary_fail"
    assert mailgun.DEFAULT_MAPPING[fact.raw_kind] == "deferred"


@pytest.mark.parametrize(
    ("reason", "raw_kind", "kind"),
    [
        ("suppress-bounce", "suppress_bounce", "hard_bounce"),
        ("suppress-complaint", "suppress_complaint", "complaint"),
        ("suppress-unsubscribe", "suppress_unsubscribe", "unsubscribe"),
    ],
)
def test_a_refusal_by_mailgun_is_evidence_of_the_reason_it_names(
    reason: str, raw_kind: str, kind: str
) -> None:
    fact = facts_of(event_data("suppress_bounce.json") | {"reason": reason})
    assert fact.raw_kind == raw_kind
    assert fact.recipient == "nobody@example.org"
    assert fact.bounce_class is None
    assert fact.scope is None
    assert mailgun.DEFAULT_MAPPING[raw_kind] == kind


APPLE = "5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137"


def espblock(**fields: Any) -> dict[str, Any]:
    """Issue 18, N8: Apple refusing the sender, as review 2 reproduced it through Mailgun."""
    data = event_data("hard_bounce.json") | {"reason": "espblock", **fields}
    data["recipient"] = "icloud.user@icloud.com"
    data["delivery-status"] = {"code": 554, "message": APPLE}
    return data


def test_an_espblock_is_its_own_raw_kind_and_a_sender_side_refusal() -> None:
    fact = facts_of(espblock())
    assert fact.raw_kind == "espblock"
    assert fact.bounce_class == "hard"  # Mailgun's call: permanent
    assert fact.refusal == "sender"
    assert mailgun.DEFAULT_MAPPING["espblock"] == "bounce"
    event = only(mapped("mailgun", mailgun_body(espblock())))
    assert isinstance(event, Ignored)
    assert event.reason.startswith("sender-side refusal")


def test_an_espblock_counts_as_soft_or_as_the_policy_maps_it() -> None:
    soft = parse_policy(b'sender_side_bounces = "soft"', known_sources=frozenset(PROVIDERS))
    event = only(mapped("mailgun", mailgun_body(espblock()), policy=soft))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "soft"
    hard = parse_policy(
        b'[providers.mailgun]\nespblock = "hard_bounce"\n', known_sources=frozenset(PROVIDERS)
    )
    event = only(mapped("mailgun", mailgun_body(espblock()), policy=hard))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"


@pytest.mark.parametrize(
    ("reason", "status", "raw_kind", "refusal"),
    [
        # the enhanced code (or the one the message starts with) says what was refused
        ("generic", {"code": 554, "message": APPLE}, "permanent_fail", "sender"),
        (
            "generic",
            {"code": 550, "enhanced-code": "5.7.1", "message": "rejected"},
            "permanent_fail",
            "sender",
        ),
        (
            "bounce",
            {"code": 550, "enhanced-code": "5.7.26", "message": "DMARC"},
            "permanent_fail",
            "sender",
        ),
        (
            "bounce",
            {"code": 550, "enhanced-code": "5.1.1", "message": "no such user"},
            "permanent_fail",
            "no_mailbox",
        ),
        ("bounce", {"code": 550, "message": "5.1.10 null MX"}, "permanent_fail", "no_mailbox"),
        (
            "bounce",
            {"code": 550, "enhanced-code": "5.2.1", "message": "disabled"},
            "permanent_fail",
            None,
        ),
        # an espblock saying the mailbox does not exist: the missing mailbox wins
        (
            "espblock",
            {"code": 550, "enhanced-code": "5.1.1", "message": "x"},
            "espblock",
            "no_mailbox",
        ),
        # a refusal of Mailgun's own list keeps today's handling
        (
            "suppress-bounce",
            {"code": 605, "message": "Not delivering to previously bounced address"},
            "suppress_bounce",
            None,
        ),
    ],
)
def test_the_delivery_status_code_states_the_refusal(
    reason: str, status: dict[str, Any], raw_kind: str, refusal: str | None
) -> None:
    data = event_data("hard_bounce.json") | {"reason": reason, "delivery-status": status}
    fact = facts_of(data)
    assert (fact.raw_kind, fact.refusal) == (raw_kind, refusal)


def test_a_temporary_espblock_is_still_deferred() -> None:
    fact = facts_of(espblock(severity="temporary"))
    assert fact.raw_kind == "temporary_fail"
    assert isinstance(
        only(mapped("mailgun", mailgun_body(espblock(severity="temporary")))), Deferred
    )


def test_a_no_such_user_failure_inside_an_exclusion_window_still_suppresses() -> None:
    # Issue 18, N6: the enhanced code, not only the text, says the mailbox does not exist.
    data = event_data("hard_bounce.json")
    data["delivery-status"] = {
        "code": 550,
        "enhanced-code": "5.1.1",
        "message": "No Such User Here",
    }
    policy = parse_policy(
        b'[[exclude]]\nsource = "mailgun"\nstart = 2026-05-04T00:00:00Z\n'
        b"end = 2026-05-05T00:00:00Z\n",
        known_sources=frozenset(PROVIDERS),
    )
    event = only(mapped("mailgun", mailgun_body(data), policy=policy))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"


def test_an_unsubscribe_from_a_tagged_message_is_scoped_to_its_tags() -> None:
    # L1: maybe only a tag unsubscribe; it still unsubscribes by default.
    fact = facts_of(event_data("unsubscribed.json") | {"tags": ["newsletter", "weekly"]})
    assert fact.raw_kind == "tag_unsubscribed"
    assert fact.scope == "newsletter,weekly"
    assert fact.recipient == "bob@example.com"
    assert mailgun.DEFAULT_MAPPING[fact.raw_kind] == "unsubscribe"


@pytest.mark.parametrize("tags", [None, [], ["", "  "]])
def test_an_unsubscribe_without_tags_is_global(tags: list[str] | None) -> None:
    data = event_data("unsubscribed.json")
    if tags is not None:
        data["tags"] = tags
    fact = facts_of(data)
    assert fact.raw_kind == "unsubscribed"
    assert fact.scope is None
    assert mailgun.DEFAULT_MAPPING[fact.raw_kind] == "unsubscribe"


def test_the_policy_can_ignore_tag_unsubscribes() -> None:
    policy = parse_policy(
        b'[providers.mailgun]\ntag_unsubscribed = "ignore"\n', known_sources=frozenset(PROVIDERS)
    )
    data = event_data("unsubscribed.json") | {"tags": ["newsletter"]}
    event = only(mapped("mailgun", mailgun_body(data), policy=policy))
    assert isinstance(event, Ignored)
    assert event.raw_kind == "tag_unsubscribed"
    assert isinstance(one("unsubscribed.json", policy=policy), Unsubscribe)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("complained.json", Complaint),
        ("delivered.json", Delivered),
        ("unsubscribed.json", Unsubscribe),
        ("opened.json", Ignored),
        ("accepted.json", Ignored),
    ],
)
def test_each_mailgun_event_maps_to_its_kind(name: str, kind: type) -> None:
    assert isinstance(one(name), kind)


def test_a_failure_without_severity_counts_as_soft() -> None:
    data = {**event_data("hard_bounce.json")}
    del data["severity"]
    event = only(mapped("mailgun", mailgun_body(data)))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "soft"


def test_the_policy_can_count_temporary_failures_or_ignore_mailgun_refusals() -> None:
    policy = parse_policy(
        b'[providers.mailgun]\ntemporary_fail = "bounce"\nsuppress_bounce = "ignore"\n',
        known_sources=frozenset(PROVIDERS),
    )
    temporary = one("temporary_fail.json", policy=policy)
    assert isinstance(temporary, Bounce)
    assert temporary.bounce_class == "soft"
    suppressed = one("suppress_bounce.json", policy=policy)
    assert isinstance(suppressed, Ignored)  # the default imports it as a hard bounce


def test_the_same_event_id_on_another_day_is_another_event() -> None:
    data = event_data("delivered.json")
    later = {**data, "timestamp": data["timestamp"] + 86400}
    first = placed("mailgun", mailgun_body(data))[0].key
    retried = placed("mailgun", mailgun_body(data))[0].key  # a new signature, same event
    next_day = placed("mailgun", mailgun_body(later))[0].key
    assert first == retried
    assert first != next_day


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"signature": {}}', b'{"event-data": {"id": "x"}}', b"{"]
)
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        mailgun.decode(body)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("complaint", "complained"),
        ("unsubscribe", "unsubscribed"),
        ("open", "opened"),
        ("click", "clicked"),
        (" Permanent-Fail ", "permanent_fail"),
        ("delivered", "delivered"),
    ],
)
def test_event_names_are_read_in_mailguns_own_spelling(name: str, kind: str) -> None:
    assert mailgun.canonical_kind(name) == kind


def test_an_event_named_by_a_synonym_is_read_as_mailguns_name() -> None:
    data = event_data("complained.json") | {"event": "complaint"}
    assert facts_of(data).raw_kind == "complained"
    assert isinstance(only(mapped("mailgun", mailgun_body(data))), Complaint)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"signature": {}}', "body has no `event-data` object"),
        (b'{"event-data": [{"event": "failed"}]}', "body has no `event-data` object"),
        (b'{"event-data": {"id": "x"}}', "`event-data` has no `event` field"),
        (b'{"event-data": {"event": " "}}', "`event-data` has no `event` field"),
    ],
)
def test_a_body_without_an_event_is_refused_saying_what_is_missing(
    body: bytes, message: str
) -> None:
    with pytest.raises(DecodeFailed) as refused:
        mailgun.decode(body)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "status",
    [
        {"code": 554, "message": "Message rejected due to local policy"},
        {"code": 550, "enhanced-code": "5.0.0", "message": "rejected"},
        {},
    ],
)
def test_an_espblock_is_a_sender_side_refusal_whatever_its_status_code(
    status: dict[str, Any],
) -> None:
    data = espblock()
    data["delivery-status"] = status
    fact = facts_of(data)
    assert (fact.raw_kind, fact.refusal) == ("espblock", "sender")


def derived_from(*parts: str) -> str:
    """A derived event id, computed independently: SHA-256 over the parts joined by US."""
    return "derived:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def test_an_event_without_an_id_is_identified_by_message_kind_time_and_recipient() -> None:
    data = event_data("delivered.json") | {"recipient": "Alice@Example.com"}
    del data["id"]
    assert facts_of(data).event_id == derived_from(
        "20260504101504.ghi789@mg.example.com",
        "delivered",
        "1777889705.91",
        "alice@example.com",  # as addresses are compared: case-insensitively
    )


@pytest.mark.parametrize(
    ("status", "diagnostic"),
    [
        ({"code": 550, "message": "5.1.1 no such user", "description": "x"}, "5.1.1 no such user"),
        (
            {"code": 605, "message": "", "description": "Not delivering to a bounced address"},
            "Not delivering to a bounced address",
        ),
        ({"code": 550, "message": " ", "description": ""}, "bounce"),
        ({}, "bounce"),
    ],
)
def test_the_diagnostic_is_the_status_message_then_its_description_then_the_reason(
    status: dict[str, Any], diagnostic: str
) -> None:
    data = event_data("hard_bounce.json") | {"delivery-status": status}  # reason: bounce
    assert facts_of(data).diagnostic == diagnostic


def test_a_status_description_is_the_diagnostic_even_without_a_reason() -> None:
    data = event_data("hard_bounce.json") | {"delivery-status": {"description": "mailbox gone"}}
    del data["reason"]
    assert facts_of(data).diagnostic == "mailbox gone"


# The signature, as a pure function.


def test_a_real_signature_verifies_and_returns_the_token() -> None:
    signature = mailgun_signature()
    assert verify_mailgun(signature, KEY, now=time.time()) == signature["token"]


def test_an_integer_timestamp_verifies_too() -> None:
    signature: dict[str, Any] = mailgun_signature()
    signature["timestamp"] = int(signature["timestamp"])
    verify_mailgun(signature, KEY, now=time.time())


def test_a_subaccount_parent_signature_verifies() -> None:
    signature = mailgun_signature(key="the-subaccount-key")
    parent = mailgun_signature(timestamp=int(signature["timestamp"]), token=signature["token"])
    signature["parent-signature"] = parent["signature"]
    verify_mailgun(signature, KEY, now=time.time())


@pytest.mark.parametrize("field", ["timestamp", "token", "signature"])
def test_a_changed_signature_field_is_refused(field: str) -> None:
    signature = mailgun_signature()
    signature[field] = flipped(signature[field].encode(), signature[field][-1:].encode()).decode()
    with pytest.raises(SignatureInvalid):
        verify_mailgun(signature, KEY, now=time.time())


def test_another_key_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_mailgun(mailgun_signature(key="another-key"), KEY, now=time.time())


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_timestamp_is_refused(skew: int) -> None:
    now = time.time()
    signature = mailgun_signature(timestamp=int(now) + skew)
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify_mailgun(signature, KEY, now=now)


@pytest.mark.parametrize(
    "signature",
    [{}, {"token": "t"}, {"timestamp": "1", "signature": "00"}, {"timestamp": "x", "token": "t"}],
)
def test_incomplete_signatures_are_refused(signature: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid):
        verify_mailgun(signature, KEY, now=1.0)


# Through the door.


async def test_a_signed_event_is_stored_and_folded(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    body = mailgun_body(event_data("hard_bounce.json"))
    async with make_pclient() as client:
        response = await client.post(
            webhook("mailgun"), content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["events"] == 1
        await settle(client)
        assert (await state(client, "nobody@example.org"))["reason"] == "hard_bounce"
    [receipt] = await stored(db_path)
    assert receipt.body == body


async def test_a_redelivery_is_acknowledged_but_a_replayed_token_with_new_data_is_not(
    pclient: Any,
) -> None:
    signature = mailgun_signature()
    body = json.dumps({"signature": signature, "event-data": event_data("delivered.json")})
    forged_data = event_data("hard_bounce.json") | {"recipient": "victim@example.org"}
    forged = json.dumps({"signature": signature, "event-data": forged_data})
    first = await pclient.post(webhook("mailgun"), content=body)
    again = await pclient.post(webhook("mailgun"), content=body)
    replay = await pclient.post(webhook("mailgun"), content=forged)
    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert replay.status_code == 403
    await settle(pclient)
    assert (await state(pclient, "victim@example.org"))["suppressed"] is False


@pytest.mark.parametrize("tamper", ["flip", "stale", "unsigned", "not-json", "digit-like stamp"])
async def test_bad_signatures_are_refused_and_nothing_is_stored(pclient: Any, tamper: str) -> None:
    data = event_data("hard_bounce.json")
    signature = mailgun_signature()
    signed = json.dumps({"signature": signature, "event-data": data}).encode()
    body = {
        "flip": flipped(signed, signature["signature"].encode()),
        "stale": mailgun_body(data, timestamp=int(time.time()) - 3600),
        "unsigned": json.dumps({"event-data": data}).encode(),
        "not-json": b"event=failed&severity=permanent",
        # "²" passes str.isdigit() but not int(): once a 500, now refused like any bad stamp
        "digit-like stamp": json.dumps(
            {"signature": signature | {"timestamp": "\u00b2"}, "event-data": data}
        ).encode(),
    }[tamper]
    response = await pclient.post(webhook("mailgun"), content=body)
    assert response.status_code == 403, response.text
    assert (await pclient.get("/healthz", headers=AUTH)).json()["receipts"] == 0


async def test_a_reserialised_first_delivery_is_accepted_since_mailgun_signs_no_body(
    pclient: Any,
) -> None:
    # Mailgun's scheme covers timestamp + token only: re-encoding the JSON keeps the
    # signature valid. (The same token with other bytes later is refused, above.)
    body = reserialised(mailgun_body(event_data("delivered.json")))
    assert (await pclient.post(webhook("mailgun"), content=body)).status_code == 200


async def test_the_endpoint_does_not_exist_without_a_key(client: Any) -> None:
    body = mailgun_body(event_data("delivered.json"))
    assert (await client.post(webhook("mailgun"), content=body)).status_code == 404


# End to end: posted through the door of the app with every door open, the verdict read
# back over HTTP, on SQLite and on PostgreSQL.


@pytest.mark.both_backends
async def test_mailgun_retries_given_up_as_temporary_count_as_soft_bounces(pclient: Any) -> None:
    """Issue 12, item 7 (review H7): `failed` with `severity: temporary, reason: old`
    (Mailgun gave up retrying, 498 No MX) is a soft bounce: four of them reach the
    default threshold."""
    noisy = "no.mx@example.invalid"
    start = datetime.now(UTC) - 10 * DAY
    for attempt in range(4):
        data = mailgun_failed(
            noisy,
            (start + attempt * DAY).timestamp(),
            f"Ol9dR3tR7iE5sE1xH2aU3{attempt}",
            severity="temporary",
            reason="old",
            **{
                "log-level": "warn",
                "delivery-status": {
                    "attempt-no": 8,
                    "code": 498,
                    "message": "No MX for example.invalid",
                    "description": "No MX for example.invalid",
                },
            },
        )
        await post_mailgun(pclient, data)
    got = await verdict(pclient, noisy)
    # all four count (the threshold, 3, was reached at the third)
    assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
        True,
        "soft_bounce_threshold",
        4,
    )
    assert {(e["kind"], e["bounce_class"]) for e in await timeline(pclient, noisy)} == {
        ("bounce", "soft")
    }


@pytest.mark.both_backends
@pytest.mark.parametrize(
    ("policy_text", "suppressed"),
    [
        pytest.param("", True, id="default"),
        pytest.param('[providers.mailgun]\ntag_unsubscribed = "ignore"\n', False, id="mapped"),
    ],
)
async def test_a_mailgun_tag_unsubscribe_keeps_its_tags_and_is_mappable(
    make_pclient: Callable[..., Any], policy_text: str, suppressed: bool
) -> None:
    """Issue 12, item 14 (review L1): an `unsubscribed` carrying `tags` is its own raw
    kind (`tag_unsubscribed`) scoped to the tags: an unsubscribe by default, and a
    policy can map it alone without touching global Mailgun unsubscribes."""
    tagged, plain = "tagged@example.org", "plain@example.org"
    async with make_pclient(policy=policy(policy_text)) as client:
        for address, tags, event_id in [(tagged, ["newsletter"], "Us5r1"), (plain, [], "Us5r2")]:
            data = {
                "event": "unsubscribed",
                "id": event_id,
                "timestamp": 1778071269.05,
                "recipient": address,
                "tags": tags,
                "message": {"headers": {"message-id": f"{event_id}@mg.example.com"}},
            }
            await post_mailgun(client, data)
        got = await verdict(client, tagged)
        assert (got["suppressed"], got["reason"]) == (
            suppressed,
            "unsubscribe" if suppressed else None,
        )
        (entry,) = await timeline(client, tagged)
        assert (entry["raw_kind"], entry["scope"]) == ("tag_unsubscribed", "newsletter")
        assert (await verdict(client, plain))["reason"] == "unsubscribe"
