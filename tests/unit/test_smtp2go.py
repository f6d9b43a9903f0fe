"""SMTP2GO webhooks: decoding the body and mapping each event under the default policy.

The rules are those of the upstream pull request (seeds/000) and the provider notes
(reference/providers.md §1): `delivered` heals soft bounces, `bounce` is hard or soft by
its `bounce` field (missing or unknown counts as soft), `spam` is a complaint, and
`open`, `click`, `unsubscribe`, `resubscribe`, `processed` are kept but ignored. `reject`
(SMTP2GO's own suppression list refused the send) is `provider_suppressed` (issue 18).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest

from ledger import Receipt
from projections import DEFAULT_POLICY, DecodeFailed, Mapper, Policy, replay
from projections.events import (
    Bounce,
    Complaint,
    Delivered,
    Ignored,
    NormalizedEvent,
    ProviderSuppressed,
    Unsubscribe,
)
from projections.facts import derive
from projections.mapping import Placed
from projections.providers import smtp2go
from tests.conftest import fixture_bytes

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECEIVED = datetime(2026, 5, 10, 12, 0, 0, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, computed here independently of the code under test."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def receipt(
    body: bytes,
    *,
    seq: int = 1,
    content_type: str = "application/json",
    received_at: int = micros(RECEIVED),
    source: str = "smtp2go",
) -> Receipt:
    return Receipt(
        seq=seq,
        source=source,
        received_at=received_at,
        content_type=content_type,
        body=body,
        headers={},
        peer=None,
        body_sha256=b"",
        chain_hash=b"",
    )


def placed(body: bytes, policy: Policy = DEFAULT_POLICY, **kwargs: Any) -> list[Placed]:
    return Mapper(policy).placed(receipt(body, **kwargs))


def mapped(body: bytes, policy: Policy = DEFAULT_POLICY, **kwargs: Any) -> list[NormalizedEvent]:
    return [item.event for item in placed(body, policy, **kwargs)]


def only(body: bytes, policy: Policy = DEFAULT_POLICY, **kwargs: Any) -> NormalizedEvent:
    events = mapped(body, policy, **kwargs)
    assert len(events) == 1, events
    return events[0]


def key_of(body: bytes) -> bytes:
    items = placed(body)
    assert len(items) == 1, items
    return items[0].key


def as_json(**fields: Any) -> bytes:
    return msgspec.json.encode(fields)


def as_form(*pairs: tuple[str, str]) -> bytes:
    return urlencode(list(pairs)).encode()


def event(name: str, rcpt: str = "someone@example.com", **fields: Any) -> bytes:
    """A minimal JSON SMTP2GO event with an id and a time."""
    base: dict[str, Any] = {
        "event": name,
        "id": "00112233445566778899aabbccddeeff",
        "email_id": "1xAaaa-BbbbCccc-DdDd",
        "time": "2026-05-04T10:00:00Z",
        "rcpt": rcpt,
    }
    base.update(fields)
    return msgspec.json.encode({k: v for k, v in base.items() if v is not None})


# -- the upstream mapping, rule by rule ---------------------------------------------------


def test_delivered_is_a_delivery_with_its_ids_time_and_reply() -> None:
    got = only(fixture_bytes("smtp2go", "delivered.json"))
    assert isinstance(got, Delivered)
    assert got.recipient == "alice@example.com"
    assert got.event_id == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert got.message_id == "1xQz7a-ZyXwVuTsRqP-OnMl"
    assert got.at == micros(datetime(2026, 5, 4, 10, 15, 5, tzinfo=UTC))
    assert got.diagnostic == "250 2.0.0 Ok: queued as 4XyZ1"
    assert got.source == "smtp2go"
    assert got.raw_kind == "delivered"


def test_delivered_clears_transient_soft_bounce_state() -> None:
    policy = Policy(soft_bounce_threshold=2)
    soft_1 = event("bounce", bounce="soft", id="s1", time="2026-05-04T10:00:00Z")
    delivered = event("delivered", id="d1", time="2026-05-04T11:00:00Z")
    soft_2 = event("bounce", bounce="soft", id="s2", time="2026-05-04T12:00:00Z")
    with_delivery = [only(soft_1, policy), only(delivered, policy, seq=2), only(soft_2, seq=3)]
    without_delivery = [with_delivery[0], with_delivery[2]]

    healed = replay("someone@example.com", with_delivery, policy)
    assert not healed.suppressed
    assert len(healed.soft_bounces) == 1  # only the bounce after the delivery still counts

    # the same two soft bounces without the delivery between them reach the threshold
    assert replay("someone@example.com", without_delivery, policy).reason == (
        "soft_bounce_threshold"
    )


def test_delivered_heals_a_soft_bounce_suppression_built_from_smtp2go_events() -> None:
    policy = Policy(soft_bounce_threshold=1)
    bounce = only(fixture_bytes("smtp2go", "soft_bounce.json"), policy)
    healed_by = only(
        event("delivered", rcpt="Full.Box@example.net", time="2026-05-04T12:00:00Z"), seq=2
    )
    assert replay("full.box@example.net", [bounce], policy).suppressed
    assert not replay("full.box@example.net", [bounce, healed_by], policy).suppressed


@pytest.mark.parametrize("name", ["hard_bounce.json", "hard_bounce.form"])
def test_bounce_marked_hard_is_a_hard_bounce(name: str) -> None:
    got = only(fixture_bytes("smtp2go", name))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"
    assert got.recipient == "nobody@example.org"
    assert got.diagnostic == (
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    )
    assert replay(got.recipient, [got], DEFAULT_POLICY).reason == "hard_bounce"


def test_bounce_marked_soft_is_a_soft_bounce() -> None:
    got = only(fixture_bytes("smtp2go", "soft_bounce.json"))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"
    assert got.recipient == "full.box@example.net"
    assert got.diagnostic == "452 4.2.2 Mailbox full"


@pytest.mark.parametrize(("field", "expected"), [("HARD", "hard"), (" Soft ", "soft")])
def test_bounce_classification_is_read_case_insensitively(field: str, expected: str) -> None:
    got = only(event("bounce", bounce=field))
    assert isinstance(got, Bounce)
    assert got.bounce_class == expected


def test_bounce_without_a_classification_counts_as_soft() -> None:
    got = only(event("bounce", bounce=None))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"


@pytest.mark.parametrize("field", ["", "undetermined", "permanent", "block", "5.1.1"])
def test_bounce_with_an_unknown_classification_counts_as_soft(field: str) -> None:
    got = only(event("bounce", bounce=field))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"


def test_an_unclassified_bounce_alone_does_not_suppress_under_the_default_policy() -> None:
    # The upstream rationale: soft never blocks before the threshold, so a bounce SMTP2GO
    # did not classify cannot lock anyone out on its own.
    got = only(event("bounce", bounce=None))
    state = replay(got.recipient, [got], DEFAULT_POLICY)
    assert not state.suppressed
    assert len(state.soft_bounces) == 1


def test_spam_is_a_complaint() -> None:
    got = only(fixture_bytes("smtp2go", "spam.json"))
    assert isinstance(got, Complaint)
    assert got.recipient == "annoyed@example.com"
    assert got.at == micros(datetime(2026, 5, 5, 8, 0, 11, tzinfo=UTC))
    assert replay(got.recipient, [got], DEFAULT_POLICY).reason == "complaint"


@pytest.mark.parametrize("name", ["open", "click", "unsubscribe", "resubscribe", "processed"])
def test_event_is_kept_as_ignored_with_a_reason_by_default(name: str) -> None:
    got = only(event(name, rcpt="Kept@Example.com"))
    assert isinstance(got, Ignored)
    assert got.raw_kind == name
    assert got.recipient == "kept@example.com"  # kept, on the recipient's timeline
    assert name in got.reason
    assert "ignored" in got.reason
    state = replay(got.recipient, [got], DEFAULT_POLICY)
    assert not state.suppressed
    assert state.events == 1


@pytest.mark.parametrize("name", ["reject", "rejected"])
def test_a_reject_is_smtp2go_refusing_an_address_on_its_own_suppression_list(name: str) -> None:
    # Issue 18, finding N5: "a recipient that has previously hard-bounced, made a spam
    # complaint, or unsubscribed"; SMTP2GO does not say which, so provider_suppressed.
    got = only(event(name, rcpt="Rejected@Example.org", message="Recipient address suppressed"))
    assert isinstance(got, ProviderSuppressed)
    assert got.raw_kind == "reject"
    assert got.recipient == "rejected@example.org"
    assert smtp2go.DEFAULT_MAPPING["reject"] == "provider_suppressed"
    assert replay(got.recipient, [got], DEFAULT_POLICY).reason == "provider_suppressed"
    # a policy can still say otherwise
    ignored = only(event(name), Policy(providers={"smtp2go": {"reject": "ignore"}}))
    assert isinstance(ignored, Ignored)


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        ("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown", "no_mailbox"),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "no_mailbox"),
        ("554 5.7.1 Service unavailable; client host blocked using Spamhaus", "sender"),
        ("552 5.2.2 mailbox full", None),
        (None, None),
    ],
)
def test_a_bounce_refusal_is_read_from_the_enhanced_code_in_the_message(
    message: str | None, refusal: str | None
) -> None:
    # Issue 18, findings N6/N8: SMTP2GO has no field of its own; facts.place reads the text.
    [item] = derive(receipt(event("bounce", bounce="hard", message=message)))
    assert item.fact.refusal == refusal


def test_an_unsubscribe_from_smtp2go_does_not_suppress_by_default() -> None:
    got = only(fixture_bytes("smtp2go", "unsubscribe.json"))
    assert isinstance(got, Ignored)
    assert got.recipient == "bob@example.com"
    assert not replay(got.recipient, [got], DEFAULT_POLICY).suppressed


def test_an_unknown_event_name_is_kept_as_ignored_and_named_in_the_reason() -> None:
    got = only(event("teleported"))
    assert isinstance(got, Ignored)
    assert "teleported" in got.reason


def test_the_recipient_is_rcpt_not_email() -> None:
    got = only(event("bounce", bounce="hard", rcpt="rcpt@example.com", email="other@example.com"))
    assert got.recipient == "rcpt@example.com"


def test_an_event_with_email_but_no_rcpt_names_no_recipient_and_yields_nothing() -> None:
    body = as_json(event="bounce", bounce="hard", id="x", email="other@example.com")
    assert smtp2go.decode(body)  # the body itself is readable
    assert mapped(body) == []


def test_processed_with_a_recipients_array_yields_one_event_per_recipient() -> None:
    items = placed(fixture_bytes("smtp2go", "processed.json"))
    assert [item.event.recipient for item in items] == ["bob@example.com", "carol@example.com"]
    assert [item.event.ord for item in items] == [0, 1]
    assert all(isinstance(item.event, Ignored) for item in items)
    assert {item.event.event_id for item in items} == {"ffeeddccbbaa00998877665544332211"}
    assert items[0].key != items[1].key  # one id, two recipients: two events


@pytest.mark.parametrize("key", ["recipients", "recipients[]", "Recipients"])
def test_processed_with_repeated_form_keys_yields_one_event_per_recipient(key: str) -> None:
    body = as_form(
        ("event", "processed"),
        ("id", "abc"),
        (key, "one@example.com"),
        (key, "Two@Example.com"),
        (key, "three@example.com"),
    )
    recipients = [
        e.recipient for e in mapped(body, content_type="application/x-www-form-urlencoded")
    ]
    assert recipients == ["one@example.com", "two@example.com", "three@example.com"]


@pytest.mark.parametrize(
    "listed", ["one@example.com,two@example.com", "one@example.com; two@example.com"]
)
def test_processed_with_a_comma_or_semicolon_list_yields_one_event_per_recipient(
    listed: str,
) -> None:
    form = as_form(("event", "processed"), ("id", "abc"), ("recipients", listed))
    json_string = as_json(event="processed", id="abc", recipients=listed)
    for body in (form, json_string):
        assert [e.recipient for e in mapped(body)] == ["one@example.com", "two@example.com"]


def recipients_read(body: bytes) -> list[str | None]:
    """The recipients SMTP2GO's module reads, before any normalisation."""
    return [fact.recipient for raw in smtp2go.decode(body) for fact in smtp2go.facts(raw)]


