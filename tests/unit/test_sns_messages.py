"""api/sns_messages.py: the checks of an Amazon SNS envelope, called directly — its shape,
the canonical string SNS signs, the certificate and subscribe URLs, the publish time and
the signature — and the details each refusal gives the sender (they are the 400/403
answer's `detail`)."""

from __future__ import annotations

import base64
import datetime as dt
import string
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from api.signatures import SignatureInvalid
from api.sns_messages import (
    SNS_TOLERANCE,
    EnvelopeMalformed,
    canonical_string,
    cert_file_name,
    check_envelope,
    check_message,
    check_signature,
    check_subject,
    check_subscribe_url,
    check_unique_keys,
    signer_names,
)
from tests.providers.signing import (
    TOPIC,
    dumps,
    fixture_json,
    sns_certificate,
    sns_confirmation,
    sns_identity,
    sns_notification,
)

HARD = fixture_json("ses", "hard_bounce.json")
NOT_SNS = "is not an https://sns.<region>.amazonaws.com/ URL"
SUBSCRIBE = f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"


def refusal(check: Any, *args: Any, **options: Any) -> SignatureInvalid:
    """The SignatureInvalid (or EnvelopeMalformed) that `check(*args, **options)` raises."""
    with pytest.raises(SignatureInvalid) as caught:
        check(*args, **options)
    return caught.value


def stand_in_certificate() -> x509.Certificate:
    return x509.load_pem_x509_certificate(sns_identity()[1])


# The envelope's shape: SNS's own fields only, each a string (MessageAttributes an object).


def test_a_notification_and_a_confirmation_from_sns_have_the_envelope_sns_sends() -> None:
    check_envelope(sns_notification(HARD, subject="Amazon SES Email Event"))
    check_envelope(sns_confirmation())
    check_envelope(
        {
            **sns_notification(HARD),
            "MessageAttributes": {"kind": {"Type": "String", "Value": "bounce"}},
        }
    )


def test_a_field_sns_does_not_send_is_refused_by_name() -> None:
    envelope = {**sns_notification(HARD), "Extra": "riding along"}
    problem = refusal(check_envelope, envelope)
    assert not isinstance(problem, EnvelopeMalformed)  # a 403, not a 400
    assert str(problem) == "SNS envelope has fields SNS does not send: 'Extra'"


@pytest.mark.parametrize(
    ("extras", "named"),
    [
        ("ab", "'a', 'b'"),
        ("abcde", "'a', 'b', 'c', 'd', 'e'"),
        ("fedcba", "'a', 'b', 'c', 'd', 'e' and 1 more"),
        ("abcdefgh", "'a', 'b', 'c', 'd', 'e' and 3 more"),
    ],
)
def test_the_refusal_names_the_first_five_unknown_fields_in_order_and_counts_the_rest(
    extras: str, named: str
) -> None:
    envelope = {**sns_notification(HARD), **{key: "x" for key in extras}}
    assert str(refusal(check_envelope, envelope)) == (
        f"SNS envelope has fields SNS does not send: {named}"
    )


def test_an_unknown_field_name_is_shortened_to_forty_characters() -> None:
    long_name = string.ascii_letters  # 52 characters
    problem = str(refusal(check_envelope, {**sns_notification(HARD), long_name: "x"}))
    assert problem == f"SNS envelope has fields SNS does not send: {long_name[:40]!r}"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({"a": 1}, "an object"),
        (["a"], "an array"),
        (True, "a boolean"),
        (None, "null"),
        (7, "a number"),
        (1.5, "a number"),
    ],
    ids=repr,
)
def test_a_field_that_is_not_a_string_is_malformed_and_its_json_type_is_named(
    value: Any, type_name: str
) -> None:
    envelope = {**sns_notification(HARD), "Subject": value}
    with pytest.raises(EnvelopeMalformed) as caught:
        check_envelope(envelope)
    assert str(caught.value) == f"SNS field Subject must be a string, not {type_name}"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [([], "an array"), (5, "a number"), (None, "null"), ("text", "a string"), (True, "a boolean")],
    ids=repr,
)
def test_message_attributes_that_are_not_an_object_are_malformed_and_their_type_named(
    value: Any, type_name: str
) -> None:
    envelope = {**sns_notification(HARD), "MessageAttributes": value}
    with pytest.raises(EnvelopeMalformed) as caught:
        check_envelope(envelope)
    assert str(caught.value) == f"SNS MessageAttributes must be an object, not {type_name}"


