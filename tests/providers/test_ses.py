"""Amazon SES through SNS: envelopes, several recipients per event, SNS signatures v1/v2
with a self-signed certificate standing in for Amazon's, and the subscription handshake."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from api.settings import Settings
from api.signatures import SignatureInvalid, SignatureUnverifiable
from api.sns_certificates import CertificateSource
from api.sns_messages import (
    cert_file_name,
    check_message,
    check_signature,
    check_subscribe_url,
)
from projections import DecodeFailed
from projections.events import (
    Bounce,
    Complaint,
    Deferred,
    Delivered,
    Ignored,
    Resubscribe,
    Unsubscribe,
)
from projections.policy import parse_policy
from projections.providers import PROVIDERS, ses
from tests.conftest import AUTH, settle
from tests.doors import post_ses, ses_mail, timeline, verdict
from tests.providers.helpers import mapped, micros, only, placed, state, stored, webhook
from tests.providers.signing import (
    CERT_URL,
    TOPIC,
    dumps,
    fixture_json,
    flipped,
    sns_certificate,
    sns_confirmation,
    sns_headers,
    sns_identity,
    sns_notification,
    sns_sign,
)

HARD = fixture_json("ses", "hard_bounce.json")


def body_of(message: dict[str, Any] | str, **options: Any) -> bytes:
    return dumps(sns_notification(message, **options))


def events(name: str, **options: Any) -> list[Any]:
    return mapped("ses", body_of(fixture_json("ses", name), **options))


# Decoding and mapping.


def test_the_reference_envelope_fixture_decodes_to_its_ses_bounce() -> None:
    raw = ses.decode((Path(__file__).parent.parent / "fixtures/ses/notification.json").read_bytes())
    assert raw[0]["sns_message_id"] == "c0ffee00-1111-4222-8333-444455556666"
    assert raw[0]["message"] == HARD


def test_a_hard_bounce_maps_with_sns_and_ses_ids() -> None:
    event = only(events("hard_bounce.json", message_id="sns-msg-1"))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"
    assert event.recipient == "nobody@example.org"
    assert event.event_id == "sns-msg-1"
    assert event.message_id == "0102018f-1234-5678-9abc-def012345678-000000"
    assert event.at == micros("2026-05-04T10:15:02.481Z")
    assert event.diagnostic == "smtp; 550 5.1.1 user unknown"
    assert event.raw_kind == "bounce"


def test_every_bounced_recipient_gets_its_own_event() -> None:
    got = events("multi_recipient_bounce.json")
    assert [e.recipient for e in got] == [
        "first@example.org",
        "second@example.org",
        "third@example.org",
    ]
    assert all(isinstance(e, Bounce) and e.bounce_class == "hard" for e in got)
    assert got[1].diagnostic == "smtp; 550 5.1.1 no such mailbox"
    assert got[2].diagnostic == "5.1.10"  # no diagnosticCode: the status
    keys = {
        p.key for p in placed("ses", body_of(fixture_json("ses", "multi_recipient_bounce.json")))
    }
    assert len(keys) == 3  # MessageId + recipient: one key each


def test_transient_is_soft_and_undetermined_counts_as_soft() -> None:
    soft = only(events("soft_bounce.json"))
    assert isinstance(soft, Bounce)
    assert soft.bounce_class == "soft"
    undetermined = only(events("undetermined_bounce.json"))
    assert isinstance(undetermined, Bounce)
    assert undetermined.bounce_class == "soft"
    [fact] = placed("ses", body_of(fixture_json("ses", "undetermined_bounce.json")))
    assert fact.fact.bounce_class is None  # the provider made no call; the mapping says soft


@pytest.mark.parametrize(
    ("name", "kind", "recipient"),
    [
        ("complaint.json", Complaint, "annoyed@example.com"),
        ("complaint_not_spam.json", Ignored, "happy@example.com"),
        ("delivery.json", Delivered, "alice@example.com"),
        ("delivery_delay.json", Deferred, "slow@example.net"),
        ("unsubscribe.json", Unsubscribe, "bob@example.com"),
        ("open.json", Ignored, "alice@example.com"),
    ],
)
def test_each_ses_event_type_maps_to_its_kind(name: str, kind: type, recipient: str) -> None:
    event = only(events(name))
    assert isinstance(event, kind)
    assert event.recipient == recipient


def test_delivery_carries_the_smtp_response() -> None:
    assert only(events("delivery.json")).diagnostic == "250 2.0.0 OK 1714817705 x12si"


@pytest.mark.parametrize("event_type", ["Send", "Reject", "Click", "Rendering Failure"])
def test_sending_and_engagement_events_are_ignored_for_every_destination(event_type: str) -> None:
    message = {
        "eventType": event_type,
        "mail": {"messageId": "m-1", "destination": ["a@example.org", "b@example.org"]},
    }
    got = mapped("ses", body_of(message))
    assert [e.recipient for e in got] == ["a@example.org", "b@example.org"]
    # known, deliberately ignored
    assert all(isinstance(e, Ignored) and "unknown" not in e.reason for e in got)


def test_subscription_events_split_into_global_and_topic_changes() -> None:
    message = fixture_json("ses", "unsubscribe.json")
    back = json.loads(json.dumps(message))
    sub = back["subscription"]
    sub["newTopicPreferences"], sub["oldTopicPreferences"] = (
        sub["oldTopicPreferences"],
        sub["newTopicPreferences"],
    )
    assert isinstance(only(mapped("ses", body_of(back))), Resubscribe)
    topic_only = json.loads(json.dumps(message))
    topic_only["subscription"]["newTopicPreferences"]["unsubscribeAll"] = False
    assert isinstance(only(mapped("ses", body_of(topic_only))), Ignored)


def ses_facts(message: dict[str, Any]) -> list[Any]:
    """The ProviderEvents SES's module reads from one SES message inside an SNS envelope."""
    return [fact for raw in ses.decode(body_of(message)) for fact in ses.facts(raw)]


