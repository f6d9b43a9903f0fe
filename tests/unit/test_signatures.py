"""api/signatures.py: each provider's webhook signature check, called directly — what it
accepts, what it refuses, the replay window it applies, and the detail each refusal gives
the sender (it is the 401/403 answer's `detail`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from api.settings import Secret, SigningKey
from api.signatures import (
    TOLERANCE,
    BasicAuthRequired,
    SignatureInvalid,
    check_timestamp,
    verify_basic_password,
    verify_mailgun,
    verify_mailtura,
    verify_sendgrid,
    verify_svix,
)
from tests.providers.signing import (
    MAILGUN_KEY,
    MAILTURA_SECRET,
    POSTMARK_PASSWORD,
    SVIX_KEY,
    basic,
    dumps,
    fixture_json,
    mailgun_signature,
    mailtura_body,
    mailtura_headers,
    sendgrid_headers,
    sendgrid_key,
    svix_signature,
)

NOW = 1_778_000_000  # a fixed "now" (May 2026), so nothing depends on the clock
MAILGUN = SigningKey(MAILGUN_KEY.encode())
MAILTURA = SigningKey(MAILTURA_SECRET.encode())
SVIX = SigningKey(SVIX_KEY)
POSTMARK = Secret(POSTMARK_PASSWORD)
BODY = dumps(fixture_json("sendgrid", "batch.json"))
SVIX_BODY = dumps(fixture_json("resend", "hard_bounce.json"))
MSG_ID = "msg_2Qx9cWfXa6bTq3"

OUTSIDE = "signed timestamp is outside the tolerance (replay?)"
MALFORMED_STAMP = "missing or malformed signature timestamp"


def refusal(check: Callable[..., object], *args: Any, **options: Any) -> SignatureInvalid:
    """The SignatureInvalid (or BasicAuthRequired) that `check(*args, **options)` raises."""
    with pytest.raises(SignatureInvalid) as caught:
        check(*args, **options)
    return caught.value


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def sendgrid_signed(body: bytes, stamp: int) -> tuple[str, str]:
    headers = sendgrid_headers(body, timestamp=stamp)
    return (
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )


def mailgun_hex(stamp: str, token: str) -> str:
    return hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()


def mailtura_signed(stamp: float) -> tuple[bytes, str]:
    body = mailtura_body("bounced_hard.json", at=at(stamp))
    return body, mailtura_headers(body)["X-Mailtura-Signature"]


# The replay window: the same rule for every provider, equality included.


@pytest.mark.parametrize("offset", [-TOLERANCE, TOLERANCE, -1.0, 0.0, 299.5])
def test_a_signed_timestamp_up_to_the_tolerance_away_either_way_is_accepted(
    offset: float,
) -> None:
    check_timestamp(NOW + offset, now=NOW)
    check_timestamp(1_000 + offset, now=1_000.0, tolerance=abs(offset))


@pytest.mark.parametrize("offset", [-TOLERANCE - 0.5, TOLERANCE + 0.5, -86_400.0, 86_400.0])
def test_a_signed_timestamp_beyond_the_tolerance_is_refused_as_a_possible_replay(
    offset: float,
) -> None:
    assert str(refusal(check_timestamp, NOW + offset, now=NOW)) == OUTSIDE


def sendgrid_aged(age: int, tolerance: float | None) -> None:
    signature, stamp = sendgrid_signed(BODY, NOW - age)
    options = {} if tolerance is None else {"tolerance": tolerance}
    verify_sendgrid(BODY, signature, stamp, sendgrid_key().public_key(), now=NOW, **options)


def mailgun_aged(age: int, tolerance: float | None) -> None:
    signature = mailgun_signature(timestamp=NOW - age, token="a" * 50)
    options = {} if tolerance is None else {"tolerance": tolerance}
    assert verify_mailgun(signature, MAILGUN, now=NOW, **options) == "a" * 50


def svix_aged(age: int, tolerance: float | None) -> None:
    stamp = str(NOW - age)
    signature = svix_signature(SVIX_BODY, MSG_ID, stamp)
    options = {} if tolerance is None else {"tolerance": tolerance}
    verify_svix(SVIX_BODY, MSG_ID, stamp, signature, SVIX, now=NOW, **options)


def mailtura_aged(age: int, tolerance: float | None) -> None:
    body, signature = mailtura_signed(NOW - age)
    options = {} if tolerance is None else {"tolerance": tolerance}
    verify_mailtura(body, signature, MAILTURA, now=NOW, **options)


AGED = {
    "sendgrid": sendgrid_aged,
    "mailgun": mailgun_aged,
    "svix": svix_aged,
    "mailtura": mailtura_aged,
}


@pytest.mark.parametrize("provider", sorted(AGED))
def test_every_provider_applies_the_tolerance_it_is_given_and_five_minutes_by_default(
    provider: str,
) -> None:
    deliver = AGED[provider]
    deliver(100, None)  # within the default five minutes
    deliver(100, 120.0)
    assert str(refusal(deliver, 100, 60.0)) == OUTSIDE
    assert str(refusal(deliver, 400, None)) == OUTSIDE
    deliver(400, 600.0)


# The signature timestamp in a header (SendGrid, Svix) or the Mailgun signature object.


# "²" and other scripts' digits pass str.isdigit(): only ASCII digits are a timestamp.
@pytest.mark.parametrize(
    "stamp",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "1.5e9",
        "1778000000.0",
        "\u00b2",
        "1778000000\u00b2",
        "\u0661\u0667\u0667\u0668\u0660\u0660\u0660\u0660\u0660\u0660",
    ],
    # ASCII ids: mutmut hands test ids back to pytest, which finds no escaped one
    ids=[
        "none",
        "empty",
        "blanks",
        "word",
        "negative",
        "exponent",
        "fraction",
        "superscript-two",
        "digits-then-superscript",
        "arabic-indic-digits",
    ],
)
def test_a_missing_or_malformed_signature_timestamp_is_refused_as_such(stamp: str | None) -> None:
    signature, _ = sendgrid_signed(BODY, NOW)
    key = sendgrid_key().public_key()
    problem = refusal(verify_sendgrid, BODY, signature, stamp, key, now=NOW)
    assert str(problem) == MALFORMED_STAMP
    svix = svix_signature(SVIX_BODY, MSG_ID, str(NOW))
    problem = refusal(verify_svix, SVIX_BODY, MSG_ID, stamp, svix, SVIX, now=NOW)
    assert str(problem) == MALFORMED_STAMP


# SendGrid: base64 DER ECDSA over the timestamp header and the raw body.


def test_a_sendgrid_delivery_signed_by_its_key_is_accepted_whitespace_around_included() -> None:
    signature, stamp = sendgrid_signed(BODY, NOW)
    key = sendgrid_key().public_key()
    verify_sendgrid(BODY, signature, stamp, key, now=NOW)
    verify_sendgrid(BODY, f" {signature}\n", f" {stamp} ", key, now=NOW)


@pytest.mark.parametrize("signature", [None, ""])
def test_a_sendgrid_delivery_without_a_signature_names_the_missing_header(
    signature: str | None,
) -> None:
    _, stamp = sendgrid_signed(BODY, NOW)
    problem = refusal(verify_sendgrid, BODY, signature, stamp, sendgrid_key().public_key(), now=NOW)
    assert str(problem) == "missing X-Twilio-Email-Event-Webhook-Signature"


def test_a_sendgrid_signature_with_characters_outside_base64_is_refused_not_cleaned_up() -> None:
    signature, stamp = sendgrid_signed(BODY, NOW)
    key = sendgrid_key().public_key()
    for stray in ("!", "*", "\n", " "):
        garbled = signature[:12] + stray + signature[12:]
        problem = refusal(verify_sendgrid, BODY, garbled, stamp, key, now=NOW)
        assert str(problem) == "SendGrid signature does not match"


def test_a_sendgrid_signature_over_other_bytes_or_another_timestamp_does_not_match() -> None:
    key = sendgrid_key().public_key()
    signature, stamp = sendgrid_signed(BODY, NOW)
    other_body, _ = sendgrid_signed(BODY + b" ", NOW)
    for args in (
        (BODY, other_body, stamp),
        (BODY, signature, str(NOW - 1)),
        (BODY, base64.b64encode(b"not DER at all").decode(), stamp),
        (BODY, "%%%%", stamp),
    ):
        problem = refusal(verify_sendgrid, *args, key, now=NOW)
        assert str(problem) == "SendGrid signature does not match"


# Mailgun: hex HMAC of timestamp + token, in the body's `signature` object.


@pytest.mark.parametrize("token", [None, "", 12345, ["a" * 50], {"t": "a"}])
def test_a_mailgun_signature_without_a_token_string_is_refused_even_if_signed(
    token: Any,
) -> None:
    signature: dict[str, Any] = {
        "timestamp": str(NOW),
        "signature": mailgun_hex(str(NOW), str(token)),
    }
    if token is not None:
        signature["token"] = token
    problem = refusal(verify_mailgun, signature, MAILGUN, now=NOW)
    assert str(problem) == "Mailgun signature has no token"


def test_a_mailgun_timestamp_is_read_from_a_string_or_an_integer() -> None:
    token = "b" * 50
    for stamp in (str(NOW), NOW, f" {NOW} "):
        signature = {"timestamp": stamp, "token": token, "signature": mailgun_hex(str(NOW), token)}
        assert verify_mailgun(signature, MAILGUN, now=NOW) == token


@pytest.mark.parametrize(
    "stamp",
    [None, float(NOW), Decimal(NOW), [str(NOW)], True, "\u00b2", "1778000000\u00b2"],
    ids=["none", "float", "decimal", "list", "bool", "superscript-two", "digits-then-superscript"],
)
def test_a_mailgun_timestamp_that_is_no_whole_number_in_ascii_digits_is_malformed(
    stamp: Any,
) -> None:
    token = "c" * 50
    signed_as = str(stamp).strip()  # what a reader printing any value would have signed
    signature = {"timestamp": stamp, "token": token, "signature": mailgun_hex(signed_as, token)}
    assert str(refusal(verify_mailgun, signature, MAILGUN, now=NOW)) == MALFORMED_STAMP


@pytest.mark.parametrize(
    "signed",
    [
        {"signature": "0" * 64},
        {},
        {"signature": None},
        {"signature": 7},
        {"parent-signature": "f" * 64},
    ],
)
def test_a_mailgun_signature_that_is_absent_or_wrong_does_not_match(
    signed: dict[str, Any],
) -> None:
    signature = {"timestamp": str(NOW), "token": "d" * 50, **signed}
    problem = refusal(verify_mailgun, signature, MAILGUN, now=NOW)
    assert str(problem) == "Mailgun signature does not match"


# Resend (Svix): base64 HMAC over id.timestamp.body, `v1,<sig>` entries.


@pytest.mark.parametrize(
    ("msg_id", "signatures"),
    [
        (None, svix_signature(SVIX_BODY, "", str(NOW))),
        ("", svix_signature(SVIX_BODY, "", str(NOW))),
        (MSG_ID, None),
        (MSG_ID, ""),
        (None, None),
    ],
)
def test_a_svix_delivery_without_its_id_or_its_signatures_names_both_headers(
    msg_id: str | None, signatures: str | None
) -> None:
    problem = refusal(verify_svix, SVIX_BODY, msg_id, str(NOW), signatures, SVIX, now=NOW)
    assert str(problem) == "missing svix-id or svix-signature"


def test_a_svix_header_is_accepted_when_any_v1_entry_matches() -> None:
    good = svix_signature(SVIX_BODY, MSG_ID, str(NOW))
    rotated = svix_signature(SVIX_BODY, MSG_ID, str(NOW), key=b"the-previous-key-0123456789abcde")
    verify_svix(SVIX_BODY, MSG_ID, str(NOW), f"{rotated} {good}", SVIX, now=NOW)
    verify_svix(SVIX_BODY, MSG_ID, str(NOW), f"v2,abc {good}", SVIX, now=NOW)


@pytest.mark.parametrize(
    "signatures",
    [
        "v1,AAAA",
        "v2," + svix_signature(SVIX_BODY, MSG_ID, str(NOW)).removeprefix("v1,"),
        svix_signature(SVIX_BODY, MSG_ID, str(NOW)).removeprefix("v1,"),
        svix_signature(SVIX_BODY, "msg_other", str(NOW)),
        svix_signature(SVIX_BODY + b" ", MSG_ID, str(NOW)),
        "   ",
    ],
)
def test_a_svix_header_without_a_matching_v1_entry_does_not_match(signatures: str) -> None:
    problem = refusal(verify_svix, SVIX_BODY, MSG_ID, str(NOW), signatures, SVIX, now=NOW)
    assert str(problem) == "Svix signature does not match"


# Mailtura: hex HMAC of the raw body; the signed body's own `timestamp` must be fresh.


def test_a_mailtura_signature_is_read_with_or_without_its_sha256_prefix_in_any_case() -> None:
    body, signature = mailtura_signed(NOW)
    for form in (signature, f"sha256={signature}", f" {signature.upper()} "):
        verify_mailtura(body, form, MAILTURA, now=NOW)


@pytest.mark.parametrize("signature", [None, ""])
def test_a_mailtura_delivery_without_a_signature_names_the_missing_header(
    signature: str | None,
) -> None:
    body, _ = mailtura_signed(NOW)
    problem = refusal(verify_mailtura, body, signature, MAILTURA, now=NOW)
    assert str(problem) == "missing X-Mailtura-Signature"


def test_a_mailtura_signature_of_other_bytes_does_not_match() -> None:
    body, signature = mailtura_signed(NOW)
    problem = refusal(verify_mailtura, body + b"\n", signature, MAILTURA, now=NOW)
    assert str(problem) == "Mailtura signature does not match"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"2026-05-05T16:53:20Z"',
        b"null",
        b'{"type": "email.bounced"}',
        b'{"type": "email.bounced", "timestamp": "whenever"}',
    ],
)
def test_a_signed_mailtura_body_without_a_readable_timestamp_is_refused_as_such(
    body: bytes,
) -> None:
    signature = mailtura_headers(body)["X-Mailtura-Signature"]
    problem = refusal(verify_mailtura, body, signature, MAILTURA, now=NOW)
    assert str(problem) == "Mailtura event has no readable timestamp"


# Postmark: HTTP Basic, the password is the secret, any user name.


@pytest.mark.parametrize(
    "authorization",
    [
        basic("postmark", POSTMARK_PASSWORD)["Authorization"],
        basic("", POSTMARK_PASSWORD)["Authorization"],
        "basic " + basic("x", POSTMARK_PASSWORD)["Authorization"].split()[1],
        "BASIC " + basic("x", POSTMARK_PASSWORD)["Authorization"].split()[1],
        "Basic   " + basic("x", POSTMARK_PASSWORD)["Authorization"].split()[1] + "  ",
        "  " + basic("x", POSTMARK_PASSWORD)["Authorization"],
    ],
)
def test_basic_credentials_with_the_password_are_accepted_however_spaced_and_cased(
    authorization: str,
) -> None:
    verify_basic_password(authorization, POSTMARK)


def test_a_basic_password_is_everything_after_the_first_colon_colons_included() -> None:
    authorization = basic("postmark", "pass:with:colons")["Authorization"]
    verify_basic_password(authorization, Secret("pass:with:colons"))
    problem = refusal(verify_basic_password, authorization, Secret("colons"))
    assert str(problem) == "wrong webhook password"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "   ", "Basic", "Basic    ", "Bearer abc", "Digest username=x", "Basicdeadbeef"],
)
def test_a_request_without_basic_credentials_is_challenged(authorization: str | None) -> None:
    problem = refusal(verify_basic_password, authorization, POSTMARK)
    assert isinstance(problem, BasicAuthRequired)
    assert str(problem) == "HTTP Basic credentials are required"


def test_basic_credentials_that_are_not_strict_base64_utf8_are_malformed() -> None:
    good = basic("postmark", POSTMARK_PASSWORD)["Authorization"].split()[1]
    for credential in (
        good[:4] + "!" + good[4:],  # the right password, with a character base64 lacks
        good[:4] + "*" + good[4:],
        "%%%%",
        "abc",  # bad padding
        base64.b64encode(b"\xff\xfe:" + POSTMARK_PASSWORD.encode()).decode(),
    ):
        problem = refusal(verify_basic_password, f"Basic {credential}", POSTMARK)
        assert not isinstance(problem, BasicAuthRequired)
        assert str(problem) == "malformed Basic credentials"


@pytest.mark.parametrize(
    "credential",
    [
        base64.b64encode(f"postmark:{POSTMARK_PASSWORD}x".encode()).decode(),
        base64.b64encode(f"postmark:{POSTMARK_PASSWORD.upper()}".encode()).decode(),
        base64.b64encode(b"postmark:").decode(),
        base64.b64encode(POSTMARK_PASSWORD.encode()).decode(),  # no colon: no password
    ],
)
def test_basic_credentials_with_another_password_are_refused(credential: str) -> None:
    problem = refusal(verify_basic_password, f"Basic {credential}", POSTMARK)
    assert not isinstance(problem, BasicAuthRequired)
    assert str(problem) == "wrong webhook password"