@pytest.mark.parametrize(
    "attribute",
    [
        "String",
        ["Type", "Value"],
        {"Type": "String", "Value": "bounce", "Extra": "unsigned"},
        {"Type": "String", "Value": 5},
        {"Type": None, "Value": "bounce"},
    ],
    ids=["a string", "an array", "an extra field", "a number value", "a null type"],
)
def test_each_message_attribute_must_be_an_object_of_type_and_value_strings(
    attribute: Any,
) -> None:
    envelope = {
        **sns_notification(HARD),
        "MessageAttributes": {"fine": {"Type": "String", "Value": "x"}, "odd": attribute},
    }
    with pytest.raises(EnvelopeMalformed) as caught:
        check_envelope(envelope)
    assert str(caught.value) == "each SNS message attribute must be {Type, Value} strings"


# The body's bytes: every key once, and JSON at all.


@pytest.mark.parametrize(
    "body",
    [
        b'{"Type":"Notification","Type":"Notification"}',
        b'{"MessageAttributes":{"a":{"Type":"String","Type":"Number"}}}',
    ],
    ids=["top level", "nested"],
)
def test_a_body_repeating_a_field_anywhere_is_refused(body: bytes) -> None:
    problem = refusal(check_unique_keys, body)
    assert not isinstance(problem, EnvelopeMalformed)  # unsigned bytes: a 403
    assert str(problem) == "SNS envelope repeats a field"


def test_a_body_with_every_field_once_passes() -> None:
    check_unique_keys(dumps(sns_notification(HARD)))


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b'{"Type": "\xff"}'], ids=["not JSON", "empty", "not UTF-8"]
)
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(EnvelopeMalformed) as caught:
        check_unique_keys(body)
    assert str(caught.value) == "body is not JSON"


# The certificate URL: https, on an SNS host of a region, naming a .pem file.

FOREIGN_CERT_URLS = [
    "https://evil.example.com/SimpleNotificationService-abc.pem",
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem#top",
    "https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-abc.pem",  # China, .com
    "https://sns.eu-west-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",  # .cn, not China
]


@pytest.mark.parametrize("url", FOREIGN_CERT_URLS)
def test_a_certificate_url_off_sns_is_refused_naming_the_signing_cert_url(url: str) -> None:
    assert str(refusal(cert_file_name, url)) == f"SigningCertURL {NOT_SNS}"


@pytest.mark.parametrize("url", FOREIGN_CERT_URLS)
def test_no_signer_names_are_given_for_a_certificate_url_off_sns(url: str) -> None:
    assert str(refusal(signer_names, url)) == f"SigningCertURL {NOT_SNS}"


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.eu-west-1.amazonaws.com",
        "https://sns.eu-west-1.amazonaws.com/",
        "https://sns.eu-west-1.amazonaws.com/certs/",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.txt",
        "https://sns.eu-west-1.amazonaws.com/.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem?v=2",
    ],
)
def test_a_certificate_url_must_name_a_pem_file(url: str) -> None:
    assert str(refusal(cert_file_name, url)) == "SigningCertURL does not name a .pem certificate"


def test_the_certificate_file_name_is_the_last_segment_of_the_url_path() -> None:
    url = "https://sns.eu-west-1.amazonaws.com/certs/v2/SimpleNotificationService-abc.pem"
    assert cert_file_name(url) == "SimpleNotificationService-abc.pem"


def test_the_signer_names_of_a_govcloud_certificate_include_the_shared_govcloud_name() -> None:
    names = signer_names("https://sns.us-gov-east-1.amazonaws.com/SimpleNotificationService-a.pem")
    assert "sns-us-gov-west-1.amazonaws.com" in names
    assert "sns.us-gov-east-1.amazonaws.com" in names