@pytest.mark.parametrize(
    ("feedback", "raw_kind"),
    [("auth-failure", "complaint_auth_failure"), ("virus", "complaint_virus")],
)
def test_auth_failure_and_virus_reports_are_not_user_complaints(
    feedback: str, raw_kind: str
) -> None:
    # M3: RFC 5965 reports about the message, not the recipient pressing "spam".
    message = fixture_json("ses", "complaint.json")
    message["complaint"]["complaintFeedbackType"] = feedback
    [fact] = ses_facts(message)
    assert fact.raw_kind == raw_kind
    assert fact.recipient == "annoyed@example.com"
    assert fact.bounce_class is None
    assert ses.DEFAULT_MAPPING[raw_kind] == "ignore"
    assert isinstance(only(mapped("ses", body_of(message))), Ignored)


def test_an_abuse_complaint_is_still_a_complaint() -> None:
    [fact] = ses_facts(fixture_json("ses", "complaint.json"))
    assert fact.raw_kind == "complaint"
    assert ses.DEFAULT_MAPPING[fact.raw_kind] == "complaint"


def test_a_single_destination_unsubscribe_is_scoped_to_its_contact_list() -> None:
    [fact] = ses_facts(fixture_json("ses", "unsubscribe.json"))
    assert fact.raw_kind == "unsubscribe_all"
    assert fact.recipient == "bob@example.com"
    assert fact.scope == "newsletter"
    assert fact.shared == 0  # one address: SES's guess is safe
    assert ses.DEFAULT_MAPPING[fact.raw_kind] == "unsubscribe"


@pytest.mark.parametrize("direction", ["unsubscribe_all", "resubscribe_all"])
def test_a_subscription_event_with_several_destinations_is_shared(direction: str) -> None:
    # M2: the subscription object names no address; `mail.destination` is a guess.
    message = fixture_json("ses", "unsubscribe.json")
    sub = message["subscription"]
    if direction == "resubscribe_all":
        sub["newTopicPreferences"], sub["oldTopicPreferences"] = (
            sub["oldTopicPreferences"],
            sub["newTopicPreferences"],
        )
    message["mail"]["destination"] = ['"Carol" <carol@example.com>', "cc.colleague@example.com"]
    got = ses_facts(message)
    assert [fact.recipient for fact in got] == [
        '"Carol" <carol@example.com>',  # kept as given: normalised later
        "cc.colleague@example.com",
    ]
    assert all(fact.raw_kind == direction for fact in got)
    assert all(fact.shared == 2 for fact in got)
    assert all(fact.scope == "newsletter" for fact in got)
    assert ses.DEFAULT_MAPPING[direction] in ("unsubscribe", "resubscribe")


def test_engagement_events_fanning_out_to_destinations_are_not_marked_shared() -> None:
    message = {
        "eventType": "Open",
        "mail": {"messageId": "m-1", "destination": ["a@example.org", "b@example.org"]},
    }
    assert [(fact.shared, fact.scope) for fact in ses_facts(message)] == [(0, None), (0, None)]


@pytest.mark.parametrize("direction", ["unsubscribe_all", "resubscribe_all"])
def test_a_shared_subscription_change_unsubscribes_everyone_but_resubscribes_nobody(
    direction: str,
) -> None:
    # Issue 18, N3: an opt-out naming several addresses suppresses each of them; a
    # resubscribe naming several lifts nobody's opt-out.
    message = fixture_json("ses", "unsubscribe.json")
    sub = message["subscription"]
    if direction == "resubscribe_all":
        sub["newTopicPreferences"], sub["oldTopicPreferences"] = (
            sub["oldTopicPreferences"],
            sub["newTopicPreferences"],
        )
    message["mail"]["destination"] = ["carol@example.com", "cc.colleague@example.com"]
    got = mapped("ses", body_of(message))
    assert [e.recipient for e in got] == ["carol@example.com", "cc.colleague@example.com"]
    want = Unsubscribe if direction == "unsubscribe_all" else Ignored
    assert all(isinstance(e, want) for e in got)
    assert all(e.scope == "newsletter" for e in got)
    assert all(any("names 2 recipients" in flag for flag in e.flags) for e in got)


