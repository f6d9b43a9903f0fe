"""Endpoint secrets and the Standard Webhooks signature.

An endpoint's secret is never stored: it is derived from the server's endpoint key, the
endpoint's id and its secret generation, `whsec_` + base64(HMAC-SHA256(key,
"bounceledger endpoint secret v1\\0" id "\\0" generation)), so a copy of the database
(a backup, a stolen file) holds no secret a receiver trusts. The key comes from
`BOUNCELEDGER_ENDPOINT_KEY` (at least 32 characters) or the file
`BOUNCELEDGER_ENDPOINT_KEY_FILE` names (its bytes, at least 32); every instance that
delivers needs the same key. Lose it, or change it, and every endpoint's secret changes.

A delivery carries `webhook-id` (the entry's `chg_<n>`, the same on every retry: the
receiver's idempotency key), `webhook-timestamp` (unix seconds of the attempt) and
`webhook-signature`: `v1,` + base64(HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")),
the secret bytes being the base64-decoded part after `whsec_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from projections.keyfiles import configured

PREFIX = "whsec_"
MIN_KEY = 32
ENV = "BOUNCELEDGER_ENDPOINT_KEY"
ENV_FILE = "BOUNCELEDGER_ENDPOINT_KEY_FILE"
_CONTEXT = b"bounceledger endpoint secret v1\x00"


class EndpointKeyMissing(ValueError):
    """No usable endpoint key is configured (the message says how to set one)."""


NO_KEY = (
    f"outbound webhooks need a key: set {ENV} (at least {MIN_KEY} characters, e.g. from "
    f"`openssl rand -hex 32`) or {ENV_FILE}; every instance that delivers needs the same key"
)


class EndpointKey:
    """The server's key every endpoint's secret is derived from (never shown)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY:
            raise EndpointKeyMissing(
                f"the endpoint key is {len(key)} bytes; it must be at least {MIN_KEY}"
            )
        self._key = key

    def __repr__(self) -> str:
        return "EndpointKey('***')"

    def secret(self, endpoint: str, generation: int) -> str:
        """The `whsec_` secret of an endpoint's generation."""
        message = _CONTEXT + endpoint.encode() + b"\x00" + str(generation).encode()
        mac = hmac.new(self._key, message, hashlib.sha256).digest()
        return PREFIX + base64.b64encode(mac).decode()


def load_key(environ: Mapping[str, str] | None = None) -> EndpointKey | None:
    """The endpoint key the environment configures, or None; EndpointKeyMissing when the
    configured one is unusable (too short, the file unreadable)."""
    key = configured(environ, ENV, ENV_FILE, EndpointKeyMissing)
    return EndpointKey(key) if key is not None else None


def require_key(environ: Mapping[str, str] | None = None) -> EndpointKey:
    """The configured endpoint key; EndpointKeyMissing, saying how to set one, when none is."""
    key = load_key(environ)
    if key is None:
        raise EndpointKeyMissing(NO_KEY)
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (one `v1,` signature) of a message."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of a message sent at `timestamp` (unix seconds)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