# The SubscribeURL: SNS's own, confirming this very topic.


@pytest.mark.parametrize(
    "url",
    [
        SUBSCRIBE.replace("sns.eu-west-1.amazonaws.com", "evil.example.com"),
        SUBSCRIBE.replace("https://", "http://"),
        SUBSCRIBE.replace("https://", "https://me@"),
    ],
)
def test_a_subscribe_url_off_sns_is_refused_naming_the_subscribe_url(url: str) -> None:
    assert str(refusal(check_subscribe_url, url, TOPIC)) == f"SubscribeURL {NOT_SNS}"


@pytest.mark.parametrize(
    "url",
    [
        SUBSCRIBE.replace("ConfirmSubscription", "Unsubscribe"),
        SUBSCRIBE.replace("ses-events", "other-topic"),
        SUBSCRIBE + "&TopicArn=arn:aws:sns:eu-west-1:999999999999:theirs",
    ],
    ids=["another action", "another topic", "a second topic"],
)
def test_a_subscribe_url_for_another_action_or_topic_is_refused_saying_so(url: str) -> None:
    assert str(refusal(check_subscribe_url, url, TOPIC)) == (
        "SubscribeURL does not confirm the message's topic"
    )


# The canonical string SNS signs.


@pytest.mark.parametrize(
    "kind", ["Bounce", "notification", string.ascii_letters, None, 42], ids=repr
)
def test_an_unknown_message_type_is_refused_naming_the_first_forty_characters(kind: Any) -> None:
    message = {**sns_notification(HARD), "Type": kind}
    assert str(refusal(canonical_string, message)) == (
        f"unknown SNS message type {str(kind)[:40]!r}"
    )


@pytest.mark.parametrize("key", ["Message", "MessageId", "Timestamp", "TopicArn"])
@pytest.mark.parametrize("value", [None, 42], ids=["missing", "a number"])
def test_a_signed_field_that_is_missing_or_not_a_string_is_named(key: str, value: Any) -> None:
    message = {**sns_notification(HARD), key: value}
    if value is None:
        del message[key]
    assert str(refusal(canonical_string, message)) == f"SNS message has no {key} string"


def test_a_confirmation_without_its_subscribe_url_or_token_cannot_be_signed() -> None:
    for key in ("SubscribeURL", "Token"):
        message = {k: v for k, v in sns_confirmation().items() if k != key}
        assert str(refusal(canonical_string, message)) == f"SNS message has no {key} string"


# Everything checked before the certificate is needed, with the detail the sender sees.


def checked(message: dict[str, Any], **options: Any) -> str:
    return check_message(message, topics=frozenset({TOPIC}), now=time.time(), **options)


def test_a_well_formed_message_gives_its_certificate_url() -> None:
    envelope = sns_notification(HARD)
    assert checked(envelope) == envelope["SigningCertURL"]
    assert checked(sns_notification(HARD, version="1")) == envelope["SigningCertURL"]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"TopicArn": "arn:aws:sns:eu-west-1:999999999999:theirs"},
            "SNS topic is not one of SES_SNS_TOPIC_ARNS",
        ),
        ({"SignatureVersion": "3"}, "SNS SignatureVersion must be 1 or 2"),
        ({"SigningCertURL": None}, "SNS message has no SigningCertURL"),
        (
            {
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem"
            },
            "SigningCertURL is not in the topic's region",
        ),
        ({"Timestamp": "yesterday"}, "SNS Timestamp is unreadable"),
    ],
    ids=["topic", "version", "no certificate url", "region", "timestamp"],
)
def test_each_refusal_before_the_certificate_tells_the_sender_what_is_wrong(
    change: dict[str, Any], detail: str
) -> None:
    message = {**sns_notification(HARD), **change}
    message = {key: value for key, value in message.items() if value is not None}
    assert str(refusal(checked, message)) == detail