def shared_complaint(*addresses: str, feedback: str = "abuse") -> dict[str, Any]:
    message: dict[str, Any] = fixture_json("ses", "complaint.json")
    message["complaint"]["complainedRecipients"] = [{"emailAddress": a} for a in addresses]
    message["complaint"]["complaintFeedbackType"] = feedback
    message["mail"]["destination"] = list(addresses)
    return message


def test_a_complaint_naming_several_recipients_is_shared_and_suppresses_each() -> None:
    # Issue 18, N3: SES lists the recipients that *may* have complained; like Resend,
    # every listed address is suppressed, flagged as shared.
    message = shared_complaint("complainer@example.org", "colleague@example.org")
    facts = ses_facts(message)
    assert [(fact.recipient, fact.shared) for fact in facts] == [
        ("complainer@example.org", 2),
        ("colleague@example.org", 2),
    ]
    got = mapped("ses", body_of(message))
    assert all(isinstance(e, Complaint) for e in got)
    assert all("names 2 recipients and not which one it is about" in e.flags for e in got), got
    # not-spam reports naming several stay ignored, and are marked shared too
    not_spam = ses_facts(shared_complaint("a@example.org", "b@example.org", feedback="not-spam"))
    assert [(fact.raw_kind, fact.shared) for fact in not_spam] == [
        ("complaint_not_spam", 2),
        ("complaint_not_spam", 2),
    ]


def test_a_complaint_naming_one_recipient_is_not_shared() -> None:
    [fact] = ses_facts(fixture_json("ses", "complaint.json"))
    assert fact.shared == 0


def ses_bounce_fact(bounce_type: str, sub_type: str, status: str, diagnostic: str) -> Any:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceType"] = bounce_type
    message["bounce"]["bounceSubType"] = sub_type
    entry = message["bounce"]["bouncedRecipients"][0]
    entry["status"], entry["diagnosticCode"] = status, diagnostic
    [keyed] = placed("ses", body_of(message))
    return keyed.fact


UNAVAILABLE = "smtp; 550 Requested action not taken: mailbox unavailable"


@pytest.mark.parametrize(
    ("bounce_type", "sub_type", "status", "diagnostic", "refusal"),
    [
        # N6: the subtype or the recipient's status says so, whatever the text says
        ("Permanent", "NoEmail", "5.0.0", UNAVAILABLE, "no_mailbox"),
        ("Permanent", "General", "5.1.1", UNAVAILABLE, "no_mailbox"),
        ("Permanent", "General", "5.1.10", UNAVAILABLE, "no_mailbox"),
        ("Permanent", "General", "5.0.0", "smtp; 550 5.1.1 user unknown", "no_mailbox"),
        # N8: the message or the sender was refused
        ("Transient", "ContentRejected", "5.0.0", "smtp; 550 message content rejected", "sender"),
        ("Transient", "AttachmentRejected", "5.0.0", "smtp; 552 attachment refused", "sender"),
        ("Permanent", "General", "5.7.1", UNAVAILABLE, "sender"),
        ("Permanent", "General", "5.0.0", "smtp; 554 5.7.1 rejected by policy", "sender"),
        # NoEmail wins over a 5.7.x status; fields win over the text
        ("Permanent", "NoEmail", "5.7.1", UNAVAILABLE, "no_mailbox"),
        ("Permanent", "General", "5.7.1", "smtp; 550 5.1.1 user unknown", "sender"),
        ("Transient", "MailboxFull", "4.2.2", "smtp; 452 4.2.2 mailbox full", None),
        ("Permanent", "Suppressed", "5.0.0", "Amazon SES has suppressed sending", None),
    ],
)
def test_the_refusal_is_read_from_the_subtype_and_status_first(
    bounce_type: str, sub_type: str, status: str, diagnostic: str, refusal: str | None
) -> None:
    assert ses_bounce_fact(bounce_type, sub_type, status, diagnostic).refusal == refusal


def test_a_content_rejected_bounce_is_ignored_by_default_and_soft_when_the_policy_says() -> None:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceType"] = "Transient"
    message["bounce"]["bounceSubType"] = "ContentRejected"
    entry = message["bounce"]["bouncedRecipients"][0]
    entry["status"], entry["diagnosticCode"] = "5.0.0", "smtp; 550 content rejected"
    ignored = only(mapped("ses", body_of(message)))
    assert isinstance(ignored, Ignored)
    assert "sender-side refusal" in ignored.reason
    policy = parse_policy(b'sender_side_bounces = "soft"', known_sources=frozenset(PROVIDERS))
    soft = only(mapped("ses", body_of(message), policy=policy))
    assert isinstance(soft, Bounce)
    assert soft.bounce_class == "soft"