@pytest.mark.parametrize(
    "listed",
    [
        '"Bob Smith" <bob@x.org>, carol@y.org',
        ['"Bob Smith" <bob@x.org>', "carol@y.org"],
        ['"Bob Smith" <bob@x.org>, carol@y.org'],
        '"Smith; Bob" <bob@x.org>; Carol (work) <carol@y.org>',
    ],
    ids=["string", "list", "list-of-one-string", "semicolons-and-comments"],
)
def test_recipients_are_split_by_an_address_parser_into_addr_specs(listed: Any) -> None:
    # L3: a display name split on blanks used to yield junk recipients `"bob`, `smith"`.
    json_body = as_json(event="processed", id="abc", recipients=listed)
    assert recipients_read(json_body) == ["bob@x.org", "carol@y.org"]
    values = listed if isinstance(listed, list) else [listed]
    form = as_form(("event", "processed"), ("id", "abc"), *(("recipients", v) for v in values))
    assert recipients_read(form) == ["bob@x.org", "carol@y.org"]
    assert smtp2go.DEFAULT_MAPPING["processed"] == "ignore"


def test_a_blank_separated_list_of_bare_addresses_is_still_split() -> None:
    body = as_json(event="processed", id="abc", recipients="one@example.com two@example.com")
    assert recipients_read(body) == ["one@example.com", "two@example.com"]


