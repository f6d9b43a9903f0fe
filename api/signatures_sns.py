"""Amazon SNS message signatures (versions 1 and 2), as pure functions.

SNS signs a canonical string built from the envelope's *decoded* fields, not the body
bytes, with RSA PKCS#1 v1.5 (SHA-1 for version 1, SHA-256 for version 2). The signing
certificate is taken only from an `https://sns.<region>.amazonaws.com/…pem` URL and is
kept in a cache directory under the URL's last path segment: a certificate already there
is used without fetching, so verification works offline. The topic must be one the
operator configured; the publish `Timestamp` must be recent (SNS reuses it on retries,
so the window is hours, not minutes).
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from api.signatures import SignatureInvalid, SignatureUnverifiable, check_timestamp
from projections.recipients import parse_time

# An outbound HTTPS GET (URL -> body bytes). Certificate and subscription fetches go
# through it, so tests and offline deployments replace or disable it.
Fetch = Callable[[str], bytes]

SNS_TOLERANCE = 8 * 3600.0  # seconds; SNS's own retries end within an hour
MAX_FETCH_BYTES = 64 * 1024

_HOST = re.compile(r"sns\.[a-z0-9-]{3,}\.amazonaws\.com(?:\.cn)?")
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


def _sns_url(url: str, what: str) -> tuple[str, str]:
    """(path, query) of an https URL on an SNS host, with no user, port or fragment."""
    parts = urlsplit(url)
    # The whole authority must be the host: no `user@`, no `:port`, no trailing dot.
    if parts.scheme != "https" or not _HOST.fullmatch(parts.netloc) or parts.fragment:
        raise SignatureInvalid(f"{what} is not an https://sns.<region>.amazonaws.com/ URL")
    return parts.path, parts.query


def cert_file_name(url: str) -> str:
    """The cache file name for a SigningCertURL, after checking the URL is SNS's own."""
    path, query = _sns_url(url, "SigningCertURL")
    name = path.rsplit("/", 1)[-1]
    if query or not _CERT_FILE.fullmatch(name):
        raise SignatureInvalid("SigningCertURL does not name a .pem certificate")
    return name


def check_subscribe_url(url: str, topic_arn: str) -> None:
    """A SubscribeURL is visited only if it is SNS confirming this very topic."""
    _, query = _sns_url(url, "SubscribeURL")
    params = parse_qs(query)
    if params.get("Action") != ["ConfirmSubscription"] or params.get("TopicArn") != [topic_arn]:
        raise SignatureInvalid("SubscribeURL does not confirm the message's topic")


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """`key\\nvalue\\n` for each signed field present, in SNS's order for the type."""
    fields = _SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SignatureInvalid(f"unknown SNS message type {message.get('Type')!r}")
    out = []
    for key in fields:
        value = message.get(key)
        if value is None and key == "Subject":
            continue
        if not isinstance(value, str):
            raise SignatureInvalid(f"SNS message has no {key} string")
        out.append(f"{key}\n{value}\n")
    return "".join(out).encode()


def load_certificate(url: str, cache_dir: Path, fetch: Fetch | None) -> x509.Certificate:
    """The signing certificate: from the cache, else fetched (when allowed) and cached."""
    name = cert_file_name(url)
    path = cache_dir / name
    if path.is_file():
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError as exc:
            raise SignatureUnverifiable(f"cached certificate {path} is not a PEM") from exc
    if fetch is None:
        raise SignatureUnverifiable(
            f"certificate {name} is not in {cache_dir} and outbound fetching is disabled"
        )
    try:
        pem = fetch(url)
        certificate = x509.load_pem_x509_certificate(pem)
    except Exception as exc:
        raise SignatureUnverifiable(f"could not fetch certificate {name}: {exc}") from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".fetch-", delete=False) as handle:
        handle.write(pem)
    os.replace(handle.name, path)
    return certificate


def verify_sns(
    message: Mapping[str, Any],
    *,
    topics: frozenset[str],
    cache_dir: Path,
    fetch: Fetch | None,
    now: float,
    tolerance: float = SNS_TOLERANCE,
) -> None:
    """Raise SignatureInvalid unless `message` is a fresh, correctly signed SNS message
    from an accepted topic; SignatureUnverifiable when the certificate is unavailable."""
    if message.get("TopicArn") not in topics:
        raise SignatureInvalid("SNS topic is not one of SES_SNS_TOPIC_ARNS")
    algorithm = _HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SignatureInvalid("SNS SignatureVersion must be 1 or 2")
    signed = canonical_string(message)
    url = message.get("SigningCertURL")
    if not isinstance(url, str):
        raise SignatureInvalid("SNS message has no SigningCertURL")
    cert_file_name(url)  # refuse a foreign URL before anything is read or fetched
    try:
        signature = base64.b64decode(str(message.get("Signature")), validate=True)
    except ValueError as exc:
        raise SignatureInvalid("SNS Signature is not base64") from exc
    key = load_certificate(url, cache_dir, fetch).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalid("SNS signing certificate does not hold an RSA key")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SignatureInvalid("SNS signature does not match") from exc
    published = parse_time(str(message.get("Timestamp")))
    if published is None:
        raise SignatureInvalid("SNS Timestamp is unreadable")
    check_timestamp(published / 1_000_000, now=now, tolerance=tolerance)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an error: only the validated URL is fetched


def fetch_https(url: str) -> bytes:
    """GET an https URL (no redirects, 10 s timeout, at most 64 KiB)."""
    if urlsplit(url).scheme != "https":
        raise ValueError("only https URLs are fetched")
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(url, timeout=10) as response:  # scheme checked above
        body: bytes = response.read(MAX_FETCH_BYTES + 1)
    if len(body) > MAX_FETCH_BYTES:
        raise ValueError("response larger than 64 KiB")
    return body