def test_a_no_email_bounce_inside_an_exclusion_window_still_suppresses() -> None:
    # Issue 18, N6: the exclusion's unknown-mailbox carve-out reads SES's own field.
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceSubType"] = "NoEmail"
    entry = message["bounce"]["bouncedRecipients"][0]
    entry["status"], entry["diagnosticCode"] = "5.0.0", UNAVAILABLE
    policy = parse_policy(
        b'[[exclude]]\nsource = "ses"\nstart = 2026-05-04T00:00:00Z\nend = 2026-05-05T00:00:00Z\n',
        known_sources=frozenset(PROVIDERS),
    )
    got = only(mapped("ses", body_of(message), policy=policy))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"
    message["bounce"]["bounceSubType"] = "General"  # the same text, no field: excluded
    assert isinstance(only(mapped("ses", body_of(message), policy=policy)), Ignored)


def test_an_account_suppression_list_bounce_names_no_reason() -> None:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceSubType"] = "OnAccountSuppressionList"
    [fact] = ses_facts(message)
    assert fact.raw_kind == "account_suppressed"
    assert fact.recipient == "nobody@example.org"
    assert fact.bounce_class == "hard"  # SES's own call: bounceType Permanent
    assert ses.DEFAULT_MAPPING[fact.raw_kind] == "provider_suppressed"


def test_a_global_suppression_list_bounce_stays_a_hard_bounce() -> None:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceSubType"] = "Suppressed"
    [fact] = ses_facts(message)
    assert fact.raw_kind == "bounce"
    assert fact.bounce_class == "hard"
    assert ses.DEFAULT_MAPPING[fact.raw_kind] == "bounce"


def test_the_policy_can_name_the_new_ses_kinds() -> None:
    policy = parse_policy(
        b'[providers.ses]\naccount_suppressed = "hard_bounce"\ncomplaint_virus = "complaint"\n',
        known_sources=frozenset(PROVIDERS),
    )
    assert policy.providers["ses"] == {
        "account_suppressed": "hard_bounce",
        "complaint_virus": "complaint",
    }
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceSubType"] = "OnAccountSuppressionList"
    event = only(mapped("ses", body_of(message), policy=policy))
    assert isinstance(event, Bounce)
    assert event.bounce_class == "hard"


def test_the_plain_text_validation_notification_and_handshakes_hold_no_events() -> None:
    text = "Successfully validated SNS topic for Amazon SES event publishing."
    assert ses.decode(body_of(text)) == []
    assert ses.decode(dumps(sns_confirmation())) == []


def test_raw_message_delivery_is_decoded_without_an_envelope() -> None:
    event = only(mapped("ses", dumps(HARD)))
    assert isinstance(event, Bounce)
    assert event.event_id is not None
    assert event.event_id.startswith("derived:")


def test_the_policy_names_ses_events_in_either_spelling() -> None:
    policy = parse_policy(
        b'[providers.ses]\nDeliveryDelay = "soft_bounce"\ncomplaint_not_spam = "complaint"\n',
        known_sources=frozenset(PROVIDERS),
    )
    delayed = only(
        mapped("ses", body_of(fixture_json("ses", "delivery_delay.json")), policy=policy)
    )
    assert isinstance(delayed, Bounce)
    assert delayed.bounce_class == "soft"
    body = body_of(fixture_json("ses", "complaint_not_spam.json"))
    assert isinstance(only(mapped("ses", body, policy=policy)), Complaint)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1]",
        b'{"Type": "Notification"}',
        b'{"Type": "Notification", "Message": 42}',
    ],
)
def test_unreadable_bodies_fail_to_decode(body: bytes) -> None:
    with pytest.raises(DecodeFailed):
        ses.decode(body)


# The SNS signature, checked as the SES door composes it (api/authenticators.py): the
# message first, then its certificate from a CertificateSource, then the signature.


async def verify(
    envelope: dict[str, Any],
    cache: Path,
    *,
    fetch: Any = None,
    topics: frozenset[str] = frozenset({TOPIC}),
) -> None:
    url = check_message(envelope, topics=topics, now=time.time())
    check_signature(envelope, await CertificateSource(cache, fetch).get(url))


def never(url: str) -> bytes:
    raise AssertionError(f"fetched {url}")


@pytest.mark.parametrize("version", ["1", "2"])
async def test_signature_versions_1_and_2_verify_from_the_cache(
    cert_cache: Path, version: str
) -> None:
    await verify(sns_notification(HARD, version=version), cert_cache, fetch=never)
    await verify(
        sns_notification(HARD, version=version, subject="Amazon SES Email Event"), cert_cache
    )
    await verify(sns_confirmation(), cert_cache, fetch=never)