def test_rcpt_stays_one_recipient_with_its_display_name_for_later() -> None:
    body = event("bounce", rcpt='"Bob Smith" <bob@x.org>', bounce="hard")
    assert recipients_read(body) == ['"Bob Smith" <bob@x.org>']


def test_unsubscribe_stays_ignored_by_default_as_upstream_documents() -> None:
    [fact] = smtp2go.facts(smtp2go.decode(fixture_bytes("smtp2go", "unsubscribe.json"))[0])
    assert fact.raw_kind == "unsubscribe"
    assert fact.scope is None
    assert smtp2go.DEFAULT_MAPPING["unsubscribe"] == "ignore"


def test_a_mapped_processed_event_applies_to_every_recipient() -> None:
    policy = Policy(providers={"smtp2go": {"processed": "unsubscribe"}})
    events = mapped(fixture_bytes("smtp2go", "processed.json"), policy)
    assert [type(e) for e in events] == [Unsubscribe, Unsubscribe]


# -- spellings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synonym", "canonical"),
    [
        ("opened", "open"),
        ("clicked", "click"),
        ("spam_complaint", "spam"),
        ("unsubscribed", "unsubscribe"),
        ("Spam-Complaint", "spam"),
        ("BOUNCED", "bounce"),
    ],
)
def test_a_spelling_synonym_maps_like_its_canonical_name(synonym: str, canonical: str) -> None:
    via_synonym = only(event(synonym, bounce="hard"))
    via_canonical = only(event(canonical, bounce="hard"))
    assert type(via_synonym) is type(via_canonical)
    assert via_synonym.raw_kind == canonical
    assert smtp2go.canonical_kind(synonym) == canonical