def test_requiring_version_2_refuses_sha1_and_tells_the_operator_the_fix() -> None:
    message = sns_notification(HARD, version="1")
    assert str(refusal(checked, message, require_v2=True)) == (
        "SNS SignatureVersion 1 (SHA-1) is refused (SES_SNS_REQUIRE_V2): set the topic "
        "attribute SignatureVersion to 2"
    )
    checked(sns_notification(HARD, version="2"), require_v2=True)


def test_a_publish_time_is_accepted_up_to_the_edge_of_the_tolerance_and_not_beyond() -> None:
    at = dt.datetime(2026, 5, 4, 10, 15, 3, tzinfo=dt.UTC)
    message = sns_notification(HARD, at=at)
    topics = frozenset({TOPIC})
    published = at.timestamp()
    for now in (published + SNS_TOLERANCE - 60, published - SNS_TOLERANCE + 60):
        check_message(message, topics=topics, now=now)
    for now in (published + SNS_TOLERANCE + 60, published - SNS_TOLERANCE - 60):
        with pytest.raises(SignatureInvalid, match="tolerance"):
            check_message(message, topics=topics, now=now)


# The signature itself.


def test_a_signature_with_characters_outside_base64_is_refused_even_if_the_rest_verifies() -> None:
    message = sns_notification(HARD)
    signature = message["Signature"]
    check_signature(message, stand_in_certificate())
    for spoiled in (signature[:10] + "*" + signature[10:], signature + "\n", " " + signature):
        problem = refusal(
            check_signature, {**message, "Signature": spoiled}, stand_in_certificate()
        )
        assert str(problem) == "SNS Signature is not base64"


def test_a_certificate_without_an_rsa_key_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = x509.load_pem_x509_certificate(sns_certificate("sns.amazonaws.com", key=key))
    problem = refusal(check_signature, sns_notification(HARD), certificate)
    assert str(problem) == "SNS signing certificate does not hold an RSA key"


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signature_over_other_fields_does_not_match(version: str) -> None:
    message = {**sns_notification(HARD, version=version), "MessageId": "another-id"}
    problem = refusal(check_signature, message, stand_in_certificate())
    assert str(problem) == "SNS signature does not match"


def test_a_signature_of_random_bytes_does_not_match() -> None:
    message = {**sns_notification(HARD), "Signature": base64.b64encode(b"\x00" * 256).decode()}
    assert str(refusal(check_signature, message, stand_in_certificate())) == (
        "SNS signature does not match"
    )


@pytest.mark.parametrize(
    ("region", "common_name", "alt_names", "accepted"),
    [
        ("eu-west-1", "sns.amazonaws.com", (), True),
        ("eu-west-1", "other", ("sns.eu-west-1.amazonaws.com",), True),
        ("ap-east-1", "x", ("sns-signing.ap-east-1.amazonaws.com",), True),
        ("us-gov-east-1", "sns-us-gov-west-1.amazonaws.com", (), True),
        ("cn-north-1", "sns-cn-north-1.amazonaws.com.cn", (), True),
        ("eu-west-1", "sns.amazonaws.com.evil.example", (), False),
        ("eu-west-1", "sns-signing.ap-east-1.amazonaws.com", (), False),
        ("cn-north-1", "sns.amazonaws.com", (), False),
        ("eu-west-1", "impostor", ("evil.example",), False),
    ],
)
def test_certificate_subjects_sns_really_uses(
    region: str, common_name: str, alt_names: tuple[str, ...], accepted: bool
) -> None:
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    url = f"https://sns.{region}.{domain}/SimpleNotificationService-abc.pem"
    certificate = x509.load_pem_x509_certificate(sns_certificate(common_name, alt_names=alt_names))
    if accepted:
        check_subject(certificate, url)
    else:
        with pytest.raises(ValueError, match="is not SNS's") as refused:
            check_subject(certificate, url)
        names = sorted({common_name.lower(), *(name.lower() for name in alt_names)})
        assert str(refused.value) == f"certificate subject {names!r} is not SNS's"