async def test_a_changed_field_is_refused(cert_cache: Path) -> None:
    envelope = sns_notification(HARD)
    for key, value in [
        ("Message", envelope["Message"].replace("nobody@", "nobodx@")),
        ("MessageId", "another-id"),
        ("Timestamp", envelope["Timestamp"].replace(".", ",")),
    ]:
        with pytest.raises(SignatureInvalid):
            await verify({**envelope, key: value}, cert_cache)


async def test_an_sns_signature_is_over_fields_so_reserialising_the_envelope_is_harmless(
    cert_cache: Path,
) -> None:
    envelope = sns_notification(HARD)
    await verify(json.loads(json.dumps(envelope, indent=3, sort_keys=True)), cert_cache)


async def test_a_signature_version_cannot_be_downgraded_or_invented(cert_cache: Path) -> None:
    envelope = sns_notification(HARD, version="2")
    for version in ("1", "3", None):
        with pytest.raises(SignatureInvalid):
            await verify({**envelope, "SignatureVersion": version}, cert_cache)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/SimpleNotificationService-test0123456789.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-test0123456789.pem",
        "https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-test0123456789.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-test0123456789.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.txt",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.pem?x=1",
        "https://sns.eu-west-1.amazonaws.com/..%2f..%2fetc%2fpasswd.pem",
        "https://snsXeu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.pem",
        "https://sqs.eu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.pem",
    ],
)
async def test_a_certificate_url_off_sns_is_refused_before_anything_is_read(
    cert_cache: Path, url: str
) -> None:
    # The stand-in certificate is in the cache under the file name: only the URL check
    # can refuse it, and nothing is fetched.
    envelope = sns_notification(HARD, cert_url=url)
    with pytest.raises(SignatureInvalid):
        await verify(envelope, cert_cache, fetch=never)


def test_sns_hosts_of_every_region_are_accepted() -> None:
    for host in ("sns.us-east-1.amazonaws.com", "sns.cn-north-1.amazonaws.com.cn"):
        assert cert_file_name(f"https://{host}/SimpleNotificationService-abc.pem") == (
            "SimpleNotificationService-abc.pem"
        )


async def test_an_unconfigured_topic_is_refused(cert_cache: Path) -> None:
    envelope = sns_notification(HARD, topic="arn:aws:sns:eu-west-1:999999999999:theirs")
    with pytest.raises(SignatureInvalid, match="topic"):
        await verify(envelope, cert_cache)


@pytest.mark.parametrize("hours", [-9, 9])
async def test_a_publish_time_outside_eight_hours_is_refused(cert_cache: Path, hours: int) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    with pytest.raises(SignatureInvalid, match="tolerance"):
        await verify(sns_notification(HARD, at=at), cert_cache)


async def test_a_retry_within_the_hour_is_accepted(cert_cache: Path) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=59)
    await verify(sns_notification(HARD, at=at), cert_cache)


async def test_a_certificate_for_another_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    # SNS's subject name, so only the key differs (a wrong subject is refused before)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = sns_certificate("sns.amazonaws.com", key=other)
    (tmp_path / CERT_URL.rsplit("/", 1)[-1]).write_bytes(pem)
    with pytest.raises(SignatureInvalid, match="does not match"):
        await verify(sns_notification(HARD), tmp_path)


async def test_an_uncached_certificate_is_fetched_once_and_cached(tmp_path: Path) -> None:
    cache = tmp_path / "new-cache"
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return sns_identity()[1]

    await verify(sns_notification(HARD), cache, fetch=fetch)
    await verify(sns_notification(HARD, message_id="second"), cache, fetch=fetch)
    assert fetched == [CERT_URL]
    assert (cache / "SimpleNotificationService-test0123456789.pem").read_bytes() == (
        sns_identity()[1]
    )


async def test_an_uncached_certificate_without_fetching_is_unverifiable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SignatureUnverifiable, match=r"^signing certificate unavailable"):
        await verify(sns_notification(HARD), tmp_path / "empty", fetch=None)
    assert "outbound fetching is off" in caplog.text  # the specifics are for the log


@pytest.mark.parametrize("answer", [b"<html>not a certificate</html>", OSError("unreachable")])
async def test_a_failed_certificate_fetch_is_unverifiable_and_not_cached(
    tmp_path: Path, answer: Any
) -> None:
    def fetch(url: str) -> bytes:
        if isinstance(answer, Exception):
            raise answer
        return bytes(answer)

    with pytest.raises(SignatureUnverifiable):
        await verify(sns_notification(HARD), tmp_path, fetch=fetch)
    assert list(tmp_path.iterdir()) == []


def test_a_subscribe_url_must_confirm_this_topic_on_sns() -> None:
    good = (
        f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t"
    )
    check_subscribe_url(good, TOPIC)
    for bad in (
        good.replace("sns.eu-west-1.amazonaws.com", "evil.example.com"),
        good.replace("https://", "https://me@"),
        good.replace("ConfirmSubscription", "Unsubscribe"),
        good.replace("ses-events", "other-topic"),
        good.replace("https://", "http://"),
    ):
        with pytest.raises(SignatureInvalid):
            check_subscribe_url(bad, TOPIC)