def test_spam_complaint_spelling_is_a_complaint() -> None:
    assert isinstance(only(event("spam_complaint")), Complaint)


def test_a_synonym_is_mapped_by_an_override_of_its_canonical_name() -> None:
    policy = Policy(providers={"smtp2go": {"unsubscribe": "unsubscribe"}})
    assert isinstance(only(event("unsubscribed"), policy), Unsubscribe)


# -- body formats -----------------------------------------------------------------------------


def test_form_body_with_mixed_case_duplicate_keys_decodes_to_one_key() -> None:
    (raw,) = smtp2go.decode(fixture_bytes("smtp2go", "hard_bounce.form"))
    assert raw["message_id"] == "<20260504101458.abc123@example.com>"
    assert raw["subject"] == "Your receipt"
    assert not {"Message-Id", "message-id", "Subject"} & raw.keys()


def test_form_duplicate_keys_keep_the_first_value() -> None:
    body = as_form(
        ("event", "bounce"),
        ("Message-Id", "<first@example.com>"),
        ("message-id", "<second@example.com>"),
        ("RCPT", "a@example.com"),
        ("rcpt", "b@example.com"),
    )
    (raw,) = smtp2go.decode(body)
    assert raw["message_id"] == "<first@example.com>"
    assert raw["rcpt"] == "a@example.com"


def test_json_keys_are_read_case_insensitively_with_dash_and_underscore_alike() -> None:
    body = as_json(
        Event="bounce", Bounce="hard", ID="abc", RCPT="x@example.com", **{"Email-Id": "e1"}
    )
    got = only(body)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"
    assert got.event_id == "abc"
    assert got.message_id == "e1"
    assert got.recipient == "x@example.com"


