"""Real keys and real signatures for the provider tests, computed here independently of
the code under test (the canonical SNS string, the Svix and Mailgun HMACs, ...).

Keys are generated once per test session (RSA generation is the slow part).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import FIXTURES

MAILGUN_KEY = "key-mailgun-signing-0123456789abcdef"
MAILTURA_SECRET = "mailtura-webhook-secret-abcdef"
POSTMARK_PASSWORD = "postmark-basic-password-42"
SVIX_KEY = b"resend-svix-key-bytes-0123456789"
SVIX_SECRET = "whsec_" + base64.b64encode(SVIX_KEY).decode()
TOPIC = "arn:aws:sns:eu-west-1:111122223333:ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0123456789.pem"


def fixture_json(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_bytes())


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def reserialised(body: bytes) -> bytes:
    """The same JSON, as a framework would re-encode it (different bytes, same data)."""
    again = json.dumps(json.loads(body), indent=1).encode()
    assert again != body
    return again


def flipped(body: bytes, needle: bytes) -> bytes:
    """`body` with one byte changed inside the first occurrence of `needle`."""
    at = body.index(needle)
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


# SendGrid: ECDSA P-256 over timestamp + raw body, base64 DER signature.


@functools.cache
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_public_b64(key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """The public key as SendGrid's console shows it: bare base64 of the DER SPKI."""
    der = (
        (key or sendgrid_key())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sendgrid_headers(
    body: bytes, *, timestamp: int | None = None, key: ec.EllipticCurvePrivateKey | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = (key or sendgrid_key()).sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "content-type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


# Mailgun: hex HMAC-SHA256 of timestamp + token, inside the body.


def mailgun_signature(
    *, timestamp: int | None = None, token: str | None = None, key: str = MAILGUN_KEY
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or hashlib.sha256(f"{time.perf_counter_ns()}".encode()).hexdigest()[:50]
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}


def mailgun_body(event_data: dict[str, Any], **signature: Any) -> bytes:
    return json.dumps(
        {"signature": mailgun_signature(**signature), "event-data": event_data}
    ).encode()


# Resend / Svix: base64 HMAC-SHA256 over id.timestamp.body with the decoded whsec_ key.


def svix_signature(body: bytes, msg_id: str, stamp: str, key: bytes = SVIX_KEY) -> str:
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def svix_headers(
    body: bytes, msg_id: str, *, timestamp: int | None = None, key: bytes = SVIX_KEY
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": stamp,
        "svix-signature": svix_signature(body, msg_id, stamp, key),
    }


# Mailtura: hex HMAC-SHA256 of the raw body; the body's `timestamp` must be fresh.


def mailtura_body(name: str, *, at: dt.datetime | None = None) -> bytes:
    """A Mailtura fixture with its `timestamp` set to `at` (now by default)."""
    document = fixture_json("mailtura", name)
    moment = at or dt.datetime.now(dt.UTC)
    document["timestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(document).encode()


def mailtura_headers(body: bytes, secret: str = MAILTURA_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "X-Mailtura-Signature": digest}


def basic(user: str, password: str) -> dict[str, str]:
    credential = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"content-type": "application/json", "Authorization": f"Basic {credential}"}


# SNS: a self-signed certificate stands in for Amazon's; messages signed v1 or v2.


@functools.cache
def sns_identity() -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key and a self-signed PEM certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, sns_certificate("sns.amazonaws.com", key=key)


def sns_certificate(
    common_name: str,
    *,
    alt_names: tuple[str, ...] = (),
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A PEM certificate for the stand-in key (or `key`, self-signed) naming `common_name`
    and, when given, DNS subject alternative names: to test which subjects pass as SNS's,
    and which keys."""
    key = key or sns_identity()[0]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in alt_names]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def place_certificate(cache_dir: Path, url: str = CERT_URL) -> Path:
    """Put the stand-in certificate where the verifier looks for `url`'s certificate."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / url.rsplit("/", 1)[-1]
    path.write_bytes(sns_identity()[1])
    return path


_SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def sns_sign(envelope: dict[str, Any], version: str = "2") -> dict[str, Any]:
    """`envelope` with SignatureVersion and a real Signature over SNS's canonical string."""
    fields = _SIGNED.get(envelope["Type"], _SIGNED["SubscriptionConfirmation"])
    canonical = "".join(f"{k}\n{envelope[k]}\n" for k in fields if envelope.get(k) is not None)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
    signature = sns_identity()[0].sign(canonical.encode(), padding.PKCS1v15(), algorithm)
    return {
        **envelope,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
    }


def sns_time(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sns_notification(
    message: dict[str, Any] | str,
    *,
    message_id: str = "c0ffee00-1111-4222-8333-444455556666",
    topic: str = TOPIC,
    version: str = "2",
    cert_url: str = CERT_URL,
    at: dt.datetime | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """A signed SNS Notification envelope around an SES event (or a plain-text message)."""
    envelope: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": sns_time(at),
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    }
    if subject is not None:
        envelope["Subject"] = subject
    return sns_sign(envelope, version)


def sns_confirmation(
    *, topic: str = TOPIC, subscribe_url: str | None = None, kind: str = "SubscriptionConfirmation"
) -> dict[str, Any]:
    """A signed SubscriptionConfirmation (from the fixture, re-dated and re-signed)."""
    envelope = fixture_json("ses", "subscription_confirmation.json")
    envelope.update(Type=kind, TopicArn=topic, Timestamp=sns_time(), SigningCertURL=CERT_URL)
    envelope["SubscribeURL"] = subscribe_url or (
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={topic}&Token={envelope['Token']}"
    )
    return sns_sign(envelope, "2")


def sns_headers(envelope: dict[str, Any]) -> dict[str, str]:
    return {
        "content-type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": envelope["Type"],
        "x-amz-sns-message-id": envelope["MessageId"],
        "x-amz-sns-topic-arn": envelope["TopicArn"],
        "user-agent": "Amazon Simple Notification Service Agent",
    }