# Through the door.


async def post(client: Any, envelope: dict[str, Any], body: bytes | None = None) -> Any:
    content = body if body is not None else dumps(envelope)
    return await client.post(webhook("ses"), content=content, headers=sns_headers(envelope))


async def receipts(client: Any) -> int:
    return int((await client.get("/healthz", headers=AUTH)).json()["receipts"])


async def test_a_signed_notification_is_stored_and_suppresses_every_recipient(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    envelope = sns_notification(fixture_json("ses", "multi_recipient_bounce.json"))
    async with make_pclient() as client:
        response = await post(client, envelope)
        assert response.status_code == 200, response.text
        # one SES event about three recipients: three events understood
        assert response.json() == {"seq": 1, "events": 3, "duplicate": False}
        await settle(client)
        for address in ("first@example.org", "second@example.org", "third@example.org"):
            assert (await state(client, address))["reason"] == "hard_bounce", address
        assert (await state(client, "fine@example.org"))["suppressed"] is False
    [receipt] = await stored(db_path)
    assert receipt.body == dumps(envelope)
    assert receipt.content_type == "text/plain; charset=UTF-8"
    assert receipt.headers["x-amz-sns-message-type"] == "Notification"
    assert receipt.headers["x-amz-sns-topic-arn"] == TOPIC
    assert receipt.headers["x-amz-sns-message-id"] == envelope["MessageId"]


async def test_the_validation_notification_is_acknowledged_with_no_events(pclient: Any) -> None:
    envelope = sns_notification("Successfully validated SNS topic for Amazon SES event publishing.")
    response = await post(pclient, envelope)
    assert response.status_code == 200
    assert response.json()["events"] == 0


async def test_a_confirmation_is_logged_without_its_token_when_fetching_is_off(
    pclient: Any, caplog: pytest.LogCaptureFixture
) -> None:
    envelope = sns_confirmation()
    with caplog.at_level(logging.INFO):
        response = await post(pclient, envelope)
    assert response.status_code == 200
    assert response.json()["events"] == 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "awaits confirmation" in logged
    assert TOPIC in logged
    assert envelope["Token"] not in logged
    assert "SubscribeURL" in logged


async def test_a_confirmation_is_confirmed_by_one_get_when_fetching_is_on(
    make_pclient: Callable[..., Any], provider_settings: Settings
) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return b"<ConfirmSubscriptionResponse/>"

    envelope = sns_confirmation()
    async with make_pclient(settings=replace(provider_settings, ses_fetch=fetch)) as client:
        response = await post(client, envelope)
    assert response.status_code == 200
    assert fetched == [envelope["SubscribeURL"]]  # the cached certificate needed no fetch


async def test_an_unsubscribe_confirmation_is_stored_and_logged_but_never_visited(
    make_pclient: Callable[..., Any],
    provider_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    envelope = sns_confirmation(kind="UnsubscribeConfirmation")
    settings = replace(provider_settings, ses_fetch=never)
    async with make_pclient(settings=settings) as client:
        with caplog.at_level(logging.WARNING):
            response = await post(client, envelope)
        assert response.status_code == 200
        assert response.json()["events"] == 0
        assert await receipts(client) == 1
    assert any("unsubscribed this endpoint" in r.getMessage() for r in caplog.records)


async def test_a_confirmation_for_a_foreign_topic_or_url_is_refused_and_not_visited(
    make_pclient: Callable[..., Any], provider_settings: Settings
) -> None:
    settings = replace(provider_settings, ses_fetch=never)
    foreign_topic = sns_confirmation(topic="arn:aws:sns:eu-west-1:999999999999:theirs")
    foreign_url = sns_confirmation(
        subscribe_url=f"https://evil.example.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"
    )
    async with make_pclient(settings=settings) as client:
        for envelope in (foreign_topic, foreign_url):
            assert (await post(client, envelope)).status_code == 403
        assert await receipts(client) == 0


@pytest.mark.parametrize("tamper", ["flip", "stale", "foreign-cert", "unsigned", "header"])
async def test_bad_sns_deliveries_are_refused_and_nothing_is_stored(
    pclient: Any, tamper: str
) -> None:
    envelope = sns_notification(HARD)
    body = dumps(envelope)
    if tamper == "flip":
        body = flipped(body, b"nobody@")
    elif tamper == "stale":
        envelope = sns_notification(HARD, at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        body = dumps(envelope)
    elif tamper == "foreign-cert":
        envelope = sns_notification(HARD, cert_url="https://evil.example.com/cert.pem")
        body = dumps(envelope)
    elif tamper == "unsigned":
        body = dumps(HARD)  # raw message delivery: no envelope, no signature
    headers = sns_headers(envelope)
    if tamper == "header":
        headers["x-amz-sns-message-type"] = "SubscriptionConfirmation"
    elif tamper == "unsigned":
        headers = {"content-type": "text/plain; charset=UTF-8"}
    response = await pclient.post(webhook("ses"), content=body, headers=headers)
    assert response.status_code == 403, response.text
    assert await receipts(pclient) == 0


async def test_an_unavailable_certificate_is_a_503_so_sns_retries(
    make_pclient: Callable[..., Any], provider_settings: Settings, tmp_path: Path
) -> None:
    settings = replace(provider_settings, ses_cert_cache=tmp_path / "empty", ses_fetch=None)
    async with make_pclient(settings=settings) as client:
        response = await post(client, sns_notification(HARD))
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert await receipts(client) == 0


async def test_the_endpoint_does_not_exist_without_topics(client: Any) -> None:
    assert (await post(client, sns_notification(HARD))).status_code == 404


async def test_the_topic_is_part_of_the_signed_string(cert_cache: Path) -> None:
    envelope = sns_notification(HARD)
    wrong = sns_sign({k: v for k, v in envelope.items() if k != "TopicArn"})
    with pytest.raises(SignatureInvalid):
        await verify({**wrong, "TopicArn": TOPIC}, cert_cache)


# End to end: posted through the door of the app with every door open, the verdict read
# back over HTTP, on SQLite and on PostgreSQL.


@pytest.mark.both_backends
@pytest.mark.parametrize("feedback_type", ["auth-failure", "virus"])
async def test_ses_authentication_failure_and_virus_reports_are_not_complaints(
    pclient: Any, feedback_type: str
) -> None:
    """Issue 12, item 9 (review M3): an SES complaint with `complaintFeedbackType`
    auth-failure or virus is a report about the message, ignored like not-spam."""
    address = "reader@example.org"
    message = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": "2026-05-05T08:00:11.000Z",
            "feedbackId": "0102018f-aaaa-bbbb-cccc-000000000003-000000",
            "complaintSubType": None,
            "userAgent": "ExampleISP Feedback Loop",
            "complaintFeedbackType": feedback_type,
            "arrivalDate": "2026-05-05T07:59:50.000Z",
        },
        "mail": ses_mail([address], "0102018f-3333-4444-5555-666677778888-000000"),
    }
    await post_ses(pclient, message, f"m3-{feedback_type}")
    got = await verdict(pclient, address)
    assert (got["suppressed"], got["events"]) == (False, 1)
    (entry,) = await timeline(pclient, address)
    assert entry["ignored"] is True


# Decoding: the edges of SES's formats.


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("DeliveryDelay", "delivery_delay"),
        ("deliverydelay", "delivery_delay"),
        ("delivery-delay", "delivery_delay"),
        ("Rendering Failure", "rendering_failure"),
        ("RenderingFailure", "rendering_failure"),
        ("renderingfailure", "rendering_failure"),
        ("Bounce", "bounce"),
    ],
)
def test_every_spelling_of_an_ses_event_type_names_one_kind(name: str, kind: str) -> None:
    assert ses.canonical_kind(name) == kind