def test_form_and_json_copies_of_the_same_bounce_map_to_the_same_events_and_keys() -> None:
    from_form = placed(fixture_bytes("smtp2go", "hard_bounce.form"))
    from_json = placed(fixture_bytes("smtp2go", "hard_bounce.json"))
    assert from_form == from_json


def test_json_object_json_array_and_form_give_the_same_events() -> None:
    fields = {
        "event": "bounce",
        "bounce": "soft",
        "id": "abc",
        "email_id": "e1",
        "time": "2026-05-04T10:00:00Z",
        "rcpt": "x@example.com",
        "message": "452 4.2.2 Mailbox full",
    }
    obj = msgspec.json.encode(fields)
    array = msgspec.json.encode([fields])
    form = urlencode(fields).encode()
    assert placed(obj) == placed(array) == placed(form)
    assert len(placed(obj)) == 1


def test_a_json_array_yields_every_event_in_order() -> None:
    body = msgspec.json.encode(
        [
            {"event": "delivered", "id": "1", "rcpt": "a@example.com"},
            {"event": "spam", "id": "2", "rcpt": "b@example.com"},
        ]
    )
    events = mapped(body)
    assert [(type(e), e.recipient, e.ord) for e in events] == [
        (Delivered, "a@example.com", 0),
        (Complaint, "b@example.com", 1),
    ]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("hard_bounce.json", "application/x-www-form-urlencoded"),
        ("hard_bounce.form", "application/json"),
        ("hard_bounce.json", "text/plain"),
        ("hard_bounce.form", ""),
    ],
)
def test_content_type_is_ignored_and_the_format_sniffed_from_the_bytes(
    name: str, content_type: str
) -> None:
    got = only(fixture_bytes("smtp2go", name), content_type=content_type)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"
    assert got.recipient == "nobody@example.org"


@pytest.mark.parametrize(
    "prefix", [b"\n  ", b"\xef\xbb\xbf", b"\r\n"], ids=["whitespace", "bom", "crlf"]
)
def test_leading_whitespace_or_a_byte_order_mark_before_json_is_tolerated(prefix: bytes) -> None:
    got = only(prefix + fixture_bytes("smtp2go", "spam.json") + b"\n")
    assert isinstance(got, Complaint)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n\t  ",
        b"{not json",
        b'{"event": "bounce",}',
        b"42",
        b'"bounce"',
        b"null",
        b"[]",
        b"[1, 2]",
        b'[{"event": "bounce", "rcpt": "a@example.com"}, "x"]',
        b'{"rcpt": "a@example.com", "bounce": "hard"}',
        b'{"event": "", "rcpt": "a@example.com"}',
        b'{"event": 5, "rcpt": "a@example.com"}',
        b"event=bounce&rcpt=caf\xe9@example.com",
        b'{"event": "bounce", "rcpt": "caf\xe9@example.com"}',
        b"rcpt=a%40example.com&bounce=hard",
        b"just some text",
    ],
    ids=[
        "empty",
        "whitespace",
        "invalid-json",
        "trailing-comma",
        "json-number",
        "json-string",
        "json-null",
        "empty-array",
        "array-of-non-objects",
        "array-with-a-non-object",
        "object-without-event",
        "blank-event",
        "non-string-event",
        "form-not-utf8",
        "json-not-utf8",
        "form-without-event",
        "plain-text",
    ],
)
def test_an_unreadable_body_fails_to_decode_and_maps_to_nothing(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        smtp2go.decode(body)
    assert placed(body) == []  # the projection skips it; the receipt stays in the ledger


def test_a_receipt_from_a_source_without_a_decoder_maps_to_nothing() -> None:
    assert placed(fixture_bytes("smtp2go", "spam.json"), source="unheard-of") == []


# -- recipients ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rcpt",
    ["alice@example.com", "  Alice@Example.COM ", "ALICE@EXAMPLE.COM", "\talice@example.com\n"],
)
def test_recipients_are_normalized_case_insensitively_after_trimming(rcpt: str) -> None:
    assert only(event("delivered", rcpt=rcpt)).recipient == "alice@example.com"


