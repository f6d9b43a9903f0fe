"""Every provider module reads its "stream" fields (the provider's own fields saying which
kind of mail an event is about) into `ProviderEvent.labels`, normalised by
`common.labels`, and names them in its `LABELS`. Bodies are shaped like the samples of
reference/providers.md (and the fixtures made from them); each test pins the exact
labels, so a renamed label, a dropped field or a swapped one fails."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from projections.providers import PROVIDERS
from projections.providers.common import (
    LABEL_TEXT_MAX,
    LABELS_KEPT,
    Label,
    each,
    keyed,
    labels,
)
from projections.providers.events import ProviderEvent
from tests.conftest import fixture_bytes
from tests.doors import (
    mailgun_failed,
    postmark_change,
    resend,
    sendgrid_batch,
    ses_bounce,
    ses_mail,
    sg_bounce,
    sg_event,
    smtp2go,
    smtp2go_hard,
)
from tests.providers.signing import dumps, fixture_json, mailgun_body, sns_notification

# -- decoding a body as the provider sends it -------------------------------------------


def events(
    source: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> list[ProviderEvent]:
    """The ProviderEvents of a body: the module's `decode`, then `facts` per raw event."""
    provider = PROVIDERS[source]
    raws = provider.decode(body, content_type, headers or {})
    return [event for raw in raws for event in provider.facts(raw)]


def labels_of(source: str, body: bytes, **kwargs: Any) -> tuple[Label, ...]:
    """The labels of a body's events: every event of one raw event carries the same."""
    found = [event.labels for event in events(source, body, **kwargs)]
    assert found, "the body holds no event"
    assert all(item == found[0] for item in found), found
    return found[0]