def test_a_body_without_an_sns_envelope_is_the_ses_event_with_no_sns_id_or_time() -> None:
    assert ses.decode(dumps(HARD)) == [
        {"sns_message_id": None, "sns_timestamp": None, "message": HARD}
    ]


def test_a_notification_keeps_the_sns_message_id_publish_time_and_topic() -> None:
    at = dt.datetime(2026, 5, 4, 10, 15, 3, tzinfo=dt.UTC)
    envelope = sns_notification(HARD, message_id="sns-msg-7", at=at)
    assert ses.decode(dumps(envelope)) == [
        {
            "sns_message_id": "sns-msg-7",
            "sns_timestamp": "2026-05-04T10:15:03.000Z",
            "topic_arn": TOPIC,
            "message": HARD,
        }
    ]


@pytest.mark.parametrize("message", [None, {"notificationType": "Bounce"}, 42], ids=repr)
def test_a_notification_without_a_message_string_is_refused_saying_so(message: Any) -> None:
    envelope = {"Type": "Notification", "MessageId": "sns-msg-8", "TopicArn": TOPIC}
    if message is not None:
        envelope["Message"] = message
    with pytest.raises(DecodeFailed, match=r"^SNS notification has no `Message` string"):
        ses.decode(dumps(envelope))


def send_event(message_id: str = "m-1", event_type: str = "Send") -> dict[str, Any]:
    """An event-publishing event with no time of its own (SES's `send` object is empty)."""
    return {
        "eventType": event_type,
        event_type.lower(): {},
        "mail": ses_mail(["alice@example.org"], message_id),
    }


def test_an_event_without_its_own_time_is_dated_when_sns_published_it() -> None:
    at = dt.datetime(2026, 5, 4, 10, 15, 3, tzinfo=dt.UTC)
    [fact] = [fact for raw in ses.decode(body_of(send_event(), at=at)) for fact in ses.facts(raw)]
    assert fact.at == micros("2026-05-04T10:15:03.000Z")  # not the mail's 10:14:58