def test_recipient_variants_of_one_event_id_share_one_dedup_key() -> None:
    assert key_of(event("bounce", rcpt="Alice@Example.com ")) == key_of(
        event("bounce", rcpt="alice@example.com")
    )


@pytest.mark.parametrize("rcpt", ["", "   "])
def test_a_blank_rcpt_falls_back_to_recipients_or_names_nobody(rcpt: str) -> None:
    assert mapped(event("bounce", rcpt=rcpt)) == []
    with_list = event("processed", rcpt=rcpt, recipients=["z@example.com"])
    assert [e.recipient for e in mapped(with_list)] == ["z@example.com"]


# -- de-duplication keys -------------------------------------------------------------------------


def test_the_dedup_key_is_the_provider_id_whatever_else_differs() -> None:
    first = event("bounce", id="same-id", time="2026-05-04T10:00:00Z", message="452 full")
    retried = event("bounce", id="same-id", time="2026-05-04T10:05:00Z", message="452 still full")
    assert key_of(first) == key_of(retried)
    assert key_of(first) != key_of(event("bounce", id="other-id"))


def test_the_same_id_from_another_source_would_be_another_key() -> None:
    from projections.facts import dedup_key

    assert dedup_key("smtp2go", "id1", "a@example.com") != dedup_key("ses", "id1", "a@example.com")


def test_events_without_id_that_are_otherwise_identical_share_a_derived_key() -> None:
    one = event("bounce", id=None, bounce="soft", subject="Hello")
    two = event("bounce", id=None, bounce="soft", subject="Hello")
    (got,) = mapped(one)
    assert got.event_id is not None
    assert got.event_id.startswith("derived:")
    assert key_of(one) == key_of(two)


def test_a_derived_key_ignores_fields_outside_email_id_event_rcpt_and_time() -> None:
    one = event("bounce", id=None, bounce="soft", message="452 full", sendtime="a")
    two = event("bounce", id=None, bounce="soft", message="452 quota", sendtime="b")
    assert key_of(one) == key_of(two)


@pytest.mark.parametrize(
    "change",
    [
        {"time": "2026-05-04T10:00:01Z"},
        {"email_id": "1xZzzz-YyyyXxxx-WwWw"},
        {"event": "delivered"},
        {"rcpt": "someone.else@example.com"},
    ],
    ids=["time", "email_id", "event", "rcpt"],
)
def test_a_derived_key_differs_when_an_identifying_field_differs(change: dict[str, str]) -> None:
    assert key_of(event("bounce", id=None)) != key_of(event("bounce", id=None, **change))


def test_a_derived_key_compares_recipients_case_insensitively() -> None:
    # Recipients are compared case-insensitively after trimming (design.md), so the same
    # id-less event naming the recipient in another case is the same event.
    assert key_of(event("bounce", id=None, rcpt="Alice@Example.com")) == key_of(
        event("bounce", id=None, rcpt="alice@example.com")
    )


def test_a_derived_key_is_the_same_for_json_and_form_copies() -> None:
    fields = {"event": "spam", "email_id": "e1", "rcpt": "a@example.com", "time": "2026-05-04"}
    assert key_of(msgspec.json.encode(fields)) == key_of(urlencode(fields).encode())


