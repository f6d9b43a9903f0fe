"""Amazon SNS messages and their signatures (versions 1 and 2), as pure functions.

SNS signs a canonical string built from the envelope's *decoded* fields, not the body
bytes, with RSA PKCS#1 v1.5 (SHA-1 for version 1, SHA-256 for version 2). Whatever SNS
does not sign must therefore be refused, or a signed message could be stored again and
again as new bytes: an envelope may hold only the fields SNS sends, each once and of the
right type.

The signing certificate is taken only from an `https://sns.<region>.amazonaws.com/….pem`
URL (China: `.amazonaws.com.cn`) in the topic's own region, and must name SNS as its
subject. The topic must be one the operator configured; the publish `Timestamp` must be
recent (SNS reuses it on retries, so the window is hours, not minutes).

Nothing here reads a file or the network: getting the certificate is
api.sns_certificates'.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from api.signatures import SignatureInvalid, check_timestamp
from projections.recipients import parse_time

SNS_TOLERANCE = 8 * 3600.0  # seconds; SNS's own retries end within an hour

# Every field SNS puts in an HTTP/S delivery (Notification, SubscriptionConfirmation,
# UnsubscribeConfirmation; docs: "HTTP/HTTPS notification JSON format"). All are
# strings except MessageAttributes ({name: {"Type": …, "Value": …}}).
ENVELOPE_FIELDS = frozenset(
    {
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "SubscribeURL",
        "UnsubscribeURL",
        "MessageAttributes",
    }
)
_ATTRIBUTE_FIELDS = frozenset({"Type", "Value"})

# sns.<region>.amazonaws.com, sns.us-gov-<…>.amazonaws.com, sns.cn-<…>.amazonaws.com.cn:
# the label after `sns.` must be region-shaped, so S3 virtual hosts (`sns.s3-accelerate…`,
# `sns.s3.…`, `sns.s3-website-…`) are not SNS.
_HOST = re.compile(
    r"sns\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})\.(?P<domain>amazonaws\.com(?:\.cn)?)"
)
_CERT_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\.pem")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class EnvelopeMalformed(SignatureInvalid):
    """An SNS envelope whose fields have the wrong JSON types: refused like any
    unverifiable message, but the door answers 400 (a malformed request, not a forgery)."""


def _names(keys: list[str]) -> str:
    """A few field names, shortened: they come from the sender."""
    shown = ", ".join(repr(key[:40]) for key in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def check_envelope(message: Mapping[str, Any]) -> None:
    """Only SNS's own fields, with SNS's types: unsigned extras are refused (403), wrongly
    typed fields are EnvelopeMalformed (400)."""
    unknown = sorted(key for key in message if key not in ENVELOPE_FIELDS)
    if unknown:
        raise SignatureInvalid(f"SNS envelope has fields SNS does not send: {_names(unknown)}")
    for key, value in message.items():
        if key == "MessageAttributes":
            _check_attributes(value)
        elif not isinstance(value, str):
            raise EnvelopeMalformed(f"SNS field {key} must be a string, not {_json_type(value)}")


def _check_attributes(value: Any) -> None:
    if not isinstance(value, dict):
        raise EnvelopeMalformed(f"SNS MessageAttributes must be an object, not {_json_type(value)}")
    for attribute in value.values():
        if (
            not isinstance(attribute, dict)
            or not set(attribute) <= _ATTRIBUTE_FIELDS
            or not all(isinstance(part, str) for part in attribute.values())
        ):
            raise EnvelopeMalformed("each SNS message attribute must be {Type, Value} strings")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), "a number")


def check_unique_keys(body: bytes) -> None:
    """Refuse a body repeating a key in any object: a JSON reader keeps one of the two
    values, so the other would be unsigned bytes riding along (a new receipt each time)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(items)
        if len(document) != len(items):
            raise SignatureInvalid("SNS envelope repeats a field")
        return document

    try:
        json.loads(body, object_pairs_hook=pairs)
    except ValueError as exc:
        raise EnvelopeMalformed("body is not JSON") from exc


def _sns_host(url: str, what: str) -> tuple[str, str, str, str]:
    """(region, domain, path, query) of an https URL on an SNS host, with no user, port
    or fragment."""
    parts = urlsplit(url)
    # The whole authority must be the host: no `user@`, no `:port`, no trailing dot.
    host = _HOST.fullmatch(parts.netloc)
    if parts.scheme != "https" or host is None or parts.fragment:
        raise SignatureInvalid(f"{what} is not an https://sns.<region>.amazonaws.com/ URL")
    region, domain = host["region"], host["domain"]
    if region.startswith("cn-") != domain.endswith(".cn"):  # China only on amazonaws.com.cn
        raise SignatureInvalid(f"{what} is not an https://sns.<region>.amazonaws.com/ URL")
    return region, domain, parts.path, parts.query