def smtp2go_json(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def smtp2go_form(event: dict[str, Any] | list[tuple[str, str]]) -> bytes:
    return urlencode(event).encode()


def ses_body(message: dict[str, Any], message_id: str = "0f1e2d3c-0000-4000-8000-labels") -> bytes:
    return dumps(sns_notification(message, message_id=message_id))


def ses_tagged(tags: dict[str, Any], *, destination: list[str] | None = None) -> dict[str, Any]:
    """An event-publishing delivery whose `mail` carries `tags`."""
    recipients = destination or ["alice@example.com"]
    mail = {**ses_mail(recipients, "0102018f-4444-5555-6666-777788889999-000000"), "tags": tags}
    return {
        "eventType": "Delivery",
        "delivery": {
            "timestamp": "2026-05-04T10:15:05.300Z",
            "processingTimeMillis": 812,
            "recipients": recipients,
            "smtpResponse": "250 2.0.0 OK 1714817705 x12si",
            "reportingMTA": "a1-23.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": mail,
    }


def resend_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


RESEND_HEADERS = {"svix-id": "msg_2fX9aKq7Lm3Pz8Rt1Vw4Yb6Nc0"}


def postmark_body(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


def mailtura_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def mailtura_event(**data: Any) -> dict[str, Any]:
    return {
        "id": "evt_123456",
        "type": "email.delivered",
        "timestamp": "2024-12-30T10:00:00Z",
        "data": {
            "emailId": "msg_123456",
            "recipient": "user@example.com",
            "subject": "Welcome to Acme Corp",
            **data,
        },
    }


# -- common.labels ------------------------------------------------------------------------


def test_labels_normalise_names_and_values() -> None:
    assert labels(
        [
            ("  Message_Stream ", " broadcast "),
            ("asm_group", 4211),
            ("score", 2.5),
            ("TAG:Campaign", "Weekly"),
        ]
    ) == (
        ("asm_group", "4211"),
        ("message_stream", "broadcast"),
        ("score", "2.5"),
        ("tag:campaign", "Weekly"),  # the name is folded, never the value
    )


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", True, False, {"a": "b"}, ["a", "b"]],
    ids=["none", "empty", "blank", "true", "false", "object", "array"],
)
def test_labels_drop_values_that_are_not_scalar_text(value: Any) -> None:
    assert labels([("tag", value), ("kept", "yes")]) == (("kept", "yes"),)


def test_labels_drop_blank_names() -> None:
    assert labels([("", "x"), ("   ", "y"), ("tag", "z")]) == (("tag", "z"),)


def test_labels_are_unique_and_sorted_by_name_then_value() -> None:
    pairs = [("tag", "b"), ("Tag", "a"), ("category", "z"), ("tag", " b "), ("tag", "a")]
    assert labels(pairs) == (("category", "z"), ("tag", "a"), ("tag", "b"))
    assert labels([]) == ()


def test_labels_cut_names_and_values_to_the_bound() -> None:
    assert LABEL_TEXT_MAX == 200
    ((name, value),) = labels([("n" * 250, "v" * 250)])
    assert (name, value) == ("n" * 200, "v" * 200)
    assert labels([("tag", "v" * 200)]) == (("tag", "v" * 200),)


def test_labels_keep_at_most_the_bound_first_in_order() -> None:
    assert LABELS_KEPT == 32
    first = tuple((f"tag:{index:02d}", "x") for index in range(32))
    pairs = [(f"tag:{index:02d}", "x") for index in reversed(range(40))]
    assert labels(pairs) == first  # the first 32 in sorted order, whatever the input order
    assert labels(first) == first  # exactly the bound: all kept
    assert labels([*first, ("tag:32", "x")]) == first


def test_each_reads_one_value_or_an_array() -> None:
    assert each(None) == []
    assert each("receipts") == ["receipts"]
    assert each(4211) == [4211]
    assert each(["a", "b"]) == ["a", "b"]
    assert each([]) == []


def test_keyed_prefixes_each_entry_of_an_object() -> None:
    assert keyed("metadata:", {"tenant_ref": "t_42", " plan ": "pro", "  ": "x", "": "y"}) == [
        ("metadata:tenant_ref", "t_42"),
        ("metadata:plan", "pro"),
    ]
    assert keyed("tag:", ["a", "b"]) == []
    assert keyed("tag:", None) == []


# -- Postmark -----------------------------------------------------------------------------


def test_postmark_reads_stream_tag_and_metadata() -> None:
    """The providers.md hard bounce sample: `Tag`, `MessageStream`, one `Metadata` entry."""
    body = fixture_bytes("postmark", "hard_bounce.json")
    assert labels_of("postmark", body) == (
        ("message_stream", "outbound"),
        ("metadata:tenant_ref", "t_42"),
        ("tag", "receipts"),
    )


def test_postmark_metadata_keeps_scalar_entries_by_key() -> None:
    record = {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "MessageID": "c3d4e5f6-a7b8-4c9d-0e1f-2a3b4c5d6e7f",
        "Recipient": "alice@example.com",
        "Tag": "weekly-digest",
        "DeliveredAt": "2026-05-04T10:15:05.3000000Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"Plan": "pro", "user_id": 1234, "nested": {"a": "b"}, "beta": True},
    }
    assert labels_of("postmark", postmark_body(record)) == (
        ("message_stream", "broadcast"),
        ("metadata:plan", "pro"),
        ("metadata:user_id", "1234"),
        ("tag", "weekly-digest"),
    )


def test_postmark_subscription_change_without_tag_reads_its_stream() -> None:
    record = postmark_change(
        "bob@example.com",
        "2026-05-06T12:41:09Z",
        suppress=True,
        origin="Recipient",
        reason="ManualSuppression",
        stream="broadcast",
    )
    (event,) = events("postmark", postmark_body(record))
    assert event.labels == (("message_stream", "broadcast"),)
    assert event.scope == "broadcast"


def test_postmark_record_without_stream_fields_has_no_labels() -> None:
    record = {
        "RecordType": "SpamComplaint",
        "ID": 4323372036854775809,
        "Type": "SpamComplaint",
        "TypeCode": 100001,
        "MessageID": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
        "Email": "annoyed@example.com",
        "BouncedAt": "2026-05-05T08:00:11Z",
        "Tag": "",
        "Metadata": {},
    }
    assert labels_of("postmark", postmark_body(record)) == ()


# -- SendGrid -----------------------------------------------------------------------------


def test_sendgrid_reads_group_categories_and_campaign_per_event() -> None:
    body = sendgrid_batch(
        sg_bounce(
            "nobody@example.org",
            1777889702,
            "Ym91bmNlLTAtMTExLWFiYzEyMw",
            asm_group_id=4211,
            category=["receipts", "billing"],
            marketing_campaign_id=9876,
            tenant_ref="t_42",  # a custom arg, flattened to the top level: not a label
        ),
        sg_event(
            "spamreport",
            "annoyed@example.com",
            1777968011,
            "c3BhbXJlcG9ydC0wLTMzMy1naGk3ODk",
            category="newsletter",
        ),
        sg_event("delivered", "alice@example.com", 1777889705, "ZGVsaXZlcmVkLTAtNDQ0LWprbDAxMg"),
    )
    assert [event.labels for event in events("sendgrid", body)] == [
        (
            ("asm_group", "4211"),
            ("category", "billing"),
            ("category", "receipts"),
            ("marketing_campaign", "9876"),
        ),
        (("category", "newsletter"),),
        (),
    ]


def test_sendgrid_fixture_batch_reads_its_category_array() -> None:
    body = fixture_bytes("sendgrid", "batch.json")
    found = [event.labels for event in events("sendgrid", body)]
    assert found == [(("category", "receipts"),), (), (), (), (), ()]


def test_sendgrid_group_unsubscribe_carries_its_group_as_scope_and_label() -> None:
    body = sendgrid_batch(
        sg_event(
            "group_unsubscribe",
            "bob@example.com",
            1778071269,
            "Z3JvdXAtdW5zdWItMC01NTU",
            asm_group_id="4211",
            marketing_campaign_id="spring-sale",
        )
    )
    (event,) = events("sendgrid", body)
    assert (event.raw_kind, event.scope) == ("group_unsubscribe", "4211")
    assert event.labels == (("asm_group", "4211"), ("marketing_campaign", "spring-sale"))


# -- Mailgun ------------------------------------------------------------------------------


def test_mailgun_reads_tags_and_user_variables() -> None:
    """The providers.md hard bounce sample: one tag, one user variable."""
    body = fixture_bytes("mailgun", "hard_bounce.json")
    assert labels_of("mailgun", body) == (("tag", "receipts"), ("user_variable:tenant_ref", "t_42"))


def test_mailgun_reads_several_tags_and_scalar_user_variables() -> None:
    event = mailgun_failed(
        "nobody@example.org",
        1777889702.512345,
        "Xq7pR2sT9uVwYzA1bC3dEf",
        tags=["newsletter", "weekly", ""],
        **{"user-variables": {"Tenant": "t_42", "batch": 17, "extra": {"a": 1}}},
    )
    assert labels_of("mailgun", mailgun_body(event)) == (
        ("tag", "newsletter"),
        ("tag", "weekly"),
        ("user_variable:batch", "17"),
        ("user_variable:tenant", "t_42"),
    )


def test_mailgun_tagged_unsubscribe_keeps_its_tags_as_labels_and_scope() -> None:
    event = {
        "event": "unsubscribed",
        "id": "Us5rE3wQ1aZ9xS7dC5vBn",
        "timestamp": 1778071269.05,
        "recipient": "bob@example.com",
        "tags": ["newsletter"],
        "message": {"headers": {"message-id": "20260506090000.jkl012@mg.example.com"}},
    }
    (found,) = events("mailgun", mailgun_body(event))
    assert (found.raw_kind, found.scope) == ("tag_unsubscribed", "newsletter")
    assert found.labels == (("tag", "newsletter"),)


def test_mailgun_event_without_tags_or_variables_has_no_labels() -> None:
    body = fixture_bytes("mailgun", "complained.json")
    assert labels_of("mailgun", body) == ()


# -- Amazon SES ---------------------------------------------------------------------------


def test_ses_reads_the_configuration_set_tag() -> None:
    """The providers.md event-publishing soft bounce: `ses:configuration-set` only."""
    message = fixture_json("ses", "soft_bounce.json")
    assert labels_of("ses", ses_body(message)) == (("configuration_set", "prod"),)


def test_ses_reads_the_senders_tags_and_skips_the_builtin_ones() -> None:
    tags = {
        "ses:configuration-set": ["marketing"],
        "ses:source-ip": ["192.0.2.10"],
        "ses:from-domain": ["example.com"],
        "ses:caller-identity": ["mailer"],
        "ses:outgoing-ip": ["198.51.100.3"],
        "campaign": ["weekly"],
        "Segment": ["gold", "eu"],
    }
    assert labels_of("ses", ses_body(ses_tagged(tags))) == (
        ("configuration_set", "marketing"),
        ("tag:campaign", "weekly"),
        ("tag:segment", "eu"),
        ("tag:segment", "gold"),
    )


def test_ses_every_recipient_of_one_event_carries_the_same_labels() -> None:
    message = ses_tagged(
        {"campaign": ["weekly"]}, destination=["alice@example.com", "carol@example.com"]
    )
    found = events("ses", ses_body(message))
    assert [event.recipient for event in found] == ["alice@example.com", "carol@example.com"]
    assert [event.labels for event in found] == [(("tag:campaign", "weekly"),)] * 2


def test_ses_feedback_notification_without_tags_has_no_labels() -> None:
    message = ses_bounce("nobody@example.org", "2026-05-04T10:15:02.481Z")
    assert labels_of("ses", ses_body(message)) == ()


# -- Resend -------------------------------------------------------------------------------


def test_resend_reads_tags_given_as_an_object() -> None:
    """The providers.md hard bounce sample: `tags` as an object name -> value."""
    body = fixture_bytes("resend", "hard_bounce.json")
    assert labels_of("resend", body, headers=RESEND_HEADERS) == (("tag:category", "receipts"),)


def test_resend_reads_tags_given_as_an_array_for_every_recipient() -> None:
    document = resend(
        "email.complained",
        ["annoyed@example.com", "other@example.com"],
        "2026-05-05T08:00:11.000Z",
        "9b3d1f2e-0000-4000-8000-000000000001",
        tags=[
            {"name": "campaign", "value": "weekly"},
            {"name": "Tier", "value": "gold"},
            {"name": "", "value": "nameless"},
            {"value": "nameless"},
            "not-an-entry",
        ],
    )
    found = events("resend", resend_body(document), headers=RESEND_HEADERS)
    assert [event.shared for event in found] == [2, 2]
    assert [event.labels for event in found] == [
        (("tag:campaign", "weekly"), ("tag:tier", "gold"))
    ] * 2


def test_resend_contact_event_reads_its_audience() -> None:
    document = {
        "type": "contact.updated",
        "created_at": "2026-05-06T12:41:09.000Z",
        "data": {
            "id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
            "audience_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf",
            "email": "bob@example.com",
            "unsubscribed": True,
        },
    }
    (event,) = events("resend", resend_body(document), headers=RESEND_HEADERS)
    assert event.raw_kind == "contact_unsubscribed"
    assert event.labels == (("audience", "78261eea-8f8b-4381-83c6-79fa7120f1cf"),)


def test_resend_event_without_tags_has_no_labels() -> None:
    body = fixture_bytes("resend", "delivered.json")
    assert labels_of("resend", body, headers=RESEND_HEADERS) == ()


# -- SMTP2GO ------------------------------------------------------------------------------


def test_smtp2go_json_custom_headers_are_labels_by_lower_cased_name() -> None:
    event = smtp2go_hard("nobody@example.org", "2026-05-04T10:15:02Z", "9f2c41d07a3b")
    event.update({"X-Stream": "newsletter", "List-Id": "<weekly.example.com>"})
    assert labels_of("smtp2go", smtp2go_json(event)) == (
        ("header:list-id", "<weekly.example.com>"),
        ("header:x-stream", "newsletter"),
    )


def test_smtp2go_form_body_custom_headers_are_labels() -> None:
    """The providers.md form sample (default output, with the header-cased `Message-Id`
    and `Subject` duplicates) plus two custom headers."""
    custom = b"&X-Stream=newsletter&X-Campaign=Spring+Sale"
    body = fixture_bytes("smtp2go", "hard_bounce.form") + custom
    assert labels_of("smtp2go", body, content_type="application/x-www-form-urlencoded") == (
        ("header:x-campaign", "Spring Sale"),
        ("header:x-stream", "newsletter"),
    )


def test_smtp2go_default_headers_are_not_labels() -> None:
    """`Message-Id` and `Subject` are sent by default (mixed case in form output, and
    reportedly in JSON too): SMTP2GO's own fields, never custom headers."""
    form = fixture_bytes("smtp2go", "hard_bounce.form")
    assert labels_of("smtp2go", form, content_type="application/x-www-form-urlencoded") == ()
    event = smtp2go("delivered", "alice@example.com", "2026-05-04T10:15:05Z", "a1b2c3d4")
    event.update({"Message-Id": "<20260504101501.x@example.com>", "Subject": "Your receipt"})
    assert labels_of("smtp2go", smtp2go_json(event)) == ()
    assert labels_of("smtp2go", fixture_bytes("smtp2go", "hard_bounce.json")) == ()


def test_smtp2go_documented_and_observed_fields_are_not_labels() -> None:
    """Every field SMTP2GO documents or was seen sending, in its own spelling."""
    event = {
        "event": "open",
        "time": "2026-05-04T10:20:00Z",
        "sendtime": "2026-05-04T10:15:01.100200+00:00",
        "sender": "bounces@mail.example.com",
        "from": "Example App <noreply@example.com>",
        "from_address": "noreply@example.com",
        "from_name": "Example App",
        "rcpt": "alice@example.com",
        "recipients": ["alice@example.com"],
        "auth": "api-1A2B3C4D5E6F",
        "host": "mx.example.com [192.0.2.44]",
        "message": "opened",
        "context": "Unavailable",
        "email_id": "1xQz7a-ZyXwVuTsRqP-OnMl",
        "id": "a1b2c3d4e5f60718293a4b5c6d7e8f91",
        "message-id": "<20260504101501.x@example.com>",
        "bounce": "soft",
        "subject": "Your receipt",
        "user-agent": "Mozilla/5.0",
        "read-secs": 15,
        "client": "Thunderbird",
        "client-device": "desktop",
        "client-os": "Linux",
        "geoip-continent": "Europe",
        "geoip-country": "NZ",
        "geoip-city": "Wellington",
        "srchost": "203.0.113.9",
        "opened-at": "2026-05-04T10:20:00Z",
        "clicked-at": "2026-05-04T10:21:00Z",
        "link": "https://example.com/a",
        "click_url": "https://example.com/a",
        "recipients[]": "alice@example.com",
        "timestamp": 1777889705,
        "email": "alice@example.com",
        "recipients_list": "alice@example.com",
        "hostname": "mx.example.com",
    }
    assert labels_of("smtp2go", smtp2go_json(event)) == ()


def test_smtp2go_header_names_fold_underscores_and_skip_non_header_keys() -> None:
    event = smtp2go("spam", "annoyed@example.com", "2026-05-05T08:00:11Z", "5c6d7e8f9a0b")
    event.update(
        {
            "X_Mailer_Stream": "digest",  # `_` is read as `-`, as for every key
            "Precedence": "bulk",  # a header needs no `X-` prefix
            "not a header": "blank inside",
            "Bad:Name": "colon inside",
            "X-Ünïcode": "not ASCII",
            "X-Nested": {"a": "b"},
            "X-Count": 3,
        }
    )
    assert labels_of("smtp2go", smtp2go_json(event)) == (
        ("header:precedence", "bulk"),
        ("header:x-count", "3"),
        ("header:x-mailer-stream", "digest"),
    )


def test_smtp2go_processed_gives_every_recipient_the_same_labels() -> None:
    form = [
        ("event", "processed"),
        ("id", "ffeeddccbbaa00998877665544332211"),
        ("email_id", "1xR1bb-AaBbCcDdEeF-GgHh"),
        ("time", "2026-05-06T09:00:00Z"),
        ("recipients", "bob@example.com"),
        ("recipients", "carol@example.com"),
        ("srchost", "198.51.100.9"),
        ("Subject", "Newsletter"),
        ("subject", "Newsletter"),
        ("X-Stream", "newsletter"),
    ]
    found = events("smtp2go", smtp2go_form(form), content_type="application/x-www-form-urlencoded")
    assert [event.recipient for event in found] == ["bob@example.com", "carol@example.com"]
    assert [event.labels for event in found] == [(("header:x-stream", "newsletter"),)] * 2


# -- Mailtura -----------------------------------------------------------------------------


def test_mailtura_reads_stream_and_tag_array() -> None:
    document = mailtura_event(stream="newsletter", tags=["weekly", "promo", ""])
    assert labels_of("mailtura", mailtura_body(document)) == (
        ("stream", "newsletter"),
        ("tag", "promo"),
        ("tag", "weekly"),
    )


def test_mailtura_reads_named_tags_from_an_object() -> None:
    document = mailtura_event(tags={"Campaign": "spring", "tier": 2})
    assert labels_of("mailtura", mailtura_body(document)) == (
        ("tag:campaign", "spring"),
        ("tag:tier", "2"),
    )


def test_mailtura_flat_shape_reads_top_level_stream_and_tags() -> None:
    document = fixture_json("mailtura", "flat_bounced.json")
    document.update(stream="transactional", tags=["receipts"])
    assert labels_of("mailtura", mailtura_body(document)) == (
        ("stream", "transactional"),
        ("tag", "receipts"),
    )


def test_mailtura_event_without_stream_fields_has_no_labels() -> None:
    assert labels_of("mailtura", fixture_bytes("mailtura", "bounced_hard.json")) == ()


# -- LABELS names every label a module emits ----------------------------------------------


def _smtp2go_with_header() -> bytes:
    event = smtp2go("delivered", "alice@example.com", "2026-05-04T10:15:05Z", "a1b2c3d4")
    return smtp2go_json({**event, "X-Stream": "newsletter"})


# Bodies that between them make each module emit every label it reads.
EMITTING: dict[str, list[tuple[bytes, dict[str, Any]]]] = {
    "smtp2go": [(_smtp2go_with_header(), {})],
    "ses": [
        (ses_body(ses_tagged({"ses:configuration-set": ["prod"], "campaign": ["weekly"]})), {})
    ],
    "sendgrid": [
        (
            sendgrid_batch(
                sg_event(
                    "delivered",
                    "alice@example.com",
                    1777889705,
                    "ZGVsaXZlcmVk",
                    asm_group_id=4211,
                    category="receipts",
                    marketing_campaign_id=9876,
                )
            ),
            {},
        )
    ],
    "mailgun": [(fixture_bytes("mailgun", "hard_bounce.json"), {})],
    "resend": [
        (fixture_bytes("resend", "hard_bounce.json"), {"headers": RESEND_HEADERS}),
        (
            resend_body(
                {
                    "type": "contact.created",
                    "created_at": "2026-05-06T12:41:09.000Z",
                    "data": {"id": "c1", "audience_id": "a1", "email": "bob@example.com"},
                }
            ),
            {"headers": RESEND_HEADERS},
        ),
    ],
    "postmark": [(fixture_bytes("postmark", "hard_bounce.json"), {})],
    "mailtura": [
        (mailtura_body(mailtura_event(stream="newsletter", tags=["weekly"])), {}),
        (mailtura_body(mailtura_event(tags={"campaign": "spring"})), {}),
    ],
}


def _declared(name: str) -> str:
    """A label's name as LABELS lists it: `tag:campaign` -> `tag:`."""
    head, colon, _ = name.partition(":")
    return head + colon


@pytest.mark.parametrize("source", sorted(PROVIDERS))
def test_labels_names_every_label_the_module_emits(source: str) -> None:
    emitted = {
        _declared(name)
        for body, kwargs in EMITTING[source]
        for event in events(source, body, **kwargs)
        for name, _ in event.labels
    }
    declared = PROVIDERS[source].LABELS
    assert emitted <= set(declared), emitted - set(declared)
    # and LABELS names nothing the module never emits
    assert emitted == set(declared)
    assert all(description.strip() for description in declared.values())