# -- event time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-04T10:15:02Z", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("2026-05-04T10:15:02.5Z", datetime(2026, 5, 4, 10, 15, 2, 500_000, tzinfo=UTC)),
        (
            "2026-05-04T10:15:02.123456+00:00",
            datetime(2026, 5, 4, 10, 15, 2, 123_456, tzinfo=UTC),
        ),
        ("2026-05-04T12:15:02+02:00", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("2026-05-04T05:15:02-05:00", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("2026-05-04T10:15:02", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        (" 2026-05-04T10:15:02Z ", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        # issue 12, item 15: RFC 2822 and a spelled-out zone used to fall back silently
        ("Mon, 04 May 2026 10:15:02 +0000", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("Mon, 04 May 2026 12:15:02 +0200", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("04 May 2026 10:15:02 GMT", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("2026-05-04 10:15:02 UTC", datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC)),
        ("2026-05-04T10:15:02.25 UTC", datetime(2026, 5, 4, 10, 15, 2, 250_000, tzinfo=UTC)),
    ],
)
def test_the_event_time_is_read_from_time(text: str, expected: datetime) -> None:
    assert only(event("delivered", time=text)).at == micros(expected)


def test_an_offset_time_survives_form_encoding() -> None:
    body = as_form(
        ("event", "delivered"), ("rcpt", "a@example.com"), ("time", "2026-05-04T12:15:02+02:00")
    )
    assert only(body).at == micros(datetime(2026, 5, 4, 10, 15, 2, tzinfo=UTC))


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-45T99:00:00Z", "now"])
def test_a_missing_or_unreadable_time_falls_back_to_the_receipt_time(text: str | None) -> None:
    received = micros(datetime(2026, 5, 9, 8, 30, tzinfo=UTC))
    got = only(event("delivered", time=text), received_at=received)
    assert got.at == received
    assert got.flags == ("no readable event time: the receipt time is used",)


@pytest.mark.parametrize(
    ("text", "placed"),
    [
        ("9999-12-31T00:00:00Z", "receipt"),
        ("2026-05-09T08:36:00Z", "receipt"),  # six minutes after the receipt
        ("2026-05-09T08:34:00Z", "event"),  # four minutes: clock skew, kept
    ],
)
def test_a_time_after_the_receipt_is_replaced_by_the_receipt_time_visibly(
    text: str, placed: str
) -> None:
    received = micros(datetime(2026, 5, 9, 8, 30, tzinfo=UTC))
    got = only(event("bounce", time=text, bounce="hard"), received_at=received)
    if placed == "receipt":
        assert got.at == received
        assert got.flags == (f"event time {text} is after the receipt: the receipt time is used",)
    else:
        assert got.at == micros(datetime(2026, 5, 9, 8, 34, tzinfo=UTC))
        assert got.flags == ()


def test_events_are_placed_by_receipt_and_position_in_it() -> None:
    body = msgspec.json.encode(
        [
            {"event": "processed", "id": "p", "recipients": ["a@example.com", "b@example.com"]},
            {"event": "delivered", "id": "d", "rcpt": "a@example.com"},
        ]
    )
    events = mapped(body, seq=7)
    assert [(e.seq, e.ord) for e in events] == [(7, 0), (7, 1), (7, 2)]


# -- what an operator is told about an unreadable body ----------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "empty body", id="empty"),
        pytest.param(b" \r\n\xef\xbb\xbf ", "empty body", id="only-a-byte-order-mark"),
        pytest.param(b"[]", "JSON array holds no events", id="empty-array"),
        pytest.param(
            b'[{"event": "bounce"}, "x"]', "JSON item 1 is not an object", id="non-object-item"
        ),
        pytest.param(b"event=bounce&rcpt=caf\xe9", "form body is not UTF-8", id="form-not-utf8"),
        pytest.param(b"just some text", "body is neither JSON nor form-encoded", id="plain-text"),
    ],
)
def test_an_unreadable_body_is_refused_with_a_message_saying_why(body: bytes, message: str) -> None:
    # The message is what an operator reads on a quarantined delivery ("still
    # undecodable: …"), so it names what is wrong with the body.
    with pytest.raises(DecodeFailed) as failed:
        smtp2go.decode(body)
    assert str(failed.value) == message


def test_invalid_json_is_refused_with_a_message_naming_json_and_the_parser_error() -> None:
    with pytest.raises(DecodeFailed) as failed:
        smtp2go.decode(b'{"event": "bounce",}')
    text = str(failed.value)
    assert text.startswith("body is not valid JSON: ")
    assert len(text) > len("body is not valid JSON: ")  # the parser's own words follow


# -- field names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        as_json(**{"Event": "bounce", "Bounce": "hard", "RCPT": "x@example.com", "Email-Id": "e1"}),
        as_form(
            ("Event", "bounce"), ("Bounce", "hard"), ("RCPT", "x@example.com"), ("Email-Id", "e1")
        ),
    ],
    ids=["json", "form"],
)
def test_field_names_are_folded_the_same_the_first_time_they_are_seen(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Field names are remembered once folded; a name never seen before (nothing
    # remembered yet) is folded exactly as a remembered one: case-insensitively, `-` as `_`.
    monkeypatch.setattr(smtp2go, "_KEYS", {})
    for _ in range(2):  # first unseen, then remembered
        (raw,) = smtp2go.decode(body)
        assert raw["event"] == "bounce"
        assert raw["email_id"] == "e1"
        assert "email-id" not in raw
        (fact,) = smtp2go.facts(raw)
        assert (fact.bounce_class, fact.message_id, fact.recipient) == (
            "hard",
            "e1",
            "x@example.com",
        )


def test_the_memory_of_field_names_stays_bounded_whatever_names_a_body_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The names are chosen by whoever sends the body: a flood of new names must not
    # grow the process's memory without end, and is still read correctly past the bound.
    monkeypatch.setattr(smtp2go, "_KEYS", {})
    fields = {f"X-Field-{n}": str(n) for n in range(5000)}
    (raw,) = smtp2go.decode(as_json(event="delivered", rcpt="a@example.com", **fields))
    assert len(smtp2go._KEYS) == 4096
    assert raw["x_field_4999"] == "4999"
    assert raw["x_field_0"] == "0"


# -- field values of other JSON types ------------------------------------------------------------


def test_numeric_field_values_are_read_as_their_text() -> None:
    raw = {"event": "delivered", "id": 12345, "email_id": 678, "rcpt": "a@example.com"}
    (fact,) = smtp2go.facts(raw)
    assert fact.event_id == "12345"
    assert fact.message_id == "678"


def test_object_and_list_values_are_read_as_absent() -> None:
    raw = {"event": "bounce", "id": {"x": 1}, "email_id": [1], "rcpt": "a@example.com"}
    (fact,) = smtp2go.facts(raw)
    assert fact.message_id is None
    assert fact.event_id.startswith("derived:")


# -- the provider's own hard/soft call, as the fact keeps it ---------------------------------------


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("bounce", "hard", "hard"),
        ("bounce", "Soft", "soft"),
        ("bounce", "undetermined", None),
        ("bounce", "", None),
        ("bounce", None, None),
        ("delivered", None, None),
    ],
)
def test_the_fact_keeps_smtp2go_s_hard_or_soft_call_and_nothing_else(
    name: str, field: str | None, expected: str | None
) -> None:
    # bounce_class is the provider's own call, None when it made none: an unknown value is
    # not passed on as if it were a class (the mapping then counts the bounce as soft).
    (raw,) = smtp2go.decode(event(name, bounce=field))
    (fact,) = smtp2go.facts(raw)
    assert fact.bounce_class == expected