def raw_facts(message: dict[str, Any]) -> list[Any]:
    """The ProviderEvents of an SES event delivered raw (no SNS envelope)."""
    return [fact for raw in ses.decode(dumps(message)) for fact in ses.facts(raw)]


def test_a_raw_event_without_its_own_time_is_dated_by_the_mail_send_time() -> None:
    [fact] = raw_facts(send_event())
    assert fact.at == micros("2026-05-04T10:14:58.000Z")


def opened(message_id: str, at: str) -> dict[str, Any]:
    return {
        "eventType": "Open",
        "open": {"ipAddress": "192.0.2.1", "timestamp": at, "userAgent": "Mozilla/5.0"},
        "mail": ses_mail(["alice@example.org"], message_id),
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (send_event("m-1"), send_event("m-2")),  # another message, same kind and time
        (send_event("m-1"), send_event("m-1", "Reject")),  # another kind of event
        (  # the same message opened twice
            opened("m-1", "2026-05-04T11:00:00.000Z"),
            opened("m-1", "2026-05-04T11:05:00.000Z"),
        ),
    ],
    ids=["message", "kind", "time"],
)
def test_raw_events_get_ids_that_tell_apart_message_kind_and_time(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    [one], [again], [other] = raw_facts(first), raw_facts(first), raw_facts(second)
    assert one.event_id == again.event_id  # a redelivery is recognised
    assert one.event_id != other.event_id
    assert one.recipient == other.recipient


def test_a_bounced_recipient_without_diagnostic_or_status_is_described_by_the_subtype() -> None:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceSubType"] = "Suppressed"
    message["bounce"]["bouncedRecipients"] = [{"emailAddress": "nobody@example.org"}]
    [fact] = ses_facts(message)
    assert fact.diagnostic == "Suppressed"


def test_a_bounce_wide_diagnostic_code_describes_recipients_without_their_own() -> None:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["diagnosticCode"] = "smtp; 550 mailbox unavailable"
    message["bounce"]["bouncedRecipients"] = [{"emailAddress": "nobody@example.org"}]
    [fact] = ses_facts(message)
    assert fact.diagnostic == "smtp; 550 mailbox unavailable"  # before the subtype


def test_a_delivery_delay_defers_only_the_delayed_recipients() -> None:
    message = fixture_json("ses", "delivery_delay.json")
    message["mail"]["destination"] = ["slow@example.net", "fast@example.net"]
    got = ses_facts(message)
    assert [(fact.raw_kind, fact.recipient) for fact in got] == [
        ("delivery_delay", "slow@example.net")
    ]
    assert got[0].diagnostic == "smtp; 421 4.4.7 try again later"


@pytest.mark.parametrize(
    "recipients",
    [None, "nobody@example.org", {"emailAddress": "nobody@example.org"}],
    ids=["missing", "string", "object"],
)
def test_a_bounce_whose_recipients_are_not_a_list_names_nobody(recipients: Any) -> None:
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bouncedRecipients"] = recipients
    assert ses_facts(message) == []


def test_a_topic_preference_change_is_a_subscription_change_ignored_on_purpose() -> None:
    message = fixture_json("ses", "unsubscribe.json")
    message["subscription"]["newTopicPreferences"]["unsubscribeAll"] = False
    [fact] = ses_facts(message)
    assert fact.raw_kind == "subscription"
    ignored = only(mapped("ses", body_of(message)))
    assert isinstance(ignored, Ignored)
    assert "unknown" not in ignored.reason


def test_an_event_naming_no_type_is_read_as_unknown_for_each_destination() -> None:
    message = {"mail": ses_mail(["a@example.org", "b@example.org"], "m-1")}
    got = ses_facts(message)
    assert [(fact.raw_kind, fact.recipient) for fact in got] == [
        ("unknown", "a@example.org"),
        ("unknown", "b@example.org"),
    ]
    got_events = mapped("ses", body_of(message))
    assert all(isinstance(e, Ignored) and "unknown" in e.reason for e in got_events)


def test_an_account_suppression_list_bounce_states_no_refusal_whatever_its_status() -> None:
    # SES does not say whether a bounce or a complaint put the address on the list: its
    # 5.1.1 status is not a statement that the mailbox does not exist.
    message = fixture_json("ses", "hard_bounce.json")
    message["bounce"]["bounceSubType"] = "OnAccountSuppressionList"
    entry = message["bounce"]["bouncedRecipients"][0]
    entry["status"] = "5.1.1"
    entry["diagnosticCode"] = (
        "Amazon SES did not send the message to this address because it is on the"
        " suppression list for your account."
    )
    [fact] = ses_facts(message)
    assert fact.raw_kind == "account_suppressed"
    assert fact.refusal is None