def cert_file_name(url: str) -> str:
    """The cache file name for a SigningCertURL, after checking the URL is SNS's own."""
    _, _, path, query = _sns_host(url, "SigningCertURL")
    name = path.rsplit("/", 1)[-1]
    if query or not _CERT_FILE.fullmatch(name):
        raise SignatureInvalid("SigningCertURL does not name a .pem certificate")
    return name


def check_subscribe_url(url: str, topic_arn: str) -> None:
    """A SubscribeURL is visited only if it is SNS confirming this very topic."""
    _, _, _, query = _sns_host(url, "SubscribeURL")
    params = parse_qs(query)
    if params.get("Action") != ["ConfirmSubscription"] or params.get("TopicArn") != [topic_arn]:
        raise SignatureInvalid("SubscribeURL does not confirm the message's topic")


def signer_names(url: str) -> frozenset[str]:
    """The subject names an SNS signing certificate from `url` may carry.

    AWS's SDKs expect `sns.amazonaws.com` in most regions, `sns-signing.<region>…` in the
    opt-in regions, `sns-<region>.amazonaws.com.cn` in China and
    `sns-us-gov-west-1.amazonaws.com` for both GovCloud regions; the regional host name
    itself is accepted too."""
    region, domain, _, _ = _sns_host(url, "SigningCertURL")
    names = {
        f"sns.{domain}",
        f"sns.{region}.{domain}",
        f"sns-{region}.{domain}",
        f"sns-signing.{region}.{domain}",
    }
    if region.startswith("us-gov-"):
        names.add("sns-us-gov-west-1.amazonaws.com")
    return frozenset(names)


def check_subject(certificate: x509.Certificate, url: str) -> None:
    """Raise ValueError unless the certificate's CN or a DNS SAN is SNS's for `url`."""
    names = {
        str(attribute.value).lower()
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    }
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        pass
    else:
        names.update(name.lower() for name in san.value.get_values_for_type(x509.DNSName))
    if not names & signer_names(url):
        raise ValueError(f"certificate subject {sorted(names)!r} is not SNS's")


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """`key\\nvalue\\n` for each signed field present, in SNS's order for the type."""
    fields = _SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SignatureInvalid(f"unknown SNS message type {str(message.get('Type'))[:40]!r}")
    out = []
    for key in fields:
        value = message.get(key)
        if value is None and key == "Subject":
            continue
        if not isinstance(value, str):
            raise SignatureInvalid(f"SNS message has no {key} string")
        out.append(f"{key}\n{value}\n")
    return "".join(out).encode()


def check_message(
    message: Mapping[str, Any],
    *,
    topics: frozenset[str],
    now: float,
    tolerance: float = SNS_TOLERANCE,
    require_v2: bool = False,
) -> str:
    """Everything that can be checked before the certificate is needed; returns the
    SigningCertURL. Nothing is read or fetched for a message that fails here."""
    check_envelope(message)
    topic = message.get("TopicArn")
    if topic not in topics:
        raise SignatureInvalid("SNS topic is not one of SES_SNS_TOPIC_ARNS")
    version = message.get("SignatureVersion")
    if version not in _HASHES:
        raise SignatureInvalid("SNS SignatureVersion must be 1 or 2")
    if require_v2 and version != "2":
        raise SignatureInvalid(
            "SNS SignatureVersion 1 (SHA-1) is refused (SES_SNS_REQUIRE_V2): set the topic "
            "attribute SignatureVersion to 2"
        )
    canonical_string(message)
    url = message.get("SigningCertURL")
    if not isinstance(url, str):
        raise SignatureInvalid("SNS message has no SigningCertURL")
    cert_file_name(url)  # refuse a foreign URL before anything is read or fetched
    region = _sns_host(url, "SigningCertURL")[0]
    if str(topic).split(":")[3:4] != [region]:
        raise SignatureInvalid("SigningCertURL is not in the topic's region")
    published = parse_time(str(message.get("Timestamp")))
    if published is None:
        raise SignatureInvalid("SNS Timestamp is unreadable")
    check_timestamp(published / 1_000_000, now=now, tolerance=tolerance)
    return url


def check_signature(message: Mapping[str, Any], certificate: x509.Certificate) -> None:
    """Raise SignatureInvalid unless `certificate`'s key signed the message's fields."""
    try:
        signature = base64.b64decode(str(message.get("Signature")), validate=True)
    except ValueError as exc:
        raise SignatureInvalid("SNS Signature is not base64") from exc
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalid("SNS signing certificate does not hold an RSA key")
    algorithm = _HASHES[str(message.get("SignatureVersion"))]
    try:
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SignatureInvalid("SNS signature does not match") from exc