# -- derived ids ---------------------------------------------------------------------------------


def test_an_id_less_event_naming_several_recipients_has_one_derived_id_per_recipient() -> None:
    raw = {"event": "processed", "email_id": "e1", "recipients": ["a@example.com, b@example.com"]}
    ids = [fact.event_id for fact in smtp2go.facts(raw)]
    assert len(ids) == 2
    assert len(set(ids)) == 2


def test_an_id_less_event_naming_no_recipient_still_has_a_derived_id() -> None:
    raw = {"event": "bounce", "email_id": "e1", "time": "2026-05-04T10:00:00Z"}
    (fact,) = smtp2go.facts(raw)
    assert fact.recipient is None
    assert fact.event_id == "derived:b94deda775f8d65eb13de237beaeea92"


@pytest.mark.parametrize(
    ("raw", "derived"),
    [
        pytest.param(
            {
                "event": "bounce",
                "rcpt": "Alice@Example.com",
                "email_id": "e1",
                "time": "2026-05-04T10:00:00Z",
            },
            "derived:890e7d3c221647bb6095068487aca109",
            id="every-field",
        ),
        pytest.param(
            {"event": "bounce", "rcpt": "a@example.com"},
            "derived:0b7fef436e77fc5ee8e50330b74c3a95",
            id="no-email-id-nor-time",
        ),
        pytest.param(
            {"event": "bounce", "email_id": "e1", "time": "2026-05-04T10:00:00Z"},
            "derived:b94deda775f8d65eb13de237beaeea92",
            id="no-recipient",
        ),
    ],
)
def test_derived_ids_are_stable_from_release_to_release(raw: dict[str, Any], derived: str) -> None:
    # Derived ids are stored with the facts and compared with those of later deliveries,
    # so the same id-less event must derive the same id in every release (a change needs a
    # DERIVATION_VERSION bump and these values updated with it).
    (fact,) = smtp2go.facts(raw)
    assert fact.event_id == derived
