"""Webhook signatures, as pure functions over the raw body bytes (never a re-serialised body).

Each function raises SignatureInvalid when the delivery is not authentic or its signed
timestamp is outside the tolerance (replay protection), and returns None otherwise.
Every comparison is constant-time, and every candidate signature is compared (no
short-circuit), so timing does not tell which one was close. SNS lives in
`api.sns_messages`.

SignatureInvalid is answered 403, BasicAuthRequired 401 with a Basic challenge, and
SignatureUnverifiable (the door cannot check right now) 503: see api/app.py.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from projections.providers.common import JSON_ERRORS
from projections.providers.mailtura import event_time
from projections.recipients import parse_time

if TYPE_CHECKING:  # api.settings imports this module (through api.sns_certificates)
    from api.settings import Secret, SigningKey

TOLERANCE = 300.0  # seconds either way: the Svix libraries' window, used for all HMACs


class SignatureInvalid(Exception):
    """When a delivery's signature, credentials or signed timestamp do not check out."""


class BasicAuthRequired(SignatureInvalid):
    """When HTTP Basic credentials are needed and none were sent (a 401 challenge)."""


class SignatureUnverifiable(Exception):
    """When the door cannot verify right now (e.g. a signing certificate is unavailable)."""


def check_timestamp(timestamp: float, *, now: float, tolerance: float = TOLERANCE) -> None:
    """Refuse a signed timestamp more than `tolerance` seconds from `now`, either way."""
    if abs(now - timestamp) > tolerance:
        raise SignatureInvalid("signed timestamp is outside the tolerance (replay?)")


def _unix_seconds(value: str | None) -> int:
    # ASCII digits only: str.isdigit() also accepts "²" (int() refuses it: a 500) and
    # other scripts' digits ("١٧٧٨…", which int() reads).
    stamp = (value or "").strip()
    if not (stamp.isascii() and stamp.isdigit()):
        raise SignatureInvalid("missing or malformed signature timestamp")
    return int(stamp)


def _any_equal(expected: bytes, candidates: list[bytes]) -> bool:
    results = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(results)


def verify_sendgrid(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    key: ec.EllipticCurvePublicKey,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> None:
    """SendGrid: base64 DER ECDSA (P-256, SHA-256) over the timestamp header + raw body."""
    if not signature:
        raise SignatureInvalid("missing X-Twilio-Email-Event-Webhook-Signature")
    seconds = _unix_seconds(timestamp)
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, str(timestamp).strip().encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature) as exc:
        raise SignatureInvalid("SendGrid signature does not match") from exc
    check_timestamp(seconds, now=now, tolerance=tolerance)


def verify_mailgun(
    signature: Mapping[str, Any], key: SigningKey, *, now: float, tolerance: float = TOLERANCE
) -> str:
    """Mailgun: hex HMAC-SHA256 of timestamp + token (a subaccount's `parent-signature`
    is accepted too). Returns the token, which the caller keeps single-use, because
    Mailgun's signature does not cover the event data."""
    timestamp, token = signature.get("timestamp"), signature.get("token")
    if not isinstance(token, str) or not token:
        raise SignatureInvalid("Mailgun signature has no token")
    stamp = str(timestamp).strip() if isinstance(timestamp, (str, int)) else None
    seconds = _unix_seconds(stamp)
    expected = key.sign(f"{stamp}{token}".encode()).hex().encode()
    given = [
        value.strip().lower().encode()
        for value in (signature.get("signature"), signature.get("parent-signature"))
        if isinstance(value, str)
    ]
    if not given or not _any_equal(expected, given):
        raise SignatureInvalid("Mailgun signature does not match")
    check_timestamp(seconds, now=now, tolerance=tolerance)
    return token


def verify_svix(
    body: bytes,
    msg_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    key: SigningKey,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> None:
    """Resend (Svix): base64 HMAC-SHA256 over `id.timestamp.body`; the header lists one
    or more `v1,<signature>` entries separated by spaces (secret rotation)."""
    if not msg_id or not signatures:
        raise SignatureInvalid("missing svix-id or svix-signature")
    seconds = _unix_seconds(timestamp)
    expected = base64.b64encode(key.sign(f"{msg_id}.{seconds}.".encode() + body))
    given = [
        value.encode()
        for version, _, value in (entry.partition(",") for entry in signatures.split())
        if version == "v1"
    ]
    if not given or not _any_equal(expected, given):
        raise SignatureInvalid("Svix signature does not match")
    check_timestamp(seconds, now=now, tolerance=tolerance)


def verify_mailtura(
    body: bytes,
    signature: str | None,
    key: SigningKey,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> None:
    """Mailtura: hex HMAC-SHA256 of the raw body; then, per its spec, the signed body's
    `timestamp` must be within the tolerance."""
    if not signature:
        raise SignatureInvalid("missing X-Mailtura-Signature")
    expected = key.sign(body).hex().encode()
    given = signature.strip().lower().removeprefix("sha256=").encode()
    if not hmac.compare_digest(expected, given):
        raise SignatureInvalid("Mailtura signature does not match")
    try:
        document = msgspec.json.decode(body)
    except JSON_ERRORS:
        document = None
    when = parse_time(event_time(document)) if isinstance(document, dict) else None
    if when is None:
        raise SignatureInvalid("Mailtura event has no readable timestamp")
    check_timestamp(when / 1_000_000, now=now, tolerance=tolerance)


def verify_basic_password(authorization: str | None, secret: Secret) -> None:
    """Postmark: HTTP Basic credentials whose password is the secret (any user name)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise BasicAuthRequired("HTTP Basic credentials are required")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SignatureInvalid("malformed Basic credentials") from exc
    _, sep, password = decoded.partition(":")
    if not sep or not secret.matches(password):
        raise SignatureInvalid("wrong webhook password")
